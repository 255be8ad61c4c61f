package caldavx_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/caldavx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/providertest"
	"github.com/orchard-mail/orchard/internal/testnet"
)

const (
	user     = "alice@icloud.example"
	password = "abcd-efgh-ijkl-mnop"
)

var basicToken = base64.StdEncoding.EncodeToString([]byte(user + ":" + password))

// call is one request a fake server received.
type call struct {
	method, path, depth, ifMatch, ifNoneMatch, body string
	authOK                                          bool
}

// fake is an httptest server whose handler gets each request with its body
// read; it records the calls.
type fake struct {
	*httptest.Server
	mu    sync.Mutex
	calls []call
}

func newFake(t *testing.T, h func(w http.ResponseWriter, r *http.Request, body string)) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u, p, ok := r.BasicAuth()
		f.mu.Lock()
		f.calls = append(f.calls, call{method: r.Method, path: r.URL.EscapedPath(), depth: r.Header.Get("Depth"),
			ifMatch: r.Header.Get("If-Match"), ifNoneMatch: r.Header.Get("If-None-Match"), body: string(b),
			authOK: ok && u == user && p == password})
		f.mu.Unlock()
		h(w, r, string(b))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fake) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// multistatus answers 207 the way iCloud does: default DAV namespace,
// Content-Type text/plain.
func multistatus(w http.ResponseWriter, inner string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<multistatus xmlns="DAV:">%s</multistatus>`, inner)
}

func client(o caldavx.Options) *caldavx.Client {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	return caldavx.New(o)
}

func account(home string) caldavx.Account {
	return caldavx.Account{Username: user, Password: password, Home: home}
}

// wantKind asserts a *provider.Error of kind for caldav that reveals neither
// the password nor the Basic token.
func wantKind(t *testing.T, err error, kind provider.ErrorKind) *provider.Error {
	t.Helper()
	return providertest.WantKind(t, err, "caldav", kind, password, basicToken)
}

const appleTZ = `BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Apple Inc.//iPhone OS 18.0//EN
CALSCALE:GREGORIAN
BEGIN:VTIMEZONE
TZID:America/Los_Angeles
BEGIN:DAYLIGHT
TZOFFSETFROM:-0800
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
DTSTART:20070311T020000
TZNAME:PDT
TZOFFSETTO:-0700
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:-0700
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
DTSTART:20071104T020000
TZNAME:PST
TZOFFSETTO:-0800
END:STANDARD
END:VTIMEZONE
END:VCALENDAR
`

// icloud starts two fakes shaped like iCloud: the entry host, which answers
// GET /.well-known/caldav with 400 and PROPFIND with the principal keyed
// under /principal/, and the shard host with the calendar home.
func icloud(t *testing.T) (entry, shard *fake) {
	t.Helper()
	shard = newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
		switch {
		case r.Method == "PROPFIND" && r.URL.Path == "/1234567890/calendars/" && r.Header.Get("Depth") == "1":
			multistatus(w, `
<response><href>/1234567890/calendars/</href><propstat><prop><resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/1234567890/calendars/inbox/</href><propstat><prop><resourcetype><collection/><schedule-inbox xmlns="urn:ietf:params:xml:ns:caldav"/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/1234567890/calendars/outbox/</href><propstat><prop><resourcetype><collection/><schedule-outbox xmlns="urn:ietf:params:xml:ns:caldav"/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/1234567890/calendars/notification/</href><propstat><prop><resourcetype><collection/><notification xmlns="http://calendarserver.org/ns/"/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/1234567890/calendars/tasks/</href><propstat><prop><resourcetype><collection/><calendar xmlns="urn:ietf:params:xml:ns:caldav"/></resourcetype><displayname>Reminders</displayname><supported-calendar-component-set xmlns="urn:ietf:params:xml:ns:caldav"><comp name="VTODO"/></supported-calendar-component-set></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/1234567890/calendars/home/</href><propstat><prop>
  <resourcetype><collection/><calendar xmlns="urn:ietf:params:xml:ns:caldav"/></resourcetype>
  <displayname>Home</displayname>
  <calendar-color xmlns="http://apple.com/ns/ical/" symbolic-color="red">#FF2968FF</calendar-color>
  <calendar-timezone xmlns="urn:ietf:params:xml:ns:caldav"><![CDATA[`+appleTZ+`]]></calendar-timezone>
  <supported-calendar-component-set xmlns="urn:ietf:params:xml:ns:caldav"><comp name="VEVENT"/></supported-calendar-component-set>
  <current-user-privilege-set><privilege><read/></privilege><privilege><read-current-user-privilege-set/></privilege></current-user-privilege-set>
  <getctag xmlns="http://calendarserver.org/ns/">HwoQEgwAAA</getctag>
  <sync-token>https://example.com/ns/sync/HwoQEgwAAA</sync-token>
</prop><status>HTTP/1.1 200 OK</status></propstat>
<propstat><prop><calendar-description xmlns="urn:ietf:params:xml:ns:caldav"/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>
<response><href>/1234567890/calendars/work%20stuff/</href><propstat><prop>
  <resourcetype><collection/><calendar xmlns="urn:ietf:params:xml:ns:caldav"/></resourcetype>
  <displayname>Work &amp; more</displayname>
  <calendar-description xmlns="urn:ietf:params:xml:ns:caldav">Office</calendar-description>
  <supported-calendar-component-set xmlns="urn:ietf:params:xml:ns:caldav"><comp name="VEVENT"/><comp name="VTODO"/></supported-calendar-component-set>
  <current-user-privilege-set><privilege><read/></privilege><privilege><write/></privilege></current-user-privilege-set>
</prop><status>HTTP/1.1 200 OK</status></propstat></response>`)
		case r.Method == "REPORT" && r.URL.Path == "/1234567890/calendars/home/":
			if !strings.Contains(body, "calendar-multiget") {
				http.Error(w, "unexpected report", http.StatusBadRequest)
				return
			}
			multistatus(w, `
<response><href>/1234567890/calendars/home/gone.ics</href><status>HTTP/1.1 404 Not Found</status></response>
<response><href>/1234567890/calendars/home/A1B2.ics</href><propstat><prop><getetag>"muznm0s0"</getetag><calendar-data xmlns="urn:ietf:params:xml:ns:caldav"><![CDATA[BEGIN:VCALENDAR
VERSION:2.0
BEGIN:VEVENT
UID:A1B2
DTSTART;TZID=America/Los_Angeles:20261201T100000
SUMMARY:Fish & chips <friday>
END:VEVENT
END:VCALENDAR
]]></calendar-data></prop><status>HTTP/1.1 200 OK</status></propstat></response>`)
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
		}
	})
	entry = newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
		switch {
		case r.URL.Path == "/.well-known/caldav" && r.Method == http.MethodGet:
			http.Error(w, "Bad Request", http.StatusBadRequest)
		case r.URL.Path == "/.well-known/caldav" && r.Method == "PROPFIND":
			if !strings.Contains(body, "current-user-principal") {
				http.Error(w, "bad propfind", http.StatusBadRequest)
				return
			}
			multistatus(w, `<response><href>/.well-known/caldav/</href><propstat><prop><current-user-principal><href>/1234567890/principal/</href></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat></response>`)
		case r.URL.Path == "/1234567890/principal/" && r.Method == "PROPFIND":
			if !strings.Contains(body, `xmlns:c="urn:ietf:params:xml:ns:caldav"`) || !strings.Contains(body, "<c:calendar-home-set/>") {
				// Asked in the DAV: namespace, iCloud silently has nothing.
				multistatus(w, `<response><href>/principal/</href><propstat><prop/><status>HTTP/1.1 200 OK</status></propstat></response>`)
				return
			}
			multistatus(w, `<response><href>/principal/</href><propstat><prop><calendar-home-set xmlns="urn:ietf:params:xml:ns:caldav"><href xmlns="DAV:">`+
				shard.URL+`/1234567890/calendars/</href></calendar-home-set></prop><status>HTTP/1.1 200 OK</status></propstat></response>`)
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
		}
	})
	return entry, shard
}

// Discovery, listing and multiget against iCloud-shaped XML: default
// namespace, CDATA, text/plain, the principal keyed under another href, the
// home on a second host.
func TestICloudShape(t *testing.T) {
	t.Parallel()
	entry, shard := icloud(t)
	c := client(caldavx.Options{})
	ctx := testnet.Context(t, 10*time.Second)

	home, err := c.Discover(ctx, entry.URL, account(""))
	if err != nil {
		t.Fatal(err)
	}
	if want := shard.URL + "/1234567890/calendars/"; home != want {
		t.Fatalf("home = %q, want %q (on the second host)", home, want)
	}
	for _, cl := range entry.Calls() {
		if cl.method != "PROPFIND" || cl.depth != "0" || !cl.authOK {
			t.Errorf("entry host got %s %s (Depth %q, auth ok %v); want authenticated PROPFIND, Depth 0", cl.method, cl.path, cl.depth, cl.authOK)
		}
	}

	a := account(home)
	cals, err := c.Calendars(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	want := []caldavx.Calendar{{
		URL: shard.URL + "/1234567890/calendars/home/", Name: "Home", Timezone: "America/Los_Angeles", Color: "#FF2968FF",
		ReadOnly: true, Components: []string{"VEVENT"}, CTag: "HwoQEgwAAA", SyncToken: "https://example.com/ns/sync/HwoQEgwAAA",
	}, {
		URL: shard.URL + "/1234567890/calendars/work%20stuff/", Name: "Work & more", Description: "Office",
		Components: []string{"VEVENT", "VTODO"},
	}}
	if got, wantS := fmt.Sprintf("%+v", cals), fmt.Sprintf("%+v", want); got != wantS {
		t.Errorf("Calendars:\n got %s\nwant %s", got, wantS)
	}
	for _, cl := range shard.Calls() {
		if !cl.authOK {
			t.Errorf("shard host got %s %s without the credentials", cl.method, cl.path)
		}
	}

	hrefs := []string{shard.URL + "/1234567890/calendars/home/A1B2.ics", shard.URL + "/1234567890/calendars/home/gone.ics"}
	objs, err := c.GetObjects(ctx, a, cals[0].URL, hrefs)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("GetObjects returned %d objects, want 1 (the 404 left out): %+v", len(objs), objs)
	}
	o := objs[0]
	wantData := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:A1B2\r\nDTSTART;TZID=America/Los_Angeles:20261201T100000\r\nSUMMARY:Fish & chips <friday>\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	if o.Href != hrefs[0] || o.ETag != `"muznm0s0"` || string(o.Data) != wantData {
		t.Errorf("object = %q %q %q, want %q %q %q", o.Href, o.ETag, o.Data, hrefs[0], `"muznm0s0"`, wantData)
	}
	last := shard.Calls()[len(shard.Calls())-1]
	if !strings.Contains(last.body, "<d:href>/1234567890/calendars/home/A1B2.ics</d:href>") || last.depth != "1" {
		t.Errorf("multiget body %q (Depth %q): want path hrefs, Depth 1", last.body, last.depth)
	}
}

// Without /.well-known/caldav (404) the base URL itself is asked; a 301 on
// it keeps the PROPFIND (net/http alone would send a GET).
func TestDiscoverFallbacks(t *testing.T) {
	t.Parallel()
	principal := `<response><href>/</href><propstat><prop><current-user-principal><href>/p/alice/</href></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat></response>`
	homeSet := `<response><href>/p/alice/</href><propstat><prop><C:calendar-home-set xmlns:C="urn:ietf:params:xml:ns:caldav"><href>/cal/alice</href></C:calendar-home-set></prop><status>HTTP/1.1 200 OK</status></propstat></response>`
	for _, tc := range []struct {
		name      string
		wellKnown func(w http.ResponseWriter, r *http.Request)
		base      string // path of the base URL given to Discover
	}{
		{"well-known 404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "/dav/"},
		{"well-known 301", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/dav/", http.StatusMovedPermanently)
		}, "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
				switch {
				case r.URL.Path == "/.well-known/caldav":
					tc.wellKnown(w, r)
				case r.Method != "PROPFIND":
					http.Error(w, "method "+r.Method, http.StatusMethodNotAllowed)
				case r.URL.Path == "/dav/":
					multistatus(w, principal)
				case r.URL.Path == "/p/alice/":
					multistatus(w, homeSet)
				default:
					http.NotFound(w, r)
				}
			})
			home, err := client(caldavx.Options{}).Discover(testnet.Context(t, 5*time.Second), f.URL+tc.base, account(""))
			if err != nil {
				t.Fatal(err)
			}
			if want := f.URL + "/cal/alice/"; home != want {
				t.Errorf("home = %q, want %q", home, want)
			}
		})
	}
	t.Run("no principal anywhere", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) { http.NotFound(w, r) })
		_, err := client(caldavx.Options{}).Discover(testnet.Context(t, 5*time.Second), f.URL, account(""))
		wantKind(t, err, provider.KindProtocol)
	})
}

// A 401 is KindAuth, and nothing the server echoes (password, Basic token)
// reaches the error.
func TestUnauthorized(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
		w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "bad credentials %s (%s)", r.Header.Get("Authorization"), password)
	})
	c := client(caldavx.Options{})
	ctx := testnet.Context(t, 5*time.Second)
	_, err := c.Discover(ctx, f.URL, account(""))
	pe := wantKind(t, err, provider.KindAuth)
	if !strings.Contains(pe.Text, "401") || !strings.Contains(pe.Text, "[redacted]") {
		t.Errorf("Text = %q, want the status and the server's text, redacted", pe.Text)
	}
	_, err = c.Calendars(ctx, account(f.URL+"/home/"))
	wantKind(t, err, provider.KindAuth)
	if n := len(f.Calls()); n != 2 {
		t.Errorf("%d requests, want 2 (a 401 is not retried, discovery stops at it)", n)
	}
	a := account("")
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a)} {
		if strings.Contains(s, password) {
			t.Errorf("fmt output of Account reveals the password: %s", s)
		}
	}
}

// Conditional writes: create sends If-None-Match: *, update and delete send
// If-Match with the ETag quoted; 412 is ErrPreconditionFailed, 404
// ErrNotFound, 403 KindRejected with the server's text.
func TestConditionalWrites(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/new.ics"):
			w.Header().Set("ETag", `"e1"`)
			w.WriteHeader(http.StatusCreated)
		case strings.HasSuffix(r.URL.Path, "/stale.ics"):
			http.Error(w, "Precondition failed.", http.StatusPreconditionFailed)
		case strings.HasSuffix(r.URL.Path, "/gone.ics"):
			http.NotFound(w, r)
		case strings.HasSuffix(r.URL.Path, "/denied.ics"):
			http.Error(w, "Access to the requested resource forbidden.", http.StatusForbidden)
		case strings.HasSuffix(r.URL.Path, "/noetag.ics") && r.Method == http.MethodPut:
			w.WriteHeader(http.StatusNoContent) // data rewritten: no ETag (RFC 4791 §5.3.4)
		case strings.HasSuffix(r.URL.Path, "/noetag.ics") && r.Method == "PROPFIND":
			multistatus(w, `<response><href>`+r.URL.Path+`</href><propstat><prop><getetag>"e9"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>`)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c := client(caldavx.Options{})
	ctx := testnet.Context(t, 5*time.Second)
	a := account(f.URL + "/home/")
	cal := f.URL + "/home/cal/"
	data := []byte("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")

	etag, err := c.PutObject(ctx, a, cal+"new.ics", data, "")
	if err != nil || etag != `"e1"` {
		t.Fatalf("create: %q, %v", etag, err)
	}
	if cl := f.Calls()[0]; cl.ifNoneMatch != "*" || cl.ifMatch != "" || cl.body != string(data) {
		t.Errorf("create sent If-None-Match %q If-Match %q body %q", cl.ifNoneMatch, cl.ifMatch, cl.body)
	}
	_, err = c.PutObject(ctx, a, cal+"stale.ics", data, "abc") // unquoted: gets quotes
	if pe := wantKind(t, err, provider.KindRejected); !errors.Is(err, caldavx.ErrPreconditionFailed) {
		t.Errorf("412 on PUT: %v, want ErrPreconditionFailed", pe)
	}
	if cl := f.Calls()[1]; cl.ifMatch != `"abc"` || cl.ifNoneMatch != "" {
		t.Errorf("update sent If-Match %q If-None-Match %q", cl.ifMatch, cl.ifNoneMatch)
	}
	err = c.DeleteObject(ctx, a, cal+"stale.ics", `"abc"`)
	if wantKind(t, err, provider.KindRejected); !errors.Is(err, caldavx.ErrPreconditionFailed) {
		t.Errorf("412 on DELETE: %v, want ErrPreconditionFailed", err)
	}
	if cl := f.Calls()[2]; cl.method != http.MethodDelete || cl.ifMatch != `"abc"` {
		t.Errorf("delete sent %s If-Match %q", cl.method, cl.ifMatch)
	}
	err = c.DeleteObject(ctx, a, cal+"gone.ics", "")
	if wantKind(t, err, provider.KindRejected); !errors.Is(err, caldavx.ErrNotFound) || errors.Is(err, caldavx.ErrPreconditionFailed) {
		t.Errorf("404 on DELETE: %v, want ErrNotFound only", err)
	}
	if cl := f.Calls()[3]; cl.ifMatch != "" {
		t.Errorf("unconditional delete sent If-Match %q", cl.ifMatch)
	}
	_, err = c.PutObject(ctx, a, cal+"denied.ics", data, `"x"`)
	pe := wantKind(t, err, provider.KindRejected)
	if errors.Is(err, caldavx.ErrPreconditionFailed) || !strings.Contains(pe.Text, "403") || !strings.Contains(pe.Text, "forbidden") {
		t.Errorf("403 on PUT: %v, want KindRejected with the server's text", err)
	}
	etag, err = c.PutObject(ctx, a, cal+"noetag.ics", data, `"e8"`)
	if err != nil || etag != `"e9"` {
		t.Errorf("PUT without ETag in the answer: %q, %v; want the ETag from a follow-up PROPFIND", etag, err)
	}
}

// 503 and 429 are retried, honouring Retry-After; when they persist the
// error is KindUnavailable after MaxRetries retries; a Retry-After past the
// deadline ends the wait at once.
func TestRetries(t *testing.T) {
	t.Parallel()
	ok := `<response><href>/home/</href><propstat><prop><resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>`
	t.Run("503 then success", func(t *testing.T) {
		t.Parallel()
		n := 0
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
			if n++; n == 1 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			multistatus(w, ok)
		})
		start := time.Now()
		cals, err := client(caldavx.Options{}).Calendars(testnet.Context(t, 5*time.Second), account(f.URL+"/home/"))
		if err != nil || len(cals) != 0 {
			t.Fatalf("Calendars = %v, %v", cals, err)
		}
		if el := time.Since(start); el < 900*time.Millisecond {
			t.Errorf("retried after %v, want Retry-After's 1 s", el)
		}
		if calls := f.Calls(); len(calls) != 2 || calls[1].body != calls[0].body || calls[1].method != "PROPFIND" {
			t.Errorf("calls = %+v, want the same PROPFIND twice", calls)
		}
	})
	t.Run("503 on PUT is retried too", func(t *testing.T) {
		t.Parallel()
		n := 0
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
			if n++; n < 3 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("ETag", `"ok"`)
			w.WriteHeader(http.StatusCreated)
		})
		etag, err := client(caldavx.Options{MaxRetries: 2}).PutObject(testnet.Context(t, 5*time.Second), account(f.URL+"/"), f.URL+"/c/x.ics", []byte("x"), "")
		if err != nil || etag != `"ok"` {
			t.Fatalf("PutObject = %q, %v", etag, err)
		}
		if calls := f.Calls(); len(calls) != 3 || calls[2].body != "x" || calls[2].ifNoneMatch != "*" {
			t.Errorf("calls = %+v, want the same PUT three times", calls)
		}
	})
	t.Run("persistent 503", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		})
		_, err := client(caldavx.Options{MaxRetries: 2}).Calendars(testnet.Context(t, 5*time.Second), account(f.URL+"/home/"))
		pe := wantKind(t, err, provider.KindUnavailable)
		if !strings.Contains(pe.Text, "503") || pe.Addr != f.Listener.Addr().String() {
			t.Errorf("error %v (Addr %q), want the 503 from %s", pe, pe.Addr, f.Listener.Addr())
		}
		if n := len(f.Calls()); n != 3 {
			t.Errorf("%d attempts, want 3 (MaxRetries 2)", n)
		}
	})
	t.Run("no retries", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
			w.WriteHeader(http.StatusTooManyRequests)
		})
		_, err := client(caldavx.Options{MaxRetries: -1}).Calendars(testnet.Context(t, 5*time.Second), account(f.URL+"/home/"))
		wantKind(t, err, provider.KindUnavailable)
		if n := len(f.Calls()); n != 1 {
			t.Errorf("%d attempts, want 1 (MaxRetries -1)", n)
		}
	})
	t.Run("Retry-After past the deadline", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		start := time.Now()
		_, err := client(caldavx.Options{}).Calendars(testnet.Context(t, 2*time.Second), account(f.URL+"/home/"))
		wantKind(t, err, provider.KindUnavailable)
		if el := time.Since(start); el > time.Second {
			t.Errorf("gave up after %v; a wait (capped at 5 s) that cannot end before the 2 s deadline should not start", el)
		}
	})
	t.Run("500 is not retried", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
			http.Error(w, "boom", http.StatusInternalServerError)
		})
		_, err := client(caldavx.Options{}).Calendars(testnet.Context(t, 5*time.Second), account(f.URL+"/home/"))
		wantKind(t, err, provider.KindUnavailable)
		if n := len(f.Calls()); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		addr := testnet.ClosedAddr(t)
		_, err := client(caldavx.Options{}).Calendars(testnet.Context(t, 5*time.Second), account("http://"+addr+"/home/"))
		if pe := wantKind(t, err, provider.KindUnavailable); pe.Addr != addr {
			t.Errorf("Addr = %q, want %s", pe.Addr, addr)
		}
	})
}

// sync-collection: the initial answer (the collection itself and
// sub-collections skipped, 404 members deleted), a truncated answer (507)
// followed up with its token, and a refused token.
func TestSyncCollection(t *testing.T) {
	t.Parallel()
	member := func(name, etag string) string {
		return `<response><href>/cal/` + name + `</href><propstat><prop><getetag>` + etag + `</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>`
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
		switch {
		case r.Method != "REPORT" || r.Header.Get("Depth") != "0":
			http.Error(w, "want REPORT, Depth 0", http.StatusBadRequest)
		case strings.Contains(body, "<d:sync-token></d:sync-token>"):
			multistatus(w, `<response><href>/cal/</href><propstat><prop><getetag>"self"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>`+
				member("a.ics", `"1"`)+member("sub/", `"x"`)+member("b.ics", `W/"2"`)+
				`<response><href>/cal/old.ics</href><status>HTTP/1.1 404 Not Found</status></response>`+
				`<sync-token>tok-1</sync-token>`)
		case strings.Contains(body, "<d:sync-token>tok-1</d:sync-token>"):
			// Truncated: the rest comes with tok-2.
			multistatus(w, member("a.ics", `"3"`)+`<response><href>/cal/</href><status>HTTP/1.1 507 Insufficient Storage</status></response><sync-token>tok-2</sync-token>`)
		case strings.Contains(body, "<d:sync-token>tok-2</d:sync-token>"):
			multistatus(w, `<response><href>/cal/b.ics</href><status>HTTP/1.1 404 Not Found</status></response><sync-token>tok-3</sync-token>`)
		case strings.Contains(body, "<d:sync-token>expired</d:sync-token>"):
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0"?><D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>`)
		case strings.Contains(body, "<d:sync-token>conflict</d:sync-token>"):
			w.WriteHeader(http.StatusConflict)
		default:
			http.Error(w, "Access to the requested resource forbidden.", http.StatusForbidden)
		}
	})
	c := client(caldavx.Options{})
	ctx := testnet.Context(t, 5*time.Second)
	a := account(f.URL + "/")
	cal := f.URL + "/cal/"

	changed, deleted, tok, err := c.SyncCollection(ctx, a, cal, "")
	if err != nil {
		t.Fatal(err)
	}
	wantChanged := fmt.Sprint([]caldavx.ObjectRef{{Href: cal + "a.ics", ETag: `"1"`}, {Href: cal + "b.ics", ETag: `W/"2"`}})
	if fmt.Sprint(changed) != wantChanged || fmt.Sprint(deleted) != fmt.Sprint([]string{cal + "old.ics"}) || tok != "tok-1" {
		t.Errorf("initial sync = %v %v %q, want %v [%sold.ics] tok-1", changed, deleted, tok, wantChanged, cal)
	}

	changed, deleted, tok, err = c.SyncCollection(ctx, a, cal, "tok-1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(changed) != fmt.Sprint([]caldavx.ObjectRef{{Href: cal + "a.ics", ETag: `"3"`}}) ||
		fmt.Sprint(deleted) != fmt.Sprint([]string{cal + "b.ics"}) || tok != "tok-3" {
		t.Errorf("truncated sync = %v %v %q, want a.ics changed, b.ics deleted, tok-3", changed, deleted, tok)
	}

	for _, bad := range []string{"expired", "conflict"} {
		_, _, _, err = c.SyncCollection(ctx, a, cal, bad)
		if wantKind(t, err, provider.KindRejected); !errors.Is(err, caldavx.ErrSyncTokenInvalid) {
			t.Errorf("token %q: %v, want ErrSyncTokenInvalid", bad, err)
		}
	}
	// A 403 without the precondition is a refusal, not a bad token.
	_, _, _, err = c.SyncCollection(ctx, a, cal, "other")
	if wantKind(t, err, provider.KindRejected); errors.Is(err, caldavx.ErrSyncTokenInvalid) {
		t.Errorf("plain 403: %v, want no ErrSyncTokenInvalid", err)
	}
}

