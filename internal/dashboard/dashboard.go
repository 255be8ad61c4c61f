// Package dashboard is Orchard's operator web UI, served under /dashboard:
// the self-hosted counterpart of the Nylas Dashboard. An operator signs in
// and manages applications and their API keys, connectors, redirect
// (callback) URIs, grants with their sync progress, and webhooks with their
// recent deliveries.
//
// The pages are rendered on the server with html/template and use no
// JavaScript, so they work with a keyboard, a screen reader or a phone,
// under a Content-Security-Policy that forbids scripts and inline styles.
//
// Security model:
//
//   - Sign-in takes the installation's admin password (compared in constant
//     time) or an application's API key. Attempts are limited per client IP
//     so that neither can be guessed quickly from one address.
//   - The session is a cookie signed by webui.Signer (purpose
//     "dashboard-session"), HttpOnly, SameSite=Lax and valid for 12 hours.
//     It carries only identifiers, never a secret. An API-key session names
//     the key it was opened with and ends as soon as that key is revoked.
//   - Operator scopes: the admin operates every application; an API-key
//     operator operates only the key's application, and every page of
//     another application answers 404, so that they cannot even learn
//     which application ids exist.
//   - Every POST carries a webui.CSRF token that is checked before anything
//     else, the sign-in form included (so that no other site can sign a
//     browser into an account of its choosing).
//   - Secrets made here (API keys, webhook secrets) are shown once, in the
//     response to the POST that made them, and are never put in cookies,
//     URLs or logs. Flash messages after a redirect are fixed texts chosen
//     by key, so nothing from a URL is ever reflected onto a page.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/webui"
)

// Backend is what the dashboard needs of Orchard; *service.Service
// satisfies it. Errors of type *service.Error carry a message fit for the
// operator; any other error is shown as "internal error" and logged.
type Backend interface {
	Applications(ctx context.Context) ([]store.Application, error)
	CreateApplication(ctx context.Context, name string) (*store.Application, string, error)

	APIKeys(ctx context.Context, appID string) ([]store.APIKey, error)
	CreateAPIKey(ctx context.Context, appID, name string) (string, error)
	RevokeAPIKey(ctx context.Context, appID, keyID string) error
	AuthenticateAPIKey(ctx context.Context, key string) (string, error)

	Connectors(ctx context.Context, appID string, limit, offset int) ([]api.Connector, error)
	CreateConnector(ctx context.Context, appID string, in service.ConnectorInput) (*api.Connector, error)
	DeleteConnector(ctx context.Context, appID, provider string) error

	RedirectURIs(ctx context.Context, appID string) ([]api.RedirectURI, error)
	CreateRedirectURI(ctx context.Context, appID string, in service.RedirectURIInput) (*api.RedirectURI, error)
	DeleteRedirectURI(ctx context.Context, appID, id string) error

	Grants(ctx context.Context, appID string, f store.GrantFilter) ([]api.Grant, error)
	Grant(ctx context.Context, appID, ref string) (*store.Grant, error)
	DeleteGrant(ctx context.Context, appID, ref string) error
	SyncStatus(ctx context.Context, appID, grantRef string) (*api.SyncStatus, error)

	Webhooks(ctx context.Context, appID string) ([]store.Webhook, error)
	Webhook(ctx context.Context, appID, id string) (*store.Webhook, error)
	CreateWebhook(ctx context.Context, appID string, in service.WebhookInput) (*store.Webhook, string, error)
	UpdateWebhook(ctx context.Context, appID, id string, in service.WebhookInput) (*store.Webhook, error)
	WebhookDeliveries(ctx context.Context, appID, id string, limit int) ([]store.Delivery, error)
	SendTestEvent(ctx context.Context, triggerType, url string) error
}

var _ Backend = (*service.Service)(nil)

// Options configure the dashboard.
type Options struct {
	Backend       Backend
	CSRF          *webui.CSRF
	Signer        *webui.Signer
	SignInLimiter *webui.Limiter // nil: 10 attempts per 15 minutes per client IP
	AdminPassword string         // "": only API-key sign-in
	PublicURL     string         // base of hosted re-authentication links, no trailing slash
	SecureCookies bool
	Logger        *slog.Logger     // nil: discard
	Now           func() time.Time // nil: time.Now
}

