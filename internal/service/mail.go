package service

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
)

// Mailbox reaches a grant's IMAP server for what the store does not keep:
// raw messages, attachment bodies and native searches.
type Mailbox interface {
	// FetchSection streams BODY.PEEK[section] ("" for the whole message)
	// of one message into fn, without holding it in memory.
	FetchSection(ctx context.Context, c provider.Credentials, folder string, uidValidity, uid uint32, section string, fn func(io.Reader) error) error
	// Search runs an IMAP SEARCH written in IMAP syntax in one folder.
	Search(ctx context.Context, c provider.Credentials, folder string, uidValidity uint32, query string) ([]uint32, error)
	// SetFlags adds and removes flags of one message.
	SetFlags(ctx context.Context, c provider.Credentials, folder string, uidValidity, uid uint32, add, remove []imap.Flag) error
}

// MessageFilter is a parsed messages list request.
type MessageFilter struct {
	store.MessageQuery
	// In holds folder ids or names, resolved by the service.
	In []string
	// Native is search_query_native: an IMAP SEARCH run on the server in
	// the first In folder (INBOX when none).
	Native string
}

// Messages lists messages of a grant; the caller asks for one more than a
// page to learn whether another page exists.
func (s *Service) Messages(ctx context.Context, appID, grantRef string, f MessageFilter) (*store.Grant, []store.Message, error) {
	g, err := s.Grant(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	f.GrantID = g.ID
	folders, err := s.store.ListFolders(ctx, g.ID)
	if err != nil {
		return nil, nil, err
	}
	for _, ref := range f.In {
		fo, ok := findFolder(folders, ref)
		if !ok {
			// An unknown folder matches nothing rather than everything.
			return g, []store.Message{}, nil
		}
		f.FolderIDs = append(f.FolderIDs, fo.ID)
	}
	if f.Native != "" {
		folder, ok := findFolder(folders, "INBOX")
		if len(f.In) > 0 {
			folder, ok = findFolder(folders, f.In[0])
		}
		if !ok {
			return nil, nil, invalid("search_query_native needs a folder: pass in=<folder id>")
		}
		ids, err := s.nativeSearch(ctx, g, folder, f.Native)
		if err != nil {
			return nil, nil, err
		}
		if len(ids) == 0 {
			return g, []store.Message{}, nil
		}
		f.IDs = ids
	}
	msgs, err := s.store.ListMessages(ctx, f.MessageQuery)
	return g, msgs, err
}

func (s *Service) nativeSearch(ctx context.Context, g *store.Grant, f store.Folder, query string) ([]string, error) {
	creds, err := s.Credentials(g)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	uids, err := s.mailbox.Search(ctx, creds, f.Name, f.UIDValidity, query)
	if err != nil {
		return nil, err
	}
	return s.store.MessageIDsAt(ctx, g.ID, f.ID, uids)
}

// Message returns one message.
func (s *Service) Message(ctx context.Context, appID, grantRef, id string) (*store.Grant, *store.Message, error) {
	g, err := s.Grant(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	m, err := s.store.GetMessage(ctx, g.ID, id)
	if err != nil {
		return nil, nil, storeErr(err, "message "+id)
	}
	return g, m, nil
}

// RawMessage streams the message as the server holds it (RFC 5322 bytes).
func (s *Service) RawMessage(ctx context.Context, g *store.Grant, messageID string, fn func(io.Reader) error) error {
	return s.fetchFromCopy(ctx, g, messageID, "", fn)
}

// Attachment returns a message's attachment metadata.
func (s *Service) Attachment(ctx context.Context, appID, grantRef, messageID, attachmentID string) (*store.Grant, *store.Attachment, error) {
	if messageID == "" {
		return nil, nil, invalid("message_id is required: the id of the message the attachment belongs to")
	}
	g, m, err := s.Message(ctx, appID, grantRef, messageID)
	if err != nil {
		return nil, nil, err
	}
	for i := range m.Attachments {
		if m.Attachments[i].ID == attachmentID {
			return g, &m.Attachments[i], nil
		}
	}
	return nil, nil, notFound("attachment %s not found in message %s", attachmentID, messageID)
}

// DownloadAttachment streams an attachment's encoded body part from the
// server into fn; the caller decodes its transfer encoding.
func (s *Service) DownloadAttachment(ctx context.Context, g *store.Grant, messageID string, a *store.Attachment, fn func(io.Reader) error) error {
	return s.fetchFromCopy(ctx, g, messageID, a.Part, fn)
}

// fetchFromCopy reads a section of a message from the first copy the
// server still has.
func (s *Service) fetchFromCopy(ctx context.Context, g *store.Grant, messageID, section string, fn func(io.Reader) error) error {
	locs, err := s.store.MessageLocations(ctx, g.ID, messageID)
	if err != nil {
		return err
	}
	if len(locs) == 0 {
		return notFound("message %s is no longer in any folder", messageID)
	}
	folders, err := s.store.ListFolders(ctx, g.ID)
	if err != nil {
		return err
	}
	creds, err := s.Credentials(g)
	if err != nil {
		return err
	}
	loc := locs[0]
	f, ok := findFolder(folders, loc.FolderID)
	if !ok {
		return notFound("message %s is no longer in any folder", messageID)
	}
	return s.mailbox.FetchSection(ctx, creds, f.Name, f.UIDValidity, loc.UID, section, fn)
}

// Folders lists a grant's folders.
func (s *Service) Folders(ctx context.Context, appID, grantRef string) (*store.Grant, []store.Folder, error) {
	g, err := s.Grant(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	fs, err := s.store.ListFolders(ctx, g.ID)
	return g, fs, err
}

// Folder returns one folder by id (or by name or role, for convenience)
// and all the grant's folders (its parent and children are among them).
func (s *Service) Folder(ctx context.Context, appID, grantRef, ref string) (*store.Folder, []store.Folder, error) {
	_, fs, err := s.Folders(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	f, ok := findFolder(fs, ref)
	if !ok {
		return nil, nil, notFound("folder %s not found", ref)
	}
	return &f, fs, nil
}

// Threads lists threads.
func (s *Service) Threads(ctx context.Context, appID, grantRef string, q store.ThreadQuery, in []string) (*store.Grant, []store.Thread, error) {
	g, err := s.Grant(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	q.GrantID = g.ID
	if len(in) > 0 {
		folders, err := s.store.ListFolders(ctx, g.ID)
		if err != nil {
			return nil, nil, err
		}
		for _, ref := range in {
			f, ok := findFolder(folders, ref)
			if !ok {
				return g, []store.Thread{}, nil
			}
			q.FolderIDs = append(q.FolderIDs, f.ID)
		}
	}
	ts, err := s.store.ListThreads(ctx, q)
	return g, ts, err
}

// Thread returns one thread and its latest message.
func (s *Service) Thread(ctx context.Context, appID, grantRef, id string) (*store.Grant, *store.Thread, *store.Message, error) {
	g, err := s.Grant(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, nil, err
	}
	t, err := s.store.GetThread(ctx, g.ID, id)
	if err != nil {
		return nil, nil, nil, storeErr(err, "thread "+id)
	}
	latest, err := s.store.GetMessage(ctx, g.ID, t.LatestMessageID)
	if err != nil {
		latest = nil // the thread row outlived a race with a deletion; serve it without
	}
	return g, t, latest, nil
}

// LatestMessages returns the latest message of each thread, by id.
func (s *Service) LatestMessages(ctx context.Context, grantID string, ts []store.Thread) (map[string]store.Message, error) {
	ids := make([]string, 0, len(ts))
	for _, t := range ts {
		ids = append(ids, t.LatestMessageID)
	}
	out := map[string]store.Message{}
	if len(ids) == 0 {
		return out, nil
	}
	msgs, err := s.store.ListMessages(ctx, store.MessageQuery{GrantID: grantID, IDs: ids})
	for _, m := range msgs {
		out[m.ID] = m
	}
	return out, err
}

// findFolder matches a folder by id, then by name (case-insensitive for
// INBOX, as IMAP does), then by role, so that in=INBOX and in=sent work.
func findFolder(fs []store.Folder, ref string) (store.Folder, bool) {
	for _, f := range fs {
		if f.ID == ref {
			return f, true
		}
	}
	for _, f := range fs {
		if f.Name == ref || (strings.EqualFold(ref, "INBOX") && f.Role == store.RoleInbox) {
			return f, true
		}
	}
	for _, f := range fs {
		if f.Role != "" && strings.EqualFold(f.Role, ref) {
			return f, true
		}
	}
	return store.Folder{}, false
}

// FolderWire is the API form of a folder.
func FolderWire(f *store.Folder, fs []store.Folder) api.Folder {
	attrs := f.Attributes
	if attrs == nil {
		attrs = []string{}
	}
	w := api.Folder{Object: "folder", ID: f.ID, GrantID: f.GrantID, Name: f.Name, Attributes: attrs,
		SystemFolder: f.Role != "", TotalCount: f.TotalCount, UnreadCount: f.UnreadCount}
	if f.Delimiter != "" {
		if i := strings.LastIndex(f.Name, f.Delimiter); i > 0 {
			if p, ok := findFolderByName(fs, f.Name[:i]); ok {
				w.ParentID = p.ID
			}
		}
		for _, c := range fs {
			if strings.HasPrefix(c.Name, f.Name+f.Delimiter) && !strings.Contains(c.Name[len(f.Name)+len(f.Delimiter):], f.Delimiter) {
				w.ChildCount++
			}
		}
	}
	return w
}

func findFolderByName(fs []store.Folder, name string) (store.Folder, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f, true
		}
	}
	return store.Folder{}, false
}

// MessagePatch is the body of PUT /v3/grants/{g}/messages/{id}.
type MessagePatch struct {
	Unread   *bool           `json:"unread"`
	Starred  *bool           `json:"starred"`
	Folders  *[]string       `json:"folders"`
	Metadata json.RawMessage `json:"metadata"`
}

// UpdateMessage changes a message's unread and starred state on the
// server (every copy of it), then writes the new flags through to the
// store with a change row, so that the next read agrees with the mailbox.
func (s *Service) UpdateMessage(ctx context.Context, appID, grantRef, id string, p MessagePatch) (*store.Grant, *store.Message, error) {
	if p.Folders != nil {
		return nil, nil, invalid("moving a message (folders) is not supported yet; unread and starred can change")
	}
	g, m, err := s.Message(ctx, appID, grantRef, id)
	if err != nil {
		return nil, nil, err
	}
	var add, remove []imap.Flag
	for _, f := range []struct {
		want *bool
		flag imap.Flag
		set  bool // the flag is set when want is true
	}{{p.Unread, imap.FlagSeen, false}, {p.Starred, imap.FlagFlagged, true}} {
		if f.want == nil {
			continue
		}
		if *f.want == f.set {
			add = append(add, f.flag)
		} else {
			remove = append(remove, f.flag)
		}
	}
	if len(add)+len(remove) == 0 {
		return g, m, nil
	}
	locs, err := s.store.MessageLocations(ctx, g.ID, id)
	if err != nil {
		return nil, nil, err
	}
	folders, err := s.store.ListFolders(ctx, g.ID)
	if err != nil {
		return nil, nil, err
	}
	creds, err := s.Credentials(g)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	b := &store.MailBatch{GrantID: g.ID, Changes: []store.Change{{GrantID: g.ID, ObjectType: "message", ObjectID: id, Action: "updated"}}}
	for _, l := range locs {
		f, ok := findFolder(folders, l.FolderID)
		if !ok {
			continue
		}
		if err := s.mailbox.SetFlags(ctx, creds, f.Name, f.UIDValidity, l.UID, add, remove); err != nil {
			return nil, nil, err
		}
		b.FlagUpdates = append(b.FlagUpdates, store.FlagUpdate{FolderID: l.FolderID, UID: l.UID, Flags: changeFlags(l.Flags, add, remove), ModSeq: l.ModSeq})
	}
	if err := s.store.ApplyMailBatch(ctx, b); err != nil {
		return nil, nil, err
	}
	m, err = s.store.GetMessage(ctx, g.ID, id)
	return g, m, storeErr(err, "message "+id)
}

// changeFlags returns flags with add added and remove removed.
func changeFlags(flags []string, add, remove []imap.Flag) []string {
	out := []string{}
	for _, f := range flags {
		if !slices.ContainsFunc(remove, func(r imap.Flag) bool { return strings.EqualFold(string(r), f) }) &&
			!slices.ContainsFunc(add, func(a imap.Flag) bool { return strings.EqualFold(string(a), f) }) {
			out = append(out, f)
		}
	}
	for _, a := range add {
		out = append(out, string(a))
	}
	return out
}
