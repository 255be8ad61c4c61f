package webhook

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
	"github.com/orchard-mail/orchard/internal/store/storetest"
)

// rig is a real SQLite store with applications, grants and webhooks, a
// renderer that makes notifications out of change rows alone, and the
// dispatchers started on it.
type rig struct {
	t    *testing.T
	path string
	st   *sqlite.Store

	appID, grantID string

	mu      sync.Mutex
	appOf   map[string]string // grant id → application id
	bodies  map[string]string // message id → body
	failing map[int64]int     // change id → transient render errors left to return
	// rendered lists the object ids rendered, in order.
	rendered []string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "orchard.db")
	r := &rig{t: t, path: path, st: storetest.SQLite(t, path),
		appOf: map[string]string{}, bodies: map[string]string{}, failing: map[int64]int{}}
	r.appID, r.grantID = r.newApp("user@example.test")
	return r
}

func (r *rig) newApp(email string) (appID, grantID string) {
	r.t.Helper()
	ctx := context.Background()
	app := &store.Application{Name: email}
	if err := r.st.CreateApplication(ctx, app); err != nil {
		r.t.Fatal(err)
	}
	g := &store.Grant{ApplicationID: app.ID, Provider: "icloud", Email: email, Status: "valid", Credentials: []byte("x")}
	if err := r.st.CreateGrant(ctx, g); err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.appOf[g.ID] = app.ID
	r.mu.Unlock()
	return app.ID, g.ID
}

// hook creates a webhook of the rig's application delivering to rc.
func (r *rig) hook(rc *receiver, path string, triggers []string, mod ...func(*store.Webhook)) *store.Webhook {
	r.t.Helper()
	w := &store.Webhook{ApplicationID: r.appID, URL: rc.srv.URL + path, TriggerTypes: triggers, Secret: rc.secret}
	for _, m := range mod {
		m(w)
	}
	if err := r.st.CreateWebhook(context.Background(), w); err != nil {
		r.t.Fatal(err)
	}
	return w
}

// change writes change rows of the rig's grant in one batch and returns
// their ids.
func (r *rig) change(objectType, action string, ids ...string) []int64 {
	r.t.Helper()
	return r.changeOf(r.grantID, objectType, action, ids...)
}

func (r *rig) changeOf(grantID, objectType, action string, ids ...string) []int64 {
	r.t.Helper()
	ctx := context.Background()
	before, err := r.st.ListChanges(ctx, 0, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	b := &store.MailBatch{GrantID: grantID}
	for _, id := range ids {
		b.Changes = append(b.Changes, store.Change{GrantID: grantID, ObjectType: objectType, ObjectID: id, Action: action})
	}
	if err := r.st.ApplyMailBatch(ctx, b); err != nil {
		r.t.Fatal(err)
	}
	var last int64
	if len(before) > 0 {
		last = before[len(before)-1].ID
	}
	after, err := r.st.ListChanges(ctx, last, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []int64
	for _, c := range after {
		out = append(out, c.ID)
	}
	return out
}

func (r *rig) setBody(messageID, body string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies[messageID] = body
}

// failRender makes the rendering of change id fail n times with a
// transient error.
func (r *rig) failRender(id int64, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing[id] = n
}

// render: "<type>.<action>" for messages, folders, calendars and events;
// nothing for threads and message.deleted; a message object carries the
// body set with setBody. An object id starting with "gone" is
// store.ErrNotFound.
func (r *rig) render(_ context.Context, ch store.Change) (Notification, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rendered = append(r.rendered, ch.ObjectID)
	if n := r.failing[ch.ID]; n > 0 {
		r.failing[ch.ID] = n - 1
		return Notification{}, false, fmt.Errorf("database is locked (test)")
	}
	if strings.HasPrefix(ch.ObjectID, "gone") {
		return Notification{}, false, fmt.Errorf("message %s: %w", ch.ObjectID, store.ErrNotFound)
	}
	if ch.ObjectType == "thread" || (ch.ObjectType == "message" && ch.Action == "deleted") {
		return Notification{}, false, nil
	}
	obj := map[string]any{"object": ch.ObjectType, "id": ch.ObjectID, "grant_id": ch.GrantID}
	if ch.ObjectType == "message" {
		body, ok := r.bodies[ch.ObjectID]
		if !ok {
			body = "<p>Hello & welcome</p>"
		}
		obj["body"] = body
		obj["subject"] = "about " + ch.ObjectID
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return Notification{}, false, err
	}
	return Notification{ApplicationID: r.appOf[ch.GrantID], GrantID: ch.GrantID,
		Type: ch.ObjectType + "." + ch.Action, Source: SourceMail, Object: b.Bytes()}, true, nil
}

// options are fast defaults for tests.
func (r *rig) options() Options {
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	return Options{
		Store:          r.st,
		Renderer:       RenderFunc(r.render),
		OpenSecret:     func(w *store.Webhook) ([]byte, error) { return w.Secret, nil },
		Logger:         slog.New(slog.NewTextHandler(tWriter{r.t}, &slog.HandlerOptions{Level: level})),
		PollInterval:   10 * time.Millisecond,
		Lease:          5 * time.Second,
		AttemptTimeout: 2 * time.Second,
		Backoff:        func(int) time.Duration { return 30 * time.Millisecond },
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// start runs a dispatcher until the returned stop is called (or the test
// ends); stop waits for Run to return.
func (r *rig) start(o Options) (stop func()) {
	r.t.Helper()
	d, err := New(o)
	if err != nil {
		r.t.Fatal(err)
	}
	return r.run(d)
}

func (r *rig) run(d *Dispatcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					r.t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				r.t.Errorf("Run did not return after its context ended")
			}
		})
	}
	r.t.Cleanup(stop)
	return stop
}