// Base is the path the dashboard is mounted at.
const Base = "/dashboard"

// maxFormBytes bounds POST bodies: every form here is a few short fields.
const maxFormBytes = 64 << 10

//go:embed templates/*.html
var templateFiles embed.FS

type dashboard struct {
	Options
	pages map[string]*template.Template
}

// New returns the handler of every path under /dashboard; the caller mounts
// it at "/dashboard" and "/dashboard/" (without stripping the prefix) and
// serves webui.Static at webui.StaticPrefix. It panics when Backend, CSRF or
// Signer is nil, as the dashboard cannot work without them.
func New(o Options) http.Handler {
	if o.Backend == nil || o.CSRF == nil || o.Signer == nil {
		panic("dashboard: Options.Backend, CSRF and Signer are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SignInLimiter == nil {
		o.SignInLimiter = webui.NewLimiter(10, 15*time.Minute, o.Now)
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	d := &dashboard{Options: o, pages: parsePages()}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /dashboard", d.withSession(d.home))
	mux.HandleFunc("GET /dashboard/{$}", d.withSession(d.home))
	mux.HandleFunc("GET /dashboard/login", d.loginPage)
	mux.HandleFunc("POST /dashboard/login", d.form(d.login))
	mux.HandleFunc("POST /dashboard/logout", d.form(d.logout))

	mux.HandleFunc("GET /dashboard/apps", d.withSession(d.appsPage))
	mux.HandleFunc("POST /dashboard/apps", d.form(d.withSession(d.createApp)))

	mux.HandleFunc("GET /dashboard/apps/{app}", d.withApp(d.overview))
	mux.HandleFunc("GET /dashboard/apps/{app}/keys", d.withApp(d.keysPage))
	mux.HandleFunc("POST /dashboard/apps/{app}/keys", d.form(d.withApp(d.createKey)))
	mux.HandleFunc("POST /dashboard/apps/{app}/keys/{key}/revoke", d.form(d.withApp(d.revokeKey)))

	mux.HandleFunc("GET /dashboard/apps/{app}/connectors", d.withApp(d.connectorsPage))
	mux.HandleFunc("POST /dashboard/apps/{app}/connectors", d.form(d.withApp(d.createConnector)))
	mux.HandleFunc("POST /dashboard/apps/{app}/connectors/{provider}/delete", d.form(d.withApp(d.deleteConnector)))

	mux.HandleFunc("GET /dashboard/apps/{app}/redirect-uris", d.withApp(d.redirectURIsPage))
	mux.HandleFunc("POST /dashboard/apps/{app}/redirect-uris", d.form(d.withApp(d.createRedirectURI)))
	mux.HandleFunc("POST /dashboard/apps/{app}/redirect-uris/{id}/delete", d.form(d.withApp(d.deleteRedirectURI)))

	mux.HandleFunc("GET /dashboard/apps/{app}/grants", d.withApp(d.grantsPage))
	mux.HandleFunc("GET /dashboard/apps/{app}/grants/{grant}", d.withApp(d.grantPage))
	mux.HandleFunc("POST /dashboard/apps/{app}/grants/{grant}/delete", d.form(d.withApp(d.deleteGrant)))

	mux.HandleFunc("GET /dashboard/apps/{app}/webhooks", d.withApp(d.webhooksPage))
	mux.HandleFunc("POST /dashboard/apps/{app}/webhooks", d.form(d.withApp(d.createWebhook)))
	mux.HandleFunc("GET /dashboard/apps/{app}/webhooks/{id}", d.withApp(d.webhookPage))
	mux.HandleFunc("POST /dashboard/apps/{app}/webhooks/{id}/status", d.form(d.withApp(d.setWebhookStatus)))
	mux.HandleFunc("POST /dashboard/apps/{app}/webhooks/{id}/test", d.form(d.withApp(d.sendTestEvent)))

	mux.HandleFunc("/dashboard/", func(w http.ResponseWriter, r *http.Request) {
		d.errorPage(w, r, nil, http.StatusNotFound, "Page not found", "There is no such page in the dashboard.")
	})
	return webui.SecureHeaders(mux)
}

// appInfo is the application a page is about.
type appInfo struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// view is what every page template gets; Data is the page's own.
type view struct {
	Title   string // before " — Orchard"
	Heading string
	CSRF    string
	Session *session // nil when signed out
	App     *appInfo // nil outside an application: no tabs
	Tab     string
	Flash   string
	Error   string
	Data    any
}

// form guards every POST: a bounded body, then the CSRF check before the
// handler can act on anything.
func (d *dashboard) form(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				d.errorPage(w, r, nil, http.StatusRequestEntityTooLarge, "Form too large", "The form sent more data than the dashboard accepts.")
				return
			}
			d.errorPage(w, r, nil, http.StatusBadRequest, "Bad form", "The form could not be read.")
			return
		}
		if !d.CSRF.Check(r) {
			d.errorPage(w, r, nil, http.StatusForbidden, "Form expired",
				"This form has expired or did not come from this dashboard. Reload the page and try again.")
			return
		}
		next(w, r)
	}
}

