package httpapi_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/provider"
)

const callback = "https://app.example/cb?tenant=7"

// hostedSetup registers a callback and the iCloud connector for app A.
func hostedSetup(t *testing.T) (*harness, string) {
	h := newHarness(t)
	h.want(h.do("POST", "/v3/applications/redirect-uris", h.keyA, `{"url":"`+callback+`","platform":"web"}`), 201, "")
	h.want(h.do("POST", "/v3/connectors", h.keyA, `{"provider":"icloud"}`), 201, "")
	app := h.do("GET", "/v3/applications", h.keyA, "")
	return h, app.data()["application_id"].(string)
}

// browser is a cookie-keeping client that does not follow redirects, so
// tests see where Orchard sends the user.
type browser struct {
	t testing.TB
	c *http.Client
	h *harness
}

func newBrowser(h *harness) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: h.t, h: h, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) get(path string) page {
	b.t.Helper()
	resp, err := b.c.Get(b.h.url + path)
	if err != nil {
		b.t.Fatal(err)
	}
	return readPage(b.t, resp)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	resp, err := b.c.PostForm(b.h.url+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	return readPage(b.t, resp)
}

func readPage(t testing.TB, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// formOf returns the hidden fields of the login form, as a browser would
// send them back.
func formOf(t testing.TB, p page) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("csrf_token") == "" {
		t.Fatalf("no login form with a CSRF token (%d): %s", p.status, p.body)
	}
	return v
}

func authURL(appID string, extra ...string) string {
	q := url.Values{"client_id": {appID}, "redirect_uri": {callback}, "response_type": {"code"}, "provider": {"icloud"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return "/v3/connect/auth?" + q.Encode()
}

// sdkChallenge is the Nylas SDKs' s256: base64 of the hex digest, unpadded.
func sdkChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:]))), "=")
}

func rfcChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// signIn runs the login page and returns the code from the redirect.
func signIn(t testing.TB, h *harness, appID, email string, extra ...string) string {
	t.Helper()
	b := newBrowser(h)
	start := b.get(authURL(appID, extra...))
	if start.status != 200 {
		t.Fatalf("login page: %d %s", start.status, start.body)
	}
	form := formOf(t, start)
	form.Set("email", email)
	form.Set("password", "abcd-efgh-ijkl-mnop")
	done := b.post("/v3/connect/auth", form)
	if done.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", done.status, done.body)
	}
	to, err := url.Parse(done.header.Get("Location"))
	if err != nil || to.Host != "app.example" || to.Path != "/cb" || to.Query().Get("tenant") != "7" {
		t.Fatalf("redirected to %q", done.header.Get("Location"))
	}
	code := to.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %q", to)
	}
	return code
}

// tokenCall posts to the token endpoint and returns the status and the
// flat JSON body.
func tokenCall(t testing.TB, h *harness, body map[string]string) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	resp, err := http.Post(h.url+"/v3/connect/token", "application/json", strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		if out["error"] == nil || out["error_description"] == nil || out["error_code"] != float64(resp.StatusCode) {
			t.Fatalf("OAuth error without error/error_description/error_code: %v", out)
		}
	}
	return resp.StatusCode, out
}

