package syncer

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
)

// worker syncs one grant until its context ends.
type worker struct {
	sup    *Supervisor
	grant  store.Grant
	cancel context.CancelFunc
	done   chan struct{}
	// calWake asks the calendar sync for a pass now.
	calWake chan struct{}
	log     *slog.Logger
}

// Backoff after failed sessions: doubling from backoffMin, capped, with
// jitter so that many grants failing together (a provider outage) do not
// reconnect in lockstep. A refused login waits longest: retrying a bad
// password quickly can lock the account at the provider.
const (
	backoffMin     = 2 * time.Second
	backoffMax     = 5 * time.Minute
	authBackoffMin = 15 * time.Minute
)

func (w *worker) run(ctx context.Context) {
	if w.syncsCalendars() {
		// The calendars sync beside the mail, on their own connection
		// and schedule; the worker ends when both have.
		calDone := make(chan struct{})
		go func() {
			defer close(calDone)
			w.calendarLoop(ctx)
		}()
		defer func() { <-calDone }()
	}
	failures := 0
	for ctx.Err() == nil {
		started := time.Now()
		err := w.session(ctx)
		if ctx.Err() != nil {
			break
		}
		if time.Since(started) > backoffMax {
			failures = 0 // the session ran well for a while: start over
		}
		failures++
		wait := backoff(failures)
		if provider.KindOf(err) == provider.KindAuth {
			wait = max(wait, authBackoffMin)
			w.loginRefused(ctx)
		}
		w.log.Warn("sync session ended", "error", err, "retry_in", wait.Round(time.Second))
		w.sup.setStatus(w.grant.ID, func(s *Status) {
			s.State, s.LastError, s.LastErrorAt, s.Retries = "retrying", errText(err), time.Now(), failures
		})
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	w.sup.setStatus(w.grant.ID, func(s *Status) { s.State = "stopped" })
}

func backoff(failures int) time.Duration {
	d := backoffMin << min(failures-1, 10)
	d = min(d, backoffMax)
	// ±25 % jitter.
	return d - d/4 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// loginRefused reports a refused login to the supervisor's owner, which
// expires the grant (and so stops this worker).
func (w *worker) loginRefused(ctx context.Context) {
	if f := w.sup.opts.LoginRefused; f != nil {
		w.log.Warn("the provider refused the grant's login")
		f(context.WithoutCancel(ctx), w.grant.ID)
	}
}
