package service

import (
	"context"
	"io"

	"github.com/emersion/go-imap/v2"

	"github.com/orchard-mail/orchard/internal/compose"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/syncer"
)

// A draft is a message in the Drafts folder with the \Draft flag. Its id
// is the id of any message — derived from its Message-ID header — so an
// update, which appends a new version under the same Message-ID and
// removes the old one, keeps it.

// draftCopy is where a draft is on the server.
type draftCopy struct {
	folder store.Folder
	uid    uint32
}

// Drafts lists the messages of the Drafts folder.
func (s *Service) Drafts(ctx context.Context, appID, grantRef string, f MessageFilter) (*store.Grant, []store.Message, error) {
	if len(f.In) > 0 || f.Native != "" {
		return nil, nil, invalid("drafts are listed from the Drafts folder: in and search_query_native do not apply")
	}
	f.In = []string{store.RoleDrafts}
	return s.Messages(ctx, appID, grantRef, f)
}

// draftOp is a draft about to change: the grant, the stored draft, where
// it is, and the credentials to change it.
type draftOp struct {
	g      *store.Grant
	msg    *store.Message
	copy   draftCopy
	creds  provider.Credentials
	drafts store.Folder
}

func (s *Service) draftOp(ctx context.Context, appID, grantRef, id string) (*draftOp, error) {
	g, m, err := s.Message(ctx, appID, grantRef, id)
	if err != nil {
		return nil, notFound("draft %s not found", id)
	}
	folders, err := s.store.ListFolders(ctx, g.ID)
	if err != nil {
		return nil, err
	}
	drafts, ok := findFolder(folders, store.RoleDrafts)
	if !ok {
		return nil, notFound("draft %s not found", id)
	}
	locs, err := s.store.MessageLocations(ctx, g.ID, id)
	if err != nil {
		return nil, err
	}
	op := &draftOp{g: g, msg: m, drafts: drafts}
	for _, l := range locs {
		if l.FolderID == drafts.ID {
			op.copy = draftCopy{folder: drafts, uid: l.UID}
			break
		}
	}
	if op.copy.uid == 0 {
		return nil, notFound("draft %s not found (the message is not in %s)", id, drafts.Name)
	}
	if op.creds, err = s.Credentials(g); err != nil {
		return nil, err
	}
	return op, nil
}

// Draft returns one draft.
func (s *Service) Draft(ctx context.Context, appID, grantRef, id string) (*store.Grant, *store.Message, error) {
	op, err := s.draftOp(ctx, appID, grantRef, id)
	if err != nil {
		return nil, nil, err
	}
	return op.g, op.msg, nil
}

