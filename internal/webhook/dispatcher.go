package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// Store is what the dispatcher needs of the store.
type Store interface {
	ListChanges(ctx context.Context, afterID int64, limit int) ([]store.Change, error)
	DispatchableWebhooks(ctx context.Context) ([]store.Webhook, error)
	DispatchCursor(ctx context.Context) (int64, error)
	EnqueueDeliveries(ctx context.Context, from, to int64, ds []store.Delivery) error
	ClaimDeliveries(ctx context.Context, now time.Time, n int, lease time.Duration) ([]store.Delivery, error)
	FinishAttempt(ctx context.Context, deliveryID string, a store.DeliveryAttempt, state string, nextAttemptAt time.Time) error
	GetWebhook(ctx context.Context, appID, id string) (*store.Webhook, error)
	UpdateWebhook(ctx context.Context, w *store.Webhook) error
	WebhookOutcomes(ctx context.Context, webhookID string, since time.Time) (total, failed int, err error)
	PurgeDeliveries(ctx context.Context, before time.Time) (int, error)
}

// Options configure a Dispatcher. Zero values take the defaults.
type Options struct {
	Store    Store    // required
	Renderer Renderer // required
	// OpenSecret returns a webhook's secret in clear (the service unseals
	// Webhook.Secret); required.
	OpenSecret func(w *store.Webhook) ([]byte, error)
	// Client POSTs the notifications; nil means a client that does not
	// follow redirects (a 3xx is the URL's answer, and fails the
	// delivery). Its Timeout should be zero: AttemptTimeout bounds each
	// attempt.
	Client *http.Client
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PollInterval is how often the change rows and the due deliveries are
	// looked for when Notify is not called. Default 250 ms.
	PollInterval time.Duration
	// Concurrency caps the POSTs in flight on this node (at most one per
	// webhook is the store's rule). Default 16.
	Concurrency int
	// Lease is how long a claimed delivery is this node's; a node that
	// dies leaves its claims to lapse and be taken again. It must exceed
	// AttemptTimeout. Default 60 s.
	Lease time.Duration
	// AttemptTimeout bounds one POST, answer included. Default 10 s.
	AttemptTimeout time.Duration
	// MaxAttempts is the number of attempts after which a delivery that
	// keeps failing temporarily is given up. Default 6.
	MaxAttempts int
	// Backoff is the delay before the attempt after attempt n (1-based)
	// failed temporarily. Default DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// BatchSize is the number of change rows turned into deliveries per
	// store transaction. Default 200.
	BatchSize int
	// MaxPayload is the body size over which message notifications are
	// truncated. Default MaxPayload.
	MaxPayload int
	// Retention is how long finished (delivered or failed) deliveries are
	// kept for operators to see; negative keeps them forever. It must
	// cover the 72 h health window. Default 7 days.
	Retention time.Duration
	// StatusChanged, if set, is called after the dispatcher moved a
	// webhook to failing, failed or back to active (w holds the new
	// status), e.g. to email its notification addresses.
	StatusChanged func(w store.Webhook, from string)
}

// Health rules (nylas-v3-api.md §6.3).
const (
	failingWindow = 15 * time.Minute // ≥ failRatio failed over it: failing
	failedWindow  = 72 * time.Hour   // failing that long, ≥ failRatio failed over it: failed
	failRatio     = 95               // percent
	// failingMinAttempts keeps a webhook that failed once or twice in a
	// quiet quarter hour active.
	failingMinAttempts = 5
)

const (
	defaultRetention = 7 * 24 * time.Hour
	purgeInterval    = time.Hour
	// storeTimeout bounds the store calls of an attempt, which run on
	// after Run's context ends so that a claimed delivery is finished.
	storeTimeout = 30 * time.Second
	maxErrorWait = 30 * time.Second
)

// backoffSteps are DefaultBackoff's delays after attempts 1, 2, …; later
// attempts wait the last.
var backoffSteps = [...]time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour}