func TestHostedAuthFlow(t *testing.T) {
	t.Parallel()
	h, appID := hostedSetup(t)
	verifier := "0d8b2a5e-7e4f-4b7a-9a43-6c1f3e2d1b00"
	code := signIn(t, h, appID, "Hosted@icloud.test", "state", "st&=ü", "access_type", "offline",
		"code_challenge", sdkChallenge(verifier), "code_challenge_method", "s256")

	status, tok := tokenCall(t, h, map[string]string{"grant_type": "authorization_code", "client_id": appID,
		"client_secret": h.keyA, "redirect_uri": callback, "code": code, "code_verifier": verifier})
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, tok)
	}
	for _, k := range []string{"access_token", "refresh_token", "grant_id", "id_token"} {
		if s, _ := tok[k].(string); s == "" {
			t.Fatalf("no %s in %v", k, tok)
		}
	}
	if tok["email"] != "Hosted@icloud.test" || tok["expires_in"] != float64(3600) || tok["token_type"] != "Bearer" || tok["provider"] != "icloud" {
		t.Fatalf("token response %v", tok)
	}
	access, grantID := tok["access_token"].(string), tok["grant_id"].(string)

	// The grant is an ordinary grant of app A, with the state recorded.
	g := h.do("GET", "/v3/grants/"+grantID, h.keyA, "")
	h.want(g, 200, "")
	if g.data()["state"] != "st&=ü" || g.data()["grant_status"] != "valid" {
		t.Fatalf("grant %v", g.data())
	}

	// The code is single use.
	status, again := tokenCall(t, h, map[string]string{"grant_type": "authorization_code", "client_id": appID,
		"client_secret": h.keyA, "redirect_uri": callback, "code": code, "code_verifier": verifier})
	if status != 400 || again["error"] != "invalid_grant" {
		t.Fatalf("reused code: %d %v", status, again)
	}

	// The access token reaches its grant as "me" and by id, nothing else.
	me := h.do("GET", "/v3/grants/me", access, "")
	h.want(me, 200, "")
	if me.data()["id"] != grantID {
		t.Fatalf("grants/me = %v", me.data())
	}
	h.want(h.do("GET", "/v3/grants/"+grantID+"/folders", access, ""), 200, "")
	other := h.do("POST", "/v3/connect/custom", h.keyA, `{"provider":"icloud","settings":{"username":"other@icloud.test","password":"p"}}`)
	h.want(other, 201, "")
	h.want(h.do("GET", "/v3/grants/"+other.data()["id"].(string), access, ""), 401, "unauthorized")
	h.want(h.do("GET", "/v3/connectors", access, ""), 401, "unauthorized")
	h.want(h.do("GET", "/v3/grants", access, ""), 401, "unauthorized")
	h.want(h.do("GET", "/v3/grants/me", h.keyA, ""), 400, "invalid_request_error")

	// Token info for both tokens.
	info := h.do("GET", "/v3/connect/tokeninfo?access_token="+url.QueryEscape(access), "", "")
	h.want(info, 200, "")
	if info.data()["sub"] != grantID || info.data()["email"] != "Hosted@icloud.test" || info.data()["aud"] != appID {
		t.Fatalf("tokeninfo %v", info.data())
	}
	idInfo := h.do("GET", "/v3/connect/tokeninfo?id_token="+url.QueryEscape(tok["id_token"].(string)), "", "")
	h.want(idInfo, 200, "")
	if idInfo.data()["sub"] != grantID || idInfo.data()["iss"] != "http://orchard.test" {
		t.Fatalf("id token info %v", idInfo.data())
	}
	forged := tok["id_token"].(string)
	forged = forged[:len(forged)-4] + "AAAA"
	// tokeninfo's errors are OAuth-shaped: the SDK reads them as such.
	for _, q := range []string{"id_token=" + url.QueryEscape(forged), "access_token=ora_unknown", ""} {
		resp, err := http.Get(h.url + "/v3/connect/tokeninfo?" + q)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		want := 401
		if q == "" {
			want = 400
		}
		if resp.StatusCode != want || body["error_code"] != float64(want) || body["error_description"] == "" {
			t.Fatalf("tokeninfo?%s: %d %v", q, resp.StatusCode, body)
		}
	}

	// Refresh: a new access token; the refresh token stays.
	status, ref := tokenCall(t, h, map[string]string{"grant_type": "refresh_token", "client_id": appID,
		"client_secret": h.keyA, "redirect_uri": callback, "refresh_token": tok["refresh_token"].(string)})
	if status != 200 || ref["access_token"] == access || ref["refresh_token"] != tok["refresh_token"] || ref["grant_id"] != grantID {
		t.Fatalf("refresh: %d %v", status, ref)
	}
	h.want(h.do("GET", "/v3/grants/me", ref["access_token"].(string), ""), 200, "")
	// Another application's key is not this client's secret.
	status, wrongClient := tokenCall(t, h, map[string]string{"grant_type": "refresh_token", "client_id": appID,
		"client_secret": h.keyB, "refresh_token": tok["refresh_token"].(string)})
	if status != 401 || wrongClient["error"] != "invalid_client" {
		t.Fatalf("refresh with B's key: %d %v", status, wrongClient)
	}

	// Revoking the access token revokes its family, not the grant.
	resp, err := http.Post(h.url+"/v3/connect/revoke?token="+url.QueryEscape(access), "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	h.want(h.do("GET", "/v3/grants/me", access, ""), 401, "unauthorized")
	h.want(h.do("GET", "/v3/grants/me", ref["access_token"].(string), ""), 401, "unauthorized")
	status, gone := tokenCall(t, h, map[string]string{"grant_type": "refresh_token", "client_id": appID,
		"client_secret": h.keyA, "refresh_token": tok["refresh_token"].(string)})
	if status != 400 || gone["error"] != "invalid_grant" {
		t.Fatalf("refresh after revoke: %d %v", status, gone)
	}
	h.want(h.do("GET", "/v3/grants/"+grantID, h.keyA, ""), 200, "")
	resp, _ = http.Post(h.url+"/v3/connect/revoke?token="+url.QueryEscape(access), "", nil)
	if resp.StatusCode != 400 {
		t.Fatalf("second revoke: %d", resp.StatusCode)
	}
	resp.Body.Close()

	// Re-authenticating the same address through the page keeps the id.
	code2 := signIn(t, h, appID, "hosted@icloud.test")
	status, tok2 := tokenCall(t, h, map[string]string{"grant_type": "authorization_code", "client_id": appID,
		"client_secret": h.keyA, "redirect_uri": callback, "code": code2})
	if status != 200 || tok2["grant_id"] != grantID || tok2["refresh_token"] != nil {
		t.Fatalf("re-auth exchange (online): %d %v", status, tok2)
	}
	if strings.Contains(h.logs.String(), "abcd-efgh-ijkl-mnop") || strings.Contains(h.logs.String(), access) {
		t.Fatal("a password or token reached the log")
	}
}