// ListObjects keeps .ics members and text/calendar ones, drops the
// collection itself and sub-collections, and quotes bare ETags.
func TestListObjects(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
		if r.Method != "PROPFIND" || r.Header.Get("Depth") != "1" {
			http.Error(w, "want PROPFIND, Depth 1", http.StatusBadRequest)
			return
		}
		multistatus(w, `
<response><href>/cal/</href><propstat><prop><resourcetype><collection/></resourcetype><getetag>"c"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/cal/a.ics</href><propstat><prop><resourcetype/><getetag>abc</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/cal/b</href><propstat><prop><getcontenttype>text/calendar; component=vevent</getcontenttype><getetag>"b"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/cal/notes.txt</href><propstat><prop><getcontenttype>text/plain</getcontenttype><getetag>"n"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/cal/sub/</href><propstat><prop><resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>`)
	})
	refs, err := client(caldavx.Options{}).ListObjects(testnet.Context(t, 5*time.Second), account(f.URL+"/"), f.URL+"/cal")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]caldavx.ObjectRef{{Href: f.URL + "/cal/a.ics", ETag: `"abc"`}, {Href: f.URL + "/cal/b", ETag: `"b"`}})
	if fmt.Sprint(refs) != want {
		t.Errorf("ListObjects = %v, want %v", refs, want)
	}
}

