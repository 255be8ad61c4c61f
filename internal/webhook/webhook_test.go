package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSign(t *testing.T) {
	// RFC 4231-style known answer (the HMAC-SHA256 example of Wikipedia).
	got := Sign([]byte("key"), []byte("The quick brown fox jumps over the lazy dog"))
	if want := "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerifyURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.URL.Query().Get("challenge")
		switch r.URL.Path {
		case "/echo":
			if r.URL.Query().Get("token") != "abc" {
				http.Error(w, "lost the query", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(c))
		case "/newline":
			_, _ = w.Write([]byte(c + "\n"))
		case "/json":
			_ = json.NewEncoder(w).Encode(map[string]string{"challenge": c})
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	ctx := context.Background()
	if err := VerifyURL(ctx, srv.Client(), srv.URL+"/echo?token=abc"); err != nil {
		t.Fatalf("echo: %v", err)
	}
	for _, tc := range []struct {
		url, want string
	}{
		{srv.URL + "/newline", "body is not the challenge"},
		{srv.URL + "/json", "body is not the challenge"},
		{srv.URL + "/missing", "404 Not Found"},
		{srv.URL + "/slow", "did not answer within 200ms"},
		{closed.URL + "/x", "connection refused"},
		{"ftp://example.com/x", "not an http or https URL"},
		{"no scheme", "not an http or https URL"},
	} {
		err := verifyURL(ctx, srv.Client(), tc.url, 200*time.Millisecond)
		if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrVerification saying %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "challenge=") && !strings.Contains(err.Error(), "challenge=…") {
			t.Errorf("%s: the error repeats the challenge: %v", tc.url, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := VerifyURL(cctx, srv.Client(), srv.URL+"/echo"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v, want context.Canceled (the caller's, not the URL's fault)", err)
	}
}

func TestWithAttempt(t *testing.T) {
	env, err := layout(Notification{ApplicationID: "app", Type: "folder.created", Source: SourceMail,
		Object: json.RawMessage(`{"id":"f1","name":"a,\"data\":b"}`)}, "folder.created", json.RawMessage(`{"id":"f1","name":"a,\"data\":b"}`), time.Unix(1723821985, 0))
	if err != nil {
		t.Fatal(err)
	}
	got, err := withAttempt(env.payload("n1"), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"specversion":"1.0","type":"folder.created","source":"/imap/emails/realtime","id":"n1","time":1723821985,` +
		`"webhook_delivery_attempt":3,"data":{"application_id":"app","object":{"id":"f1","name":"a,\"data\":b"}}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for in, want := range map[string]string{
		`{"a":1}`: `{"webhook_delivery_attempt":2,"a":1}`,
		`{}`:      `{"webhook_delivery_attempt":2}`,
	} {
		got, err := withAttempt([]byte(in), 2)
		if err != nil || string(got) != want {
			t.Errorf("withAttempt(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := withAttempt([]byte(`[1]`), 1); err == nil {
		t.Error("withAttempt of an array: no error")
	}
}

func TestMock(t *testing.T) {
	for _, typ := range Triggers() {
		raw, err := Mock(typ)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		var e gotEnvelope
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s: %v: %s", typ, err, raw)
		}
		var obj map[string]any
		if err := json.Unmarshal(e.Data.Object, &obj); err != nil {
			t.Fatalf("%s: object: %v", typ, err)
		}
		if e.Type != typ || e.SpecVersion != "1.0" || e.Attempt != 1 || e.ID == "" || e.Time == 0 || e.Source == "" {
			t.Errorf("%s: envelope %s", typ, raw)
		}
		_, hasBody := obj["body"]
		if wantBody := typ == "message.created" || typ == "message.updated"; hasBody != wantBody {
			t.Errorf("%s: body present %v, want %v", typ, hasBody, wantBody)
		}
		if strings.HasPrefix(typ, "grant.") && obj["code"] == nil {
			t.Errorf("%s: no code: %s", typ, raw)
		}
	}
	if _, err := Mock("message.opened"); !errors.Is(err, ErrUnknownTrigger) {
		t.Errorf("unknown trigger: %v", err)
	}
}

func TestSendTest(t *testing.T) {
	var got []arrival
	rc := newReceiver(t)
	rc.secret = []byte(MockSecret)
	ctx := context.Background()
	if err := SendTest(ctx, nil, rc.srv.URL+"/hook", "event.created"); err != nil {
		t.Fatal(err)
	}
	got = rc.arrivals()
	if len(got) != 1 || got[0].env.Type != "event.created" {
		t.Fatalf("arrivals %+v", got)
	}
	rc.setRespond(func(arrival) int { return http.StatusServiceUnavailable })
	if err := SendTest(ctx, nil, rc.srv.URL+"/hook", "event.created"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v", err)
	}
	if err := SendTest(ctx, nil, rc.srv.URL+"/hook", "nope"); !errors.Is(err, ErrUnknownTrigger) {
		t.Errorf("unknown trigger: %v", err)
	}
}

func TestBuildEnvelope(t *testing.T) {
	obj := json.RawMessage(`{"object":"message","id":"m1","body":"` + strings.Repeat("x", 2000) + `","raw_mime":"eA","subject":"<b>"}`)
	n := Notification{ApplicationID: "app", Type: "message.created", Source: SourceMail, Object: obj}
	env, err := buildEnvelope(n, time.Unix(5, 0), 10_000)
	if err != nil || env.typ != "message.created" || strings.Contains(string(env.payload("x")), "grant_id") {
		t.Fatalf("small: %v %s", err, env.payload("x"))
	}
	if !strings.Contains(string(env.payload("x")), `"subject":"<b>"`) {
		t.Errorf("HTML escaped: %s", env.payload("x"))
	}
	env, err = buildEnvelope(n, time.Unix(5, 0), 1000)
	if err != nil || env.typ != "message.created.truncated" {
		t.Fatalf("large: %v %s", err, env.typ)
	}
	p := string(env.payload("x"))
	if strings.Contains(p, `"body"`) || strings.Contains(p, `"raw_mime"`) || !strings.Contains(p, `"id":"m1"`) {
		t.Errorf("truncated: %s", p)
	}
	// Only message.* types are truncated.
	n.Type = "event.created"
	if env, _ = buildEnvelope(n, time.Unix(5, 0), 1000); env.typ != "event.created" {
		t.Errorf("event truncated: %s", env.typ)
	}
	n.Type, n.GrantID = "message.created", "g1"
	n.Object = json.RawMessage(`not json`)
	if _, err := buildEnvelope(n, time.Unix(5, 0), 1000); err == nil {
		t.Error("invalid object: no error")
	}
}

func TestDefaultBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 10 * time.Second, 1: 10 * time.Second, 2: time.Minute, 3: 5 * time.Minute,
		4: 15 * time.Minute, 5: 30 * time.Minute, 6: time.Hour, 60: time.Hour} {
		for range 50 {
			got := DefaultBackoff(n)
			if got < want*8/10 || got > want*12/10 {
				t.Fatalf("DefaultBackoff(%d) = %v, want %v ± 20 %%", n, got, want)
			}
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		"-5":                            0,
		"99999":                         time.Hour,
		"Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second,
		"soon":                          0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	r := newRig(t)
	o := r.options()
	o.Lease = o.AttemptTimeout
	if _, err := New(o); err == nil {
		t.Error("Lease == AttemptTimeout accepted")
	}
	o = r.options()
	o.Retention = time.Hour
	if _, err := New(o); err == nil {
		t.Error("Retention shorter than the health window accepted")
	}
	o = r.options()
	o.Renderer = nil
	if _, err := New(o); err == nil {
		t.Error("no Renderer accepted")
	}
	d, err := New(r.options())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, "Run to start", d.running.Load)
	if err := d.Run(ctx); err == nil {
		t.Error("second Run at once: no error")
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}