func (r *rig) webhook(id string) *store.Webhook {
	r.t.Helper()
	w, err := r.st.GetWebhook(context.Background(), r.appID, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return w
}

func (r *rig) deliveries(w *store.Webhook) []store.Delivery {
	r.t.Helper()
	ds, err := r.st.RecentDeliveries(context.Background(), w.ApplicationID, w.ID, 1000)
	if err != nil {
		r.t.Fatal(err)
	}
	slices.Reverse(ds) // oldest first
	return ds
}

// --- receiver ---------------------------------------------------------------

// arrival is one request a receiver got.
type arrival struct {
	ctx    context.Context // the request's
	path   string
	header http.Header
	raw    []byte // the JSON body (decompressed)
	env    gotEnvelope
	status int // what the receiver answered
}

type gotEnvelope struct {
	SpecVersion string `json:"specversion"`
	Type        string `json:"type"`
	Source      string `json:"source"`
	ID          string `json:"id"`
	Time        int64  `json:"time"`
	Attempt     int    `json:"webhook_delivery_attempt"`
	Data        struct {
		ApplicationID string          `json:"application_id"`
		GrantID       string          `json:"grant_id"`
		Object        json.RawMessage `json:"object"`
	} `json:"data"`
}

func (e gotEnvelope) objectID() string {
	var o struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(e.Data.Object, &o)
	return o.ID
}

// receiver is a webhook endpoint that verifies every signature and
// envelope, answers with respond (200 by default), and records arrivals
// and concurrency per path and in all.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret []byte

	mu          sync.Mutex
	respond     func(a arrival) int
	got         []arrival
	inFlight    map[string]int
	maxPerPath  map[string]int
	total       int
	maxTotal    int
	badRequests int
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	secret := make([]byte, 20)
	_, _ = rand.Read(secret)
	rc := &receiver{t: t, secret: secret, inFlight: map[string]int{}, maxPerPath: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setRespond(f func(a arrival) int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.respond = f
}

func (rc *receiver) serve(w http.ResponseWriter, req *http.Request) {
	a, err := rc.check(req)
	if err != nil {
		rc.t.Errorf("receiver %s: %v", req.URL.Path, err)
		rc.mu.Lock()
		rc.badRequests++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	rc.inFlight[a.path]++
	rc.maxPerPath[a.path] = max(rc.maxPerPath[a.path], rc.inFlight[a.path])
	rc.total++
	rc.maxTotal = max(rc.maxTotal, rc.total)
	respond := rc.respond
	rc.mu.Unlock()

	a.status = http.StatusOK
	if respond != nil {
		a.status = respond(a)
	}

	answer := a.status
	if req.Context().Err() != nil {
		a.status = 0 // the sender gave up: it never saw an answer
	}
	rc.mu.Lock()
	rc.inFlight[a.path]--
	rc.total--
	a.ctx = nil
	rc.got = append(rc.got, a)
	rc.mu.Unlock()
	w.WriteHeader(answer)
}

func (rc *receiver) check(req *http.Request) (arrival, error) {
	a := arrival{ctx: req.Context(), path: req.URL.Path, header: req.Header.Clone()}
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		return a, err
	}
	if req.Method != http.MethodPost {
		return a, fmt.Errorf("method %s", req.Method)
	}
	if got, want := req.Header.Get(SignatureHeader), Sign(rc.secret, raw); got != want {
		return a, fmt.Errorf("signature %q, want %q", got, want)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		return a, fmt.Errorf("Content-Type %q", ct)
	}
	if ua := req.Header.Get("User-Agent"); ua != "Orchard" {
		return a, fmt.Errorf("User-Agent %q", ua)
	}
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return a, err
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return a, err
		}
	}
	a.raw = raw
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a.env); err != nil {
		return a, fmt.Errorf("envelope: %v: %.200s", err, raw)
	}
	e := a.env
	if e.SpecVersion != "1.0" || e.Type == "" || e.ID == "" || e.Time == 0 || e.Attempt < 1 ||
		e.Data.ApplicationID == "" || len(e.Data.Object) == 0 {
		return a, fmt.Errorf("incomplete envelope: %.300s", raw)
	}
	return a, nil
}

func (rc *receiver) arrivals() []arrival {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// byID groups the attempt numbers received by notification id.
func (rc *receiver) byID() map[string][]int {
	out := map[string][]int{}
	for _, a := range rc.arrivals() {
		out[a.env.ID] = append(out[a.env.ID], a.env.Attempt)
	}
	return out
}

// acked returns the object ids whose notification was answered 2xx.
func (rc *receiver) acked() map[string]bool {
	out := map[string]bool{}
	for _, a := range rc.arrivals() {
		if a.status >= 200 && a.status <= 299 {
			out[a.env.objectID()] = true
		}
	}
	return out
}

// --- helpers ------------------------------------------------------------------

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// goroutines returns a check that the number of goroutines is back to
// what it is now: the dispatcher left nothing running (and closed its
// idle connections, whose server side would linger otherwise).
func goroutines(t *testing.T) (check func()) {
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("%d goroutines, %d before the dispatcher ran:\n%s", runtime.NumGoroutine(), before, buf)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
