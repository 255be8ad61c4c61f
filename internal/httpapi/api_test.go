package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/hostedauth"
	"github.com/orchard-mail/orchard/internal/httpapi"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/quota"
	"github.com/orchard-mail/orchard/internal/secret"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
	"github.com/orchard-mail/orchard/internal/store/storetest"
	"github.com/orchard-mail/orchard/internal/webui"
)

// fakeICloud stands in for Apple in fast edge-case tests; the real
// servers are exercised by the integration tests in cmd/orchard.
type fakeICloud struct {
	mu  sync.Mutex
	err error
}

func (f *fakeICloud) Verify(_ context.Context, email, password string) (provider.Credentials, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return provider.Credentials{}, f.err
	}
	if password == "panic" {
		panic("verifier exploded")
	}
	return provider.Credentials{IMAPUsername: email, IMAPPassword: password, SMTPUsername: email, SMTPPassword: password}, nil
}

func (f *fakeICloud) set(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }

type fakeIMAP struct{}

func (fakeIMAP) Verify(context.Context, provider.Credentials) error { return nil }

type harness struct {
	t      testing.TB
	url    string
	keyA   string
	keyB   string
	icloud *fakeICloud
	logs   *bytes.Buffer
	st     *sqlite.Store
	mbox   *fakeMailbox
	sender *fakeSender
	svc    *service.Service
	// skew moves the service's clock forward (nanoseconds), for expiry tests.
	skew atomic.Int64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	ctx := context.Background()
	st := storetest.SQLite(t, filepath.Join(t.TempDir(), "o.db"))
	box, _ := secret.New(bytes.Repeat([]byte{1}, 32))
	h := &harness{t: t, icloud: &fakeICloud{}, logs: &bytes.Buffer{}, st: st, mbox: &fakeMailbox{sections: map[string]string{}}, sender: &fakeSender{}}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: h.logs}, nil))
	svc := service.New(service.Deps{Store: st, Box: box, ICloud: h.icloud, IMAP: fakeIMAP{}, Mailbox: h.mbox, Sender: h.sender, Logger: log,
		SendLimits: map[string]quota.Limits{"icloud": {MessagesPerDay: 3, RecipientsPerMessage: 2, MaxMessageBytes: 64 << 10}},
		Now:        func() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) },
		IDTokenKey: []byte("id-token-key"), Issuer: "http://orchard.test"})
	h.svc = svc
	_, keyA, err := svc.CreateApplication(ctx, "A")
	h.keyA = keyA
	if err != nil {
		t.Fatal(err)
	}
	_, h.keyB, _ = svc.CreateApplication(ctx, "B")
	csrf := webui.NewCSRF([]byte("csrf-key"), false)
	pages := httpapi.Pages{
		HostedAuth: hostedauth.New(hostedauth.Options{Backend: svc, CSRF: csrf, Logger: log,
			PerAddress: webui.NewLimiter(5, time.Minute, nil), PerClient: webui.NewLimiter(50, time.Minute, nil)}),
		Static: webui.Static(),
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Logger: log, MaxBodyBytes: 4096, Pages: pages}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r reply) data() map[string]any { m, _ := r.body["data"].(map[string]any); return m }
func (r reply) list() []any          { l, _ := r.body["data"].([]any); return l }
func (r reply) errType() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}
func (r reply) errMsg() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// do sends a request with key (none if "") and checks the invariants every
// answer must keep: an X-Request-Id equal to the body's request_id, and a
// JSON object body.
func (h *harness) do(method, path, key, body string) reply {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, h.url+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		h.t.Fatalf("%s %s: body is not a JSON object (%v): %q", method, path, err, raw)
	}
	rid := resp.Header.Get("X-Request-Id")
	if rid == "" || r.body["request_id"] != rid {
		h.t.Fatalf("%s %s: X-Request-Id %q, body request_id %v", method, path, rid, r.body["request_id"])
	}
	if r.status >= 300 && (r.errType() == "" || r.errMsg() == "") {
		h.t.Fatalf("%s %s: error %d without error.type/message: %s", method, path, r.status, raw)
	}
	return r
}

