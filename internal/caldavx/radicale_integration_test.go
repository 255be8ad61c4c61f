package caldavx_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/caldavx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/testenv"
	"github.com/orchard-mail/orchard/internal/testnet"
)

func event(uid, summary string) []byte {
	return []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Orchard//test//EN\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\nSUMMARY:" + summary +
		"\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
}

// radicale returns the test environment, a user of the test's own (in
// Radicale's htpasswd, removed with its calendars at the end) and a client
// that trusts the test CA only.
func radicale(t *testing.T) (*testenv.Env, caldavx.Account, *caldavx.Client) {
	t.Helper()
	env := testenv.Get(t)
	u := env.NewUser(t)
	c := caldavx.New(caldavx.Options{TLSConfig: &tls.Config{RootCAs: env.CAPool(t)}, Timeout: 10 * time.Second})
	t.Cleanup(c.CloseIdleConnections)
	return env, caldavx.Account{Username: u.Email, Password: u.Password}, c
}

// The whole life of a calendar and its events against the real Radicale of
// scripts/testenv.
func TestRadicale(t *testing.T) {
	t.Parallel()
	env, a, c := radicale(t)
	ctx := testnet.Context(t, 60*time.Second)

	home, err := c.Discover(ctx, env.CalDAVURL, a)
	if err != nil {
		t.Fatal(err)
	}
	// Radicale's href says %40; the canonical spelling has the '@'.
	if want := env.CalDAVURL + "/" + a.Username + "/"; home != want {
		t.Fatalf("home = %q, want %q", home, want)
	}
	a.Home = home

	if def, err := c.DefaultCalendarURL(ctx, a); err != nil || def != "" {
		t.Errorf("DefaultCalendarURL = %q, %v; Radicale has none", def, err)
	}
	if cals, err := c.Calendars(ctx, a); err != nil || len(cals) != 0 {
		t.Fatalf("Calendars of a new user = %+v, %v; want none", cals, err)
	}

	calURL, err := c.CreateCalendar(ctx, a, caldavx.Calendar{Name: "Work & play", Description: "desc", Timezone: "Europe/Paris", Color: "#FF2968FF"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(calURL, home) || !strings.HasSuffix(calURL, "/") {
		t.Fatalf("calendar URL %q is not a collection under %q", calURL, home)
	}
	// A VTODO-only list next to it is not an event calendar.
	mkcalendar(t, env, a, home+"tasks/", `<c:comp name="VTODO"/>`)

	cals, err := c.Calendars(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(cals) != 1 {
		t.Fatalf("Calendars = %+v, want the one event calendar", cals)
	}
	cal := cals[0]
	if cal.URL != calURL || cal.Name != "Work & play" || cal.Description != "desc" || cal.Timezone != "Europe/Paris" ||
		cal.Color != "#FF2968FF" || cal.ReadOnly || fmt.Sprint(cal.Components) != "[VEVENT]" || cal.CTag == "" || cal.SyncToken == "" {
		t.Errorf("calendar = %+v", cal)
	}

	if err := c.UpdateCalendar(ctx, a, caldavx.Calendar{URL: calURL, Name: "Renamed", Color: "#00FF00FF", Timezone: "America/New_York"}); err != nil {
		t.Fatal(err)
	}
	cals, err = c.Calendars(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if got := cals[0]; got.Name != "Renamed" || got.Color != "#00FF00FF" || got.Timezone != "America/New_York" || got.Description != "desc" {
		t.Errorf("after PROPPATCH: %+v (the description must stay)", got)
	}

	// Objects: create two, a second create of the same href is refused.
	ev1, ev2, missing := calURL+"ev1.ics", calURL+"ev2.ics", calURL+"missing.ics"
	etag1, err := c.PutObject(ctx, a, ev1, event("ev1", "One"), "")
	if err != nil || etag1 == "" {
		t.Fatalf("create ev1: %q, %v", etag1, err)
	}
	etag2, err := c.PutObject(ctx, a, ev2, event("ev2", "Two"), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PutObject(ctx, a, ev1, event("ev1", "Again"), "")
	if wantKind(t, err, provider.KindRejected); !errors.Is(err, caldavx.ErrPreconditionFailed) {
		t.Errorf("second create: %v, want ErrPreconditionFailed", err)
	}

	objs, err := c.GetObjects(ctx, a, calURL, []string{ev1, ev2, missing})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("GetObjects = %d objects, want 2", len(objs))
	}
	for i, o := range objs {
		want := map[string]string{ev1: etag1, ev2: etag2}[o.Href]
		if want == "" || o.ETag != want || !bytes.Contains(o.Data, []byte("\r\nSUMMARY:")) || !bytes.HasSuffix(o.Data, []byte("END:VCALENDAR\r\n")) ||
			bytes.Contains(bytes.ReplaceAll(o.Data, []byte("\r\n"), nil), []byte("\n")) {
			t.Errorf("object %d = %s %s %q", i, o.Href, o.ETag, o.Data)
		}
	}

	changed, deleted, token1, err := c.SyncCollection(ctx, a, calURL, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := refs(changed); got != refs([]caldavx.ObjectRef{{Href: ev1, ETag: etag1}, {Href: ev2, ETag: etag2}}) || len(deleted) != 0 || token1 == "" {
		t.Errorf("initial sync = %s %v %q", got, deleted, token1)
	}

	// Update with the right ETag, then with the stale one.
	etag1b, err := c.PutObject(ctx, a, ev1, event("ev1", "One moved"), etag1)
	if err != nil || etag1b == "" || etag1b == etag1 {
		t.Fatalf("update ev1: %q (was %q), %v", etag1b, etag1, err)
	}
	_, err = c.PutObject(ctx, a, ev1, event("ev1", "Lost update"), etag1)
	if wantKind(t, err, provider.KindRejected); !errors.Is(err, caldavx.ErrPreconditionFailed) {
		t.Errorf("update with a stale ETag: %v, want ErrPreconditionFailed", err)
	}
	err = c.DeleteObject(ctx, a, ev2, etag1)
	if !errors.Is(err, caldavx.ErrPreconditionFailed) {
		t.Errorf("delete with another ETag: %v, want ErrPreconditionFailed", err)
	}
	if err := c.DeleteObject(ctx, a, ev2, etag2); err != nil {
		t.Fatal(err)
	}
	err = c.DeleteObject(ctx, a, ev2, "")
	if wantKind(t, err, provider.KindRejected); !errors.Is(err, caldavx.ErrNotFound) {
		t.Errorf("delete again: %v, want ErrNotFound", err)
	}

	changed, deleted, token2, err := c.SyncCollection(ctx, a, calURL, token1)
	if err != nil {
		t.Fatal(err)
	}
	if refs(changed) != refs([]caldavx.ObjectRef{{Href: ev1, ETag: etag1b}}) || fmt.Sprint(deleted) != fmt.Sprint([]string{ev2}) || token2 == "" || token2 == token1 {
		t.Errorf("incremental sync = %s %v %q (from %q), want ev1 %s changed, ev2 deleted, a new token", refs(changed), deleted, token2, token1, etag1b)
	}
	changed, deleted, token3, err := c.SyncCollection(ctx, a, calURL, token2)
	if err != nil || len(changed)+len(deleted) != 0 || token3 != token2 {
		t.Errorf("sync without changes = %v %v %q, %v", changed, deleted, token3, err)
	}
	_, _, _, err = c.SyncCollection(ctx, a, calURL, "http://radicale.org/ns/sync/0000")
	if wantKind(t, err, provider.KindRejected); !errors.Is(err, caldavx.ErrSyncTokenInvalid) {
		t.Errorf("unknown token: %v, want ErrSyncTokenInvalid", err)
	}

	list, err := c.ListObjects(ctx, a, calURL)
	if err != nil || refs(list) != refs([]caldavx.ObjectRef{{Href: ev1, ETag: etag1b}}) {
		t.Errorf("ListObjects = %s, %v", refs(list), err)
	}

	// Other people's calendars and wrong passwords.
	alice := env.User(t, 0)
	_, err = c.PutObject(ctx, a, env.CalDAVURL+"/"+url.PathEscape(alice.Email)+"/x.ics", event("x", "intruder"), "")
	wantKindSecret(t, err, provider.KindRejected, a.Password)
	bad := a
	bad.Password = "wrong-" + a.Password
	_, err = c.Calendars(ctx, bad)
	wantKindSecret(t, err, provider.KindAuth, bad.Password)
	_, err = c.Discover(ctx, env.CalDAVURL, bad)
	wantKindSecret(t, err, provider.KindAuth, bad.Password)

	if err := c.DeleteCalendar(ctx, a, calURL); err != nil {
		t.Fatal(err)
	}
	if cals, err := c.Calendars(ctx, a); err != nil || len(cals) != 0 {
		t.Errorf("Calendars after delete = %+v, %v", cals, err)
	}
	if err := c.DeleteCalendar(ctx, a, calURL); !errors.Is(err, caldavx.ErrNotFound) {
		t.Errorf("deleting again: %v, want ErrNotFound", err)
	}
}

// refs renders refs for comparison, in href order (servers answer in
// their own).
func refs(rs []caldavx.ObjectRef) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Href+"="+r.ETag)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func wantKindSecret(t *testing.T, err error, kind provider.ErrorKind, secret string) {
	t.Helper()
	pe := wantKind(t, err, kind)
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error reveals the password: %v", pe)
	}
}

// mkcalendar makes a calendar for components comps behind the client's back.
func mkcalendar(t *testing.T, env *testenv.Env, a caldavx.Account, u, comps string) {
	t.Helper()
	body := `<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><c:supported-calendar-component-set>` +
		comps + `</c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>`
	req, _ := http.NewRequest("MKCALENDAR", u, strings.NewReader(body))
	req.SetBasicAuth(a.Username, a.Password)
	req.Header.Set("Content-Type", "application/xml")
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.CAPool(t)}}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("MKCALENDAR %s: %s", u, resp.Status)
	}
}