// MKCALENDAR, PROPPATCH and DELETE of calendars: what is sent, and a
// PROPPATCH the server partly refuses.
func TestCalendarWrites(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
		switch r.Method {
		case "MKCALENDAR":
			w.WriteHeader(http.StatusCreated)
		case "PROPPATCH":
			if strings.Contains(body, "calendar-color") {
				multistatus(w, `<response><href>`+r.URL.Path+`</href><propstat><prop><displayname/></prop><status>HTTP/1.1 424 Failed Dependency</status></propstat><propstat><prop><calendar-color xmlns="http://apple.com/ns/ical/"/></prop><status>HTTP/1.1 403 Forbidden</status></propstat></response>`)
				return
			}
			multistatus(w, `<response><href>`+r.URL.Path+`</href><propstat><prop><displayname/></prop><status>HTTP/1.1 200 OK</status></propstat></response>`)
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c := client(caldavx.Options{})
	ctx := testnet.Context(t, 5*time.Second)
	a := account(f.URL + "/home") // no trailing slash: the home is a collection anyway

	u, err := c.CreateCalendar(ctx, a, caldavx.Calendar{Name: "Work <&>", Color: "#00FF00FF", Timezone: "Europe/Paris", Description: "d"})
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	if !strings.HasPrefix(u, f.URL+"/home/") || !strings.HasSuffix(u, "/") || len(strings.Split(pu.Path, "/")) != 4 {
		t.Errorf("calendar URL %q, want %s/home/<id>/", u, f.URL)
	}
	mk := f.Calls()[0]
	for _, want := range []string{"<d:displayname>Work &lt;&amp;&gt;</d:displayname>", "<a:calendar-color>#00FF00FF</a:calendar-color>",
		"<c:calendar-description>d</c:calendar-description>", "TZID:Europe/Paris&#xD;&#xA;", `<c:comp name="VEVENT"/>`} {
		if !strings.Contains(mk.body, want) {
			t.Errorf("MKCALENDAR body lacks %q:\n%s", want, mk.body)
		}
	}
	if mk.path != pu.EscapedPath() {
		t.Errorf("MKCALENDAR went to %s, returned %s", mk.path, pu.Path)
	}

	if err := c.UpdateCalendar(ctx, a, caldavx.Calendar{URL: u, Name: "New"}); err != nil {
		t.Fatal(err)
	}
	if body := f.Calls()[1].body; !strings.Contains(body, "<d:displayname>New</d:displayname>") || strings.Contains(body, "timezone") || strings.Contains(body, "color") {
		t.Errorf("PROPPATCH body %q: want the name only", body)
	}
	err = c.UpdateCalendar(ctx, a, caldavx.Calendar{URL: u, Name: "New", Color: "#FF0000FF"})
	if pe := wantKind(t, err, provider.KindRejected); !strings.Contains(pe.Text, "calendar-color 403") {
		t.Errorf("Text = %q, want the refused property", pe.Text)
	}
	if err := c.UpdateCalendar(ctx, a, caldavx.Calendar{URL: u}); err != nil || len(f.Calls()) != 3 {
		t.Errorf("empty update: %v after %d calls, want nothing sent", err, len(f.Calls()))
	}
	if _, err := c.CreateCalendar(ctx, a, caldavx.Calendar{Timezone: "Mars/Olympus_Mons"}); err == nil || provider.KindOf(err) != 0 {
		t.Errorf("unknown time zone: %v, want a plain error", err)
	}

	if err := c.DeleteCalendar(ctx, a, u); err != nil {
		t.Fatal(err)
	}
	if cl := f.Calls()[len(f.Calls())-1]; cl.method != http.MethodDelete || cl.path != pu.EscapedPath() {
		t.Errorf("last call %s %s, want DELETE %s", cl.method, cl.path, pu.Path)
	}
	n := len(f.Calls())
	if err := c.DeleteCalendar(ctx, a, f.URL+"/home/"); err == nil || len(f.Calls()) != n {
		t.Errorf("deleting the home: %v, want refused without a request", err)
	}
}

// The default calendar: not on the home, but on the scheduling inbox that
// the principal names (iCloud); none at all on servers without RFC 6638.
func TestDefaultCalendarURL(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) {
		switch r.URL.Path {
		case "/123/calendars/":
			multistatus(w, `<response><href>/123/calendars/</href><propstat><prop><current-user-principal><href>/123/principal/</href></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat><propstat><prop><schedule-default-calendar-URL xmlns="urn:ietf:params:xml:ns:caldav"/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>`)
		case "/123/principal/":
			multistatus(w, `<response><href>/principal/</href><propstat><prop><schedule-inbox-URL xmlns="urn:ietf:params:xml:ns:caldav"><href>/123/calendars/inbox/</href></schedule-inbox-URL></prop><status>HTTP/1.1 200 OK</status></propstat></response>`)
		case "/123/calendars/inbox/":
			multistatus(w, `<response><href>/123/calendars/inbox/</href><propstat><prop><schedule-default-calendar-URL xmlns="urn:ietf:params:xml:ns:caldav"><href>/123/calendars/home/</href></schedule-default-calendar-URL></prop><status>HTTP/1.1 200 OK</status></propstat></response>`)
		case "/456/":
			multistatus(w, `<response><href>/456/</href><propstat><prop><current-user-principal><href>/456/</href></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat></response>`)
		default:
			http.NotFound(w, r)
		}
	})
	c := client(caldavx.Options{})
	ctx := testnet.Context(t, 5*time.Second)
	got, err := c.DefaultCalendarURL(ctx, account(f.URL+"/123/calendars/"))
	if want := f.URL + "/123/calendars/home/"; err != nil || got != want {
		t.Errorf("DefaultCalendarURL = %q, %v; want %q", got, err, want)
	}
	got, err = c.DefaultCalendarURL(ctx, account(f.URL+"/456/"))
	if err != nil || got != "" {
		t.Errorf("without RFC 6638: %q, %v; want \"\"", got, err)
	}
}