func TestTokenExchangeRefusals(t *testing.T) {
	t.Parallel()
	h, appID := hostedSetup(t)
	verifier := "a-verifier-of-enough-length-for-rfc-7636-0123456789"
	exchange := func(code string, kv ...string) (int, map[string]any) {
		body := map[string]string{"grant_type": "authorization_code", "client_id": appID, "redirect_uri": callback, "code": code}
		for i := 0; i+1 < len(kv); i += 2 {
			body[kv[i]] = kv[i+1]
		}
		return tokenCall(t, h, body)
	}
	wantErr := func(what string, status int, out map[string]any, code int, oauth string) {
		t.Helper()
		if status != code || out["error"] != oauth {
			t.Fatalf("%s: %d %v, want %d %s", what, status, out, code, oauth)
		}
	}

	// RFC 7636 S256 works without a client secret (a public client).
	code := signIn(t, h, appID, "pkce@icloud.test", "code_challenge", rfcChallenge(verifier), "code_challenge_method", "S256")
	if status, out := exchange(code, "code_verifier", verifier); status != 200 {
		t.Fatalf("RFC 7636 S256: %d %v", status, out)
	}
	// A wrong verifier is refused and spends the code.
	code = signIn(t, h, appID, "pkce@icloud.test", "code_challenge", sdkChallenge(verifier), "code_challenge_method", "s256")
	status, out := exchange(code, "code_verifier", verifier+"x")
	wantErr("wrong verifier", status, out, 400, "invalid_grant")
	status, out = exchange(code, "code_verifier", verifier)
	wantErr("right verifier after a wrong one", status, out, 400, "invalid_grant")
	// plain.
	code = signIn(t, h, appID, "pkce@icloud.test", "code_challenge", verifier)
	if status, out := exchange(code, "code_verifier", verifier); status != 200 {
		t.Fatalf("plain: %d %v", status, out)
	}
	// A PKCE code without its verifier.
	code = signIn(t, h, appID, "pkce@icloud.test", "code_challenge", verifier, "code_challenge_method", "plain")
	status, out = exchange(code, "client_secret", h.keyA)
	wantErr("missing verifier", status, out, 400, "invalid_request")

	// Without PKCE, a client secret is required and must be this client's.
	code = signIn(t, h, appID, "secret@icloud.test")
	status, out = exchange(code)
	wantErr("no secret", status, out, 401, "invalid_client")
	status, out = exchange(code, "client_secret", h.keyB)
	wantErr("another app's key", status, out, 401, "invalid_client")
	status, out = exchange(code, "client_secret", h.keyA, "redirect_uri", "https://app.example/other")
	wantErr("other redirect_uri", status, out, 400, "invalid_grant")
	// The failed tries above spent nothing but the last (it reached the code).
	code = signIn(t, h, appID, "secret@icloud.test")
	h.skew.Store(int64(11 * time.Minute))
	status, out = exchange(code, "client_secret", h.keyA)
	wantErr("expired code", status, out, 400, "invalid_grant")
	if !strings.Contains(out["error_description"].(string), "expired") {
		t.Fatalf("expired code: %v", out)
	}
	h.skew.Store(0)

	// Access tokens expire after an hour.
	code = signIn(t, h, appID, "secret@icloud.test")
	status, tok := exchange(code, "client_secret", h.keyA)
	if status != 200 {
		t.Fatalf("exchange: %d %v", status, tok)
	}
	h.skew.Store(int64(61 * time.Minute))
	h.want(h.do("GET", "/v3/grants/me", tok["access_token"].(string), ""), 401, "unauthorized")
	h.skew.Store(0)

	status, out = tokenCall(t, h, map[string]string{"grant_type": "password", "client_id": appID})
	wantErr("unsupported grant type", status, out, 400, "unsupported_grant_type")
	status, out = tokenCall(t, h, map[string]string{"grant_type": "authorization_code", "client_id": appID})
	wantErr("no code", status, out, 400, "invalid_request")
	status, out = exchange("orc_made-up", "client_secret", h.keyA)
	wantErr("unknown code", status, out, 400, "invalid_grant")
	resp, _ := http.Post(h.url+"/v3/connect/token", "application/json", strings.NewReader("{nope"))
	if resp.StatusCode != 400 {
		t.Fatalf("bad JSON: %d", resp.StatusCode)
	}
	resp.Body.Close()
	// The form-encoded body of RFC 6749 works too.
	code = signIn(t, h, appID, "form@icloud.test")
	resp, _ = http.PostForm(h.url+"/v3/connect/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {appID},
		"client_secret": {h.keyA}, "redirect_uri": {callback}, "code": {code}})
	if resp.StatusCode != 200 {
		t.Fatalf("form-encoded exchange: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestHostedAuthPages(t *testing.T) {
	t.Parallel()
	h, appID := hostedSetup(t)
	b := newBrowser(h)

	// Unregistered redirect URIs and unknown clients end on a page, never in a redirect.
	for _, u := range []string{
		"/v3/connect/auth?client_id=" + appID + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code&provider=icloud",
		"/v3/connect/auth?client_id=" + appID + "&redirect_uri=" + url.QueryEscape(callback+"&x=1") + "&response_type=code",
		"/v3/connect/auth?client_id=nope&redirect_uri=" + url.QueryEscape(callback) + "&response_type=code",
		"/oauth/authorize?client_id=" + appID + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code",
	} {
		p := b.get(u)
		if p.status != 400 || p.header.Get("Location") != "" || !strings.Contains(p.body, "not valid") {
			t.Fatalf("%s: %d Location=%q", u, p.status, p.header.Get("Location"))
		}
	}
	for _, bad := range [][]string{{"response_type", "token"}, {"provider", "google"}, {"code_challenge_method", "S512", "code_challenge", "x"}, {"access_type", "forever"}} {
		p := b.get(authURL(appID, bad...))
		if p.status != 400 || p.header.Get("Location") != "" {
			t.Fatalf("%v: %d", bad, p.status)
		}
	}

	// The login page: the app-password steps, the hint pre-filled, framing forbidden.
	p := b.get(authURL(appID, "login_hint", "me@icloud.test"))
	for _, want := range []string{"app-specific password", "https://appleid.apple.com", "abcd-efgh-ijkl-mnop", `value="me@icloud.test"`, `<label for="password">`} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("login page lacks %q", want)
		}
	}
	if p.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("headers %v", p.header)
	}
	// Without a provider: the choice page lists the app's connectors.
	noProvider := strings.Replace(authURL(appID), "provider=icloud", "", 1)
	choice := b.get(noProvider)
	if choice.status != 200 || !strings.Contains(choice.body, "iCloud Mail") || strings.Contains(choice.body, "IMAP") {
		t.Fatalf("choice page: %d %s", choice.status, choice.body)
	}
	// IMAP is not offered until the app has its connector.
	h.want(h.do("POST", "/v3/connectors", h.keyA, `{"provider":"imap"}`), 201, "")
	if choice = b.get(noProvider); !strings.Contains(choice.body, "IMAP") {
		t.Fatal("IMAP not offered after adding its connector")
	}

	form := formOf(t, p)
	form.Set("email", "me@icloud.test")
	form.Set("password", "my-apple-id-pass")

	// No CSRF token, or another browser's: refused, nothing created.
	noCSRF := url.Values{}
	for k, v := range form {
		if k != "csrf_token" {
			noCSRF[k] = v
		}
	}
	if r := b.post("/v3/connect/auth", noCSRF); r.status != 403 {
		t.Fatalf("no CSRF token: %d", r.status)
	}
	if r := newBrowser(h).post("/v3/connect/auth", form); r.status != 403 {
		t.Fatalf("CSRF token from another browser: %d", r.status)
	}
	// A tampered redirect_uri in the form is checked again.
	evil := url.Values{}
	for k, v := range form {
		evil[k] = v
	}
	evil.Set("redirect_uri", "https://evil.example/cb")
	if r := b.post("/v3/connect/auth", evil); r.status != 400 || r.header.Get("Location") != "" {
		t.Fatalf("tampered redirect_uri: %d %q", r.status, r.header.Get("Location"))
	}
	if g := h.do("GET", "/v3/grants", h.keyA, ""); len(g.list()) != 0 {
		t.Fatalf("grants created by refused forms: %v", g.list())
	}

	// Apple refuses the password: the hint, the address kept, the password not echoed.
	h.icloud.set(&provider.Error{Kind: provider.KindAuth, Service: "imap", Text: "AUTHENTICATIONFAILED"})
	refused := b.post("/v3/connect/auth", form)
	if refused.status != 401 || !strings.Contains(refused.body, "Apple refused this password — use an app-specific password, not your Apple ID password") ||
		!strings.Contains(refused.body, `value="me@icloud.test"`) || strings.Contains(refused.body, "my-apple-id-pass") {
		t.Fatalf("refused login page: %d %s", refused.status, refused.body)
	}
	// Apple unreachable: a different message.
	h.icloud.set(&provider.Error{Kind: provider.KindUnavailable, Service: "imap"})
	form = formOf(t, refused)
	form.Set("email", "me@icloud.test")
	form.Set("password", "abcd-efgh-ijkl-mnop")
	if r := b.post("/v3/connect/auth", form); r.status != 503 || !strings.Contains(r.body, "could not be reached") {
		t.Fatalf("unreachable: %d", r.status)
	}
	h.icloud.set(nil)

	// Attempts per address are limited (5 a minute here): the 6th is refused
	// before Apple is asked, and another address still gets through.
	h.icloud.set(&provider.Error{Kind: provider.KindAuth, Service: "imap"})
	// Two attempts so far (refused, unreachable); three more reach Apple.
	limited := page{}
	for i := range 3 {
		form.Set("password", fmt.Sprintf("guess-%d", i))
		limited = b.post("/v3/connect/auth", form)
	}
	if limited.status != 401 {
		t.Fatalf("5th attempt: %d", limited.status)
	}
	limited = b.post("/v3/connect/auth", form)
	if limited.status != 429 || limited.header.Get("Retry-After") == "" || !strings.Contains(limited.body, "Too many sign-in attempts") {
		t.Fatalf("6th attempt: %d", limited.status)
	}
	h.icloud.set(nil)
	form.Set("email", "someone-else@icloud.test")
	if r := b.post("/v3/connect/auth", form); r.status != http.StatusSeeOther {
		t.Fatalf("another address: %d", r.status)
	}

	// The stylesheet is served from the binary.
	if css := b.get("/static/style.css"); css.status != 200 || !strings.Contains(css.body, ".card") {
		t.Fatalf("style.css: %d", css.status)
	}
}

