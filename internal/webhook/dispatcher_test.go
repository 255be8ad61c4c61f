package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/storetest"
)

func TestDelivery(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	w := r.hook(rc, "/hook", []string{"message.created", "message.updated"})
	// Another application's webhook on the same trigger gets nothing of
	// this application's.
	otherApp, otherGrant := r.newApp("other@example.test")
	rcOther := newReceiver(t)
	wOther := &store.Webhook{ApplicationID: otherApp, URL: rcOther.srv.URL, TriggerTypes: []string{"message.created"}, Secret: rcOther.secret}
	if err := r.st.CreateWebhook(context.Background(), wOther); err != nil {
		t.Fatal(err)
	}
	r.start(r.options())

	ids := r.change("message", "created", "m1")
	r.change("folder", "created", "f1")  // not subscribed
	r.change("thread", "updated", "t1")  // the renderer notifies nothing
	r.change("message", "deleted", "m0") // nor here
	// The same message updated twice in one batch: one notification.
	r.change("message", "updated", "m1", "m1")
	r.changeOf(otherGrant, "message", "created", "o1")

	waitFor(t, "2 arrivals", func() bool { return rc.count() >= 2 })
	waitFor(t, "the other application's arrival", func() bool { return rcOther.count() >= 1 })
	time.Sleep(100 * time.Millisecond)
	got := rc.arrivals()
	if len(got) != 2 {
		t.Fatalf("%d arrivals, want 2: %+v", len(got), got)
	}
	a := got[0]
	if a.env.Type != "message.created" || a.env.Source != SourceMail || a.env.Attempt != 1 ||
		a.env.Data.ApplicationID != r.appID || a.env.Data.GrantID != r.grantID || a.env.objectID() != "m1" {
		t.Errorf("envelope: %s", a.raw)
	}
	if a.header.Get("Content-Encoding") != "" {
		t.Errorf("Content-Encoding %q", a.header.Get("Content-Encoding"))
	}
	if !strings.Contains(string(a.raw), `"body":"<p>Hello & welcome</p>"`) {
		t.Errorf("body escaped or missing: %s", a.raw)
	}
	if !strings.HasPrefix(string(a.raw), `{"specversion":"1.0","type":"message.created","source":"/imap/emails/realtime","id":"`) {
		t.Errorf("layout: %s", a.raw)
	}
	changes, _ := r.st.ListChanges(context.Background(), ids[0]-1, 1)
	if a.env.Time != changes[0].CreatedAt.Unix() {
		t.Errorf("time %d, want the change's %d", a.env.Time, changes[0].CreatedAt.Unix())
	}
	if got[1].env.Type != "message.updated" || got[1].env.objectID() != "m1" {
		t.Errorf("second: %s", got[1].raw)
	}
	if rcOther.count() != 1 || rcOther.arrivals()[0].env.Data.ApplicationID != otherApp {
		t.Errorf("other application: %+v", rcOther.arrivals())
	}

	r.mu.Lock()
	rendered := slices.Clone(r.rendered)
	r.mu.Unlock()
	if slices.Contains(rendered, "f1") || slices.Contains(rendered, "t1") {
		t.Errorf("rendered %v: no webhook subscribes to folders or threads", rendered)
	}
	if n := len(slices.DeleteFunc(slices.Clone(rendered), func(id string) bool { return id != "m1" })); n != 2 {
		t.Errorf("m1 rendered %d times, want 2 (created, and the two updates as one)", n)
	}

	ds := r.deliveries(w)
	if len(ds) != 2 {
		t.Fatalf("%d deliveries stored", len(ds))
	}
	d := ds[0]
	if d.ID != a.env.ID || d.State != store.DeliveryDelivered || d.Attempts != 1 || d.LastStatus != 200 ||
		len(d.AttemptLog) != 1 || d.AttemptLog[0].Status != 200 || d.AttemptLog[0].Error != "" || d.AttemptLog[0].Latency <= 0 {
		t.Errorf("stored delivery: %+v", d)
	}
	if strings.Contains(string(d.Payload), "webhook_delivery_attempt") {
		t.Errorf("stored payload has an attempt number: %s", d.Payload)
	}
}