// CreateDraft appends a new draft to the Drafts folder.
func (s *Service) CreateDraft(ctx context.Context, appID, grantRef string, out Outgoing) (*store.Grant, *store.Message, error) {
	g, err := s.Grant(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	folders, err := s.store.ListFolders(ctx, g.ID)
	if err != nil {
		return nil, nil, err
	}
	drafts, ok := findFolder(folders, store.RoleDrafts)
	if !ok {
		return nil, nil, invalid("this mailbox has no Drafts folder (none has the \\Drafts attribute or the name Drafts)")
	}
	m, err := s.composeFor(ctx, g, out, compose.Message{})
	if err != nil {
		return nil, nil, err
	}
	m.MessageID = compose.NewMessageID(domainOf(m.From.Email, g.Email))
	m.Date = s.now()
	raw, err := build(m, true)
	if err != nil {
		return nil, nil, err
	}
	creds, err := s.Credentials(g)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	flags := draftFlags(out, nil)
	uid, validity, err := s.mailbox.Append(ctx, creds, drafts.Name, flags, m.Date, raw)
	if err != nil {
		return nil, nil, err
	}
	return s.recordDraft(ctx, g, drafts, uid, validity, flags, m, raw, nil)
}

// UpdateDraft writes a new version of a draft: the fields in out replace
// the draft's, the others stay (attachments included). The draft keeps
// its id.
func (s *Service) UpdateDraft(ctx context.Context, appID, grantRef, id string, out Outgoing) (*store.Grant, *store.Message, error) {
	op, err := s.draftOp(ctx, appID, grantRef, id)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	base, err := s.readDraft(ctx, op)
	if err != nil {
		return nil, nil, err
	}
	m, err := s.composeFor(ctx, op.g, out, *base)
	if err != nil {
		return nil, nil, err
	}
	m.Date = s.now()
	raw, err := build(m, true)
	if err != nil {
		return nil, nil, err
	}
	flags := draftFlags(out, op)
	uid, validity, err := s.mailbox.Replace(ctx, op.creds, op.drafts.Name, op.drafts.UIDValidity, op.copy.uid, flags, m.Date, raw)
	if err != nil {
		return nil, nil, err
	}
	old := op.copy
	return s.recordDraft(ctx, op.g, op.drafts, uid, validity, flags, m, raw, func(b *store.MailBatch) {
		b.RemovedLocations = append(b.RemovedLocations, store.LocationKey{FolderID: old.folder.ID, UID: old.uid})
	})
}

// DeleteDraft removes a draft for good (drafts do not go to the Trash).
func (s *Service) DeleteDraft(ctx context.Context, appID, grantRef, id string) error {
	op, err := s.draftOp(ctx, appID, grantRef, id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.mailbox.Expunge(ctx, op.creds, op.drafts.Name, op.drafts.UIDValidity, op.copy.uid); err != nil {
		return err
	}
	return s.store.ApplyMailBatch(ctx, &store.MailBatch{GrantID: op.g.ID,
		RemovedLocations: []store.LocationKey{{FolderID: op.drafts.ID, UID: op.copy.uid}}, DeleteOrphans: true,
		Changes: []store.Change{{GrantID: op.g.ID, ObjectType: "message", ObjectID: id, Action: "updated"}}})
}

// SendDraft sends a draft as it is and removes it from Drafts.
func (s *Service) SendDraft(ctx context.Context, appID, grantRef, id string) (*Sent, error) {
	op, err := s.draftOp(ctx, appID, grantRef, id)
	if err != nil {
		return nil, err
	}
	readCtx, cancel := context.WithTimeout(ctx, s.timeout)
	m, err := s.readDraft(readCtx, op)
	cancel()
	if err != nil {
		return nil, err
	}
	if err := m.Validate(true); err != nil {
		return nil, composeErr(err)
	}
	m.Date = s.now()
	return s.submit(ctx, op.g, m, &op.copy)
}

// readDraft reads the draft's current version from the server, attachments
// included.
func (s *Service) readDraft(ctx context.Context, op *draftOp) (*compose.Message, error) {
	var m *compose.Message
	err := s.mailbox.FetchSection(ctx, op.creds, op.drafts.Name, op.drafts.UIDValidity, op.copy.uid, "", func(r io.Reader) error {
		var err error
		m, err = compose.Read(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	if m.MessageID == "" {
		// A draft written by another client without a Message-ID: give
		// it one (its id changes once, as its identity did not exist).
		m.MessageID = compose.NewMessageID(domainOf(m.From.Email, op.g.Email))
	}
	return m, nil
}

// draftFlags are the flags of a draft's new version: \Draft, \Seen unless
// asked unread, \Flagged when starred (asked, or kept from op's draft).
func draftFlags(out Outgoing, op *draftOp) []imap.Flag {
	flags := []imap.Flag{imap.FlagDraft}
	unread, starred := false, false
	if op != nil {
		unread, starred = op.msg.Unread, op.msg.Starred
	}
	if out.Unread != nil {
		unread = *out.Unread
	}
	if out.Starred != nil {
		starred = *out.Starred
	}
	if !unread {
		flags = append(flags, imap.FlagSeen)
	}
	if starred {
		flags = append(flags, imap.FlagFlagged)
	}
	return flags
}

// recordDraft writes a draft just appended at uid through to the store
// and reads it back. When the UID is unknown (no UIDPLUS, or the folder
// was recreated meanwhile) the next sync records it.
func (s *Service) recordDraft(ctx context.Context, g *store.Grant, drafts store.Folder, uid, validity uint32, flags []imap.Flag, m *compose.Message, raw []byte, prepare func(*store.MailBatch)) (*store.Grant, *store.Message, error) {
	id := syncer.MessageIDFor(g.ID, m.MessageID)
	if uid == 0 || validity != drafts.UIDValidity {
		s.grantChanged(g.ID)
		msg, err := syncer.MessageFromMIME(g.ID, raw, m.Date)
		if err != nil {
			return nil, nil, err
		}
		msg.Folders = []string{drafts.ID}
		return g, msg, nil
	}
	strs := make([]string, len(flags))
	for i, f := range flags {
		strs[i] = string(f)
	}
	if _, err := syncer.WriteThrough(ctx, s.store, g.ID, &drafts, uid, strs, m.Date, raw, prepare); err != nil {
		return nil, nil, err
	}
	stored, err := s.store.GetMessage(ctx, g.ID, id)
	return g, stored, storeErr(err, "draft "+id)
}
