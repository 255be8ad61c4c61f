package dashboard

import (
	"bytes"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/webui"
)

const adminPassword = "correct horse battery staple"

// lockedBuffer collects log output from concurrent handlers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	t    *testing.T
	be   *fakeBackend
	srv  *httptest.Server
	logs *lockedBuffer
}

func newEnv(t *testing.T, tweak func(*Options)) *env {
	t.Helper()
	e := &env{t: t, be: newFake(), logs: &lockedBuffer{}}
	o := Options{
		Backend:       e.be,
		CSRF:          webui.NewCSRF([]byte("csrf key"), false),
		Signer:        webui.NewSigner([]byte("signer key"), nil),
		SignInLimiter: webui.NewLimiter(5, time.Minute, nil),
		AdminPassword: adminPassword,
		PublicURL:     "http://orchard.test:8080/",
		Logger:        slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&o)
	}
	h := New(o)
	mux := http.NewServeMux()
	mux.Handle("/dashboard", h)
	mux.Handle("/dashboard/", h)
	mux.Handle(webui.StaticPrefix, webui.Static())
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// browser follows redirects and keeps cookies, and remembers the CSRF
// token of the last page it saw, as a form on that page would send it.
type browser struct {
	t      *testing.T
	e      *env
	c      *http.Client
	csrf   string
	follow bool
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	b := &browser{t: e.t, e: e, follow: true}
	b.c = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		if !b.follow {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

type page struct {
	status int
	body   string
	url    string
	header http.Header
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return page{status: resp.StatusCode, body: string(body), url: resp.Request.URL.Path, header: resp.Header}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form with the current CSRF token unless the form sets
// csrf_token itself.
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form[webui.CSRFField]; !ok {
		form.Set(webui.CSRFField, b.csrf)
	}
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) signIn(field, secret string) page {
	b.t.Helper()
	return b.submit(b.get("/dashboard/login"), "Sign in", url.Values{field: {secret}})
}

var (
	formRE   = regexp.MustCompile(`(?s)<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// submit presses the button named name (its text or aria-label) on page
// p, as a browser would: it posts the button's form to the form's action
// with the form's hidden fields and the given typed ones.
func (b *browser) submit(p page, name string, typed url.Values) page {
	b.t.Helper()
	for _, m := range formRE.FindAllStringSubmatch(p.body, -1) {
		if !strings.Contains(m[2], ">"+html.EscapeString(name)+"</button>") && !strings.Contains(m[2], `aria-label="`+html.EscapeString(name)+`"`) {
			continue
		}
		form := url.Values{}
		for _, h := range hiddenRE.FindAllStringSubmatch(m[2], -1) {
			form.Set(h[1], html.UnescapeString(h[2]))
		}
		for k, v := range typed {
			form[k] = v
		}
		return b.post(html.UnescapeString(m[1]), form)
	}
	b.t.Fatalf("page %s has no button %q:\n%s", p.url, name, p.body)
	return page{}
}

func (b *browser) admin() *browser {
	b.t.Helper()
	if p := b.signIn("password", adminPassword); p.status != 200 || p.url != "/dashboard" {
		b.t.Fatalf("admin sign-in: %d at %s", p.status, p.url)
	}
	return b
}

func want(t *testing.T, p page, status int, texts ...string) {
	t.Helper()
	if p.status != status {
		t.Errorf("status %d at %s, want %d; body:\n%s", p.status, p.url, status, p.body)
	}
	for _, s := range texts {
		if !strings.Contains(p.body, s) {
			t.Errorf("page %s lacks %q; body:\n%s", p.url, s, p.body)
		}
	}
}

func wantNot(t *testing.T, p page, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(p.body, s) {
			t.Errorf("page %s shows %q", p.url, s)
		}
	}
}

func TestSignInWithAdminPassword(t *testing.T) {
	e := newEnv(t, nil)
	e.be.addApp("Shop")
	b := e.browser()

	p := b.get("/dashboard/login")
	want(t, p, 200, `<label for="password">Admin password</label>`, `<label for="api_key">API key</label>`, ">Sign in</button>", "<title>Sign in — Orchard</title>")
	if p.header.Get("Content-Security-Policy") == "" || p.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers missing: %v", p.header)
	}

	p = b.submit(p, "Sign in", url.Values{"password": {"guess-123"}})
	want(t, p, 401, "Wrong password or API key")
	wantNot(t, p, "guess-123")

	b.follow = false
	p = b.submit(p, "Sign in", url.Values{"password": {adminPassword}})
	if p.status != 303 || p.header.Get("Location") != "/dashboard" {
		t.Fatalf("sign-in answered %d to %q", p.status, p.header.Get("Location"))
	}
	var sess *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == "orchard_dashboard" {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.MaxAge != 12*3600 || sess.Path != "/dashboard" || sess.Secure {
		t.Fatalf("session cookie = %+v", sess)
	}
	if strings.Contains(sess.Value, adminPassword) {
		t.Fatal("the session cookie holds the password")
	}
	b.follow = true

	p = b.get("/dashboard")
	want(t, p, 200, "<h1>Applications</h1>", "Shop", ">Create application</button>")

	p = b.submit(p, "Sign out", nil)
	want(t, p, 200, "You are signed out.", "Admin password")
	if p.url != "/dashboard/login" {
		t.Errorf("after sign-out at %s", p.url)
	}
	if p = b.get("/dashboard/apps"); p.url != "/dashboard/login" {
		t.Errorf("after sign-out /dashboard/apps is reachable (at %s)", p.url)
	}
}

func TestSecureCookies(t *testing.T) {
	// The cookie jar would not send Secure cookies over http, so the
	// sign-in is done by hand.
	rec := httptest.NewRecorder()
	h := New(Options{Backend: newFake(), CSRF: webui.NewCSRF([]byte("k"), true), Signer: webui.NewSigner([]byte("s"), nil),
		AdminPassword: adminPassword, SecureCookies: true})
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/dashboard/login", nil))
	csrfCookie := rec.Result().Cookies()[0]
	token := csrfRE.FindStringSubmatch(rec.Body.String())[1]
	form := url.Values{"password": {adminPassword}, webui.CSRFField: {token}}
	req := httptest.NewRequest("POST", "/dashboard/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(csrfCookie)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	cs := rec.Result().Cookies()
	if rec.Code != 303 || len(cs) != 1 || cs[0].Name != "orchard_dashboard" || !cs[0].Secure {
		t.Fatalf("sign-in: %d, cookies %+v", rec.Code, cs)
	}
}

func TestSignInWithAPIKeyIsScopedToItsApplication(t *testing.T) {
	e := newEnv(t, nil)
	mine, key := e.be.addApp("Mine")
	other, _ := e.be.addApp("Other")
	b := e.browser()

	p := b.signIn("api_key", "ork_not-a-real-key-at-all-000000")
	want(t, p, 401, "Wrong password or API key")
	wantNot(t, p, "ork_not-a-real-key")

	p = b.signIn("api_key", key)
	want(t, p, 200, "<h1>Mine</h1>", "Signed in with an API key", `aria-current="page">Overview</a>`)
	wantNot(t, p, "Other")

	for _, path := range []string{
		"/dashboard/apps/" + other, "/dashboard/apps/" + other + "/keys", "/dashboard/apps/" + other + "/connectors",
		"/dashboard/apps/" + other + "/grants", "/dashboard/apps/" + other + "/webhooks", "/dashboard/apps",
		"/dashboard/apps/no-such-app",
	} {
		p = b.get(path)
		want(t, p, 404, "Not found")
		wantNot(t, p, "Other")
	}
	p = b.post("/dashboard/apps/"+other+"/connectors", url.Values{"provider": {"icloud"}})
	want(t, p, 404)
	p = b.post("/dashboard/apps", url.Values{"name": {"Sneaky"}})
	want(t, p, 404)
	if len(e.be.connectorInputs) != 0 || len(e.be.apps) != 2 {
		t.Fatalf("an API-key operator changed another application: %v, %d apps", e.be.connectorInputs, len(e.be.apps))
	}
	want(t, b.get("/dashboard/apps/"+mine+"/connectors"), 200, "Connectors — Mine")

	// Revoking the key ends the session opened with it.
	keys, _ := e.be.APIKeys(t.Context(), mine)
	p = b.post("/dashboard/apps/"+mine+"/keys/"+keys[0].ID+"/revoke", nil)
	if p.url != "/dashboard/login" {
		t.Fatalf("after revoking its own key the operator is at %s (%d)", p.url, p.status)
	}
	if p = b.get("/dashboard/apps/" + mine); p.url != "/dashboard/login" {
		t.Fatalf("a revoked key's session still works (at %s)", p.url)
	}
}

func TestSignInWithoutAdminPassword(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AdminPassword = "" })
	b := e.browser()
	p := b.get("/dashboard/login")
	want(t, p, 200, "API key")
	wantNot(t, p, "Admin password")
	want(t, b.post("/dashboard/login", url.Values{"password": {""}}), 400, "Enter the admin password or an API key.")
	want(t, b.post("/dashboard/login", url.Values{"password": {"anything"}}), 401, "Wrong password or API key")
}

func TestSignInAttemptsAreLimited(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SignInLimiter = webui.NewLimiter(3, time.Hour, nil) })
	b := e.browser()
	for range 2 {
		want(t, b.signIn("password", "wrong"), 401)
	}
	// A success clears the count...
	want(t, b.signIn("password", adminPassword), 200, "Applications")
	b.post("/dashboard/logout", nil)
	for i := range 3 {
		if p := b.signIn("password", "wrong"); p.status != 401 {
			t.Fatalf("attempt %d after a success: %d", i+1, p.status)
		}
	}
	// ...and past the limit even the right password is refused.
	p := b.signIn("password", adminPassword)
	want(t, p, 429, "Too many sign-in attempts", "Try again in 60 minutes")
	if p.header.Get("Retry-After") == "" {
		t.Error("no Retry-After header")
	}
	if p := b.get("/dashboard"); p.url != "/dashboard/login" {
		t.Errorf("signed in despite the limit (at %s)", p.url)
	}
}

func TestPagesNeedASession(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp("Shop")
	b := e.browser()
	b.follow = false
	b.get("/dashboard/login") // a CSRF token, so that only the session is missing
	for _, path := range []string{"/dashboard", "/dashboard/", "/dashboard/apps", "/dashboard/apps/" + app,
		"/dashboard/apps/" + app + "/grants", "/dashboard/apps/" + app + "/webhooks/wh1"} {
		p := b.get(path)
		if p.status != 303 || p.header.Get("Location") != "/dashboard/login" {
			t.Errorf("GET %s without a session: %d to %q", path, p.status, p.header.Get("Location"))
		}
	}
	p := b.post("/dashboard/apps/"+app+"/connectors", url.Values{"provider": {"icloud"}})
	if p.status != 303 || p.header.Get("Location") != "/dashboard/login" || len(e.be.connectorInputs) != 0 {
		t.Errorf("POST without a session: %d to %q, %d connectors created", p.status, p.header.Get("Location"), len(e.be.connectorInputs))
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser().admin()
	b.get("/dashboard/apps")
	for name, token := range map[string][]string{"missing": {""}, "wrong": {"forged-token"}} {
		p := b.post("/dashboard/apps", url.Values{"name": {"Evil " + name}, webui.CSRFField: token})
		want(t, p, 403, "This form has expired", "Reload the page and try again")
	}
	if len(e.be.apps) != 0 {
		t.Fatalf("an application was created without a valid token: %+v", e.be.apps)
	}
	// The sign-in form is protected too.
	b2 := e.browser()
	p := b2.post("/dashboard/login", url.Values{"password": {adminPassword}, webui.CSRFField: {""}})
	want(t, p, 403, "Form expired")
	if p := b2.get("/dashboard"); p.url != "/dashboard/login" {
		t.Fatal("signed in without a CSRF token")
	}
}

func TestCreateApplicationShowsItsKeyOnce(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser().admin()
	p := b.submit(b.get("/dashboard/apps"), "Create application", url.Values{"name": {"  "}})
	want(t, p, 400, "Give the application a name.")

	p = b.submit(p, "Create application", url.Values{"name": {"Billing"}})
	if len(e.be.apps) != 1 {
		t.Fatalf("%d applications", len(e.be.apps))
	}
	app := e.be.apps[0]
	keys, _ := e.be.APIKeys(t.Context(), app.ID)
	var clearKey string
	for k, id := range e.be.clearKeys {
		if id == keys[0].ID {
			clearKey = k
		}
	}
	want(t, p, 200, `<code class="secret">`+app.ID+`</code>`, `<code class="secret">`+clearKey+`</code>`, "it is not shown again")

	p = b.get("/dashboard/apps")
	want(t, p, 200, "Billing", app.ID)
	wantNot(t, p, clearKey, `class="secret"`)
	if strings.Contains(e.logs.String(), clearKey) {
		t.Fatal("the API key is in the log")
	}
}

func TestAPIKeys(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp("Shop")
	b := e.browser().admin()
	path := "/dashboard/apps/" + app + "/keys"
	p := b.get(path)
	want(t, p, 200, "<title>API keys — Shop — Orchard</title>", `aria-current="page">API keys</a>`, `<label for="key_name">Name</label>`, ">Create API key</button>")

	p = b.submit(p, "Create API key", url.Values{"name": {"backend"}})
	keys, _ := e.be.APIKeys(t.Context(), app)
	if len(keys) != 2 {
		t.Fatalf("%d keys", len(keys))
	}
	var clearKey string
	for k, id := range e.be.clearKeys {
		if id == keys[1].ID {
			clearKey = k
		}
	}
	want(t, p, 200, `<code class="secret">`+clearKey+`</code>`, "backend")
	p = b.get(path)
	wantNot(t, p, clearKey)

	p = b.submit(p, "Revoke API key backend ("+keys[1].ID+")", nil)
	want(t, p, 200, "The API key is revoked.", "revoked 20")
	if p.url != path {
		t.Errorf("after revoking at %s", p.url)
	}
	keys, _ = e.be.APIKeys(t.Context(), app)
	if keys[1].RevokedAt == nil || keys[0].RevokedAt != nil {
		t.Fatal("the wrong key was revoked")
	}
	want(t, b.post(path+"/no-such-key/revoke", nil), 404, "API key not found")
}

func TestAddICloudConnectorInOneClick(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp("Shop")
	b := e.browser().admin()
	path := "/dashboard/apps/" + app + "/connectors"
	p := b.get(path)
	want(t, p, 200, "<title>Connectors — Shop — Orchard</title>", "<h1>Connectors — Shop</h1>", ">Add iCloud connector</button>", ">Add IMAP connector</button>")

	// The button's form carries only the provider (and the token).
	form := regexp.MustCompile(`(?s)<form method="post" action="[^"]+/connectors">(.*?)</form>`).FindStringSubmatch(p.body)
	if form == nil || strings.Count(form[1], "<input") != 2 || !strings.Contains(form[1], `name="provider" value="icloud"`) {
		t.Fatalf("the iCloud form is not one click: %q", form)
	}

	p = b.submit(p, "Add iCloud connector", nil)
	want(t, p, 200, "The iCloud connector is added", "<td>iCloud</td>", ">Add IMAP connector</button>")
	wantNot(t, p, ">Add iCloud connector</button>")
	if len(e.be.connectorInputs) != 1 || e.be.connectorInputs[0].Provider != "icloud" || e.be.connectorInputs[0].Name != nil || e.be.connectorInputs[0].Settings != nil {
		t.Fatalf("CreateConnector got %+v", e.be.connectorInputs)
	}

	// Added twice (another tab), the backend's conflict message shows.
	p = b.post(path, url.Values{"provider": {"icloud"}})
	want(t, p, 409, "a icloud connector already exists")
	want(t, b.post(path, url.Values{"provider": {"exchange"}}), 400, "Choose a provider")

	p = b.submit(b.get(path), "Delete iCloud connector", nil)
	want(t, p, 200, "The connector is deleted", ">Add iCloud connector</button>")
}

func TestRedirectURIs(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp("Shop")
	b := e.browser().admin()
	path := "/dashboard/apps/" + app + "/redirect-uris"
	p := b.get(path)
	want(t, p, 200, `<label for="uri_url">URL</label>`, `<label for="uri_platform">Platform</label>`, `<option value="web" selected>`, ">Add redirect URI</button>")

	// A backend refusal keeps what was typed.
	p = b.submit(p, "Add redirect URI", url.Values{"url": {"not a url"}, "platform": {"ios"}})
	want(t, p, 400, "url must be an absolute URL", `value="not a url"`, `<option value="ios" selected>`)

	p = b.submit(p, "Add redirect URI", url.Values{"url": {"https://app.example.com/cb"}, "platform": {"desktop"}})
	want(t, p, 200, "The redirect URI is added.", "https://app.example.com/cb", "<td>desktop</td>")
	uris, _ := e.be.RedirectURIs(t.Context(), app)
	if len(uris) != 1 || uris[0].Platform != "desktop" {
		t.Fatalf("uris = %+v", uris)
	}
	p = b.submit(p, "Delete redirect URI https://app.example.com/cb", nil)
	want(t, p, 200, "The redirect URI is deleted.")
	wantNot(t, p, "https://app.example.com/cb")
	if uris, _ := e.be.RedirectURIs(t.Context(), app); len(uris) != 0 {
		t.Fatal("not deleted")
	}
}

func TestGrants(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp("Shop")
	e.be.addGrant(app, store.Grant{ID: "g1", Provider: "icloud", Email: "ann+test@icloud.com", Status: "valid",
		CreatedAt: time.Unix(1_700_000_000, 0), UpdatedAt: time.Unix(1_700_003_600, 0)})
	e.be.addGrant(app, store.Grant{ID: "g2", Provider: "imap", Email: "bob@example.org", Status: "invalid",
		CreatedAt: time.Unix(1_700_000_000, 0), UpdatedAt: time.Unix(1_700_000_000, 0)})
	e.be.syncs["g1"] = &api.SyncStatus{GrantID: "g1", State: "retrying", InitialSyncDone: false, Messages: 1234,
		LastError: "imap: login failed", LastErrorAt: 1_700_007_200, Retries: 3,
		Folders: []api.FolderSync{{ID: "f1", Name: "INBOX", InitialSyncDone: true, Messages: 1000, LastSyncAt: 1_700_007_000},
			{ID: "f2", Name: "Archive", Messages: 234}}}
	b := e.browser().admin()

	p := b.get("/dashboard/apps/" + app + "/grants")
	want(t, p, 200, "<title>Grants — Shop — Orchard</title>",
		`<a href="/dashboard/apps/`+app+`/grants/g1">ann&#43;test@icloud.com</a>`, `<span class="badge valid">valid</span>`,
		`<span class="badge invalid">invalid</span>`, "2023-11-14 22:13:20 UTC", "2023-11-14 23:13:20 UTC")

	// Without a redirect URI there is no link, but a way to add one.
	p = b.get("/dashboard/apps/" + app + "/grants/g1")
	want(t, p, 200, "Re-authentication needs a redirect URI", `href="/dashboard/apps/`+app+`/redirect-uris"`)
	wantNot(t, p, ">Re-authenticate</a>")

	e.be.addURI(app, "https://app.example.com/callback?x=1")
	e.be.addURI(app, "https://second.example.com/cb")
	p = b.get("/dashboard/apps/" + app + "/grants/g1")
	want(t, p, 200, "<h1>Grant ann&#43;test@icloud.com — Shop</h1>",
		`<span class="badge failing">retrying</span>`, "<td>1234</td>", "imap: login failed", "2023-11-15 00:13:20 UTC",
		"<td>INBOX</td><td>done</td><td>1000</td>", "<td>Archive</td><td>in progress</td><td>234</td>", ">Delete grant</button>")
	m := regexp.MustCompile(`<a class="button secondary" href="([^"]+)">Re-authenticate</a>`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no re-authenticate link:\n%s", p.body)
	}
	wantURL := "http://orchard.test:8080/v3/connect/auth?client_id=" + app +
		"&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback%3Fx%3D1&response_type=code&provider=icloud&login_hint=ann%2Btest%40icloud.com"
	if got := html.UnescapeString(m[1]); got != wantURL {
		t.Fatalf("re-authenticate link\n got %s\nwant %s", got, wantURL)
	}

	want(t, b.get("/dashboard/apps/"+app+"/grants/nope"), 404, "grant grant:nope not found")
}

func TestGrantsArePaged(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp("Shop")
	for i := range grantsPerPage + 3 {
		e.be.addGrant(app, store.Grant{ID: "g" + string(rune('a'+i/26)) + string(rune('a'+i%26)), Provider: "imap", Email: "u" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + "@example.org", Status: "valid"})
	}
	b := e.browser().admin()
	p := b.get("/dashboard/apps/" + app + "/grants")
	want(t, p, 200, "uaa@example.org", "?page=2\">Next page</a>")
	wantNot(t, p, "uby@example.org", "Previous page")
	p = b.get("/dashboard/apps/" + app + "/grants?page=2")
	want(t, p, 200, "uby@example.org", "Previous page")
	wantNot(t, p, "uaa@example.org", "Next page")
}

func TestDeleteGrantNeedsConfirmation(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp("Shop")
	e.be.addGrant(app, store.Grant{ID: "g1", Provider: "icloud", Email: "ann@icloud.com", Status: "valid"})
	b := e.browser().admin()
	p := b.submit(b.get("/dashboard/apps/"+app+"/grants/g1"), "Delete grant", nil)
	want(t, p, 400, "Tick “I understand” to delete the grant.")
	if len(e.be.grants[app]) != 1 {
		t.Fatal("deleted without confirmation")
	}
	p = b.submit(p, "Delete grant", url.Values{"confirm": {"yes"}})
	want(t, p, 200, "The grant is deleted.")
	wantNot(t, p, "ann@icloud.com")
	if p.url != "/dashboard/apps/"+app+"/grants" || len(e.be.grants[app]) != 0 {
		t.Fatalf("after delete at %s, %d grants", p.url, len(e.be.grants[app]))
	}
}

func TestWebhooks(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp("Shop")
	b := e.browser().admin()
	path := "/dashboard/apps/" + app + "/webhooks"
	p := b.get(path)
	want(t, p, 200, `<label for="wh_url">Webhook URL</label>`, `<label for="wh_description">Description</label>`,
		`value="grant.expired"`, `value="event.deleted"`, `value="message.created.truncated"`, ">Create webhook</button>")

	// The challenge fails: the backend's message shows, and the form keeps
	// what was typed.
	e.be.challengeFails = true
	form := url.Values{"webhook_url": {"https://hooks.example.com/in"}, "description": {"CRM sync"},
		"trigger_types": {"message.created", "grant.expired"}}
	p = b.submit(p, "Create webhook", form)
	want(t, p, 400, "webhook challenge failed: https://hooks.example.com/in answered 404",
		`value="https://hooks.example.com/in"`, `value="CRM sync"`, `value="message.created" checked`, `value="grant.expired" checked`)
	wantNot(t, p, `value="grant.created" checked`)

	want(t, b.submit(p, "Create webhook", url.Values{"webhook_url": {"https://x.example"}}), 400, "Choose at least one trigger.")

	e.be.challengeFails = false
	p = b.submit(p, "Create webhook", form)
	hooks, _ := e.be.Webhooks(t.Context(), app)
	if len(hooks) != 1 {
		t.Fatalf("%d webhooks", len(hooks))
	}
	secret := "whsec-" + hooks[0].ID + "-topsecret"
	want(t, p, 200, `<code class="secret">`+secret+`</code>`, "not shown again", `<span class="badge active">active</span>`, "message.created, grant.expired")
	in := e.be.webhookInputs[len(e.be.webhookInputs)-1]
	if *in.WebhookURL != "https://hooks.example.com/in" || *in.Description != "CRM sync" || len(*in.TriggerTypes) != 2 {
		t.Fatalf("CreateWebhook got %+v", in)
	}
	wantNot(t, b.get(path), secret)

	// Pause from the list, activate from the webhook's page.
	p = b.submit(b.get(path), "Pause", nil)
	want(t, p, 200, "The webhook is paused", `<span class="badge paused">paused</span>`, ">Activate</button>")
	if p.url != path || e.be.hookStatus(app, hooks[0].ID) != "pause" {
		t.Fatalf("after pause at %s, status %s", p.url, e.be.hookStatus(app, hooks[0].ID))
	}
	p = b.submit(b.get(path+"/"+hooks[0].ID), "Activate", nil)
	want(t, p, 200, "The webhook is active.", ">Pause</button>", "<h1>Webhook — Shop</h1>")
	if p.url != path+"/"+hooks[0].ID || e.be.hookStatus(app, hooks[0].ID) != "active" {
		t.Fatalf("after activate at %s, status %s", p.url, e.be.hookStatus(app, hooks[0].ID))
	}
	want(t, b.post(path+"/"+hooks[0].ID+"/status", url.Values{"status": {"failed"}}), 400)
	if e.be.hookStatus(app, hooks[0].ID) != "active" {
		t.Fatal("status changed to a value operators cannot set")
	}

	if logs := e.logs.String(); strings.Contains(logs, secret) {
		t.Fatalf("the webhook secret is in the log:\n%s", logs)
	}
}

func TestWebhookPageShowsDeliveries(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp("Shop")
	e.be.addWebhook(app, store.Webhook{ID: "wh1", URL: "https://hooks.example.com/in", TriggerTypes: []string{"message.created"}, Status: "failing"})
	at := time.Unix(1_700_000_000, 0)
	e.be.deliveries["wh1"] = []store.Delivery{
		{ID: "d2", WebhookID: "wh1", Type: "message.created", State: "failed", CreatedAt: at, AttemptLog: []store.DeliveryAttempt{
			{N: 1, At: at, Status: 500, Latency: 123 * time.Millisecond},
			{N: 2, At: at.Add(time.Minute), Status: 0, Latency: 10 * time.Second, Error: "context deadline exceeded"},
		}},
		{ID: "d1", WebhookID: "wh1", Type: "grant.created", State: "delivered", CreatedAt: at, AttemptLog: []store.DeliveryAttempt{
			{N: 1, At: at, Status: 200, Latency: 42 * time.Millisecond},
		}},
		{ID: "d0", WebhookID: "wh1", Type: "grant.updated", State: "pending", CreatedAt: at, AttemptLog: []store.DeliveryAttempt{}},
	}
	b := e.browser().admin()
	p := b.get("/dashboard/apps/" + app + "/webhooks/wh1")
	want(t, p, 200, "<title>Webhook https://hooks.example.com/in — Shop — Orchard</title>",
		`<span class="badge failing">failing</span>`, ">Pause</button>",
		`<span class="badge failed">failed</span>`, "500 Internal Server Error</span>, 123 ms",
		"no response</span>, 10000 ms, <span class=\"mono\">context deadline exceeded</span>",
		`<span class="badge delivered">delivered</span>`, "200 OK</span>, 42 ms", "not attempted yet",
		`<label for="test_trigger">Trigger type</label>`, ">Send test event</button>")
}

func TestSendTestEvent(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp("Shop")
	e.be.addWebhook(app, store.Webhook{ID: "wh1", URL: "https://hooks.example.com/in", TriggerTypes: []string{"grant.created"}, Status: "active"})
	b := e.browser().admin()
	path := "/dashboard/apps/" + app + "/webhooks/wh1"
	p := b.get(path)
	want(t, p, 200, `<option value="grant.created" selected>`)

	p = b.submit(p, "Send test event", url.Values{"trigger_type": {"message.created"}})
	want(t, p, 200, "The test event was delivered.")
	if len(e.be.tests) != 1 || e.be.tests[0] != "message.created https://hooks.example.com/in" {
		t.Fatalf("SendTestEvent calls: %q", e.be.tests)
	}

	e.be.testErr = svcErr(service.CodeInvalid, "the test event could not be delivered to https://hooks.example.com/in: 502 Bad Gateway")
	p = b.submit(p, "Send test event", url.Values{"trigger_type": {"event.updated"}})
	want(t, p, 400, "the test event could not be delivered to https://hooks.example.com/in: 502 Bad Gateway", `<option value="event.updated" selected>`)
	wantNot(t, p, "The test event was delivered.")

	want(t, b.post(path+"/test", url.Values{"trigger_type": {"nonsense"}}), 400, "Choose a trigger type")
	if len(e.be.tests) != 2 {
		t.Fatalf("%d test events sent, want 2", len(e.be.tests))
	}
}

func TestInternalErrorsAreNotShown(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser().admin()
	e.be.listErr = errors.New("pq: connection refused to 10.0.0.5")
	p := b.get("/dashboard/apps")
	want(t, p, 500, "internal error")
	wantNot(t, p, "10.0.0.5")
	if !strings.Contains(e.logs.String(), "10.0.0.5") {
		t.Fatal("the internal error was not logged")
	}
}

func TestHostileNamesAreEscaped(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp(`<script>alert(1)</script>`)
	e.be.addGrant(app, store.Grant{ID: "g1", Provider: "imap", Email: `"><img src=x onerror=alert(2)>@x.org`, Status: "valid"})
	b := e.browser().admin()
	for _, path := range []string{"/dashboard/apps", "/dashboard/apps/" + app + "/grants", "/dashboard/apps/" + app + "/grants/g1"} {
		p := b.get(path)
		want(t, p, 200)
		wantNot(t, p, "<script>", "<img")
	}
	want(t, b.get("/dashboard/apps"), 200, "&lt;script&gt;alert(1)&lt;/script&gt;")
	want(t, b.get("/dashboard/apps/"+app+"/grants"), 200, "<title>Grants — &lt;script&gt;alert(1)&lt;/script&gt; — Orchard</title>")
}

func TestFlashComesOnlyFromFixedTexts(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser().admin()
	u, _ := url.Parse(e.srv.URL + "/dashboard")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: flashCookie, Value: "PHA-Pwned.sig", Path: "/dashboard"}})
	p := b.get("/dashboard/apps?flash=Pwned&message=Pwned")
	want(t, p, 200)
	wantNot(t, p, "Pwned", `class="alert ok"`)
}

