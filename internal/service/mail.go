package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

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
	// Move moves one message and returns its UID in dest (0: unknown) and
	// dest's UIDVALIDITY.
	Move(ctx context.Context, c provider.Credentials, folder string, uidValidity, uid uint32, dest string) (uint32, uint32, error)
	// Expunge removes one message for good.
	Expunge(ctx context.Context, c provider.Credentials, folder string, uidValidity, uid uint32) error
	CreateFolder(ctx context.Context, c provider.Credentials, name string) error
	RenameFolder(ctx context.Context, c provider.Credentials, from, to string) error
	DeleteFolder(ctx context.Context, c provider.Credentials, name string) error
	// Append stores a message in folder and returns its UID (0: unknown)
	// and the folder's UIDVALIDITY.
	Append(ctx context.Context, c provider.Credentials, folder string, flags []imap.Flag, date time.Time, msg []byte) (uint32, uint32, error)
	// Replace appends msg to folder and then removes the copy at oldUID.
	Replace(ctx context.Context, c provider.Credentials, folder string, uidValidity, oldUID uint32, flags []imap.Flag, date time.Time, msg []byte) (uint32, uint32, error)
	// AppendUnlessPresent returns the UID of the copy in folder with this
	// Message-ID, else appends msg; with the folder's UIDVALIDITY.
	AppendUnlessPresent(ctx context.Context, c provider.Credentials, folder, messageID string, flags []imap.Flag, msg []byte) (uint32, uint32, error)
	// FindByMessageID returns the UIDs of the messages in folder with this
	// Message-ID and the folder's UIDVALIDITY.
	FindByMessageID(ctx context.Context, c provider.Credentials, folder, messageID string) ([]uint32, uint32, error)
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
	var folders []store.Folder
	if len(f.In) > 0 || f.Native != "" { // the plain listing needs no folder lookup
		if folders, err = s.store.ListFolders(ctx, g.ID); err != nil {
			return nil, nil, err
		}
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
	_, f, fs, err := s.folderOf(ctx, appID, grantRef, ref)
	return f, fs, err
}

