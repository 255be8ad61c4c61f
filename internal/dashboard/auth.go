package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
)

const (
	sessionCookie  = "orchard_dashboard"
	sessionPurpose = "dashboard-session"
	sessionTTL     = 12 * time.Hour
)

// session is who is signed in. It is rebuilt from the signed cookie on
// every request and checked against the current configuration and keys.
type session struct {
	Admin bool
	AppID string // API-key operator: the only application they operate
	KeyID string // the key the session was opened with
}

// The cookie payload is "admin" or "key\x00<app>\x00<key id>": ids only,
// as a signed value is readable by whoever holds it.
func (s session) encode() []byte {
	if s.Admin {
		return []byte("admin")
	}
	return []byte("key\x00" + s.AppID + "\x00" + s.KeyID)
}

func decodeSession(b []byte) (session, bool) {
	if string(b) == "admin" {
		return session{Admin: true}, true
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 || parts[0] != "key" || parts[1] == "" || parts[2] == "" {
		return session{}, false
	}
	return session{AppID: parts[1], KeyID: parts[2]}, true
}

// session returns the request's live session, or nil. An admin session
// ends when the admin password is unset; an API-key session ends when its
// key is revoked (a revocation dated in the future lets it run until then,
// like the API does), so revoking a leaked key also locks its holder out
// of the dashboard.
func (d *dashboard) session(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	payload, ok := d.Signer.Verify(sessionPurpose, c.Value)
	if !ok {
		return nil
	}
	s, ok := decodeSession(payload)
	if !ok {
		return nil
	}
	if s.Admin {
		if d.AdminPassword == "" {
			return nil
		}
		return &s
	}
	keys, err := d.Backend.APIKeys(r.Context(), s.AppID)
	if err != nil {
		d.logError(r, "check session key", err)
		return nil
	}
	for _, k := range keys {
		if k.ID == s.KeyID && live(k, d.Now()) {
			return &s
		}
	}
	return nil
}

func live(k store.APIKey, now time.Time) bool {
	return k.RevokedAt == nil || k.RevokedAt.After(now)
}

type loginData struct {
	AdminEnabled bool
}

func (d *dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if d.session(r) != nil {
		http.Redirect(w, r, Base, http.StatusSeeOther)
		return
	}
	d.renderLogin(w, r, http.StatusOK, "")
}

func (d *dashboard) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d.render(w, r, status, "login", &view{Title: "Sign in", Heading: "Sign in to the Orchard dashboard",
		Error: msg, Data: loginData{AdminEnabled: d.AdminPassword != ""}})
}

func (d *dashboard) login(w http.ResponseWriter, r *http.Request) {
	ip := service.ClientInfoOf(r).IP
	if ok, retry := d.SignInLimiter.Allow("dashboard:" + ip); !ok {
		secs := int(math.Ceil(retry.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		d.Logger.Warn("dashboard: sign-in attempts limited", "ip", ip)
		d.renderLogin(w, r, http.StatusTooManyRequests,
			fmt.Sprintf("Too many sign-in attempts from your address. Try again in %s.", humanDuration(retry)))
		return
	}
	password := r.PostFormValue("password")
	key := strings.TrimSpace(r.PostFormValue("api_key"))
	if password == "" && key == "" {
		d.renderLogin(w, r, http.StatusBadRequest, "Enter the admin password or an API key.")
		return
	}

	var s *session
	if password != "" && d.AdminPassword != "" && equalSecret(password, d.AdminPassword) {
		s = &session{Admin: true}
	} else if key != "" {
		var err error
		s, err = d.keySession(r, key)
		if err != nil {
			d.logError(r, "sign in with API key", err)
			d.renderLogin(w, r, http.StatusInternalServerError, "internal error")
			return
		}
	}
	if s == nil {
		d.Logger.Warn("dashboard: sign-in refused", "ip", ip)
		d.renderLogin(w, r, http.StatusUnauthorized, "Wrong password or API key.")
		return
	}

	d.SignInLimiter.Reset("dashboard:" + ip)
	expires := d.Now().Add(sessionTTL)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: d.Signer.Sign(sessionPurpose, s.encode(), expires),
		Path: Base, MaxAge: int(sessionTTL / time.Second), HttpOnly: true,
		Secure: d.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	if s.Admin {
		d.Logger.Info("dashboard: signed in", "as", "admin", "ip", ip)
	} else {
		d.Logger.Info("dashboard: signed in", "as", "api_key", "application_id", s.AppID, "api_key_id", s.KeyID, "ip", ip)
	}
	http.Redirect(w, r, Base, http.StatusSeeOther)
}

// keySession opens a session for an API key, bound to the key's id so
// that revoking the key ends it. A nil session means wrong credentials.
func (d *dashboard) keySession(r *http.Request, key string) (*session, error) {
	appID, err := d.Backend.AuthenticateAPIKey(r.Context(), key)
	if err != nil {
		var se *service.Error
		if errors.As(err, &se) {
			return nil, nil
		}
		return nil, err
	}
	keys, err := d.Backend.APIKeys(r.Context(), appID)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(key))
	for _, k := range keys {
		byHash := len(k.Hash) > 0 && subtle.ConstantTimeCompare(k.Hash, sum[:]) == 1
		byPrefix := len(k.Hash) == 0 && len(k.Prefix) >= 8 && strings.HasPrefix(key, k.Prefix)
		if (byHash || byPrefix) && live(k, d.Now()) {
			return &session{AppID: appID, KeyID: k.ID}, nil
		}
	}
	// The key authenticated but is not among its application's live keys:
	// refuse rather than open a session that revocation could not end.
	d.Logger.Warn("dashboard: an authenticated API key is not listed by its application", "application_id", appID)
	return nil, nil
}

// equalSecret compares in constant time, also in the length, by comparing
// digests.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// clientIP is the peer address. Forwarded headers are not trusted: anyone
// can send them, which would let one client spread its guesses over any
// number of made-up addresses.
func humanDuration(d time.Duration) string {
	if d < time.Minute {
		secs := int(math.Ceil(d.Seconds()))
		if secs <= 1 {
			return "1 second"
		}
		return strconv.Itoa(secs) + " seconds"
	}
	mins := int(math.Ceil(d.Minutes()))
	if mins == 1 {
		return "1 minute"
	}
	return strconv.Itoa(mins) + " minutes"
}

func (d *dashboard) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: Base, MaxAge: -1, HttpOnly: true,
		Secure: d.SecureCookies, SameSite: http.SameSiteLaxMode})
	d.redirect(w, r, Base+"/login", "signed-out")
}

// home is the start page: the application list for the admin, the
// application itself for an API-key operator.
func (d *dashboard) home(w http.ResponseWriter, r *http.Request, s *session) {
	if s.Admin {
		d.appsPage(w, r, s)
		return
	}
	a, err := d.app(r.Context(), s.AppID)
	if err != nil {
		d.fail(w, r, s, "list applications", err)
		return
	}
	if a == nil {
		d.notFound(w, r, s)
		return
	}
	d.overview(w, r, s, a)
}