// DefaultBackoff waits about 10 s after the first attempt, then 1, 5, 15
// and 30 minutes, then an hour, each ±20 % at random so that deliveries
// that failed together do not retry together.
func DefaultBackoff(attempt int) time.Duration {
	d := backoffSteps[min(max(attempt, 1), len(backoffSteps))-1]
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (o *Options) defaults() {
	if o.Client == nil {
		// Its own transport: Run closes its idle connections on return.
		o.Client = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Lease <= 0 {
		o.Lease = 60 * time.Second
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 200
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = MaxPayload
	}
	if o.Retention == 0 {
		o.Retention = defaultRetention
	}
}

// Dispatcher turns change rows into deliveries and delivers them. Start it
// with Run; Notify wakes it after a write.
type Dispatcher struct {
	opts    Options
	log     *slog.Logger
	running atomic.Bool
	// wakeEnqueue and wakeDeliver hold at most one pending wake-up each.
	wakeEnqueue chan struct{}
	wakeDeliver chan struct{}
	// health serialises the health checks, so that two attempts of one
	// webhook finishing together do not both move its status.
	health sync.Mutex
	// attemptDone, if set (tests), is called after each attempt, its
	// health check included.
	attemptDone func()
}

// New checks o and returns a Dispatcher; nothing runs until Run.
func New(o Options) (*Dispatcher, error) {
	o.defaults()
	switch {
	case o.Store == nil:
		return nil, errors.New("webhook: Options.Store is required")
	case o.Renderer == nil:
		return nil, errors.New("webhook: Options.Renderer is required")
	case o.OpenSecret == nil:
		return nil, errors.New("webhook: Options.OpenSecret is required")
	case o.Lease <= o.AttemptTimeout:
		return nil, fmt.Errorf("webhook: Lease %v must exceed AttemptTimeout %v, or a delivery could be claimed again while in flight", o.Lease, o.AttemptTimeout)
	case o.Retention > 0 && o.Retention < failedWindow+failingWindow:
		return nil, fmt.Errorf("webhook: Retention %v must cover the %v health window", o.Retention, failedWindow)
	}
	return &Dispatcher{opts: o, log: o.Logger,
		wakeEnqueue: make(chan struct{}, 1), wakeDeliver: make(chan struct{}, 1)}, nil
}

// Notify wakes the dispatcher before its next poll: the service calls it
// after writing change rows, and after an operator replays a delivery.
// It never blocks.
func (d *Dispatcher) Notify() {
	wake(d.wakeEnqueue)
	wake(d.wakeDeliver)
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run enqueues and delivers until ctx ends. Then it stops claiming, waits
// for the attempts in flight (each bounded by AttemptTimeout) to be POSTed
// and recorded, and returns nil. A Dispatcher runs once at a time.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("webhook: dispatcher already running")
	}
	defer d.running.Store(false)
	var wg sync.WaitGroup
	wg.Go(func() { d.enqueueLoop(ctx) })
	wg.Go(func() { d.deliverLoop(ctx) })
	wg.Wait()
	// Keep-alive connections to receivers would outlive Run.
	d.opts.Client.CloseIdleConnections()
	return nil
}

// --- enqueue --------------------------------------------------------------

func (d *Dispatcher) enqueueLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	errWait := d.opts.PollInterval
	var lastPurge time.Time
	for {
		more, err := d.enqueue(ctx)
		wait := d.opts.PollInterval
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			d.log.Warn("webhook: enqueueing notifications failed", "error", err, "retry_in", errWait)
			wait, errWait = errWait, min(2*errWait, maxErrorWait)
		default:
			errWait = d.opts.PollInterval
			if more {
				continue
			}
		}
		if now := d.opts.Now(); d.opts.Retention > 0 && now.Sub(lastPurge) >= purgeInterval {
			lastPurge = now
			d.purge(ctx, now)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-d.wakeEnqueue:
		case <-timer.C:
		}
	}
}

// changeKey identifies duplicate change rows within a batch.
type changeKey struct{ grant, objectType, objectID, action string }

// enqueue turns one batch of change rows after the cursor into
// deliveries. more reports that another batch may be waiting.
func (d *Dispatcher) enqueue(ctx context.Context) (more bool, err error) {
	st := d.opts.Store
	from, err := st.DispatchCursor(ctx)
	if err != nil {
		return false, err
	}
	changes, err := st.ListChanges(ctx, from, d.opts.BatchSize)
	if err != nil || len(changes) == 0 {
		return false, err
	}
	hooks, err := st.DispatchableWebhooks(ctx)
	if err != nil {
		return false, err
	}
	to := changes[len(changes)-1].ID
	var ds []store.Delivery
	var renderErr error
	if len(hooks) > 0 {
		to = from
		wanted := subscribedKinds(hooks)
		seen := map[changeKey]bool{}
		for _, ch := range changes {
			k := changeKey{ch.GrantID, ch.ObjectType, ch.ObjectID, ch.Action}
			if seen[k] || !wanted[ch.ObjectType] {
				// The same object changed twice in the batch: one
				// notification, rendered from its current state, says
				// it. Or no webhook wants this kind of object.
				to = ch.ID
				continue
			}
			n, ok, err := d.opts.Renderer.Render(ctx, ch)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				renderErr = fmt.Errorf("render change %d (%s %s %s): %w", ch.ID, ch.ObjectType, ch.Action, ch.ObjectID, err)
				break
			}
			seen[k], to = true, ch.ID
			if err != nil || !ok {
				continue
			}
			ds = append(ds, d.deliveries(ch, n, hooks)...)
		}
	}
	if to == from {
		return false, renderErr
	}
	switch err := st.EnqueueDeliveries(ctx, from, to, ds); {
	case errors.Is(err, store.ErrConflict):
		// Another node enqueued these changes: read the cursor again.
		return true, nil
	case err != nil:
		return false, err
	}
	if len(ds) > 0 {
		wake(d.wakeDeliver)
	}
	return renderErr == nil && len(changes) == d.opts.BatchSize, renderErr
}