func TestRetryThenDelivered(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	var n atomic.Int32
	rc.setRespond(func(arrival) int {
		if n.Add(1) <= 3 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	w := r.hook(rc, "/hook", []string{"message.created"})
	o := r.options()
	const backoff = 50 * time.Millisecond
	var backoffs []int
	var mu sync.Mutex
	o.Backoff = func(n int) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		backoffs = append(backoffs, n)
		return backoff
	}
	r.start(o)
	r.change("message", "created", "m1")

	waitFor(t, "4 arrivals", func() bool { return rc.count() >= 4 })
	waitFor(t, "delivered", func() bool {
		ds := r.deliveries(w)
		return len(ds) == 1 && ds[0].State == store.DeliveryDelivered
	})
	time.Sleep(3 * backoff)
	got := rc.arrivals()
	if len(got) != 4 {
		t.Fatalf("%d arrivals, want 4", len(got))
	}
	for i, a := range got {
		if a.env.ID != got[0].env.ID || a.env.Attempt != i+1 {
			t.Errorf("arrival %d: id %s attempt %d", i, a.env.ID, a.env.Attempt)
		}
	}
	d := r.deliveries(w)[0]
	if d.Attempts != 4 || len(d.AttemptLog) != 4 {
		t.Fatalf("stored: %+v", d)
	}
	for i, at := range d.AttemptLog {
		wantStatus := 500
		if i == 3 {
			wantStatus = 200
		}
		if at.N != i+1 || at.Status != wantStatus || (wantStatus == 500) != strings.HasPrefix(at.Error, "HTTP 500") {
			t.Errorf("attempt %d: %+v", i+1, at)
		}
		if i > 0 && at.At.Sub(d.AttemptLog[i-1].At) < backoff {
			t.Errorf("attempt %d came %v after the previous, want ≥ %v", i+1, at.At.Sub(d.AttemptLog[i-1].At), backoff)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(backoffs, []int{1, 2, 3}) {
		t.Errorf("Backoff called with %v", backoffs)
	}
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		maxTries int
		want     int // arrivals
	}{
		{"410 fails at once", http.StatusGone, 6, 1},
		{"400 fails at once", http.StatusBadRequest, 6, 1},
		{"redirect is not followed and fails", http.StatusFound, 6, 1},
		{"503 until MaxAttempts", http.StatusServiceUnavailable, 3, 3},
		{"429 until MaxAttempts", http.StatusTooManyRequests, 2, 2},
		{"408 until MaxAttempts", http.StatusRequestTimeout, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			rc := newReceiver(t)
			rc.setRespond(func(arrival) int { return tc.status })
			w := r.hook(rc, "/hook", []string{"message.created"})
			o := r.options()
			o.MaxAttempts = tc.maxTries
			r.start(o)
			r.change("message", "created", "m1")
			waitFor(t, "failed", func() bool {
				ds := r.deliveries(w)
				return len(ds) == 1 && ds[0].State == store.DeliveryFailed
			})
			time.Sleep(100 * time.Millisecond)
			if n := rc.count(); n != tc.want {
				t.Errorf("%d arrivals, want %d", n, tc.want)
			}
			d := r.deliveries(w)[0]
			if d.LastStatus != tc.status || d.Attempts != tc.want || d.FinishedAt.IsZero() {
				t.Errorf("stored: %+v", d)
			}
		})
	}
}

func TestTimeoutRetried(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	var n atomic.Int32
	rc.setRespond(func(a arrival) int {
		if n.Add(1) == 1 {
			time.Sleep(500 * time.Millisecond)
		}
		return http.StatusOK
	})
	w := r.hook(rc, "/hook", []string{"message.created"})
	o := r.options()
	o.AttemptTimeout = 150 * time.Millisecond
	r.start(o)
	r.change("message", "created", "m1")
	waitFor(t, "delivered", func() bool {
		ds := r.deliveries(w)
		return len(ds) == 1 && ds[0].State == store.DeliveryDelivered
	})
	d := r.deliveries(w)[0]
	if len(d.AttemptLog) != 2 || d.AttemptLog[0].Status != 0 || !strings.Contains(d.AttemptLog[0].Error, "no answer within 150ms") ||
		d.AttemptLog[1].Status != 200 {
		t.Errorf("attempts: %+v", d.AttemptLog)
	}
}

// TestOrderOnePerWebhook: one delivery in flight per webhook, in order,
// and a delivery waiting for its retry holds back the ones after it.
func TestOrderOnePerWebhook(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	var failedOnce atomic.Bool
	rc.setRespond(func(a arrival) int {
		time.Sleep(5 * time.Millisecond)
		if a.env.objectID() == "m05" && failedOnce.CompareAndSwap(false, true) {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	r.hook(rc, "/a", []string{"message.created"})
	r.hook(rc, "/b", []string{"message.created"})
	r.start(r.options())
	var want []string
	for i := range 20 {
		id := fmt.Sprintf("m%02d", i)
		want = append(want, id)
		r.change("message", "created", id)
	}
	waitFor(t, "41 arrivals", func() bool { return rc.count() >= 41 })
	for _, path := range []string{"/a", "/b"} {
		var got []string
		for _, a := range rc.arrivals() {
			if a.path == path && a.status == 200 {
				got = append(got, a.env.objectID())
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s order: %v", path, got)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.maxPerPath["/a"] != 1 || rc.maxPerPath["/b"] != 1 {
		t.Errorf("in flight per webhook: %v", rc.maxPerPath)
	}
	if rc.maxTotal != 2 {
		t.Logf("at most %d in flight in all (2 expected, not guaranteed)", rc.maxTotal)
	}
}

func TestGlobalCap(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	rc.setRespond(func(arrival) int { time.Sleep(30 * time.Millisecond); return http.StatusOK })
	for i := range 6 {
		r.hook(rc, fmt.Sprintf("/h%d", i), []string{"message.created"})
	}
	o := r.options()
	o.Concurrency = 2
	r.start(o)
	r.change("message", "created", "m1", "m2", "m3")
	waitFor(t, "18 arrivals", func() bool { return rc.count() >= 18 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.maxTotal != 2 {
		t.Errorf("at most %d in flight, want the cap 2 reached and kept", rc.maxTotal)
	}
	for p, n := range rc.maxPerPath {
		if n != 1 {
			t.Errorf("%s: %d in flight", p, n)
		}
	}
}

func TestTruncation(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	created := r.hook(rc, "/created", []string{"message.created"})
	r.hook(rc, "/updated", []string{"message.updated"})
	explicit := r.hook(rc, "/explicit", []string{"message.created.truncated"})
	r.start(r.options())
	r.setBody("big", "<p>"+strings.Repeat("Lorem ipsum dolor sit amet. ", 40_000)+"</p>") // 1.1 MB
	r.change("message", "created", "big", "small")

	waitFor(t, "3 arrivals", func() bool { return rc.count() >= 3 })
	time.Sleep(100 * time.Millisecond)
	byPath := map[string][]arrival{}
	for _, a := range rc.arrivals() {
		byPath[a.path] = append(byPath[a.path], a)
	}
	if len(byPath["/created"]) != 2 || len(byPath["/explicit"]) != 1 || len(byPath["/updated"]) != 0 {
		t.Fatalf("arrivals by path: %d %d %d", len(byPath["/created"]), len(byPath["/explicit"]), len(byPath["/updated"]))
	}
	big, small := byPath["/created"][0], byPath["/created"][1]
	if big.env.Type != "message.created.truncated" || big.env.objectID() != "big" || len(big.raw) > MaxPayload {
		t.Errorf("big: type %s, %d bytes", big.env.Type, len(big.raw))
	}
	var obj map[string]any
	_ = json.Unmarshal(big.env.Data.Object, &obj)
	if _, ok := obj["body"]; ok || obj["subject"] != "about big" {
		t.Errorf("truncated object: %v", obj)
	}
	if small.env.Type != "message.created" || !strings.Contains(string(small.raw), `"body":"<p>Hello & welcome</p>"`) {
		t.Errorf("small: %s", small.raw)
	}
	if e := byPath["/explicit"][0]; e.env.Type != "message.created.truncated" {
		t.Errorf("explicit subscriber: %s", e.env.Type)
	}
	for _, w := range []*store.Webhook{created, explicit} {
		if ds := r.deliveries(w); ds[0].Type != "message.created.truncated" {
			t.Errorf("stored type %s", ds[0].Type)
		}
	}
}

func TestCompressedDelivery(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	r.hook(rc, "/z", []string{"message.created"}, func(w *store.Webhook) { w.CompressedDelivery = true })
	r.start(r.options())
	r.setBody("m1", strings.Repeat("<p>compressible</p>", 1000))
	r.change("message", "created", "m1")
	waitFor(t, "an arrival", func() bool { return rc.count() >= 1 })
	a := rc.arrivals()[0]
	// The receiver checked the signature over the compressed bytes.
	if a.header.Get("Content-Encoding") != "gzip" || a.env.Type != "message.created" || a.env.Attempt != 1 {
		t.Errorf("compressed arrival: %v %s", a.header, a.env.Type)
	}
}

func TestPausedAndFailedGetNothing(t *testing.T) {
	r := newRig(t)
	active, paused, failed := newReceiver(t), newReceiver(t), newReceiver(t)
	r.hook(active, "/", []string{"message.created"})
	wPaused := r.hook(paused, "/", []string{"message.created"}, func(w *store.Webhook) { w.Status = store.WebhookPaused })
	r.hook(failed, "/", []string{"message.created"}, func(w *store.Webhook) { w.Status = store.WebhookFailed })
	r.start(r.options())
	r.change("message", "created", "m1")
	waitFor(t, "the active webhook's arrival", func() bool { return active.count() == 1 })
	time.Sleep(100 * time.Millisecond)
	if paused.count() != 0 || failed.count() != 0 {
		t.Fatalf("paused got %d, failed got %d", paused.count(), failed.count())
	}
	// Resumed: what changed during the pause is not replayed.
	wPaused.Status = store.WebhookActive
	if err := r.st.UpdateWebhook(context.Background(), wPaused); err != nil {
		t.Fatal(err)
	}
	r.change("message", "created", "m2")
	waitFor(t, "the resumed webhook's arrival", func() bool { return paused.count() == 1 })
	if got := paused.arrivals()[0].env.objectID(); got != "m2" {
		t.Errorf("resumed webhook got %s", got)
	}
	time.Sleep(100 * time.Millisecond)
	if failed.count() != 0 || paused.count() != 1 || active.count() != 2 {
		t.Errorf("counts: active %d paused %d failed %d", active.count(), paused.count(), failed.count())
	}
}

// TestPausedWhileQueued: a webhook paused with deliveries queued keeps
// them until it is active again.
func TestPausedWhileQueued(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	release := make(chan struct{})
	rc.setRespond(func(a arrival) int {
		if a.env.objectID() == "m1" {
			<-release
		}
		return http.StatusOK
	})
	w := r.hook(rc, "/", []string{"message.created"})
	r.start(r.options())
	r.change("message", "created", "m1", "m2", "m3")
	waitFor(t, "m1 in flight", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.total == 1
	})
	w.Status = store.WebhookPaused
	if err := r.st.UpdateWebhook(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	close(release)
	time.Sleep(200 * time.Millisecond)
	if n := rc.count(); n != 1 {
		t.Fatalf("%d arrivals while paused, want only the one in flight", n)
	}
	w.Status = store.WebhookActive
	if err := r.st.UpdateWebhook(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the queued deliveries", func() bool { return rc.count() == 3 })
}

func TestHealth(t *testing.T) {
	type transition struct{ from, to string }
	type healthRig struct {
		*rig
		rc          *receiver
		w           *store.Webhook
		clock       *fakeClock
		status      atomic.Int32 // what the receiver answers
		attempts    atomic.Int32 // finished, health check included
		mu          sync.Mutex
		transitions []transition
	}
	setup := func(t *testing.T) *healthRig {
		h := &healthRig{rig: newRig(t), rc: newReceiver(t), clock: newFakeClock()}
		h.status.Store(http.StatusInternalServerError)
		h.rc.setRespond(func(arrival) int { return int(h.status.Load()) })
		h.w = h.hook(h.rc, "/", []string{"message.created"})
		o := h.options()
		o.Now = h.clock.Now
		o.MaxAttempts = 1 // each notification is one attempt
		o.StatusChanged = func(w store.Webhook, from string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.transitions = append(h.transitions, transition{from, w.Status})
		}
		d, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		d.attemptDone = func() { h.attempts.Add(1) }
		h.run(d)
		return h
	}
	// send notifies one change and waits for its attempt and health check.
	send := func(t *testing.T, h *healthRig, id string) {
		t.Helper()
		n := h.attempts.Load()
		h.change("message", "created", id)
		waitFor(t, id, func() bool { return h.attempts.Load() > n })
	}
	status := func(h *healthRig) string { return h.webhook(h.w.ID).Status }
	transitions := func(h *healthRig) []transition {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Clone(h.transitions)
	}

	t.Run("failing then active", func(t *testing.T) {
		h := setup(t)
		for i := range 4 {
			send(t, h, fmt.Sprintf("m%d", i))
		}
		if s := status(h); s != store.WebhookActive {
			t.Fatalf("after 4 failures: %s, want active (too few attempts)", s)
		}
		send(t, h, "m4")
		if s := status(h); s != store.WebhookFailing {
			t.Fatalf("after 5 failures: %s, want failing", s)
		}
		// Failing webhooks are still delivered to; a success revives it.
		h.status.Store(http.StatusOK)
		send(t, h, "m5")
		if s := status(h); s != store.WebhookActive {
			t.Fatalf("after a success: %s, want active", s)
		}
		if got := transitions(h); !slices.Equal(got, []transition{{"active", "failing"}, {"failing", "active"}}) {
			t.Errorf("transitions %v", got)
		}
		if n := h.rc.count(); n != 6 {
			t.Errorf("%d arrivals, want 6", n)
		}
	})

	t.Run("failing then failed", func(t *testing.T) {
		h := setup(t)
		for i := range 5 {
			send(t, h, fmt.Sprintf("m%d", i))
		}
		if s := status(h); s != store.WebhookFailing {
			t.Fatalf("after 5 failures: %s, want failing", s)
		}
		h.clock.Advance(71 * time.Hour)
		send(t, h, "m5")
		if s := status(h); s != store.WebhookFailing {
			t.Fatalf("failing for 71 h: %s, want failing", s)
		}
		h.clock.Advance(2 * time.Hour)
		send(t, h, "m6")
		if s := status(h); s != store.WebhookFailed {
			t.Fatalf("failing for 73 h: %s, want failed", s)
		}
		// Failed: nothing more is sent (so no success can revive it).
		h.status.Store(http.StatusOK)
		n := h.rc.count()
		h.change("message", "created", "m7")
		time.Sleep(150 * time.Millisecond)
		if h.rc.count() != n || status(h) != store.WebhookFailed {
			t.Errorf("a failed webhook was delivered to")
		}
		if got := transitions(h); !slices.Equal(got, []transition{{"active", "failing"}, {"failing", "failed"}}) {
			t.Errorf("transitions %v", got)
		}
	})

	t.Run("90 % failed stays active", func(t *testing.T) {
		h := setup(t)
		h.status.Store(http.StatusOK)
		send(t, h, "m0")
		h.status.Store(http.StatusInternalServerError)
		for i := 1; i < 10; i++ {
			send(t, h, fmt.Sprintf("m%d", i))
		}
		if s := status(h); s != store.WebhookActive {
			t.Errorf("status %s, want active", s)
		}
		// Past the 15 minutes the success no longer counts.
		h.clock.Advance(16 * time.Minute)
		for i := 10; i < 15; i++ {
			send(t, h, fmt.Sprintf("m%d", i))
		}
		if s := status(h); s != store.WebhookFailing {
			t.Errorf("status %s, want failing", s)
		}
	})
}

func TestNotifyWakes(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	r.hook(rc, "/", []string{"message.created"})
	o := r.options()
	o.PollInterval = time.Hour
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	r.run(d)
	time.Sleep(100 * time.Millisecond) // the first pass is over
	r.change("message", "created", "m1")
	d.Notify()
	waitFor(t, "an arrival", func() bool { return rc.count() == 1 })
}

func TestRenderErrors(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	r.hook(rc, "/", []string{"message.created"})
	ids := r.change("message", "created", "m1", "m2", "gone3", "m4")
	r.failRender(ids[1], 3) // m2: transient, three times
	r.start(r.options())
	waitFor(t, "3 arrivals", func() bool { return rc.count() >= 3 })
	time.Sleep(100 * time.Millisecond)
	var got []string
	for _, a := range rc.arrivals() {
		got = append(got, a.env.objectID())
	}
	if !slices.Equal(got, []string{"m1", "m2", "m4"}) {
		t.Errorf("arrivals %v, want m1 m2 m4 (gone3 skipped, m2 rendered once the error passed)", got)
	}
}

// TestTwoNodes: two dispatchers on one database enqueue each change once
// and deliver each notification once.
func TestTwoNodes(t *testing.T) {
	r := newRig(t)
	st2 := storetest.SQLite(t, r.path) // a second node's connection
	rc := newReceiver(t)
	r.hook(rc, "/a", []string{"message.created"})
	r.hook(rc, "/b", []string{"message.created"})
	r.start(r.options())
	o := r.options()
	o.Store = st2
	r.start(o)
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("m%02d", i)
		want = append(want, id)
		r.change("message", "created", id)
	}
	waitFor(t, "50 arrivals", func() bool { return rc.count() >= 50 })
	time.Sleep(150 * time.Millisecond)
	for id, attempts := range rc.byID() {
		if len(attempts) != 1 {
			t.Errorf("notification %s arrived %d times", id, len(attempts))
		}
	}
	for _, path := range []string{"/a", "/b"} {
		var got []string
		for _, a := range rc.arrivals() {
			if a.path == path {
				got = append(got, a.env.objectID())
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v", path, got)
		}
	}
}

// crashingStore loses FinishAttempt once dead is set: the node died
// between its POST and recording the outcome.
type crashingStore struct {
	Store
	dead *atomic.Bool
}

func (s crashingStore) FinishAttempt(ctx context.Context, id string, a store.DeliveryAttempt, state string, next time.Time) error {
	if s.dead.Load() {
		return errors.New("killed")
	}
	return s.Store.FinishAttempt(ctx, id, a, state, next)
}

// TestRestart stops a dispatcher while a receiver blocks, starts a new one
// on the same database, and checks that every notification arrives.
func TestRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := "graceful"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			rc := newReceiver(t)
			var blocking atomic.Bool
			blocking.Store(true)
			release := make(chan struct{})
			rc.setRespond(func(a arrival) int {
				if blocking.Load() && a.env.objectID() == "m03" {
					<-release
				}
				return http.StatusOK
			})
			w := r.hook(rc, "/", []string{"message.created"})
			check := goroutines(t)

			var dead atomic.Bool
			o := r.options()
			o.AttemptTimeout = 300 * time.Millisecond
			o.Lease = time.Second
			o.Store = crashingStore{r.st, &dead}
			stop1 := r.start(o)
			var want []string
			for i := range 10 {
				id := fmt.Sprintf("m%02d", i)
				want = append(want, id)
				r.change("message", "created", id)
			}
			waitFor(t, "m03 in flight", func() bool {
				rc.mu.Lock()
				defer rc.mu.Unlock()
				return rc.total == 1 && len(rc.got) == 3
			})
			if crash {
				// The receiver answers, the node dies before recording.
				dead.Store(true)
				close(release)
				waitFor(t, "m03 answered", func() bool { return rc.count() == 4 })
			}
			start := time.Now()
			stop1()
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("stopping took %v", d)
			}
			if !crash {
				// Run waited for the attempt in flight, which timed out
				// and was recorded.
				blocking.Store(false)
				close(release)
				var m03 store.Delivery
				for _, d := range r.deliveries(w) {
					if strings.Contains(string(d.Payload), `"id":"m03"`) {
						m03 = d
					}
				}
				if m03.State != store.DeliveryPending || len(m03.AttemptLog) != 1 || !strings.Contains(m03.AttemptLog[0].Error, "no answer") {
					t.Errorf("m03 after the stop: %+v", m03)
				}
			}
			check()

			// A restart: a new store on the same file, a new dispatcher,
			// and more changes.
			if err := r.st.Close(); err != nil {
				t.Fatal(err)
			}
			r.st = storetest.SQLite(t, r.path)
			for i := 10; i < 15; i++ {
				id := fmt.Sprintf("m%02d", i)
				want = append(want, id)
				r.change("message", "created", id)
			}
			o = r.options()
			o.Lease = time.Second
			o.AttemptTimeout = 300 * time.Millisecond
			stop2 := r.start(o)
			waitFor(t, "every notification", func() bool { return len(rc.acked()) == len(want) })
			waitFor(t, "every delivery delivered", func() bool {
				for _, d := range r.deliveries(w) {
					if d.State != store.DeliveryDelivered {
						return false
					}
				}
				return true
			})
			stop2()
			var got []string
			seen := map[string]bool{}
			for _, a := range rc.arrivals() {
				if id := a.env.objectID(); !seen[id] {
					seen[id] = true
					got = append(got, id)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("first arrivals in order %v, want %v", got, want)
			}
			attempts := rc.byID()
			for _, a := range rc.arrivals() {
				if a.env.objectID() == "m03" {
					want := []int{1, 2}
					if !slices.Equal(attempts[a.env.ID], want) {
						t.Errorf("m03 attempts %v, want %v", attempts[a.env.ID], want)
					}
					break
				}
			}
			if len(r.deliveries(w)) != len(want) {
				t.Errorf("%d deliveries stored, want %d", len(r.deliveries(w)), len(want))
			}
			check()
		})
	}
}

func TestRunLeavesNoGoroutines(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	release := make(chan struct{})
	defer close(release)
	rc.setRespond(func(a arrival) int {
		if a.env.objectID() == "slow" {
			select {
			case <-release:
			case <-a.ctx.Done():
			}
		}
		return http.StatusOK
	})
	for i := range 4 {
		r.hook(rc, fmt.Sprintf("/%d", i), []string{"message.created"}, func(w *store.Webhook) { w.CompressedDelivery = i%2 == 0 })
	}
	check := goroutines(t)
	o := r.options()
	o.AttemptTimeout = 200 * time.Millisecond
	o.Lease = time.Second
	stop := r.start(o)
	r.change("message", "created", "a", "b", "c")
	waitFor(t, "12 arrivals", func() bool { return rc.count() >= 12 })
	r.change("message", "created", "slow")
	waitFor(t, "slow in flight", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.total > 0
	})
	stop()
	check()
}

// racingStore lets another node enqueue the same changes just before the
// dispatcher's first EnqueueDeliveries.
type racingStore struct {
	Store
	once      sync.Once
	other     *Dispatcher
	conflicts atomic.Int32
}

func (s *racingStore) EnqueueDeliveries(ctx context.Context, from, to int64, ds []store.Delivery) error {
	s.once.Do(func() {
		if _, err := s.other.enqueue(ctx); err != nil {
			panic(err)
		}
	})
	err := s.Store.EnqueueDeliveries(ctx, from, to, ds)
	if errors.Is(err, store.ErrConflict) {
		s.conflicts.Add(1)
	}
	return err
}

func TestEnqueueConflict(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	r.hook(rc, "/", []string{"message.created"})
	r.change("message", "created", "m1", "m2")
	other, err := New(r.options())
	if err != nil {
		t.Fatal(err)
	}
	rs := &racingStore{Store: r.st, other: other}
	o := r.options()
	o.Store = rs
	r.start(o)
	waitFor(t, "2 arrivals", func() bool { return rc.count() >= 2 })
	r.change("message", "created", "m3")
	waitFor(t, "3 arrivals", func() bool { return rc.count() >= 3 })
	time.Sleep(100 * time.Millisecond)
	if n := rs.conflicts.Load(); n != 1 {
		t.Errorf("%d conflicts, want 1", n)
	}
	var got []string
	for _, a := range rc.arrivals() {
		got = append(got, a.env.objectID())
	}
	if !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Errorf("arrivals %v, want each once", got)
	}
}

func TestWebhookDeletedInFlight(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t)
	release := make(chan struct{})
	rc.setRespond(func(a arrival) int {
		if a.path == "/gone" {
			<-release
		}
		return http.StatusOK
	})
	gone := r.hook(rc, "/gone", []string{"message.created"})
	r.hook(rc, "/stays", []string{"message.created"})
	r.start(r.options())
	r.change("message", "created", "m1", "m2")
	waitFor(t, "/gone in flight", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.inFlight["/gone"] == 1
	})
	if err := r.st.DeleteWebhook(context.Background(), r.appID, gone.ID); err != nil {
		t.Fatal(err)
	}
	close(release)
	r.change("message", "created", "m3")
	waitFor(t, "/stays gets everything", func() bool {
		n := 0
		for _, a := range rc.arrivals() {
			if a.path == "/stays" {
				n++
			}
		}
		return n == 3
	})
	time.Sleep(100 * time.Millisecond)
	n := 0
	for _, a := range rc.arrivals() {
		if a.path == "/gone" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("/gone got %d, want only the one in flight", n)
	}
}