func (h *harness) want(r reply, status int, errType string) {
	h.t.Helper()
	if r.status != status || (errType != "" && r.errType() != errType) {
		h.t.Fatalf("got %d %q, want %d %q: %s", r.status, r.errType(), status, errType, r.raw)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.want(h.do("GET", "/v3/connectors", "", ""), 401, "unauthorized")
	h.want(h.do("GET", "/v3/connectors", "ork_not-a-real-key-at-all-000000", ""), 401, "unauthorized")
	h.want(h.do("GET", "/v3/connectors", h.keyA[:len(h.keyA)-1]+"x", ""), 401, "unauthorized")
	h.want(h.do("GET", "/v3/connectors", h.keyA, ""), 200, "")
	// Health endpoints need no key.
	h.want(h.do("GET", "/healthz", "", ""), 200, "")
	h.want(h.do("GET", "/readyz", "", ""), 200, "")
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cases := []struct {
		name, body string
		status     int
		typ, msg   string
	}{
		{"malformed", `{"provider":`, 400, "api.invalid_request_payload", "invalid JSON"},
		{"array", `[{"provider":"icloud"}]`, 400, "api.invalid_request_payload", "must be a JSON object, not an array"},
		{"wrong type", `{"provider":"icloud","name":42}`, 400, "api.invalid_request_payload", "field name must be a string"},
		{"wrong type scope", `{"provider":"icloud","scope":"x"}`, 400, "api.invalid_request_payload", "field scope must be an array"},
		{"empty", ` `, 400, "api.invalid_request_payload", "empty"},
		{"two values", `{"provider":"icloud"} {}`, 400, "api.invalid_request_payload", "more than one"},
		{"unknown provider", `{"provider":"gmail"}`, 400, "invalid_request_error", `unknown provider "gmail"`},
		{"missing provider", `{"name":"x"}`, 400, "invalid_request_error", "provider is required"},
		{"too large", `{"name":"` + strings.Repeat("x", 5000) + `","provider":"icloud"}`, 413, "request_too_large", "limit of 4096 bytes"},
	}
	for _, c := range cases {
		r := h.do("POST", "/v3/connectors", h.keyA, c.body)
		if r.status != c.status || r.errType() != c.typ || !strings.Contains(r.errMsg(), c.msg) {
			t.Errorf("%s: got %d %q %q, want %d %q containing %q", c.name, r.status, r.errType(), r.errMsg(), c.status, c.typ, c.msg)
		}
	}
	// A chunked body (no Content-Length, as the Node SDK sends multipart)
	// over the limit is cut by MaxBytesReader instead.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"provider":"icloud","name":"`))
		pw.Write(bytes.Repeat([]byte("y"), 8000))
		pw.Write([]byte(`"}`))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.url+"/v3/connectors", pr)
	req.Header.Set("Authorization", "Bearer "+h.keyA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked oversized body: %d, want 413", resp.StatusCode)
	}

	h.want(h.do("GET", "/v3/nothing-here", h.keyA, ""), 404, "not_found_error")
	r := h.do("DELETE", "/v3/connectors", h.keyA, "")
	h.want(r, 405, "method_not_allowed")
	if allow := r.header.Values("Allow"); len(allow) != 2 {
		t.Errorf("Allow = %v, want GET and POST", allow)
	}
	h.want(h.do("GET", "/v3/grants?limit=abc", h.keyA, ""), 400, "invalid_request_error")
	h.want(h.do("GET", "/v3/grants?limit=1000", h.keyA, ""), 400, "invalid_request_error")
	h.want(h.do("GET", "/v3/grants?order_by=sideways", h.keyA, ""), 400, "invalid_request_error")
	h.want(h.do("GET", "/v3/grants?sort_by=password", h.keyA, ""), 400, "invalid_request_error")
	h.want(h.do("GET", "/v3/grants?since=yesterday", h.keyA, ""), 400, "invalid_request_error")
	h.want(h.do("GET", "/v3/applications/redirect-uris?page_token=garbage", h.keyA, ""), 400, "invalid_request_error")
}

