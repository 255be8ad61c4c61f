package webhook

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orchard-mail/orchard/internal/store"
)

const (
	// maxRetryAfter caps a receiver's Retry-After.
	maxRetryAfter = time.Hour
	// errorSnippet is how much of a refusing receiver's answer is kept in
	// the attempt's error for operators.
	errorSnippet = 256
	// drainLimit is how much of an answer is read so that the connection
	// can be reused.
	drainLimit = 64 << 10
)

// attempt POSTs a claimed delivery and records the outcome. It runs on
// after ctx ends (Run's shutdown waits for it): the attempt is already
// counted, and finishing it keeps its outcome.
func (d *Dispatcher) attempt(ctx context.Context, dl store.Delivery) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.AttemptTimeout+storeTimeout)
	defer cancel()
	n := dl.Attempts
	log := d.log.With("delivery_id", dl.ID, "webhook_id", dl.WebhookID, "type", dl.Type, "attempt", n)

	w, err := d.opts.Store.GetWebhook(ctx, dl.ApplicationID, dl.WebhookID)
	if errors.Is(err, store.ErrNotFound) {
		return // deleted, with its deliveries
	}
	if err != nil {
		// Our failure, not the receiver's: leave the claim to lapse
		// rather than record a failed attempt against the webhook.
		log.Warn("webhook: reading the webhook failed; the delivery is retried when its claim lapses", "error", err)
		return
	}
	if w.Status != store.WebhookActive && w.Status != store.WebhookFailing {
		// Paused or failed since the claim: the delivery stays pending
		// (the claim lapses) until the webhook is active again.
		log.Debug("webhook: not sent, the webhook is " + w.Status)
		return
	}
	secret, err := d.opts.OpenSecret(w)
	if err != nil {
		log.Error("webhook: opening the webhook secret failed; the delivery is retried when its claim lapses", "error", err)
		return
	}
	body, err := withAttempt(dl.Payload, n)
	if err != nil {
		d.finish(ctx, log, dl, store.DeliveryAttempt{N: n, At: d.opts.Now(), Error: err.Error()}, store.DeliveryFailed, time.Time{})
		return
	}
	if w.CompressedDelivery {
		body = gzipped(body)
	}

	at := d.opts.Now()
	start := time.Now()
	res := d.post(ctx, w.URL, body, Sign(secret, body), w.CompressedDelivery)
	a := store.DeliveryAttempt{N: n, At: at, Status: res.status, Latency: time.Since(start), Error: res.err}

	state, next := store.DeliveryDelivered, time.Time{}
	switch {
	case res.ok():
	case res.temporary() && n < d.opts.MaxAttempts:
		// The backoff counts from the answer (or the timeout), not from
		// the start of the POST.
		state, next = store.DeliveryPending, d.opts.Now().Add(max(d.opts.Backoff(n), res.retryAfter))
	default:
		state = store.DeliveryFailed
	}
	if state == store.DeliveryPending {
		log.Debug("webhook: attempt failed; retrying", "status", res.status, "error", res.err, "next_attempt_at", next)
	} else if state == store.DeliveryFailed {
		log.Info("webhook: delivery failed", "status", res.status, "error", res.err)
	}
	if !d.finish(ctx, log, dl, a, state, next) {
		return
	}
	d.checkHealth(ctx, w, res.ok())
}

// finish records attempt a; false when there is nothing more to do.
func (d *Dispatcher) finish(ctx context.Context, log *slog.Logger, dl store.Delivery, a store.DeliveryAttempt, state string, next time.Time) bool {
	err := d.opts.Store.FinishAttempt(ctx, dl.ID, a, state, next)
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrNotFound):
		return false // the webhook was deleted meanwhile
	case errors.Is(err, store.ErrConflict):
		log.Debug("webhook: attempt already finished", "error", err)
		return false
	default:
		// The claim lapses and the delivery is sent again: at least once.
		log.Error("webhook: recording the attempt failed", "error", err)
		return false
	}
}

// result is the outcome of one POST.
type result struct {
	status     int    // 0: no answer
	err        string // "" for a 2xx
	retryAfter time.Duration
}