// folderOf resolves the grant, the folder and all the grant's folders.
func (s *Service) folderOf(ctx context.Context, appID, grantRef, ref string) (*store.Grant, *store.Folder, []store.Folder, error) {
	g, fs, err := s.Folders(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, nil, err
	}
	f, ok := findFolder(fs, ref)
	if !ok {
		return nil, nil, nil, notFound("folder %s not found", ref)
	}
	return g, &f, fs, nil
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

// ThreadDrafts returns, by thread id, the ids of the thread's messages that
// are drafts (in the Drafts folder); threads without drafts are absent.
// Only threads that have a copy in Drafts cost a query.
func (s *Service) ThreadDrafts(ctx context.Context, grantID string, ts ...store.Thread) (map[string][]string, error) {
	out := map[string][]string{}
	folders, err := s.store.ListFolders(ctx, grantID)
	if err != nil {
		return nil, err
	}
	drafts, ok := findFolder(folders, store.RoleDrafts)
	if !ok {
		return out, nil
	}
	for _, t := range ts {
		if !slices.Contains(t.Folders, drafts.ID) {
			continue
		}
		msgs, err := s.store.ListMessages(ctx, store.MessageQuery{GrantID: grantID, ThreadID: t.ID, FolderIDs: []string{drafts.ID}})
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			out[t.ID] = append(out[t.ID], m.ID)
		}
	}
	return out, nil
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

// UpdateMessage changes a message on the server first — its unread and
// starred state on every copy, and with folders a move of its first copy
// — then writes the result through to the store with a change row, so that
// the next read agrees with the mailbox. The message keeps its id.
func (s *Service) UpdateMessage(ctx context.Context, appID, grantRef, id string, p MessagePatch) (*store.Grant, *store.Message, error) {
	if p.Folders != nil && len(*p.Folders) != 1 {
		return nil, nil, invalid("folders must hold exactly one folder id: an IMAP message lives in one folder")
	}
	if p.Unread == nil && p.Starred == nil && p.Folders == nil {
		return s.Message(ctx, appID, grantRef, id) // nothing to change, nothing to notify
	}
	op, err := s.mailOp(ctx, appID, grantRef, id)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
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
	if len(add)+len(remove) > 0 {
		for i, l := range op.locs {
			f, ok := findFolder(op.folders, l.FolderID)
			if !ok {
				continue
			}
			// Stored flags may lag behind the server (another client), so
			// every copy gets the STORE, even one that looks done already.
			changed := changeFlags(l.Flags, add, remove)
			if err := s.mailbox.SetFlags(ctx, op.creds, f.Name, f.UIDValidity, l.UID, add, remove); err != nil {
				return nil, nil, err
			}
			op.locs[i].Flags = changed
			op.batch.FlagUpdates = append(op.batch.FlagUpdates, store.FlagUpdate{FolderID: l.FolderID, UID: l.UID, Flags: op.locs[i].Flags, ModSeq: l.ModSeq})
		}
	}
	if p.Folders != nil {
		dest, ok := findFolder(op.folders, (*p.Folders)[0])
		if !ok {
			return nil, nil, invalid("folder %s not found", (*p.Folders)[0])
		}
		if err := s.moveFirstCopy(ctx, op, dest); err != nil {
			return nil, nil, err
		}
	}
	return s.finishMailOp(ctx, op)
}

// DeleteMessage moves a message to the Trash folder; a message already in
// Trash (or on a server without one) is removed for good.
func (s *Service) DeleteMessage(ctx context.Context, appID, grantRef, id string) error {
	op, err := s.mailOp(ctx, appID, grantRef, id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	trash, hasTrash := findFolder(op.folders, store.RoleTrash)
	first := op.locs[0]
	if hasTrash && first.FolderID != trash.ID {
		if err := s.moveFirstCopy(ctx, op, trash); err != nil {
			return err
		}
	} else {
		f, _ := findFolder(op.folders, first.FolderID)
		if err := s.mailbox.Expunge(ctx, op.creds, f.Name, f.UIDValidity, first.UID); err != nil {
			return err
		}
		op.batch.RemovedLocations = append(op.batch.RemovedLocations, store.LocationKey{FolderID: first.FolderID, UID: first.UID})
		op.batch.DeleteOrphans = true
	}
	// Nothing to read back: the message may be gone with its last copy.
	return s.store.ApplyMailBatch(ctx, op.batch)
}

// mailOp is a change to one message in progress: what the server holds
// of it, and the batch that records the outcome.
type mailOp struct {
	g       *store.Grant
	id      string
	locs    []store.Location
	folders []store.Folder
	creds   provider.Credentials
	batch   *store.MailBatch
}

func (s *Service) mailOp(ctx context.Context, appID, grantRef, id string) (*mailOp, error) {
	g, _, err := s.Message(ctx, appID, grantRef, id)
	if err != nil {
		return nil, err
	}
	op := &mailOp{g: g, id: id, batch: &store.MailBatch{GrantID: g.ID,
		Changes: []store.Change{{GrantID: g.ID, ObjectType: "message", ObjectID: id, Action: "updated"}}}}
	if op.locs, err = s.store.MessageLocations(ctx, g.ID, id); err != nil {
		return nil, err
	}
	if len(op.locs) == 0 {
		return nil, notFound("message %s is no longer in any folder", id)
	}
	if op.folders, err = s.store.ListFolders(ctx, g.ID); err != nil {
		return nil, err
	}
	if op.creds, err = s.Credentials(g); err != nil {
		return nil, err
	}
	return op, nil
}

// moveFirstCopy moves the message's first copy to dest on the server and
// records the copy's new place.
func (s *Service) moveFirstCopy(ctx context.Context, op *mailOp, dest store.Folder) error {
	l := op.locs[0]
	if l.FolderID == dest.ID {
		return nil
	}
	from, _ := findFolder(op.folders, l.FolderID)
	uid, validity, err := s.mailbox.Move(ctx, op.creds, from.Name, from.UIDValidity, l.UID, dest.Name)
	if err != nil {
		return err
	}
	op.batch.RemovedLocations = append(op.batch.RemovedLocations, store.LocationKey{FolderID: l.FolderID, UID: l.UID})
	// The new copy is recorded when its UID is known in the folder's
	// current UIDVALIDITY; otherwise the next sync of dest finds it (the
	// message keeps its id either way).
	if uid != 0 && dest.UIDValidity != 0 && validity == dest.UIDValidity {
		op.batch.Locations = append(op.batch.Locations, store.Location{MessageID: op.id, FolderID: dest.ID, UID: uid, Flags: l.Flags})
	}
	return nil
}

func (s *Service) finishMailOp(ctx context.Context, op *mailOp) (*store.Grant, *store.Message, error) {
	if err := s.store.ApplyMailBatch(ctx, op.batch); err != nil {
		return nil, nil, err
	}
	m, err := s.store.GetMessage(ctx, op.g.ID, op.id)
	return op.g, m, storeErr(err, "message "+op.id)
}

func isNotFound(err error) bool {
	var se *Error
	return errors.As(err, &se) && se.Code == CodeNotFound
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

// UpdateThread applies a message patch to every message of the thread.
func (s *Service) UpdateThread(ctx context.Context, appID, grantRef, id string, p MessagePatch) (*store.Grant, *store.Thread, *store.Message, error) {
	_, t, _, err := s.Thread(ctx, appID, grantRef, id)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, mid := range t.MessageIDs {
		if _, _, err := s.UpdateMessage(ctx, appID, grantRef, mid, p); err != nil && !isNotFound(err) {
			return nil, nil, nil, err
		}
	}
	return s.Thread(ctx, appID, grantRef, id)
}

// DeleteThread deletes every message of the thread (to Trash, or for good
// from Trash).
func (s *Service) DeleteThread(ctx context.Context, appID, grantRef, id string) error {
	_, t, _, err := s.Thread(ctx, appID, grantRef, id)
	if err != nil {
		return err
	}
	for _, mid := range t.MessageIDs {
		if err := s.DeleteMessage(ctx, appID, grantRef, mid); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// FolderInput is the body of folder create and update.
type FolderInput struct {
	Name     *string `json:"name"`
	ParentID *string `json:"parent_id"`
}

// CreateFolder creates a folder on the server, then records it.
func (s *Service) CreateFolder(ctx context.Context, appID, grantRef string, in FolderInput) (*store.Folder, []store.Folder, error) {
	g, fs, err := s.Folders(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return nil, nil, invalid("name is required")
	}
	name, err := folderPath(fs, strings.TrimSpace(*in.Name), in.ParentID)
	if err != nil {
		return nil, nil, err
	}
	if _, exists := findFolderByName(fs, name); exists {
		return nil, nil, conflict("folder %q already exists", name)
	}
	creds, err := s.Credentials(g)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.mailbox.CreateFolder(ctx, creds, name); err != nil {
		return nil, nil, err
	}
	now := s.now()
	f := store.Folder{ID: newID(), GrantID: g.ID, Name: name, Delimiter: folderDelimiter(fs), CreatedAt: now, UpdatedAt: now}
	err = s.store.ApplyMailBatch(ctx, &store.MailBatch{GrantID: g.ID, Folders: []store.Folder{f},
		Changes: []store.Change{{GrantID: g.ID, ObjectType: "folder", ObjectID: f.ID, Action: "created"}}})
	return &f, append(fs, f), err
}

// UpdateFolder renames a folder or moves it under another parent, on the
// server and then in the store (children included); the id stays.
// System folders (inbox, sent, trash...) cannot change.
func (s *Service) UpdateFolder(ctx context.Context, appID, grantRef, id string, in FolderInput) (*store.Folder, []store.Folder, error) {
	g, f, fs, err := s.folderOf(ctx, appID, grantRef, id)
	if err != nil {
		return nil, nil, err
	}
	if f.Role != "" {
		return nil, nil, invalid("%q is a system folder (%s): it cannot be renamed or moved", f.Name, f.Role)
	}
	leaf := f.Name
	if i := strings.LastIndex(f.Name, f.Delimiter); f.Delimiter != "" && i >= 0 {
		leaf = f.Name[i+len(f.Delimiter):]
	}
	if in.Name != nil {
		leaf = strings.TrimSpace(*in.Name)
	}
	parent := in.ParentID
	if parent == nil {
		if p := parentOf(fs, *f); p != nil {
			parent = &p.ID
		}
	}
	name, err := folderPath(fs, leaf, parent)
	if err != nil {
		return nil, nil, err
	}
	if name == f.Name {
		return f, fs, nil
	}
	if _, exists := findFolderByName(fs, name); exists {
		return nil, nil, conflict("folder %q already exists", name)
	}
	creds, err := s.Credentials(g)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.mailbox.RenameFolder(ctx, creds, f.Name, name); err != nil {
		return nil, nil, err
	}
	b := &store.MailBatch{GrantID: g.ID}
	old := f.Name
	for i := range fs {
		switch {
		case fs[i].ID == f.ID:
			fs[i].Name = name
		case f.Delimiter != "" && strings.HasPrefix(fs[i].Name, old+f.Delimiter):
			fs[i].Name = name + fs[i].Name[len(old):]
		default:
			continue
		}
		fs[i].UpdatedAt = s.now()
		b.Folders = append(b.Folders, fs[i])
		b.Changes = append(b.Changes, store.Change{GrantID: g.ID, ObjectType: "folder", ObjectID: fs[i].ID, Action: "updated"})
	}
	if err := s.store.ApplyMailBatch(ctx, b); err != nil {
		return nil, nil, err
	}
	nf, _ := findFolder(fs, f.ID)
	return &nf, fs, nil
}

// DeleteFolder deletes a folder and its mail on the server, then in the
// store. System folders cannot be deleted.
func (s *Service) DeleteFolder(ctx context.Context, appID, grantRef, id string) error {
	g, f, fs, err := s.folderOf(ctx, appID, grantRef, id)
	if err != nil {
		return err
	}
	if f.Role != "" {
		return invalid("%q is a system folder (%s): it cannot be deleted", f.Name, f.Role)
	}
	creds, err := s.Credentials(g)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// IMAP DELETE leaves a folder's children in place (the parent only
	// becomes \Noselect), so the children go first, deepest first.
	var doomed []store.Folder
	for _, c := range fs {
		if c.ID == f.ID || (f.Delimiter != "" && strings.HasPrefix(c.Name, f.Name+f.Delimiter)) {
			doomed = append(doomed, c)
		}
	}
	slices.SortFunc(doomed, func(a, b store.Folder) int { return len(b.Name) - len(a.Name) })
	b := &store.MailBatch{GrantID: g.ID, DeleteOrphans: true}
	for _, c := range doomed {
		if err := s.mailbox.DeleteFolder(ctx, creds, c.Name); err != nil {
			if len(b.DeletedFolders) > 0 {
				_ = s.store.ApplyMailBatch(ctx, b) // record what is gone already
			}
			return err
		}
		b.DeletedFolders = append(b.DeletedFolders, c.ID)
		b.Changes = append(b.Changes, store.Change{GrantID: g.ID, ObjectType: "folder", ObjectID: c.ID, Action: "deleted"})
	}
	return s.store.ApplyMailBatch(ctx, b)
}

// folderPath is the full IMAP name of leaf under the folder parentID.
func folderPath(fs []store.Folder, leaf string, parentID *string) (string, error) {
	delim := folderDelimiter(fs)
	if leaf == "" || (delim != "" && strings.Contains(leaf, delim)) {
		return "", invalid("name must be one non-empty folder name without %q; use parent_id to nest it", delim)
	}
	if parentID == nil || *parentID == "" {
		return leaf, nil
	}
	p, ok := findFolder(fs, *parentID)
	if !ok {
		return "", invalid("parent_id %s is not a folder of this grant", *parentID)
	}
	return p.Name + delim + leaf, nil
}

func parentOf(fs []store.Folder, f store.Folder) *store.Folder {
	if f.Delimiter == "" {
		return nil
	}
	if i := strings.LastIndex(f.Name, f.Delimiter); i > 0 {
		if p, ok := findFolderByName(fs, f.Name[:i]); ok {
			return &p
		}
	}
	return nil
}

// folderDelimiter is the hierarchy separator the server uses ("/" on
// iCloud and the test Dovecot).
func folderDelimiter(fs []store.Folder) string {
	for _, f := range fs {
		if f.Delimiter != "" {
			return f.Delimiter
		}
	}
	return "/"
}
