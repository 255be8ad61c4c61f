package webui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSigner(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := NewSigner([]byte("k1"), func() time.Time { return now })
	v := s.Sign("session", []byte("app-1"), now.Add(time.Hour))
	if got, ok := s.Verify("session", v); !ok || string(got) != "app-1" {
		t.Fatalf("Verify = %q, %v", got, ok)
	}
	if _, ok := s.Verify("other", v); ok {
		t.Fatal("a value verified for another purpose")
	}
	if _, ok := NewSigner([]byte("k2"), nil).Verify("session", v); ok {
		t.Fatal("a value verified under another key")
	}
	tampered := strings.Replace(v, v[:4], "AAAA", 1)
	if _, ok := s.Verify("session", tampered); ok && tampered != v {
		t.Fatal("a tampered value verified")
	}
	for _, bad := range []string{"", ".", "x.y", "AAAA"} {
		if _, ok := s.Verify("session", bad); ok {
			t.Fatalf("%q verified", bad)
		}
	}
	now = now.Add(time.Hour)
	if _, ok := s.Verify("session", v); ok {
		t.Fatal("an expired value verified")
	}
}

func TestCSRF(t *testing.T) {
	c := NewCSRF([]byte("key"), true)
	rec := httptest.NewRecorder()
	token := c.Token(rec, httptest.NewRequest("GET", "/", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || !cookies[0].Secure || cookies[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie = %+v", cookies)
	}
	post := func(cookie *http.Cookie, token string) bool {
		form := url.Values{}
		if token != "" {
			form.Set(CSRFField, token)
		}
		r := httptest.NewRequest("POST", "/", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != nil {
			r.AddCookie(cookie)
		}
		return c.Check(r)
	}
	if !post(cookies[0], token) {
		t.Fatal("the right token was refused")
	}
	if post(cookies[0], "") || post(nil, token) || post(cookies[0], token+"x") {
		t.Fatal("a missing or wrong token passed")
	}
	other := &http.Cookie{Name: csrfCookie, Value: strings.Repeat("b", 43)}
	if post(other, token) {
		t.Fatal("a token passed with another browser's cookie")
	}
	// A browser that has the cookie keeps it: the token stays the same.
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookies[0])
	rec2 := httptest.NewRecorder()
	if c.Token(rec2, r) != token || len(rec2.Result().Cookies()) != 0 {
		t.Fatal("the token changed for a browser that had a cookie")
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewLimiter(3, time.Minute, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
		now = now.Add(10 * time.Second)
	}
	ok, retry := l.Allow("a")
	if ok || retry != 30*time.Second {
		t.Fatalf("4th attempt: ok=%v retry=%v, want refused, 30s", ok, retry)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key was limited")
	}
	now = now.Add(30 * time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("refused after the oldest attempt left the window")
	}
	l.Reset("a")
	for range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatal("refused after Reset")
		}
	}
}

func TestStaticAndHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	Static().ServeHTTP(rec, httptest.NewRequest("GET", StaticPrefix+"style.css", nil))
	if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Type"), "text/css") || !strings.Contains(rec.Body.String(), ".card") {
		t.Fatalf("style.css: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	rec = httptest.NewRecorder()
	SecureHeaders(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy", "Cache-Control"} {
		if rec.Header().Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
}

func TestSeal(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := NewSigner([]byte("k1"), func() time.Time { return now })
	v := s.Seal("reveal", []byte("the-secret"), now.Add(time.Minute))
	if strings.Contains(v, "the-secret") {
		t.Fatal("the payload is readable in the sealed value")
	}
	if got, ok := s.Open("reveal", v); !ok || string(got) != "the-secret" {
		t.Fatalf("Open = %q, %v", got, ok)
	}
	if _, ok := s.Open("other", v); ok {
		t.Fatal("opened for another purpose")
	}
	if _, ok := NewSigner([]byte("k2"), nil).Open("reveal", v); ok {
		t.Fatal("opened under another key")
	}
	if _, ok := s.Open("reveal", v[:len(v)-2]+"AA"); ok {
		t.Fatal("a tampered value opened")
	}
	now = now.Add(time.Minute)
	if _, ok := s.Open("reveal", v); ok {
		t.Fatal("an expired value opened")
	}
}