// withSession sends visitors without a valid session to the sign-in page.
func (d *dashboard) withSession(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := d.session(r)
		if s == nil {
			http.Redirect(w, r, Base+"/login", http.StatusSeeOther)
			return
		}
		next(w, r, s)
	}
}

// withApp resolves {app} for the session: an application the operator may
// not see answers exactly like one that does not exist.
func (d *dashboard) withApp(next func(http.ResponseWriter, *http.Request, *session, *appInfo)) http.HandlerFunc {
	return d.withSession(func(w http.ResponseWriter, r *http.Request, s *session) {
		id := r.PathValue("app")
		if !s.Admin && id != s.AppID {
			d.notFound(w, r, s)
			return
		}
		a, err := d.app(r.Context(), id)
		if err != nil {
			d.errorPage(w, r, s, http.StatusInternalServerError, "Internal error", "internal error")
			d.logError(r, "list applications", err)
			return
		}
		if a == nil {
			d.notFound(w, r, s)
			return
		}
		next(w, r, s, a)
	})
}

func (d *dashboard) app(ctx context.Context, id string) (*appInfo, error) {
	apps, err := d.Backend.Applications(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		if a.ID == id {
			return &appInfo{ID: a.ID, Name: a.Name, CreatedAt: a.CreatedAt}, nil
		}
	}
	return nil, nil
}

func (d *dashboard) notFound(w http.ResponseWriter, r *http.Request, s *session) {
	d.errorPage(w, r, s, http.StatusNotFound, "Not found", "There is no such page, or it belongs to an application you do not operate.")
}