func (r result) ok() bool { return r.status >= 200 && r.status <= 299 }

// temporary: no answer (timeout, network), 408, 429 or 5xx. Any other
// status (3xx, other 4xx) is the URL refusing the notification for good.
func (r result) temporary() bool {
	return r.status == 0 || r.status == http.StatusRequestTimeout || r.status == http.StatusTooManyRequests || r.status >= 500
}

func (d *Dispatcher) post(ctx context.Context, url string, body []byte, sig string, compressed bool) result {
	ctx, cancel := context.WithTimeout(ctx, d.opts.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return result{err: fmt.Sprintf("bad webhook URL: %v", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(SignatureHeader, sig)
	if compressed {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return result{err: fmt.Sprintf("no answer within %v", d.opts.AttemptTimeout)}
		}
		return result{err: unwrapURLError(err).Error()}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, errorSnippet))
	// The status line is the answer; a body cut short does not matter.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	r := result{status: resp.StatusCode}
	if r.ok() {
		return r
	}
	r.err = "HTTP " + resp.Status
	if s := strings.TrimSpace(strings.ToValidUTF8(string(snippet), "")); s != "" {
		if len(snippet) == errorSnippet {
			s = truncateUTF8(s, errorSnippet-1) + "…"
		}
		r.err += ": " + s
	}
	if r.temporary() {
		r.retryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return r
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped
// at maxRetryAfter; 0 when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	return buf.Bytes()
}

// --- health ---------------------------------------------------------------

// checkHealth applies the rules of nylas-v3-api.md §6.3 after an attempt
// on w (as read before the POST): a success while failing makes it active;
// failures make an active webhook failing when at least 95 % of its
// attempts of the last 15 minutes failed (and there were
// failingMinAttempts), and a webhook failing for 72 hours failed when 95 %
// of its attempts over those 72 hours failed. Failed is final until the
// application sets the webhook active again.
func (d *Dispatcher) checkHealth(ctx context.Context, w *store.Webhook, ok bool) {
	if ok && w.Status != store.WebhookFailing {
		return
	}
	d.health.Lock()
	defer d.health.Unlock()
	cur, err := d.opts.Store.GetWebhook(ctx, w.ApplicationID, w.ID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			d.log.Warn("webhook: health check failed", "webhook_id", w.ID, "error", err)
		}
		return
	}
	now := d.opts.Now()
	to := ""
	switch {
	case ok && cur.Status == store.WebhookFailing:
		to = store.WebhookActive
	case ok:
	case cur.Status == store.WebhookActive:
		total, failed, err := d.opts.Store.WebhookOutcomes(ctx, w.ID, now.Add(-failingWindow))
		if err != nil {
			d.log.Warn("webhook: health check failed", "webhook_id", w.ID, "error", err)
			return
		}
		if total >= failingMinAttempts && failed*100 >= total*failRatio {
			to = store.WebhookFailing
		}
	case cur.Status == store.WebhookFailing && now.Sub(cur.StatusUpdatedAt) >= failedWindow:
		total, failed, err := d.opts.Store.WebhookOutcomes(ctx, w.ID, now.Add(-failedWindow))
		if err != nil {
			d.log.Warn("webhook: health check failed", "webhook_id", w.ID, "error", err)
			return
		}
		if total > 0 && failed*100 >= total*failRatio {
			to = store.WebhookFailed
		}
	}
	if to == "" {
		return
	}
	from := cur.Status
	cur.Status = to
	if err := d.opts.Store.UpdateWebhook(ctx, cur); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			d.log.Warn("webhook: updating the webhook status failed", "webhook_id", w.ID, "status", to, "error", err)
		}
		return
	}
	lvl := slog.LevelWarn
	if to == store.WebhookActive {
		lvl = slog.LevelInfo
	}
	d.log.Log(ctx, lvl, "webhook: status changed", "webhook_id", w.ID, "url", w.URL, "from", from, "to", to)
	if d.opts.StatusChanged != nil {
		d.opts.StatusChanged(*cur, from)
	}
}
