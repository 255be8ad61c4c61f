// Package hostedauth serves the pages of hosted authentication: the
// browser side of GET /v3/connect/auth (also at /oauth/authorize). An
// application sends its user here; the user picks a provider, signs in
// with an iCloud app-specific password or IMAP settings, and comes back to
// the application's registered redirect URI with a single-use code. The
// code exchange, token refresh, revocation and token info are JSON API
// endpoints served by internal/httpapi; their rules (codes, PKCE, tokens)
// live in internal/service (oauth.go).
//
// Pages are server-rendered and work without JavaScript. The form is
// protected by a CSRF token, login attempts are limited per address and
// per client address, and the password is never put back into a page or a
// log. A request whose client or redirect URI is not registered ends on an
// error page: Orchard never redirects a browser to an address the
// application did not register.
package hostedauth

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/webui"
)

//go:embed templates/*.html
var templateFiles embed.FS

var pages = template.Must(template.ParseFS(templateFiles, "templates/*.html"))

// Backend is what the pages need from the use cases; *service.Service
// implements it.
type Backend interface {
	CheckAuthRequest(ctx context.Context, req *service.AuthRequest) error
	ProvidersOffered(ctx context.Context, appID string) ([]string, error)
	Application(ctx context.Context, appID string) (*api.Application, error)
	ConnectCustom(ctx context.Context, appID string, in service.CustomAuthInput, client service.ClientInfo) (*api.Grant, error)
	IssueAuthCode(ctx context.Context, req service.AuthRequest, grantID string) (string, error)
}

// Options configure the pages.
type Options struct {
	Backend Backend
	CSRF    *webui.CSRF
	// PerAddress and PerClient limit sign-in attempts by the address
	// typed in and by the browser's IP address.
	PerAddress *webui.Limiter
	PerClient  *webui.Limiter
	Logger     *slog.Logger
}

// Handler serves GET and POST /v3/connect/auth and GET /oauth/authorize.
type Handler struct {
	o Options
}

// New returns the pages' handler. Mount it at "GET /v3/connect/auth",
// "POST /v3/connect/auth" and "GET /oauth/authorize".
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PerAddress == nil {
		o.PerAddress = webui.NewLimiter(10, 15*time.Minute, nil)
	}
	if o.PerClient == nil {
		o.PerClient = webui.NewLimiter(30, 15*time.Minute, nil)
	}
	h := &Handler{o: o}
	return webui.SecureHeaders(http.HandlerFunc(h.serve))
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.start(w, r)
	case http.MethodPost:
		h.signIn(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		h.errorPage(w, r, http.StatusMethodNotAllowed, "Not allowed", "This page only answers GET and POST.", "", "")
	}
}

// page is what every template gets.
type page struct {
	Title, AppName   string
	Heading, Message string
	Detail           string
	Choices          []choice
	Req              service.AuthRequest
	Form             loginForm
	CSRF             string
	Error            string
}

type choice struct{ Name, Note, URL string }

// loginForm is what the user typed, put back into the form after a
// refusal. It has no password field on purpose.
type loginForm struct {
	Email, Username                        string
	IMAPHost, IMAPPort, SMTPHost, SMTPPort string
}

func requestFrom(v url.Values) service.AuthRequest {
	return service.AuthRequest{
		ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"), ResponseType: v.Get("response_type"),
		Provider: strings.ToLower(v.Get("provider")), LoginHint: v.Get("login_hint"), State: v.Get("state"),
		Scope: v.Get("scope"), AccessType: v.Get("access_type"),
		CodeChallenge: v.Get("code_challenge"), CodeChallengeMethod: v.Get("code_challenge_method"),
	}
}

// start checks the authorization request and shows the provider choice
// or the login form.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	req := requestFrom(r.URL.Query())
	if !h.check(w, r, &req) {
		return
	}
	appName := h.appName(r.Context(), req.ClientID)
	if req.Provider == "" {
		h.choose(w, r, req, appName)
		return
	}
	h.render(w, r, http.StatusOK, "login", page{
		Title: signInTitle(req.Provider), AppName: appName, Req: req, CSRF: h.o.CSRF.Token(w, r),
		Form: loginForm{Email: req.LoginHint, IMAPPort: "993", SMTPPort: "587"},
	})
}