func TestLargeFormsAreRefused(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser().admin()
	b.get("/dashboard/apps")
	p := b.post("/dashboard/apps", url.Values{"name": {strings.Repeat("a", 70<<10)}})
	want(t, p, 413, "Form too large")
	if len(e.be.apps) != 0 {
		t.Fatal("an application was created from an oversized form")
	}
}

func TestNoSecretsInLogs(t *testing.T) {
	e := newEnv(t, nil)
	app, key := e.be.addApp("Shop")
	b := e.browser()
	b.signIn("password", "wrong-password-xyz")
	b.signIn("api_key", key+"tampered")
	b.signIn("api_key", key)
	b.post("/dashboard/logout", nil)
	b.admin()
	p := b.post("/dashboard/apps/"+app+"/keys", url.Values{"name": {"ci"}})
	newKey := regexp.MustCompile(`<code class="secret">(ork_[^<]+)</code>`).FindStringSubmatch(p.body)
	if newKey == nil {
		t.Fatal("no key shown")
	}
	p = b.post("/dashboard/apps/"+app+"/webhooks", url.Values{"webhook_url": {"https://h.example/x"}, "trigger_types": {"grant.created"}})
	secret := regexp.MustCompile(`<code class="secret">(whsec-[^<]+)</code>`).FindStringSubmatch(p.body)
	if secret == nil {
		t.Fatal("no webhook secret shown")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "signed in") || !strings.Contains(logs, "sign-in refused") {
		t.Fatalf("sign-ins were not logged:\n%s", logs)
	}
	for _, s := range []string{adminPassword, "wrong-password-xyz", key, newKey[1], secret[1]} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds a secret %q:\n%s", s, logs)
		}
	}
}

func TestStylesheetAndStructure(t *testing.T) {
	e := newEnv(t, nil)
	app, _ := e.be.addApp("Shop")
	b := e.browser().admin()
	p := b.get("/dashboard/apps/" + app + "/webhooks")
	want(t, p, 200, `<link rel="stylesheet" href="/static/style.css">`, `<meta name="viewport"`, `<main class="page" id="main">`,
		`<nav class="tabs"`, `aria-current="page">Webhooks</a>`, ">Sign out</button>")
	if strings.Count(p.body, `aria-current="page"`) != 1 {
		t.Error("more than one tab is current")
	}
	if strings.Contains(p.body, "<script") || strings.Contains(p.body, "style=") {
		t.Error("a page has a script or an inline style")
	}
	// Every visible input has a label pointing at it.
	for _, m := range regexp.MustCompile(`<input type="(?:text|url|password)" id="([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
		if !strings.Contains(p.body, `<label for="`+m[1]+`">`) {
			t.Errorf("input %s has no label", m[1])
		}
	}
	if css := b.get("/static/style.css"); css.status != 200 {
		t.Errorf("stylesheet: %d", css.status)
	}
	want(t, b.get("/dashboard/nowhere"), 404, "Page not found")
}
