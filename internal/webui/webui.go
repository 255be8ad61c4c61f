// Package webui is what Orchard's browser-facing pages share: the hosted
// login pages (internal/hostedauth) and the operator dashboard
// (internal/dashboard). It holds CSRF tokens, signed cookie values, the
// security headers every page gets, and the embedded stylesheet, so that
// both sets of pages are protected the same way and look alike.
//
// Pages are server-rendered and work without JavaScript; nothing is loaded
// from outside the binary.
package webui

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"time"
)

//go:embed static
var staticFiles embed.FS

// StaticPrefix is where Static is mounted; templates link to
// StaticPrefix + "style.css".
const StaticPrefix = "/static/"

// Static serves the embedded assets under StaticPrefix.
func Static() http.Handler {
	files := http.FileServerFS(staticFiles)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/static/" + strings.TrimPrefix(r.URL.Path, StaticPrefix)
		files.ServeHTTP(w, r2)
	})
}

// SecureHeaders sets the headers every page carries: no framing
// (clickjacking of the login form), no scripts or resources from anywhere
// but Orchard itself, no referrer (the page URLs carry state and codes), and
// no caching of pages that may show a secret once.
func SecureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// Signer makes tamper-proof, expiring cookie values with an HMAC key.
type Signer struct {
	key []byte
	now func() time.Time
}

// NewSigner returns a Signer; key should be 32 random bytes that are the
// installation's own (see secret.Derive). now may be nil (time.Now).
func NewSigner(key []byte, now func() time.Time) *Signer {
	if now == nil {
		now = time.Now
	}
	return &Signer{key: append([]byte(nil), key...), now: now}
}

// Sign returns an opaque string carrying payload until expires. The payload
// is readable by whoever holds the string (it is not encrypted): put ids in
// it, never secrets.
func (s *Signer) Sign(purpose string, payload []byte, expires time.Time) string {
	var exp [8]byte
	binary.BigEndian.PutUint64(exp[:], uint64(expires.Unix()))
	body := append(exp[:], payload...)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(s.mac(purpose, body))
}

// Verify returns the payload of a value made by Sign for the same purpose,
// or false when it was altered, made for another purpose or has expired.
func (s *Signer) Verify(purpose, value string) ([]byte, bool) {
	b64, sig64, ok := strings.Cut(value, ".")
	if !ok {
		return nil, false
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b64)
	sig, err2 := base64.RawURLEncoding.DecodeString(sig64)
	if err1 != nil || err2 != nil || len(body) < 8 || !hmac.Equal(sig, s.mac(purpose, body)) {
		return nil, false
	}
	if s.now().Unix() >= int64(binary.BigEndian.Uint64(body[:8])) {
		return nil, false
	}
	return body[8:], true
}

func (s *Signer) mac(purpose string, body []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)
}

// CSRF protects forms with the double-submit pattern: a random value in a
// cookie, and in every form a token that is the HMAC of that value. A
// cross-site form cannot read the cookie, so it cannot make the token.
type CSRF struct {
	key    []byte
	secure bool
}

const (
	csrfCookie = "orchard_csrf"
	// CSRFField is the form field that carries the token.
	CSRFField = "csrf_token"
)

// NewCSRF returns CSRF protection keyed by key; secureCookies marks the
// cookie Secure (when Orchard is served over HTTPS).
func NewCSRF(key []byte, secureCookies bool) *CSRF {
	return &CSRF{key: append([]byte(nil), key...), secure: secureCookies}
}

// Token returns the token for the forms of this response, setting the
// cookie when the browser has none yet.
func (c *CSRF) Token(w http.ResponseWriter, r *http.Request) string {
	value := ""
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
		value = ck.Value
	} else {
		var raw [32]byte
		_, _ = rand.Read(raw[:])
		value = base64.RawURLEncoding.EncodeToString(raw[:])
		http.SetCookie(w, &http.Cookie{
			Name: csrfCookie, Value: value, Path: "/", HttpOnly: true,
			Secure: c.secure, SameSite: http.SameSiteLaxMode,
		})
	}
	return c.tokenFor(value)
}

// Check reports whether a POSTed form carries the token matching its
// cookie. It parses the form (the caller's body limit applies).
func (c *CSRF) Check(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil || len(ck.Value) < 32 {
		return false
	}
	got := r.PostFormValue(CSRFField)
	return got != "" && hmac.Equal([]byte(got), []byte(c.tokenFor(ck.Value)))
}

func (c *CSRF) tokenFor(cookieValue string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("csrf\x00"))
	m.Write([]byte(cookieValue))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Seal is Sign for payloads that must stay secret from whoever holds the
// value (a one-time secret carried from a POST to the page that shows it):
// AES-GCM under a key of its own, bound to purpose, expiring like Sign's.
func (s *Signer) Seal(purpose string, payload []byte, expires time.Time) string {
	aead := s.aead()
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	var exp [8]byte
	binary.BigEndian.PutUint64(exp[:], uint64(expires.Unix()))
	sealed := aead.Seal(nil, nonce, append(exp[:], payload...), []byte(purpose))
	return base64.RawURLEncoding.EncodeToString(append(nonce, sealed...))
}

// Open returns the payload of a value made by Seal for the same purpose,
// or false when it was altered, made for another purpose or has expired.
func (s *Signer) Open(purpose, value string) ([]byte, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	aead := s.aead()
	if err != nil || len(raw) < aead.NonceSize() {
		return nil, false
	}
	body, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(purpose))
	if err != nil || len(body) < 8 || s.now().Unix() >= int64(binary.BigEndian.Uint64(body[:8])) {
		return nil, false
	}
	return body[8:], true
}

func (s *Signer) aead() cipher.AEAD {
	block, _ := aes.NewCipher(s.mac("seal", nil)) // a 32-byte key: AES-256 never fails
	aead, _ := cipher.NewGCM(block)
	return aead
}