// render executes a page into a buffer first, so that a template failure
// becomes a clean 500 rather than half a page.
func (d *dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	v.CSRF = d.CSRF.Token(w, r)
	if v.Flash == "" {
		v.Flash = d.takeFlash(w, r)
	}
	var buf bytes.Buffer
	if err := d.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		d.logError(r, "render "+page, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorData struct{ Message string }

func (d *dashboard) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, heading, message string) {
	d.render(w, r, status, "error", &view{Title: heading, Heading: heading, Session: s, Data: errorData{message}})
}

// failure turns a backend error into what the operator sees: the message
// and status of a *service.Error, or "internal error" (logged) for
// anything else, which may hold details not meant for a browser.
func (d *dashboard) failure(r *http.Request, op string, err error) (status int, message string) {
	var se *service.Error
	if errors.As(err, &se) {
		switch se.Code {
		case service.CodeNotFound:
			return http.StatusNotFound, se.Message
		case service.CodeConflict:
			return http.StatusConflict, se.Message
		default:
			return http.StatusBadRequest, se.Message
		}
	}
	d.logError(r, op, err)
	return http.StatusInternalServerError, "internal error"
}

// fail shows a backend error on a page of its own, for reads that leave
// nothing else to show.
func (d *dashboard) fail(w http.ResponseWriter, r *http.Request, s *session, op string, err error) {
	status, msg := d.failure(r, op, err)
	heading := "Error"
	if status == http.StatusNotFound {
		heading = "Not found"
	}
	d.errorPage(w, r, s, status, heading, msg)
}

// logError records a failure with the request's path (which holds ids
// only), never the form, which may hold secrets.
func (d *dashboard) logError(r *http.Request, op string, err error) {
	d.Logger.Error("dashboard: "+op, "method", r.Method, "path", r.URL.Path, "err", err)
}

// Flash messages after a redirect travel as a key in a signed cookie; the
// text comes from this table, so a crafted cookie or URL cannot put words
// on the page.
var flashes = map[string]string{
	"signed-out":        "You are signed out.",
	"key-revoked":       "The API key is revoked.",
	"icloud-added":      "The iCloud connector is added: end users can now connect iCloud accounts.",
	"imap-added":        "The IMAP connector is added: end users can now connect IMAP accounts.",
	"connector-deleted": "The connector is deleted. Existing grants keep working; new ones for that provider are refused.",
	"uri-added":         "The redirect URI is added.",
	"uri-deleted":       "The redirect URI is deleted.",
	"grant-deleted":     "The grant is deleted.",
	"webhook-paused":    "The webhook is paused: notifications wait until it is activated.",
	"webhook-activated": "The webhook is active.",
	"test-sent":         "The test event was delivered.",
}

const flashCookie = "orchard_dashboard_flash"

// redirect answers a successful POST with 303 to a page that will show
// the flash message once.
func (d *dashboard) redirect(w http.ResponseWriter, r *http.Request, to, flash string) {
	if flash != "" {
		http.SetCookie(w, &http.Cookie{
			Name: flashCookie, Value: d.Signer.Sign("dashboard-flash", []byte(flash), d.Now().Add(2*time.Minute)),
			Path: Base, HttpOnly: true, Secure: d.SecureCookies, SameSite: http.SameSiteLaxMode,
		})
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// revealCookie carries a one-time secret (a new API key, a webhook
// secret) from the POST that made it to the page that shows it, sealed
// (not only signed) and for a minute, so that the page is an ordinary GET
// after a redirect: reloading it neither repeats the POST (a second
// webhook) nor shows the secret again.
const revealCookie = "orchard_dashboard_reveal"

func (d *dashboard) redirectRevealing(w http.ResponseWriter, r *http.Request, to, kind string, v any) {
	payload, err := json.Marshal(v)
	if err != nil {
		d.logError(r, "seal "+kind, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: revealCookie, Value: d.Signer.Seal("dashboard-reveal:"+kind, payload, d.Now().Add(time.Minute)),
		Path: Base, HttpOnly: true, Secure: d.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// revealed returns what redirectRevealing carried for that kind, once:
// the cookie is cleared whatever it held; nil when there is nothing.
func revealed[T any](d *dashboard, w http.ResponseWriter, r *http.Request, kind string) *T {
	c, err := r.Cookie(revealCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: revealCookie, Path: Base, MaxAge: -1, HttpOnly: true,
		Secure: d.SecureCookies, SameSite: http.SameSiteStrictMode})
	payload, ok := d.Signer.Open("dashboard-reveal:"+kind, c.Value)
	v := new(T)
	if !ok || json.Unmarshal(payload, v) != nil {
		return nil
	}
	return v
}

func (d *dashboard) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: Base, MaxAge: -1, HttpOnly: true,
		Secure: d.SecureCookies, SameSite: http.SameSiteLaxMode})
	key, ok := d.Signer.Verify("dashboard-flash", c.Value)
	if !ok {
		return ""
	}
	return flashes[string(key)]
}

// appPath builds a path under an application; ids are escaped as path
// segments so that no id can reach another route.
func appPath(appID string, segs ...string) string {
	p := Base + "/apps/" + url.PathEscape(appID)
	for _, s := range segs {
		p += "/" + url.PathEscape(s)
	}
	return p
}
