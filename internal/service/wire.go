package service

import (
	"bytes"
	"net/textproto"
	"slices"
	"strings"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/store"
)

// HeaderMode says which headers a message carries on the wire
// (fields=include_headers / include_basic_headers).
type HeaderMode int

const (
	HeadersNone HeaderMode = iota
	HeadersBasic
	HeadersAll
)

// MessageWire is the API form of a message.
func MessageWire(m *store.Message, headers HeaderMode) api.Message {
	w := api.Message{
		Object: "message", ID: m.ID, GrantID: m.GrantID, ThreadID: m.ThreadID, Subject: m.Subject,
		From: participants(m.From), To: participants(m.To), Cc: participants(m.Cc), Bcc: participants(m.Bcc),
		ReplyTo: participants(m.ReplyTo), Date: m.Date.Unix(), Unread: m.Unread, Starred: m.Starred,
		Folders: m.Folders, Snippet: m.Snippet, Body: m.Body, Metadata: map[string]any{},
		Attachments: make([]api.Attachment, 0, len(m.Attachments)), CreatedAt: m.CreatedAt.Unix(),
	}
	if w.Folders == nil {
		w.Folders = []string{}
	}
	for _, a := range m.Attachments {
		w.Attachments = append(w.Attachments, AttachmentWire(m.GrantID, &a))
	}
	if headers != HeadersNone {
		w.Headers = headerList(m.Headers, headers == HeadersBasic)
	}
	return w
}

// AttachmentWire is the API form of an attachment.
func AttachmentWire(grantID string, a *store.Attachment) api.Attachment {
	disp := "attachment"
	if a.IsInline {
		disp = "inline"
	}
	return api.Attachment{ID: a.ID, GrantID: grantID, Filename: a.Filename, ContentType: a.ContentType,
		Size: a.Size, ContentID: a.ContentID, ContentDisposition: disp, IsInline: a.IsInline}
}

// ThreadWire is the API form of a thread; latest may be nil. Drafts are
// listed apart from the messages, as Nylas does.
func ThreadWire(t *store.Thread, latest *store.Message, draftIDs []string) api.Thread {
	w := api.Thread{
		Object: "thread", ID: t.ID, GrantID: t.GrantID, Subject: t.Subject,
		Participants: participants(t.Participants), MessageIDs: []string{}, DraftIDs: nonNil(draftIDs), HasDrafts: len(draftIDs) > 0,
		Folders: nonNil(t.Folders), HasAttachments: t.HasAttachments, Starred: t.Starred, Unread: t.Unread,
		Snippet: t.Snippet, EarliestMessageDate: t.EarliestMessageAt.Unix(), LatestMessageReceivedDate: t.LatestMessageAt.Unix(),
	}
	for _, id := range t.MessageIDs {
		if !slices.Contains(draftIDs, id) {
			w.MessageIDs = append(w.MessageIDs, id)
		}
	}
	if latest != nil {
		m := MessageWire(latest, HeadersNone)
		if slices.Contains(draftIDs, latest.ID) {
			m.Object = "draft"
		}
		w.LatestDraftOrMessage = &m
	}
	return w
}

func participants(ps []store.Participant) []api.Participant {
	out := make([]api.Participant, len(ps))
	for i, p := range ps {
		out[i] = api.Participant(p)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

var basicHeaders = map[string]bool{"Message-Id": true, "In-Reply-To": true, "References": true}

// headerList splits a raw header block into fields, unfolded but not
// decoded, duplicates kept in order.
func headerList(raw []byte, basicOnly bool) []api.Header {
	out := []api.Header{}
	var name string
	var value strings.Builder
	flush := func() {
		if name != "" && (!basicOnly || basicHeaders[textproto.CanonicalMIMEHeaderKey(name)]) {
			out = append(out, api.Header{Name: name, Value: strings.TrimSpace(value.String())})
		}
		name = ""
		value.Reset()
	}
	for _, line := range bytes.Split(raw, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			value.WriteByte(' ')
			value.Write(bytes.TrimLeft(line, " \t"))
			continue
		}
		flush()
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = string(bytes.TrimSpace(k))
		value.Write(v)
	}
	flush()
	return out
}