func TestConnectors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.do("POST", "/v3/connectors", h.keyA, `{"provider":"icloud"}`)
	h.want(r, 201, "")
	if d := r.data(); d["provider"] != "icloud" || d["name"] != "iCloud" {
		t.Fatalf("created %v", d)
	}
	h.want(h.do("POST", "/v3/connectors", h.keyA, `{"provider":"icloud"}`), 409, "conflict_error")
	h.want(h.do("POST", "/v3/connectors", h.keyA, `{"provider":"imap","name":"Mail","settings":{"note":"x"},"scope":[]}`), 201, "")
	r = h.do("PUT", "/v3/connectors/imap", h.keyA, `{"name":"Corporate mail"}`)
	h.want(r, 200, "")
	if r.data()["name"] != "Corporate mail" {
		t.Fatalf("PUT did not rename: %v", r.data())
	}
	r = h.do("PATCH", "/v3/connectors/imap", h.keyA, `{"settings":{"k":"v"}}`)
	h.want(r, 200, "")
	if s, _ := r.data()["settings"].(map[string]any); s["k"] != "v" || r.data()["name"] != "Corporate mail" {
		t.Fatalf("PATCH result %v", r.data())
	}
	h.want(h.do("PATCH", "/v3/connectors/imap", h.keyA, `{"provider":"icloud"}`), 400, "invalid_request_error")
	r = h.do("GET", "/v3/connectors?limit=1", h.keyA, "")
	if len(r.list()) != 1 || r.body["limit"] != float64(1) || r.body["offset"] != float64(0) {
		t.Fatalf("limit=1: %s", r.raw)
	}
	r = h.do("GET", "/v3/connectors?limit=5&offset=1", h.keyA, "")
	if len(r.list()) != 1 {
		t.Fatalf("offset=1: %s", r.raw)
	}
	// Application B sees none of A's connectors.
	if r := h.do("GET", "/v3/connectors", h.keyB, ""); len(r.list()) != 0 {
		t.Fatalf("B sees A's connectors: %s", r.raw)
	}
	h.want(h.do("GET", "/v3/connectors/icloud", h.keyB, ""), 404, "not_found_error")
	h.want(h.do("DELETE", "/v3/connectors/icloud", h.keyB, ""), 404, "not_found_error")
	h.want(h.do("DELETE", "/v3/connectors/icloud", h.keyA, ""), 200, "")
	h.want(h.do("GET", "/v3/connectors/icloud", h.keyA, ""), 404, "not_found_error")
}