func TestHostedAuthIMAP(t *testing.T) {
	t.Parallel()
	h, appID := hostedSetup(t)
	h.want(h.do("POST", "/v3/connectors", h.keyA, `{"provider":"imap"}`), 201, "")
	b := newBrowser(h)
	p := b.get(authURL(appID, "provider", "imap", "login_hint", "box@corp.test"))
	for _, want := range []string{`<label for="imap_host">IMAP server</label>`, `<label for="smtp_port">SMTP port</label>`, `value="993"`, `value="587"`, `value="box@corp.test"`} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("IMAP login page lacks %q", want)
		}
	}
	form := formOf(t, p)
	form.Set("email", "box@corp.test")
	form.Set("password", "imap-secret")
	form.Set("imap_host", "imap.corp.test")
	form.Set("imap_port", "99999")
	form.Set("smtp_host", "smtp.corp.test")
	form.Set("smtp_port", "587")
	bad := b.post("/v3/connect/auth", form)
	if bad.status != 400 || !strings.Contains(bad.body, "IMAP port") || !strings.Contains(bad.body, `value="imap.corp.test"`) || strings.Contains(bad.body, "imap-secret") {
		t.Fatalf("bad port: %d %s", bad.status, bad.body)
	}
	form = formOf(t, bad)
	form.Set("email", "box@corp.test")
	form.Set("password", "imap-secret")
	form.Set("imap_host", "imap.corp.test")
	form.Set("imap_port", "993")
	form.Set("smtp_host", "smtp.corp.test")
	form.Set("smtp_port", "587")
	if r := b.post("/v3/connect/auth", form); r.status != http.StatusSeeOther {
		t.Fatalf("IMAP sign-in: %d %s", r.status, r.body)
	}
	g := h.do("GET", "/v3/grants/box@corp.test", h.keyA, "")
	h.want(g, 200, "")
	settings, _ := g.data()["settings"].(map[string]any)
	if g.data()["provider"] != "imap" || settings["imap_host"] != "imap.corp.test" || settings["imap_username"] != "box@corp.test" {
		t.Fatalf("IMAP grant %v", g.data())
	}
}