// check validates req and, when it is wrong, answers with an error page.
func (h *Handler) check(w http.ResponseWriter, r *http.Request, req *service.AuthRequest) bool {
	err := h.o.Backend.CheckAuthRequest(r.Context(), req)
	if err == nil {
		return true
	}
	var se *service.Error
	if !errors.As(err, &se) {
		h.internalError(w, r, "checking an authorization request", err)
		return false
	}
	detail := "Go back to the application and try again. If this keeps happening, tell the application's developers what this page says."
	switch {
	case errors.Is(err, service.ErrUnknownClient):
		detail = "The link that brought you here names an application that this Orchard does not know."
	case errors.Is(err, service.ErrRedirectNotAllowed):
		detail = "For your safety you are not sent on: the address the application asked to return to is not one it registered."
	}
	h.errorPage(w, r, http.StatusBadRequest, "This sign-in link is not valid", se.Message, detail, "")
	return false
}

func (h *Handler) choose(w http.ResponseWriter, r *http.Request, req service.AuthRequest, appName string) {
	offered, err := h.o.Backend.ProvidersOffered(r.Context(), req.ClientID)
	if err != nil {
		h.internalError(w, r, "listing providers", err)
		return
	}
	if len(offered) == 0 {
		h.errorPage(w, r, http.StatusBadRequest, "Nothing to sign in to",
			"This application has no connector yet.", "Its developers must add the iCloud or IMAP connector first.", appName)
		return
	}
	var cs []choice
	for _, p := range offered {
		q := r.URL.Query()
		q.Set("provider", p)
		c := choice{URL: r.URL.Path + "?" + q.Encode()}
		switch p {
		case service.ProviderICloud:
			c.Name, c.Note = "iCloud Mail", "@icloud.com, @me.com, @mac.com, with an app-specific password"
		case service.ProviderIMAP:
			c.Name, c.Note = "Another mail server (IMAP)", "Any provider that offers IMAP and SMTP"
		}
		cs = append(cs, c)
	}
	h.render(w, r, http.StatusOK, "choose", page{Title: "Connect your account", AppName: appName, Choices: cs})
}

// signIn handles the login form: CSRF, limits, the provider check, then
// the redirect with a code.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "Something went wrong", "The form could not be read.", "Go back and try again.", "")
		return
	}
	if !h.o.CSRF.Check(r) {
		h.errorPage(w, r, http.StatusForbidden, "This form has expired",
			"The sign-in form was not sent from this page, or it is too old.",
			"Go back to the application and start the sign-in again.", "")
		return
	}
	req := requestFrom(r.PostForm)
	if !h.check(w, r, &req) {
		return
	}
	if req.Provider == "" {
		h.errorPage(w, r, http.StatusBadRequest, "This sign-in link is not valid", "No provider was chosen.", "Go back and choose one.", "")
		return
	}
	appName := h.appName(r.Context(), req.ClientID)
	form := formFrom(r.PostForm)
	refuse := func(status int, msg string) {
		h.render(w, r, status, "login", page{Title: signInTitle(req.Provider), AppName: appName, Req: req,
			CSRF: h.o.CSRF.Token(w, r), Form: form, Error: msg})
	}
	address := strings.ToLower(strings.TrimSpace(form.Email))
	for _, limit := range []struct {
		l   *webui.Limiter
		key string
	}{{h.o.PerClient, service.ClientInfoOf(r).IP}, {h.o.PerAddress, address}} {
		if ok, retry := limit.l.Allow(limit.key); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
			refuse(http.StatusTooManyRequests, fmt.Sprintf("Too many sign-in attempts. Wait %s and try again.", roundUp(retry)))
			return
		}
	}
	settings, problem := settingsFrom(req.Provider, r.PostForm)
	if problem != "" {
		refuse(http.StatusBadRequest, problem)
		return
	}
	grant, err := h.o.Backend.ConnectCustom(r.Context(), req.ClientID,
		service.CustomAuthInput{Provider: req.Provider, Settings: settings, State: req.State},
		service.ClientInfoOf(r))
	if err != nil {
		status, msg, ok := refusal(req.Provider, err)
		if !ok {
			h.internalError(w, r, "signing in", err)
			return
		}
		h.o.Logger.InfoContext(r.Context(), "hosted sign-in refused", "client_id", req.ClientID, "provider", req.Provider, "status", status)
		refuse(status, msg)
		return
	}
	h.o.PerAddress.Reset(address)
	code, err := h.o.Backend.IssueAuthCode(r.Context(), req, grant.ID)
	if err != nil {
		h.internalError(w, r, "issuing a code", err)
		return
	}
	to, err := service.RedirectWithCode(req.RedirectURI, code, req.State)
	if err != nil {
		h.internalError(w, r, "building the redirect", err)
		return
	}
	h.o.Logger.InfoContext(r.Context(), "hosted sign-in", "client_id", req.ClientID, "grant_id", grant.ID, "provider", req.Provider)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func formFrom(v url.Values) loginForm {
	return loginForm{
		Email: strings.TrimSpace(v.Get("email")), Username: strings.TrimSpace(v.Get("username")),
		IMAPHost: strings.TrimSpace(v.Get("imap_host")), IMAPPort: strings.TrimSpace(v.Get("imap_port")),
		SMTPHost: strings.TrimSpace(v.Get("smtp_host")), SMTPPort: strings.TrimSpace(v.Get("smtp_port")),
	}
}