func TestCustomAuthAndGrants(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	body := `{"provider":"icloud","settings":{"username":"jane@icloud.com","password":"abcd-efgh-ijkl-mnop"}}`
	r := h.do("POST", "/v3/connect/custom", h.keyA, body)
	h.want(r, 400, "invalid_request_error")
	if !strings.Contains(r.errMsg(), "no icloud connector") || !strings.Contains(r.errMsg(), "POST /v3/connectors") {
		t.Fatalf("missing-connector message: %q", r.errMsg())
	}
	h.want(h.do("POST", "/v3/connectors", h.keyA, `{"provider":"icloud"}`), 201, "")
	h.want(h.do("POST", "/v3/connectors", h.keyA, `{"provider":"imap"}`), 201, "")

	r = h.do("POST", "/v3/connect/custom", h.keyA, body)
	h.want(r, 201, "")
	g := r.data()
	id, _ := g["id"].(string)
	if id == "" || g["provider"] != "icloud" || g["grant_status"] != "valid" || g["email"] != "jane@icloud.com" {
		t.Fatalf("grant %v", g)
	}
	if strings.Contains(r.raw, "abcd-efgh") {
		t.Fatalf("grant response echoes the password: %s", r.raw)
	}
	// Same account again: same grant id.
	r = h.do("POST", "/v3/connect/custom", h.keyA, strings.Replace(body, "jane@", "JANE@", 1))
	h.want(r, 201, "")
	if r.data()["id"] != id {
		t.Fatalf("re-auth made a new grant %v, want %s", r.data()["id"], id)
	}

	for _, c := range []struct{ body, msg string }{
		{`{"provider":"icloud","settings":{"username":"jane@icloud.com"}}`, "settings.password is required"},
		{`{"provider":"icloud","settings":{"username":"jane","password":"x"}}`, "iCloud email address"},
		{`{"provider":"icloud"}`, "settings is required"},
		{`{"provider":"icloud","settings":{"username":5,"password":"x"}}`, "settings.username must be a string"},
		{`{"provider":"imap","settings":{"imap_username":"u@x.test","imap_password":"p","imap_host":"h","imap_port":"abc","smtp_host":"h","smtp_port":587}}`, "settings.imap_port must be a port number"},
		{`{"provider":"imap","settings":{"imap_username":"u@x.test","imap_password":"p","imap_host":"h","imap_port":70000,"smtp_host":"h","smtp_port":587}}`, "settings.imap_port must be a port number"},
		{`{"provider":"imap","settings":{"imap_username":"u@x.test","imap_password":"p","imap_port":993,"smtp_host":"h","smtp_port":587}}`, "settings.imap_host is required"},
		{`{"provider":"imap","settings":{"imap_username":"u","imap_password":"p","imap_host":"h","imap_port":993,"smtp_host":"h","smtp_port":587}}`, "add settings.email"},
		{`{"provider":"exchange","settings":{}}`, `unknown provider "exchange"`},
	} {
		r := h.do("POST", "/v3/connect/custom", h.keyA, c.body)
		if r.status != 400 || !strings.Contains(r.errMsg(), c.msg) {
			t.Errorf("%s: %d %q, want 400 containing %q", c.body, r.status, r.errMsg(), c.msg)
		}
	}
	// An IMAP grant with a string port (the OpenAPI example's form).
	r = h.do("POST", "/v3/connect/custom", h.keyA, `{"provider":"imap","settings":{"imap_username":"bob@corp.test","imap_password":"pw-secret","imap_host":"imap.corp.test","imap_port":"993","smtp_host":"smtp.corp.test","smtp_port":587}}`)
	h.want(r, 201, "")
	if s, _ := r.data()["settings"].(map[string]any); s["imap_port"] != float64(993) || s["imap_host"] != "imap.corp.test" || s["imap_password"] != nil {
		t.Fatalf("imap grant settings %v", s)
	}

	// Another mailbox claiming the same address cannot take the grant over.
	r = h.do("POST", "/v3/connect/custom", h.keyA, `{"provider":"imap","settings":{"email":"bob@corp.test","imap_username":"mallory","imap_password":"pw","imap_host":"imap.evil.test","imap_port":993,"smtp_host":"smtp.evil.test","smtp_port":587}}`)
	h.want(r, 409, "conflict_error")
	if !strings.Contains(r.errMsg(), "another mailbox account") {
		t.Fatalf("takeover message: %q", r.errMsg())
	}
	r = h.do("POST", "/v3/connect/custom", h.keyA, `{"provider":"icloud","settings":{"username":"bob@corp.test","password":"x"}}`)
	h.want(r, 409, "conflict_error")

	// Provider failures map to their statuses and keep the password out.
	h.icloud.set(&provider.Error{Kind: provider.KindAuth, Service: "imap", Addr: "x:993", Text: "[AUTHENTICATIONFAILED] Authentication failed", Hint: "Use an app-specific password"})
	r = h.do("POST", "/v3/connect/custom", h.keyA, body)
	h.want(r, 401, "provider_error")
	if !strings.Contains(r.errMsg(), "app-specific password") || strings.Contains(r.raw, "abcd-efgh") {
		t.Fatalf("refused login answer: %s", r.raw)
	}
	h.icloud.set(&provider.Error{Kind: provider.KindUnavailable, Service: "imap", Addr: "x:993", Text: "[UNAVAILABLE] Service temporarily unavailable"})
	r = h.do("POST", "/v3/connect/custom", h.keyA, body)
	h.want(r, 503, "provider_error")
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	h.icloud.set(&provider.Error{Kind: provider.KindTimeout, Service: "imap", Addr: "x:993", Text: "no answer"})
	h.want(h.do("POST", "/v3/connect/custom", h.keyA, body), 504, "provider_error")
	h.icloud.set(&provider.Error{Kind: provider.KindTLS, Service: "imap", Addr: "x:993", Text: "certificate signed by unknown authority"})
	r = h.do("POST", "/v3/connect/custom", h.keyA, body)
	h.want(r, 400, "provider_error")
	if !strings.Contains(r.errMsg(), "ORCHARD_CA_FILE") {
		t.Errorf("TLS failure message does not say how to fix it: %q", r.errMsg())
	}
	h.icloud.set(nil)

	// A panic becomes a 500 envelope, not a dropped connection.
	r = h.do("POST", "/v3/connect/custom", h.keyA, `{"provider":"icloud","settings":{"username":"p@icloud.com","password":"panic"}}`)
	h.want(r, 500, "internal_error")
	if strings.Contains(r.raw, "exploded") || strings.Contains(r.raw, "goroutine") {
		t.Fatalf("500 leaks internals: %s", r.raw)
	}

	// Grants: list, find by id, by email (percent-encoded), filters.
	r = h.do("GET", "/v3/grants", h.keyA, "")
	if len(r.list()) != 2 || r.body["limit"] != float64(10) {
		t.Fatalf("list: %s", r.raw)
	}
	if r := h.do("GET", "/v3/grants?provider=imap", h.keyA, ""); len(r.list()) != 1 {
		t.Fatalf("provider filter: %s", r.raw)
	}
	if r := h.do("GET", "/v3/grants?email=JANE@icloud.com", h.keyA, ""); len(r.list()) != 1 {
		t.Fatalf("email filter: %s", r.raw)
	}
	if r := h.do("GET", "/v3/grants?limit=1&offset=1&order_by=asc", h.keyA, ""); len(r.list()) != 1 || r.body["offset"] != float64(1) {
		t.Fatalf("offset: %s", r.raw)
	}
	h.want(h.do("GET", "/v3/grants/"+id, h.keyA, ""), 200, "")
	if r := h.do("GET", "/v3/grants/jane%40icloud.com", h.keyA, ""); r.status != 200 || r.data()["id"] != id {
		t.Fatalf("by email: %s", r.raw)
	}
	if r := h.do("GET", "/v3/grants/grant:"+id, h.keyA, ""); r.data()["id"] != id {
		t.Fatalf("grant: prefix: %s", r.raw)
	}
	r = h.do("PATCH", "/v3/grants/"+id, h.keyA, `{"scope":["mail"]}`)
	if sc, _ := r.data()["scope"].([]any); len(sc) != 1 || sc[0] != "mail" {
		t.Fatalf("patch scope: %s", r.raw)
	}
	h.want(h.do("PATCH", "/v3/grants/"+id, h.keyA, `{"settings":{"username":"other@icloud.com","password":"x"}}`), 400, "invalid_request_error")

	// Another application's grant does not exist for B.
	h.want(h.do("GET", "/v3/grants/"+id, h.keyB, ""), 404, "not_found_error")
	h.want(h.do("GET", "/v3/grants/jane%40icloud.com", h.keyB, ""), 404, "not_found_error")
	h.want(h.do("PATCH", "/v3/grants/"+id, h.keyB, `{"scope":[]}`), 404, "not_found_error")
	h.want(h.do("DELETE", "/v3/grants/"+id, h.keyB, ""), 404, "not_found_error")
	if r := h.do("GET", "/v3/grants", h.keyB, ""); len(r.list()) != 0 {
		t.Fatalf("B lists A's grants: %s", r.raw)
	}

	h.want(h.do("DELETE", "/v3/grants/"+id, h.keyA, ""), 200, "")
	h.want(h.do("GET", "/v3/grants/"+id, h.keyA, ""), 404, "not_found_error")

	if strings.Contains(h.logs.String(), "abcd-efgh") || strings.Contains(h.logs.String(), "pw-secret") {
		t.Fatalf("a password reached the log:\n%s", h.logs.String())
	}
}