// BenchmarkGrantAuth compares one small grant read authenticated by an
// access token (/v3/grants/me) with the same read by API key, the baseline
// measured in the same run: go test -bench GrantAuth ./internal/httpapi
func BenchmarkGrantAuth(b *testing.B) {
	h := newHarness(b)
	h.want(h.do("POST", "/v3/applications/redirect-uris", h.keyA, `{"url":"`+callback+`","platform":"web"}`), 201, "")
	h.want(h.do("POST", "/v3/connectors", h.keyA, `{"provider":"icloud"}`), 201, "")
	appID := h.do("GET", "/v3/applications", h.keyA, "").data()["application_id"].(string)
	code := signIn(b, h, appID, "bench@icloud.test")
	_, tok := tokenCall(b, h, map[string]string{"grant_type": "authorization_code", "client_id": appID,
		"client_secret": h.keyA, "redirect_uri": callback, "code": code})
	access, grantID := tok["access_token"].(string), tok["grant_id"].(string)
	get := func(b *testing.B, path, key string) {
		req, _ := http.NewRequest("GET", h.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%s: %v %v", path, resp.StatusCode, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.Run("api-key", func(b *testing.B) {
		for b.Loop() {
			get(b, "/v3/grants/"+grantID, h.keyA)
		}
	})
	b.Run("access-token", func(b *testing.B) {
		for b.Loop() {
			get(b, "/v3/grants/me", access)
		}
	})
}
