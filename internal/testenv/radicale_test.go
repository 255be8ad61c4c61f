package testenv

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// radicaleStatus sends an authenticated request to Radicale and returns the
// status.
func radicaleStatus(t *testing.T, e *Env, hc *http.Client, method, path string, u User) int {
	t.Helper()
	req, err := http.NewRequest(method, e.CalDAVURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(u.Email, u.Password)
	if method == "PROPFIND" {
		req.Header.Set("Depth", "0")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// NewUser's Radicale half: the user can log in at once (no restart, no
// wait: Radicale reads the htpasswd file per login), owns its home, and is
// gone with its collections when its test ends. The other users still log
// in afterwards (the file was rewritten, not truncated).
func TestNewUserRadicale(t *testing.T) {
	e := Get(t)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CAPool(t)}}}
	var u User
	t.Run("while the test runs", func(t *testing.T) {
		u = e.NewUser(t)
		home := "/" + url.PathEscape(u.Email) + "/"
		if got := radicaleStatus(t, e, hc, "PROPFIND", "/", u); got != http.StatusMultiStatus {
			t.Fatalf("PROPFIND / as the new user: %d, want 207", got)
		}
		if got := radicaleStatus(t, e, hc, "MKCALENDAR", home+"cal/", u); got != http.StatusCreated {
			t.Fatalf("MKCALENDAR in its home: %d, want 201", got)
		}
		if _, err := os.Stat(e.RadicaleCollections(u.Email)); err != nil {
			t.Fatalf("collections not where expected: %v", err)
		}
		wrong := User{Email: u.Email, Password: "wrong-" + u.Password}
		if got := radicaleStatus(t, e, hc, "PROPFIND", "/", wrong); got != http.StatusUnauthorized {
			t.Errorf("wrong password: %d, want 401", got)
		}
	})
	if u.Email == "" {
		t.FailNow()
	}
	if got := radicaleStatus(t, e, hc, "PROPFIND", "/", u); got != http.StatusUnauthorized {
		t.Errorf("after cleanup: PROPFIND as the removed user: %d, want 401", got)
	}
	if _, err := os.Stat(e.RadicaleCollections(u.Email)); !os.IsNotExist(err) {
		t.Errorf("after cleanup: collections still there (%v)", err)
	}
	data, err := os.ReadFile(e.RadicaleUsers)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), u.Email) {
		t.Errorf("after cleanup: %s still lists %s", e.RadicaleUsers, u.Email)
	}
	if got := radicaleStatus(t, e, hc, "PROPFIND", "/", e.User(t, 0)); got != http.StatusMultiStatus {
		t.Errorf("PROPFIND / as %s: %d, want 207", e.User(t, 0).Email, got)
	}
}
