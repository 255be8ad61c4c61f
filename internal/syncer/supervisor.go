// Package syncer keeps each grant's mail in the store in step with its IMAP
// server: a Supervisor owns one worker per valid grant; a worker logs in,
// syncs the folder list and every folder (the last ORCHARD_SYNC_WINDOW_DAYS
// of mail, newest first, resumable), then waits on IMAP IDLE for INBOX and
// polls the other folders. Every change is written with its change rows in
// one store transaction; the syncer never calls webhooks itself.
package syncer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
)

// Store is what the syncer needs of the store.
type Store interface {
	GrantsWithStatus(ctx context.Context, status string) ([]store.Grant, error)
	GrantByID(ctx context.Context, id string) (*store.Grant, error)
	ApplyMailBatch(ctx context.Context, b *store.MailBatch) error
	ListFolders(ctx context.Context, grantID string) ([]store.Folder, error)
	FolderUIDs(ctx context.Context, grantID, folderID string) ([]uint32, error)
	MessageIDsAt(ctx context.Context, grantID, folderID string, uids []uint32) ([]string, error)
	ListMessages(ctx context.Context, q store.MessageQuery) ([]store.Message, error)
	MessageLocations(ctx context.Context, grantID, messageID string) ([]store.Location, error)
	GetMessagesByIdentity(ctx context.Context, grantID string, keys []string) ([]store.Message, error)
	ThreadIDByMessageIDs(ctx context.Context, grantID string, msgIDs []string) (string, error)
	ThreadIDBySubject(ctx context.Context, grantID, subjectKey string, since time.Time) (string, error)
	GetThread(ctx context.Context, grantID, id string) (*store.Thread, error)

	ApplyCalendarBatch(ctx context.Context, b *store.CalendarBatch) error
	ListCalendars(ctx context.Context, grantID string) ([]store.Calendar, error)
	CalendarObjectTags(ctx context.Context, grantID, calendarID string) (map[string]string, error)
}

// Credentials opens a grant's stored credentials.
type Credentials func(g *store.Grant) (provider.Credentials, error)

