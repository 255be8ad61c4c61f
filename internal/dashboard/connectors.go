package dashboard

import (
	"net/http"
	"strings"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
)

type connectorsData struct {
	Connectors []api.Connector
	HasICloud  bool
	HasIMAP    bool
}

func (d *dashboard) connectorsPage(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	d.renderConnectors(w, r, s, a, http.StatusOK, "")
}

func (d *dashboard) renderConnectors(w http.ResponseWriter, r *http.Request, s *session, a *appInfo, status int, msg string) {
	// Orchard has two providers, so one page of 100 is all of them.
	cs, err := d.Backend.Connectors(r.Context(), a.ID, 100, 0)
	if err != nil {
		d.fail(w, r, s, "list connectors", err)
		return
	}
	data := connectorsData{Connectors: cs}
	for _, c := range cs {
		data.HasICloud = data.HasICloud || c.Provider == service.ProviderICloud
		data.HasIMAP = data.HasIMAP || c.Provider == service.ProviderIMAP
	}
	d.render(w, r, status, "connectors", &view{Title: "Connectors — " + a.Name, Heading: "Connectors — " + a.Name,
		Session: s, App: a, Tab: "connectors", Error: msg, Data: data})
}

// createConnector adds a provider with its defaults in one click, as the
// Nylas Dashboard does: neither provider needs settings of its own here
// (iCloud's servers come from Orchard's configuration, IMAP's from each
// end user at sign-in).
func (d *dashboard) createConnector(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	p := r.PostFormValue("provider")
	if p != service.ProviderICloud && p != service.ProviderIMAP {
		d.renderConnectors(w, r, s, a, http.StatusBadRequest, "Choose a provider: iCloud or IMAP.")
		return
	}
	if _, err := d.Backend.CreateConnector(r.Context(), a.ID, service.ConnectorInput{Provider: p}); err != nil {
		status, msg := d.failure(r, "create connector", err)
		d.renderConnectors(w, r, s, a, status, msg)
		return
	}
	d.redirect(w, r, appPath(a.ID, "connectors"), p+"-added")
}

func (d *dashboard) deleteConnector(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	if err := d.Backend.DeleteConnector(r.Context(), a.ID, r.PathValue("provider")); err != nil {
		status, msg := d.failure(r, "delete connector", err)
		d.renderConnectors(w, r, s, a, status, msg)
		return
	}
	d.redirect(w, r, appPath(a.ID, "connectors"), "connector-deleted")
}

// platforms of a redirect URI, in the order of the select; web first
// because it is the default.
var platforms = []string{"web", "desktop", "js", "ios", "android"}

type redirectURIsData struct {
	URIs      []api.RedirectURI
	Platforms []string
	URL       string // typed, kept on an error
	Platform  string
}

func (d *dashboard) redirectURIsPage(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	d.renderRedirectURIs(w, r, s, a, http.StatusOK, "", redirectURIsData{Platform: "web"})
}

func (d *dashboard) renderRedirectURIs(w http.ResponseWriter, r *http.Request, s *session, a *appInfo, status int, msg string, data redirectURIsData) {
	uris, err := d.Backend.RedirectURIs(r.Context(), a.ID)
	if err != nil {
		d.fail(w, r, s, "list redirect URIs", err)
		return
	}
	data.URIs, data.Platforms = uris, platforms
	d.render(w, r, status, "redirect_uris", &view{Title: "Redirect URIs — " + a.Name, Heading: "Redirect URIs — " + a.Name,
		Session: s, App: a, Tab: "redirect-uris", Error: msg, Data: data})
}

func (d *dashboard) createRedirectURI(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	u := strings.TrimSpace(r.PostFormValue("url"))
	p := r.PostFormValue("platform")
	if p == "" {
		p = "web"
	}
	data := redirectURIsData{URL: u, Platform: p}
	if u == "" {
		d.renderRedirectURIs(w, r, s, a, http.StatusBadRequest, "Enter the URL that hosted authentication redirects to.", data)
		return
	}
	if _, err := d.Backend.CreateRedirectURI(r.Context(), a.ID, service.RedirectURIInput{URL: &u, Platform: &p}); err != nil {
		status, msg := d.failure(r, "create redirect URI", err)
		d.renderRedirectURIs(w, r, s, a, status, msg, data)
		return
	}
	d.redirect(w, r, appPath(a.ID, "redirect-uris"), "uri-added")
}

func (d *dashboard) deleteRedirectURI(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	if err := d.Backend.DeleteRedirectURI(r.Context(), a.ID, r.PathValue("id")); err != nil {
		status, msg := d.failure(r, "delete redirect URI", err)
		d.renderRedirectURIs(w, r, s, a, status, msg, redirectURIsData{Platform: "web"})
		return
	}
	d.redirect(w, r, appPath(a.ID, "redirect-uris"), "uri-deleted")
}
