package syncer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/internal/mimeconv"
	"github.com/orchard-mail/orchard/internal/store"
)

// fetched is one message as read from the server.
type fetched struct {
	uid      uint32
	flags    []string
	modSeq   uint64
	received time.Time
	size     int64
	parsed   *mimeconv.Message
}

// fetchAndStore fetches the messages at uids of f and stores them; see
// fetch and store.
func (s *syncSession) fetchAndStore(ctx context.Context, f *store.Folder, uids []uint32, notify bool, prepare func(*store.MailBatch)) (int, error) {
	msgs, err := s.fetch(ctx, uids)
	if err != nil {
		return 0, err
	}
	return s.store(ctx, f, msgs, notify, prepare)
}

// fetch reads the messages at uids in one UID FETCH (whole bodies with
// BODY.PEEK[], never RFC822, which iCloud answers without a body) and
// parses them as they stream in.
func (s *syncSession) fetch(ctx context.Context, uids []uint32) ([]fetched, error) {
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	want := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		want[u] = true
	}
	opts := &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, ModSeq: s.condstore,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}
	var msgs []fetched
	err := s.c.Run(ctx, func(raw *imapclient.Client) error {
		cmd := raw.Fetch(set, opts)
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			fm, err := readFetched(m)
			if err != nil {
				cmd.Close()
				return err
			}
			// Unsolicited FETCH responses (flag changes by other clients)
			// arrive on the same stream; keep only what was asked for.
			if fm.parsed != nil && want[fm.uid] {
				msgs = append(msgs, fm)
			}
		}
		return cmd.Close()
	})
	return msgs, err
}

// store writes fetched messages of f with their change rows in one batch.
// notify says whether new messages are news (a "created" change) or
// history (initial sync). prepare may add to the batch (the initial sync's
// progress). It returns the number of created changes.
func (s *syncSession) store(ctx context.Context, f *store.Folder, msgs []fetched, notify bool, prepare func(*store.MailBatch)) (int, error) {
	o := s.w.sup.opts
	var since time.Time
	if o.WindowDays > 0 {
		since = o.Now().AddDate(0, 0, -o.WindowDays)
	}
	n, err := storeFetched(ctx, o.Store, s.w.grant.ID, since, f, msgs, notify, prepare)
	if err == nil && notify {
		s.w.sup.changed()
	}
	return n, err
}

// storeFetched is store without a session: messages received before since
// (zero: none) are left out.
func storeFetched(ctx context.Context, st Store, grantID string, since time.Time, f *store.Folder, msgs []fetched, notify bool, prepare func(*store.MailBatch)) (int, error) {
	b := &store.MailBatch{GrantID: grantID}
	keys := make([]string, 0, len(msgs))
	for _, m := range msgs {
		keys = append(keys, mimeconv.IdentityKey(m.parsed))
	}
	existing, err := st.GetMessagesByIdentity(ctx, grantID, keys)
	if err != nil {
		return 0, err
	}
	known := make(map[string]store.Message, len(existing))
	for _, e := range existing {
		known[e.ID] = e
	}

	created := 0
	inBatch := map[string]bool{}
	threads := newThreader(st, grantID)
	for _, m := range msgs {
		// SEARCH SINCE has day granularity; the window is exact.
		if !since.IsZero() && m.received.Before(since) {
			continue
		}
		msg := toStoreMessage(grantID, f, m)
		b.Locations = append(b.Locations, store.Location{MessageID: msg.ID, FolderID: f.ID, UID: m.uid, Flags: m.flags, ModSeq: m.modSeq})
		if inBatch[msg.ID] {
			continue // a second copy of one message in this folder
		}
		inBatch[msg.ID] = true
		if old, ok := known[msg.ID]; ok {
			msg.ThreadID = old.ThreadID
			// A known message found again by an initial or refetching
			// pass (a UIDVALIDITY change, a copy in another folder) is
			// not news either.
			if notify {
				b.Changes = append(b.Changes, store.Change{GrantID: grantID, ObjectType: "message", ObjectID: msg.ID, Action: "updated"})
			}
		} else {
			if msg.ThreadID, err = threads.assign(ctx, msg); err != nil {
				return 0, err
			}
			if notify {
				created++
				b.Changes = append(b.Changes, store.Change{GrantID: grantID, ObjectType: "message", ObjectID: msg.ID, Action: "created"})
			}
		}
		b.Messages = append(b.Messages, msg)
	}
	if prepare != nil {
		prepare(b)
	}
	return created, st.ApplyMailBatch(ctx, b)
}

