package dashboard

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/store"
)

// maxNameLen bounds names typed into the dashboard; they are labels for
// people, not data.
const maxNameLen = 200

type appsData struct {
	Apps    []store.Application
	Name    string // what was typed, kept on an error
	Created *createdApp
}

// createdApp is shown once, in the answer to the POST that made it.
type createdApp struct {
	ID     string
	Name   string
	APIKey string
}

func (d *dashboard) appsPage(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.Admin {
		d.notFound(w, r, s)
		return
	}
	d.renderApps(w, r, s, http.StatusOK, "", appsData{Created: revealed[createdApp](d, w, r, "app")})
}

func (d *dashboard) renderApps(w http.ResponseWriter, r *http.Request, s *session, status int, msg string, data appsData) {
	apps, err := d.Backend.Applications(r.Context())
	if err != nil {
		d.fail(w, r, s, "list applications", err)
		return
	}
	data.Apps = apps
	d.render(w, r, status, "apps", &view{Title: "Applications", Heading: "Applications", Session: s, Error: msg, Data: data})
}

func (d *dashboard) createApp(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.Admin {
		d.notFound(w, r, s)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if msg := checkName(name, "the application"); msg != "" {
		d.renderApps(w, r, s, http.StatusBadRequest, msg, appsData{Name: name})
		return
	}
	app, key, err := d.Backend.CreateApplication(r.Context(), name)
	if err != nil {
		status, msg := d.failure(r, "create application", err)
		d.renderApps(w, r, s, status, msg, appsData{Name: name})
		return
	}
	d.Logger.Info("dashboard: application created", "application_id", app.ID)
	d.redirectRevealing(w, r, Base+"/apps", "app", createdApp{ID: app.ID, Name: app.Name, APIKey: key})
}

func checkName(name, what string) string {
	switch {
	case name == "":
		return "Give " + what + " a name."
	case utf8.RuneCountInString(name) > maxNameLen:
		return "The name is too long: at most 200 characters."
	}
	return ""
}

type overviewData struct {
	Connectors   []api.Connector
	RedirectURIs []api.RedirectURI
	Webhooks     int
	ConnectURL   string // an example hosted-auth link, when one can be built
}

// overview is an application's start page: its id, and what is still
// missing before end users can connect accounts.
func (d *dashboard) overview(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	ctx := r.Context()
	cs, err := d.Backend.Connectors(ctx, a.ID, 100, 0)
	if err != nil {
		d.fail(w, r, s, "list connectors", err)
		return
	}
	uris, err := d.Backend.RedirectURIs(ctx, a.ID)
	if err != nil {
		d.fail(w, r, s, "list redirect URIs", err)
		return
	}
	hooks, err := d.Backend.Webhooks(ctx, a.ID)
	if err != nil {
		d.fail(w, r, s, "list webhooks", err)
		return
	}
	data := overviewData{Connectors: cs, RedirectURIs: uris, Webhooks: len(hooks)}
	if len(cs) > 0 && len(uris) > 0 {
		data.ConnectURL = d.hostedAuthURL(a.ID, uris[0].URL, cs[0].Provider, "")
	}
	d.render(w, r, http.StatusOK, "overview", &view{Title: "Overview — " + a.Name, Heading: a.Name, Session: s, App: a, Tab: "overview", Data: data})
}

type keysData struct {
	Keys    []store.APIKey
	Now     time.Time
	Name    string // typed, kept on an error
	Created *createdKey
	Self    string // the id of the key this session was opened with
}

type createdKey struct{ Name, Key string }

func (d *dashboard) keysPage(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	d.renderKeys(w, r, s, a, http.StatusOK, "", keysData{Created: revealed[createdKey](d, w, r, "key:"+a.ID)})
}

func (d *dashboard) renderKeys(w http.ResponseWriter, r *http.Request, s *session, a *appInfo, status int, msg string, data keysData) {
	keys, err := d.Backend.APIKeys(r.Context(), a.ID)
	if err != nil {
		d.fail(w, r, s, "list API keys", err)
		return
	}
	data.Keys, data.Now, data.Self = keys, d.Now(), s.KeyID
	d.render(w, r, status, "keys", &view{Title: "API keys — " + a.Name, Heading: "API keys — " + a.Name,
		Session: s, App: a, Tab: "keys", Error: msg, Data: data})
}

func (d *dashboard) createKey(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if msg := checkName(name, "the key"); msg != "" {
		d.renderKeys(w, r, s, a, http.StatusBadRequest, msg, keysData{Name: name})
		return
	}
	key, err := d.Backend.CreateAPIKey(r.Context(), a.ID, name)
	if err != nil {
		status, msg := d.failure(r, "create API key", err)
		d.renderKeys(w, r, s, a, status, msg, keysData{Name: name})
		return
	}
	d.Logger.Info("dashboard: API key created", "application_id", a.ID)
	d.redirectRevealing(w, r, appPath(a.ID, "keys"), "key:"+a.ID, createdKey{Name: name, Key: key})
}

func (d *dashboard) revokeKey(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	id := r.PathValue("key")
	if err := d.Backend.RevokeAPIKey(r.Context(), a.ID, id); err != nil {
		status, msg := d.failure(r, "revoke API key", err)
		d.renderKeys(w, r, s, a, status, msg, keysData{})
		return
	}
	d.Logger.Info("dashboard: API key revoked", "application_id", a.ID, "api_key_id", id)
	d.redirect(w, r, appPath(a.ID, "keys"), "key-revoked")
}
