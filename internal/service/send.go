package service

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/compose"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/syncer"
)

// Sender submits mail over SMTP with a grant's credentials.
type Sender interface {
	// Submit sends msg to rcpts. uncertain is true when the message was
	// transmitted but the server's answer never came: it may have gone out.
	Submit(ctx context.Context, c provider.Credentials, from string, rcpts []string, msg []byte) (uncertain bool, err error)
}

// Outgoing is a message to send or to save as a draft, as the API gives
// it. Nil fields are absent from the request: a draft update keeps what
// the draft had.
type Outgoing struct {
	To, Cc, Bcc, ReplyTo, From *[]api.Participant
	Subject, Body              *string
	IsPlaintext                *bool
	ReplyToMessageID           *string
	CustomHeaders              *[]api.Header
	Attachments                *[]compose.Attachment
	Starred, Unread            *bool
}

// UncertainSendError is a send whose outcome is unknown: the whole message
// went to the SMTP server, which never answered. It may have been sent, so
// a retry could send it twice; the daily quota keeps counting it.
type UncertainSendError struct{ Err error }

func (e *UncertainSendError) Error() string {
	return "the SMTP server did not confirm the message after receiving it; it may have been sent, so check the recipient or the Sent folder before retrying (" + e.Err.Error() + ")"
}
func (e *UncertainSendError) Unwrap() error { return e.Err }

// Sent is the outcome of a send.
type Sent struct {
	Grant   *store.Grant
	Message *store.Message
}

// SendMessage builds the message, checks the provider's sending limits,
// submits it over SMTP and makes sure the Sent folder has one copy of it.
// Nothing is reported as sent that was not: errors before the server took
// the message leave no trace (the quota unit is released), and a copy to
// Sent that fails after a successful send is logged, not reported.
func (s *Service) SendMessage(ctx context.Context, appID, grantRef string, out Outgoing) (*Sent, error) {
	g, err := s.Grant(ctx, appID, grantRef)
	if err != nil {
		return nil, err
	}
	m, err := s.composeFor(ctx, g, out, compose.Message{})
	if err != nil {
		return nil, err
	}
	if err := m.Validate(true); err != nil {
		return nil, composeErr(err)
	}
	return s.submit(ctx, g, m, nil)
}

// submit sends m and files it in Sent; draft, when set, is the stored
// draft that m came from, removed from Drafts once sent.
func (s *Service) submit(ctx context.Context, g *store.Grant, m *compose.Message, draft *draftCopy) (*Sent, error) {
	if m.MessageID == "" {
		m.MessageID = compose.NewMessageID(domainOf(m.From.Email, g.Email))
	}
	if m.Date.IsZero() {
		m.Date = s.now()
	}
	wire, err := build(m, false)
	if err != nil {
		return nil, err
	}
	rcpts := m.Recipients()
	release, err := s.quota.Reserve(ctx, g.Provider, g.ID, len(rcpts), int64(len(wire)))
	if err != nil {
		return nil, err
	}
	unreserve := func() {
		if err := release(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("release send quota", "grant_id", g.ID, "error", err)
		}
	}
	creds, err := s.Credentials(g)
	if err != nil {
		unreserve()
		return nil, err
	}
	sendCtx, cancel := context.WithTimeout(ctx, s.sendTimeout)
	uncertain, err := s.sender.Submit(sendCtx, creds, m.From.Email, rcpts, wire)
	cancel()
	if err != nil {
		if uncertain {
			return nil, &UncertainSendError{Err: err} // the unit stays counted
		}
		unreserve() // nothing went out
		s.refused(ctx, g, err)
		return nil, err
	}
	return s.afterSend(ctx, g, m, creds, draft)
}

// refused expires the grant when the SMTP server refused its
// credentials: every further call would fail the same way until the user
// signs in again.
func (s *Service) refused(ctx context.Context, g *store.Grant, err error) {
	if provider.KindOf(err) != provider.KindAuth {
		return
	}
	if err := s.ExpireGrant(ctx, g.ID); err != nil {
		s.log.Warn("expire grant", "grant_id", g.ID, "error", err)
	}
}