// WriteThrough records a message that Orchard itself has just put into
// folder f at uid (a draft, a copy of sent mail) the way the sync will
// find it — same id, same thread, a "created" or "updated" change — so
// that the next read agrees with the mailbox without waiting for a sync
// pass. prepare may add to the batch (the draft's old copy to remove). It
// returns the message id.
func WriteThrough(ctx context.Context, st Store, grantID string, f *store.Folder, uid uint32, flags []string, received time.Time, msg []byte, prepare func(*store.MailBatch)) (string, error) {
	p, err := mimeconv.Parse(bytes.NewReader(msg), mimeconv.Limits{})
	if err != nil {
		return "", fmt.Errorf("read message: %w", err)
	}
	m := fetched{uid: uid, flags: flags, received: received, size: int64(len(msg)), parsed: p}
	if _, err := storeFetched(ctx, st, grantID, time.Time{}, f, []fetched{m}, true, prepare); err != nil {
		return "", err
	}
	return toStoreMessage(grantID, f, m).ID, nil
}

// readFetched reads one FETCH response, parsing the body as it streams.
func readFetched(m *imapclient.FetchMessageData) (fetched, error) {
	var fm fetched
	for item := m.Next(); item != nil; item = m.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			fm.uid = uint32(it.UID)
		case imapclient.FetchItemDataFlags:
			fm.flags = flagStrings(it.Flags)
		case imapclient.FetchItemDataInternalDate:
			fm.received = it.Time
		case imapclient.FetchItemDataRFC822Size:
			fm.size = it.Size
		case imapclient.FetchItemDataModSeq:
			fm.modSeq = it.ModSeq
		case imapclient.FetchItemDataBodySection:
			if it.Literal == nil {
				continue
			}
			p, err := mimeconv.Parse(it.Literal, mimeconv.Limits{})
			if err != nil {
				return fm, fmt.Errorf("read message body: %w", err)
			}
			fm.parsed = p
		}
	}
	return fm, nil
}

// toStoreMessage builds the store row. The message id is derived from the
// grant and the identity key, so every copy of a message, in any folder
// and after any UIDVALIDITY change, gets the same id without a lookup.
func toStoreMessage(grantID string, f *store.Folder, m fetched) store.Message {
	p := m.parsed
	key := mimeconv.IdentityKey(p)
	id := derivedID(grantID, "message", key)
	atts := make([]store.Attachment, len(p.Attachments))
	for i, a := range p.Attachments {
		a.ID = derivedID(id, "attachment", a.Part)
		atts[i] = a
	}
	date := m.received
	if date.IsZero() {
		date = p.Date
	}
	return store.Message{
		ID: id, GrantID: grantID, IdentityKey: key,
		MessageIDHeader: p.MessageID, InReplyTo: p.InReplyTo, References: p.References,
		Subject: p.Subject, SubjectKey: mimeconv.SubjectKey(p.Subject),
		From: p.From, To: p.To, Cc: p.Cc, Bcc: p.Bcc, ReplyTo: p.ReplyTo,
		Date: date.UTC(), SentAt: p.Date, Snippet: p.Snippet, Body: p.Body, Attachments: atts,
		Headers: p.Header, Size: m.size,
	}
}

// MessageIDFor is the id a grant's message with this Message-ID header
// (without angle brackets) has, or will have once synced.
func MessageIDFor(grantID, messageIDHeader string) string {
	return derivedID(grantID, "message", mimeconv.IdentityKey(&mimeconv.Message{MessageID: messageIDHeader}))
}

// MessageFromMIME is the message as the sync would store it, for a
// message that is not stored (received is its INTERNALDATE).
func MessageFromMIME(grantID string, msg []byte, received time.Time) (*store.Message, error) {
	p, err := mimeconv.Parse(bytes.NewReader(msg), mimeconv.Limits{})
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	m := toStoreMessage(grantID, nil, fetched{received: received, size: int64(len(msg)), parsed: p})
	return &m, nil
}

// derivedID makes a stable, opaque id from a parent id and a key: 26
// lowercase base32 characters (130 bits of SHA-256), which leaks nothing of
// the key and needs no database round trip.
func derivedID(parent, kind, key string) string {
	sum := sha256.Sum256([]byte(parent + "\x00" + kind + "\x00" + key))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])[:26])
}