// As on iCloud, the calendar home is on another host than the entry point:
// a reverse proxy on a second loopback port fronts Radicale for discovery
// and rewrites calendar-home-set to an absolute URL on Radicale's own port.
// The client must follow it there, and talk to the entry point no more.
func TestRadicaleHomeOnOtherHost(t *testing.T) {
	t.Parallel()
	env, a, _ := radicale(t)
	ctx := testnet.Context(t, 30*time.Second)
	target, err := url.Parse(env.CalDAVURL)
	if err != nil {
		t.Fatal(err)
	}
	homeSet := regexp.MustCompile(`(<(?:\w+:)?calendar-home-set[^>]*>\s*<(?:\w+:)?href[^>]*>)(/[^<]*)(</)`)
	var proxied atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.CAPool(t)}}
	rp.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		body = homeSet.ReplaceAll(body, []byte("${1}"+env.CalDAVURL+"${2}${3}"))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	proxy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		// Radicale gzips for a client that asks, and the body is rewritten.
		r.Header.Del("Accept-Encoding")
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	pool := env.CAPool(t)
	pool.AddCert(proxy.Certificate())
	c := caldavx.New(caldavx.Options{TLSConfig: &tls.Config{RootCAs: pool}, Timeout: 10 * time.Second})
	t.Cleanup(c.CloseIdleConnections)

	home, err := c.Discover(ctx, proxy.URL, a)
	if err != nil {
		t.Fatal(err)
	}
	hu, _ := url.Parse(home)
	if hu.Host != target.Host || hu.Path != "/"+a.Username+"/" {
		t.Fatalf("home = %q, want it on Radicale's own port %s (the proxy is %s)", home, target.Host, proxy.URL)
	}
	if proxied.Load() < 2 {
		t.Errorf("the proxy saw %d requests: discovery did not go through it", proxied.Load())
	}
	a.Home = home
	before := proxied.Load()
	calURL, err := c.CreateCalendar(ctx, a, caldavx.Calendar{Name: "Sharded"})
	if err != nil {
		t.Fatal(err)
	}
	cals, err := c.Calendars(ctx, a)
	if err != nil || len(cals) != 1 || cals[0].URL != calURL || cals[0].Name != "Sharded" {
		t.Fatalf("Calendars = %+v, %v", cals, err)
	}
	if _, err := c.PutObject(ctx, a, calURL+"e.ics", event("e", "on the shard"), ""); err != nil {
		t.Fatal(err)
	}
	if n := proxied.Load() - before; n != 0 {
		t.Errorf("%d requests went to the entry host after discovery", n)
	}
}
