// Package service holds Orchard's use cases: applications and their keys,
// connectors, grants and custom authentication. It speaks in the api wire
// types, reads and writes through store.Store and reaches providers
// through the small verifier interfaces below.
package service

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/quota"
	"github.com/orchard-mail/orchard/internal/secret"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/syncer"
)

// ICloudVerifier checks an iCloud address and app-specific password against
// Apple's servers and returns the credentials that worked.
type ICloudVerifier interface {
	Verify(ctx context.Context, email, password string) (provider.Credentials, error)
}

// IMAPVerifier checks explicit IMAP and SMTP credentials.
type IMAPVerifier interface {
	Verify(ctx context.Context, c provider.Credentials) error
}

// Deps are what a Service is built from.
type Deps struct {
	Store  store.Store
	Box    *secret.Box
	ICloud ICloudVerifier
	IMAP   IMAPVerifier
	// Mailbox reaches IMAP servers for raw messages, attachments and
	// native searches.
	Mailbox Mailbox
	// Syncer is told when grants change, and reports sync progress; nil
	// for commands that run no sync.
	Syncer Syncer
	// Sender submits mail over SMTP.
	Sender Sender
	// CalDAV writes iCloud grants' calendars and events; ICloudCalDAVURL
	// is where their discovery starts.
	CalDAV          CalDAV
	ICloudCalDAVURL string
	// Webhooks is the dispatcher, woken after writes; WebhookClient makes
	// the challenge and test requests (nil: http.DefaultClient).
	Webhooks      Dispatcher
	WebhookClient *http.Client
	// SendLimits are the sending limits per provider (nil:
	// quota.DefaultLimits).
	SendLimits map[string]quota.Limits
	// SentCopyWait is how long, per provider, a send waits for the
	// provider to file its own copy in Sent before Orchard appends one.
	SentCopyWait map[string]time.Duration
	// SendTimeout bounds one SMTP submission (default 2 minutes: a 20 MB
	// message over a slow link).
	SendTimeout time.Duration
	// ICloudIMAPAddr and ICloudSMTPAddr are where iCloud grants connect.
	ICloudIMAPAddr, ICloudSMTPAddr string
	// ProviderTimeout bounds one credential check.
	ProviderTimeout time.Duration
	Logger          *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IDTokenKey signs the id_tokens of the token endpoint (HS256);
	// Issuer is their iss (the public URL).
	IDTokenKey []byte
	Issuer     string
}

// Service implements the use cases. It holds no mutable state of its own.
type Service struct {
	store   store.Store
	box     *secret.Box
	icloud  ICloudVerifier
	imap    IMAPVerifier
	mailbox Mailbox
	syncer  Syncer
	sender  Sender
	caldav  CalDAV
	quota   *quota.Quota

	dispatcher Dispatcher
	hookClient *http.Client
	timeout    time.Duration

	sendTimeout  time.Duration
	sentCopyWait map[string]time.Duration
	log          *slog.Logger

	icloudIMAPAddr, icloudSMTPAddr string
	icloudCalDAVURL                string
	now                            func() time.Time

	idTokenKey []byte
	issuer     string
}

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{store: d.Store, box: d.Box, icloud: d.ICloud, imap: d.IMAP, mailbox: d.Mailbox, syncer: d.Syncer,
		sender: d.Sender, caldav: d.CalDAV, dispatcher: d.Webhooks, hookClient: d.WebhookClient, icloudCalDAVURL: d.ICloudCalDAVURL, timeout: d.ProviderTimeout, log: d.Logger, now: d.Now,
		sendTimeout: d.SendTimeout, sentCopyWait: d.SentCopyWait,
		icloudIMAPAddr: d.ICloudIMAPAddr, icloudSMTPAddr: d.ICloudSMTPAddr,
		idTokenKey: d.IDTokenKey, issuer: d.Issuer}
	if s.now == nil {
		s.now = time.Now
	}
	s.quota = quota.New(d.Store, d.SendLimits, s.now)
	if s.sendTimeout <= 0 {
		s.sendTimeout = 2 * time.Minute
	}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Syncer runs the per-grant mail sync.
type Syncer interface {
	// GrantChanged starts, restarts or stops the grant's sync worker.
	GrantChanged(grantID string)
	// Status reports the grant's sync on this node.
	Status(grantID string) (syncer.Status, bool)
	// BeginCalendarWrite announces a write to the grant's calendars so
	// that the calendar sync does not write back what it read before;
	// end is called once the write is recorded.
	BeginCalendarWrite(grantID string) (end func())
}

func (s *Service) grantChanged(id string) {
	if s.syncer != nil {
		s.syncer.GrantChanged(id)
	}
}

// beginCalendarWrite: see Syncer.BeginCalendarWrite.
func (s *Service) beginCalendarWrite(grantID string) (end func()) {
	if s.syncer == nil {
		return func() {}
	}
	return s.syncer.BeginCalendarWrite(grantID)
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// Ping tells whether the store answers (readiness).
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// newID returns a random UUID v4, the shape of Nylas ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