func TestApplicationAndRedirectURIs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.do("GET", "/v3/applications", h.keyA, "")
	h.want(r, 200, "")
	if d := r.data(); d["application_id"] == "" || d["branding"].(map[string]any)["name"] != "A" {
		t.Fatalf("application %s", r.raw)
	}
	r = h.do("PATCH", "/v3/applications", h.keyA, `{"branding":{"name":"Acme","website_url":"https://acme.test"}}`)
	if r.data()["branding"].(map[string]any)["name"] != "Acme" {
		t.Fatalf("patch: %s", r.raw)
	}
	h.want(h.do("PATCH", "/v3/applications", h.keyA, `{"branding":"Acme"}`), 400, "")

	var ids []string
	for _, u := range []string{"https://a.test/cb", "https://b.test/cb", "http://localhost:3000/cb", "https://c.test/cb", "https://d.test/cb"} {
		r := h.do("POST", "/v3/applications/redirect-uris", h.keyA, `{"url":"`+u+`","platform":"web"}`)
		h.want(r, 201, "")
		ids = append(ids, r.data()["id"].(string))
	}
	h.want(h.do("POST", "/v3/applications/redirect-uris", h.keyA, `{"url":"https://a.test/cb"}`), 409, "conflict_error")
	h.want(h.do("POST", "/v3/applications/redirect-uris", h.keyA, `{"url":"not a url"}`), 400, "invalid_request_error")
	h.want(h.do("POST", "/v3/applications/redirect-uris", h.keyA, `{"url":"https://x.test/#frag"}`), 400, "invalid_request_error")
	h.want(h.do("POST", "/v3/applications/redirect-uris", h.keyA, `{"url":"https://x.test/","platform":"mainframe"}`), 400, "invalid_request_error")

	// Cursor pagination: pages of 2, next_cursor only while more exist.
	var seen []string
	path := "/v3/applications/redirect-uris?limit=2"
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		r := h.do("GET", path, h.keyA, "")
		if len(r.list()) > 2 {
			t.Fatalf("page larger than limit: %s", r.raw)
		}
		for _, it := range r.list() {
			seen = append(seen, it.(map[string]any)["id"].(string))
		}
		next, _ := r.body["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/v3/applications/redirect-uris?limit=2&page_token=" + next
	}
	if strings.Join(seen, ",") != strings.Join(ids, ",") {
		t.Fatalf("paged ids %v, want %v", seen, ids)
	}

	r = h.do("PATCH", "/v3/applications/redirect-uris/"+ids[0], h.keyA, `{"url":"https://a.test/callback"}`)
	if r.data()["url"] != "https://a.test/callback" {
		t.Fatalf("update: %s", r.raw)
	}
	h.want(h.do("GET", "/v3/applications/redirect-uris/"+ids[0], h.keyB, ""), 404, "not_found_error")
	h.want(h.do("DELETE", "/v3/applications/redirect-uris/"+ids[0], h.keyB, ""), 404, "not_found_error")
	h.want(h.do("DELETE", "/v3/applications/redirect-uris/"+ids[0], h.keyA, ""), 200, "")
	if r := h.do("GET", "/v3/applications", h.keyA, ""); len(r.data()["callback_uris"].([]any)) != 4 {
		t.Fatalf("callback_uris after delete: %s", r.raw)
	}
	if r := h.do("GET", "/v3/applications/redirect-uris", h.keyB, ""); len(r.list()) != 0 {
		t.Fatalf("B sees A's URIs: %s", r.raw)
	}
	// PATCH /v3/applications with callback_uris replaces the set.
	r = h.do("PATCH", "/v3/applications", h.keyA, `{"callback_uris":[{"id":"`+ids[1]+`","url":"https://b.test/new"},{"url":"https://e.test/cb"}]}`)
	h.want(r, 200, "")
	cbs := r.data()["callback_uris"].([]any)
	if len(cbs) != 2 {
		t.Fatalf("callback_uris replace: %s", r.raw)
	}
}