// subscribedKinds returns the object kinds ("message" of
// "message.created") that some webhook subscribed to: changes of other
// kinds need not be rendered.
func subscribedKinds(hooks []store.Webhook) map[string]bool {
	kinds := map[string]bool{}
	for _, w := range hooks {
		for _, t := range w.TriggerTypes {
			kind, _, _ := strings.Cut(t, ".")
			kinds[kind] = true
		}
	}
	return kinds
}

// deliveries addresses n to every webhook of its application that
// subscribed to its type.
func (d *Dispatcher) deliveries(ch store.Change, n Notification, hooks []store.Webhook) []store.Delivery {
	if n.ApplicationID == "" || n.Type == "" || len(n.Object) == 0 {
		d.log.Error("webhook: renderer returned a notification without application, type or object; skipped",
			"change_id", ch.ID, "type", n.Type, "application_id", n.ApplicationID)
		return nil
	}
	now := d.opts.Now()
	at := ch.CreatedAt
	if at.IsZero() {
		at = now
	}
	var env *envelope
	var out []store.Delivery
	for i := range hooks {
		w := &hooks[i]
		if w.ApplicationID != n.ApplicationID {
			continue
		}
		if env == nil {
			e, err := buildEnvelope(n, at, d.opts.MaxPayload)
			if err != nil {
				// Not JSON: rendering it again would not help.
				d.log.Error("webhook: notification skipped", "change_id", ch.ID, "type", n.Type, "error", err)
				return nil
			}
			env = &e
		}
		if !subscribed(w, env.typ) {
			continue
		}
		id := newID()
		out = append(out, store.Delivery{
			ID:            id,
			WebhookID:     w.ID,
			ApplicationID: w.ApplicationID,
			GrantID:       n.GrantID,
			Type:          env.typ,
			Payload:       env.payload(id),
			CreatedAt:     now,
			NextAttemptAt: now,
		})
	}
	return out
}

func (d *Dispatcher) purge(ctx context.Context, now time.Time) {
	n, err := d.opts.Store.PurgeDeliveries(ctx, now.Add(-d.opts.Retention))
	switch {
	case err != nil && ctx.Err() == nil:
		d.log.Warn("webhook: purging old deliveries failed", "error", err)
	case n > 0:
		d.log.Debug("webhook: purged old deliveries", "count", n)
	}
}

// --- deliver --------------------------------------------------------------

func (d *Dispatcher) deliverLoop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	// done receives one value per finished attempt; its capacity is the
	// most that can be in flight, so a finishing attempt never blocks.
	done := make(chan struct{}, d.opts.Concurrency)
	inFlight := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	errWait := d.opts.PollInterval
	for {
		wait := d.opts.PollInterval
		if free := d.opts.Concurrency - inFlight; free > 0 && ctx.Err() == nil {
			ds, err := d.opts.Store.ClaimDeliveries(ctx, d.opts.Now(), free, d.opts.Lease)
			switch {
			case err != nil && ctx.Err() == nil:
				d.log.Warn("webhook: claiming deliveries failed", "error", err, "retry_in", errWait)
				wait, errWait = errWait, min(2*errWait, maxErrorWait)
			case err == nil:
				errWait = d.opts.PollInterval
			}
			for _, dl := range ds {
				inFlight++
				wg.Go(func() {
					defer func() { done <- struct{}{} }()
					d.attempt(ctx, dl)
					if d.attemptDone != nil {
						d.attemptDone()
					}
				})
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-done:
			// The webhook's next delivery may be claimable now.
			inFlight--
		case <-d.wakeDeliver:
		case <-timer.C:
		}
	}
}

// Late is the dispatcher as seen by what must be built before it: the
// service publishes and wakes it, but is also the dispatcher's renderer.
// D is set once the dispatcher exists; until then Notify does nothing and
// Publish fails.
type Late struct{ D *Dispatcher }

// Notify wakes the dispatcher, if there is one yet.
func (l *Late) Notify() {
	if d := l.D; d != nil {
		d.Notify()
	}
}

// Publish queues n on the dispatcher.
func (l *Late) Publish(ctx context.Context, n Notification) error {
	if l.D == nil {
		return errors.New("webhook: publish before the dispatcher was built")
	}
	return l.D.Publish(ctx, n)
}