// afterSend files the sent message in Sent (once) and removes the draft
// it came from; both are best effort, since the message is already out.
func (s *Service) afterSend(ctx context.Context, g *store.Grant, m *compose.Message, creds provider.Credentials, draft *draftCopy) (*Sent, error) {
	ctx = context.WithoutCancel(ctx) // the message went out: finish the bookkeeping
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	copyMsg, err := build(m, true) // the sender's copy keeps Bcc
	if err != nil {
		return nil, err
	}
	folders, err := s.store.ListFolders(ctx, g.ID)
	if err != nil {
		return nil, err
	}
	var prepare func(*store.MailBatch)
	if draft != nil {
		if err := s.mailbox.Expunge(ctx, creds, draft.folder.Name, draft.folder.UIDValidity, draft.uid); err != nil {
			s.log.Warn("remove sent draft", "grant_id", g.ID, "error", err)
		} else {
			prepare = func(b *store.MailBatch) {
				b.RemovedLocations = append(b.RemovedLocations, store.LocationKey{FolderID: draft.folder.ID, UID: draft.uid})
			}
		}
	}
	sent, hasSent := findFolder(folders, store.RoleSent)
	var uid uint32
	if hasSent {
		if uid, err = s.fileSent(ctx, g, creds, sent, m.MessageID, copyMsg); err != nil {
			s.log.Warn("file the sent message in Sent", "grant_id", g.ID, "folder", sent.Name, "error", err)
		}
	} else {
		s.log.Warn("no Sent folder: the sent message is not filed", "grant_id", g.ID)
	}
	if uid != 0 {
		if _, err := syncer.WriteThrough(ctx, s.store, g.ID, &sent, uid, []string{string(imap.FlagSeen)}, m.Date, copyMsg, prepare); err != nil {
			s.log.Warn("record the sent message", "grant_id", g.ID, "error", err)
		}
	} else {
		if prepare != nil {
			// The copy's UID is unknown (the next sync finds it) or there
			// is no Sent: record at least that the draft is gone.
			b := &store.MailBatch{GrantID: g.ID, DeleteOrphans: true}
			prepare(b)
			if err := s.store.ApplyMailBatch(ctx, b); err != nil {
				s.log.Warn("record the sent draft's removal", "grant_id", g.ID, "error", err)
			}
		}
		s.grantChanged(g.ID) // let the sync find what Orchard could not record
	}
	id := syncer.MessageIDFor(g.ID, m.MessageID)
	if stored, err := s.store.GetMessage(ctx, g.ID, id); err == nil {
		return &Sent{Grant: g, Message: stored}, nil
	}
	msg, err := syncer.MessageFromMIME(g.ID, copyMsg, m.Date)
	if err != nil {
		return nil, err
	}
	if hasSent {
		msg.Folders = []string{sent.ID}
	}
	return &Sent{Grant: g, Message: msg}, nil
}