// Deadlines: a server that never answers costs the context's deadline, or
// Options.Timeout when the context has none, and the error is KindTimeout.
func TestTimeout(t *testing.T) {
	t.Parallel()
	providertest.Stalled(t, "silent server", "caldav", time.Second, func(t *testing.T) func(ctx context.Context) error {
		addr := testnet.Silent(t, nil, false)
		c := caldavx.New(caldavx.Options{Timeout: time.Second})
		return func(ctx context.Context) error {
			_, err := c.Calendars(ctx, account("http://"+addr+"/home/"))
			return err
		}
	}, password)
	providertest.WantCancelled(t, "caldav", func(ctx context.Context) error {
		addr := testnet.Silent(t, nil, false)
		_, err := client(caldavx.Options{}).Calendars(ctx, account("http://"+addr+"/home/"))
		return err
	})
}

// TLS: an untrusted certificate is KindTLS, and so is a redirect from https
// to http (the credentials would follow it in the clear).
func TestTLS(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	plain := newFake(t, func(w http.ResponseWriter, r *http.Request, body string) { multistatus(w, "") })
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/", http.StatusMovedPermanently)
	}))
	srv.TLS = ca.ServerConfig(t)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx := testnet.Context(t, 5*time.Second)

	_, err := client(caldavx.Options{}).Discover(ctx, srv.URL, account(""))
	wantKind(t, err, provider.KindTLS)
	_, err = client(caldavx.Options{TLSConfig: ca.ClientConfig()}).Discover(ctx, srv.URL, account(""))
	wantKind(t, err, provider.KindTLS)
	if n := len(plain.Calls()); n != 0 {
		t.Errorf("the http server got %d requests", n)
	}
}