// settingsFrom turns the form into custom-auth settings, or says in the
// user's words what is missing.
func settingsFrom(providerName string, v url.Values) (map[string]json.RawMessage, string) {
	f := formFrom(v)
	password := v.Get("password")
	if f.Email == "" || !strings.Contains(f.Email, "@") {
		return nil, "Enter your email address."
	}
	if password == "" {
		return nil, "Enter your password."
	}
	raw := func(x any) json.RawMessage { b, _ := json.Marshal(x); return b }
	if providerName == service.ProviderICloud {
		return map[string]json.RawMessage{"username": raw(f.Email), "password": raw(password)}, ""
	}
	username := f.Username
	if username == "" {
		username = f.Email
	}
	for _, p := range []struct{ name, value string }{{"IMAP port", f.IMAPPort}, {"SMTP port", f.SMTPPort}} {
		if n, err := strconv.Atoi(p.value); err != nil || n < 1 || n > 65535 {
			return nil, "Enter the " + p.name + " as a number between 1 and 65535."
		}
	}
	if f.IMAPHost == "" || f.SMTPHost == "" {
		return nil, "Enter the IMAP and SMTP server names."
	}
	imapPort, _ := strconv.Atoi(f.IMAPPort)
	smtpPort, _ := strconv.Atoi(f.SMTPPort)
	return map[string]json.RawMessage{
		"email": raw(f.Email), "imap_username": raw(username), "imap_password": raw(password),
		"imap_host": raw(f.IMAPHost), "imap_port": raw(imapPort), "smtp_host": raw(f.SMTPHost), "smtp_port": raw(smtpPort),
	}, ""
}

// refusal turns a failed sign-in into a status and a message for the
// page; ok is false for failures that are Orchard's own.
func refusal(providerName string, err error) (status int, msg string, ok bool) {
	var pe *provider.Error
	var se *service.Error
	switch {
	case errors.As(err, &pe):
		switch pe.Kind {
		case provider.KindAuth:
			if providerName == service.ProviderICloud {
				return http.StatusUnauthorized, "Apple refused this password — use an app-specific password, not your Apple ID password.", true
			}
			return http.StatusUnauthorized, "The mail server refused this username and password.", true
		case provider.KindUnavailable, provider.KindTimeout:
			return http.StatusServiceUnavailable, "The mail server could not be reached just now. Try again in a few minutes.", true
		case provider.KindTLS:
			return http.StatusBadGateway, "A secure connection to the mail server could not be made (" + pe.Text + ").", true
		default:
			return http.StatusBadGateway, "The mail server answered in a way Orchard did not understand. Try again later.", true
		}
	case errors.As(err, &se):
		status := http.StatusBadRequest
		if se.Code == service.CodeConflict {
			status = http.StatusConflict
		}
		return status, se.Message, true
	}
	return 0, "", false
}

func signInTitle(providerName string) string {
	if providerName == service.ProviderICloud {
		return "Sign in with iCloud"
	}
	return "Sign in to your mail server"
}

// appName is the application's branding name, for the page's header;
// empty when it has none.
func (h *Handler) appName(ctx context.Context, appID string) string {
	app, err := h.o.Backend.Application(ctx, appID)
	if err != nil {
		return ""
	}
	var b struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(app.Branding, &b)
	return truncate(b.Name, 80)
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, msg, detail, appName string) {
	h.render(w, r, status, "error", page{Title: heading, Heading: heading, Message: msg, Detail: detail, AppName: appName})
}

func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, doing string, err error) {
	h.o.Logger.ErrorContext(r.Context(), "hosted auth: "+doing, "error", err)
	h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong",
		"Orchard could not finish this sign-in.", "Try again in a moment. Request id: "+w.Header().Get("X-Request-Id"), "")
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if err := pages.ExecuteTemplate(w, name, p); err != nil {
		h.o.Logger.ErrorContext(r.Context(), "hosted auth: rendering "+name, "error", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func roundUp(d time.Duration) string {
	if d <= time.Minute {
		return "a minute"
	}
	return fmt.Sprintf("%d minutes", int(d.Minutes())+1)
}