// fileSent makes sure Sent holds one copy of the message and returns its
// UID (0 when unknown). Whether iCloud files SMTP submissions itself is
// disputed, so Orchard looks for the Message-ID first — waiting up to
// SentCopyWait for the provider to file it — and APPENDs only when it is
// still absent.
func (s *Service) fileSent(ctx context.Context, g *store.Grant, creds provider.Credentials, sent store.Folder, messageID string, msg []byte) (uint32, error) {
	// Where the provider may file its own copy, give it time first.
	for deadline := s.now().Add(s.sentCopyWait[g.Provider]); s.now().Before(deadline); {
		uids, validity, err := s.mailbox.FindByMessageID(ctx, creds, sent.Name, messageID)
		if err != nil {
			return 0, err
		}
		if len(uids) > 0 {
			return uidIn(sent, uids[0], validity), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	uid, validity, err := s.mailbox.AppendUnlessPresent(ctx, creds, sent.Name, messageID, []imap.Flag{imap.FlagSeen}, msg)
	return uidIn(sent, uid, validity), err
}

// uidIn is uid when it belongs to the folder's UIDVALIDITY as stored,
// else 0 (unknown: the next sync finds the copy).
func uidIn(f store.Folder, uid, validity uint32) uint32 {
	if validity != f.UIDValidity {
		return 0
	}
	return uid
}

// composeFor turns an API request into a compose.Message on top of base
// (a draft's current content, or empty): fields absent from the request
// keep base's values.
func (s *Service) composeFor(ctx context.Context, g *store.Grant, out Outgoing, base compose.Message) (*compose.Message, error) {
	m := base
	set := func(dst *[]compose.Address, src *[]api.Participant) {
		if src != nil {
			*dst = addresses(*src)
		}
	}
	set(&m.To, out.To)
	set(&m.Cc, out.Cc)
	set(&m.Bcc, out.Bcc)
	set(&m.ReplyTo, out.ReplyTo)
	if out.From != nil {
		if len(*out.From) > 1 {
			return nil, invalid("from: at most one sender")
		}
		if len(*out.From) == 1 {
			m.From = addresses(*out.From)[0]
		}
	}
	if m.From.Email == "" {
		m.From = compose.Address{Name: g.Name, Email: g.Email}
	}
	if out.Subject != nil {
		m.Subject = *out.Subject
	}
	if out.Body != nil {
		m.Body = *out.Body
	}
	if out.IsPlaintext != nil {
		m.PlainText = *out.IsPlaintext
	}
	if out.CustomHeaders != nil {
		m.Headers = m.Headers[:0:0]
		for _, h := range *out.CustomHeaders {
			m.Headers = append(m.Headers, compose.Header{Name: h.Name, Value: h.Value})
		}
	}
	if out.Attachments != nil {
		m.Attachments = *out.Attachments
	}
	if out.ReplyToMessageID != nil && *out.ReplyToMessageID != "" {
		orig, err := s.store.GetMessage(ctx, g.ID, *out.ReplyToMessageID)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, invalid("reply_to_message_id: message %s not found", *out.ReplyToMessageID)
			}
			return nil, err
		}
		m.InReplyTo, m.References = "", nil
		if compose.ValidMessageID(orig.MessageIDHeader) {
			// References: the original's, then the original itself
			// (RFC 5322 §3.6.4). Ids another sender mangled are left out
			// rather than failing a reply the user cannot fix.
			m.InReplyTo = orig.MessageIDHeader
			m.References = append(compose.ValidMessageIDs(orig.References), orig.MessageIDHeader)
		}
	}
	return &m, nil
}

func addresses(ps []api.Participant) []compose.Address {
	out := make([]compose.Address, 0, len(ps))
	for _, p := range ps {
		out = append(out, compose.Address{Name: p.Name, Email: p.Email})
	}
	return out
}

// build renders m; withBcc keeps the Bcc header (drafts, the sender's
// copy), which must never travel to the recipients.
func build(m *compose.Message, withBcc bool) ([]byte, error) {
	c := *m
	c.IncludeBcc = withBcc
	var b bytes.Buffer
	if err := compose.Build(&b, &c); err != nil {
		return nil, composeErr(err)
	}
	return b.Bytes(), nil
}

// composeErr turns a validation failure into a 400 that lists every
// problem.
func composeErr(err error) error {
	var ce *compose.Error
	if errors.As(err, &ce) {
		return invalid("%s", ce.Error())
	}
	return err
}

// domainOf is the domain for generated Message-IDs: the sender's.
func domainOf(emails ...string) string {
	for _, e := range emails {
		if i := strings.LastIndexByte(e, '@'); i >= 0 && i < len(e)-1 {
			return e[i+1:]
		}
	}
	return "orchard.invalid"
}