// Options configure a Supervisor. Zero durations take the defaults.
type Options struct {
	Store       Store
	Credentials Credentials
	Dialer      *imapx.Dialer
	Logger      *slog.Logger
	// WindowDays limits sync to mail received in the last WindowDays days;
	// 0 syncs everything.
	WindowDays int
	// PollInterval is how often folders other than INBOX are checked
	// (INBOX is watched with IDLE). Default 60 s.
	PollInterval time.Duration
	// IdleTimeout ends an IDLE after this long to re-check INBOX; it must
	// stay well inside the 29 minutes after which servers may drop an idle
	// client. Default 10 min.
	IdleTimeout time.Duration
	// BatchSize is the number of messages fetched and stored per
	// transaction. Default 500: the store's cost per batch is large enough that
	// smaller batches halve the initial sync's speed (see orchard-bench sync).
	BatchSize int
	// ReconcileInterval is how often the supervisor compares its workers
	// with the valid grants in the store. Default 30 s.
	ReconcileInterval time.Duration
	// Changed, when set, is called after the sync wrote change rows, so
	// that the webhook dispatcher picks them up at once rather than at
	// its next poll.
	Changed func()
	// LoginRefused is called when the provider refuses a grant's login
	// (IMAP or CalDAV): the owner marks the grant invalid, which stops its
	// worker. Transient failures never call it.
	LoginRefused func(ctx context.Context, grantID string)
	// CalDAV, when set, syncs iCloud grants' calendars, starting
	// discovery at CalDAVURL, every CalendarInterval (default 60 s) and
	// when CalendarChanged is called.
	CalDAV           CalendarSource
	CalDAVURL        string
	CalendarInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.PollInterval <= 0 {
		o.PollInterval = 60 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.ReconcileInterval <= 0 {
		o.ReconcileInterval = 30 * time.Second
	}
	if o.CalendarInterval <= 0 {
		o.CalendarInterval = 60 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Supervisor owns the workers. Start it with Run; it stops every worker
// and returns when Run's context ends.
type Supervisor struct {
	opts Options
	wake chan struct{}

	mu       sync.Mutex
	workers  map[string]*worker // by grant id
	stopping map[string]chan struct{}
	status   map[string]Status
	// calGuards coordinate Orchard's calendar writes with the calendar
	// sync, by grant id.
	calGuards map[string]*calendarGuard
}

// Status is what an operator sees of one grant's sync.
type Status struct {
	State       string    `json:"state"` // "connecting", "initial_sync", "idle", "retrying", "stopped"
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"-"`
	Retries     int       `json:"retries"`
	SyncedAt    time.Time `json:"-"`
	// CalendarError is the last calendar sync's failure ("" after a
	// successful pass); CalendarSyncedAt when one last succeeded.
	CalendarError    string    `json:"calendar_last_error,omitempty"`
	CalendarSyncedAt time.Time `json:"-"`
}

// New returns a Supervisor; nothing runs until Run.
func New(o Options) *Supervisor {
	o.defaults()
	return &Supervisor{opts: o, wake: make(chan struct{}, 1),
		workers: map[string]*worker{}, stopping: map[string]chan struct{}{}, status: map[string]Status{},
		calGuards: map[string]*calendarGuard{}}
}

// Run starts a worker for every valid grant and keeps the set in step with
// the store until ctx ends; then it stops every worker and waits for them.
func (s *Supervisor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer func() {
		s.mu.Lock()
		for id := range s.workers {
			s.stopLocked(id)
		}
		s.mu.Unlock()
		wg.Wait()
	}()
	tick := time.NewTicker(s.opts.ReconcileInterval)
	defer tick.Stop()
	for {
		if err := s.reconcile(ctx, &wg); err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn("syncer: listing grants failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// GrantChanged tells the supervisor that a grant was created, changed,
// re-authenticated or deleted, so that it starts, restarts or stops its
// worker now rather than at the next periodic reconcile.
func (s *Supervisor) GrantChanged(grantID string) {
	// Restart: the credentials may have changed. The next reconcile
	// starts a fresh worker if the grant is still valid.
	s.mu.Lock()
	s.stopLocked(grantID)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Status returns the sync status of a grant on this node.
func (s *Supervisor) Status(grantID string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.status[grantID]
	return st, ok
}

// changed tells the owner that change rows were written.
func (s *Supervisor) changed() {
	if s.opts.Changed != nil {
		s.opts.Changed()
	}
}

func (s *Supervisor) setStatus(grantID string, f func(*Status)) {
	s.mu.Lock()
	st := s.status[grantID]
	f(&st)
	s.status[grantID] = st
	s.mu.Unlock()
}

func (s *Supervisor) reconcile(ctx context.Context, wg *sync.WaitGroup) error {
	grants, err := s.opts.Store.GrantsWithStatus(ctx, "valid")
	if err != nil {
		return err
	}
	valid := make(map[string]store.Grant, len(grants))
	for _, g := range grants {
		valid[g.ID] = g
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, w := range s.workers {
		if g, ok := valid[id]; !ok || !g.UpdatedAt.Equal(w.grant.UpdatedAt) {
			s.stopLocked(id)
		}
	}
	for id, g := range valid {
		if _, running := s.workers[id]; running || ctx.Err() != nil {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &worker{sup: s, grant: g, cancel: cancel, done: make(chan struct{}), calWake: make(chan struct{}, 1),
			log: s.opts.Logger.With("grant_id", g.ID)}
		prev := s.stopping[id]
		s.workers[id] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(w.done)
			if prev != nil {
				// Never two sessions for one grant: the stopped worker
				// finishes its batch first.
				<-prev
			}
			w.run(wctx)
		}()
	}
	for id := range s.status {
		if _, ok := valid[id]; !ok {
			delete(s.status, id)
		}
	}
	for id, g := range s.calGuards {
		if _, ok := valid[id]; !ok && g.idle() {
			delete(s.calGuards, id)
		}
	}
	return nil
}

// stopLocked cancels a grant's worker and remembers it until it is done.
func (s *Supervisor) stopLocked(grantID string) {
	w, ok := s.workers[grantID]
	if !ok {
		return
	}
	w.cancel()
	delete(s.workers, grantID)
	s.stopping[grantID] = w.done
	go func() {
		<-w.done
		s.mu.Lock()
		if s.stopping[grantID] == w.done {
			delete(s.stopping, grantID)
		}
		s.mu.Unlock()
	}()
}
