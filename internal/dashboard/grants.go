package dashboard

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/store"
)

const grantsPerPage = 50

type grantsData struct {
	Grants   []api.Grant
	Page     int
	PrevPage int // 0: none
	NextPage int // 0: none
}

func (d *dashboard) grantsPage(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 || page > 1_000_000 {
		page = 1
	}
	// One more than a page tells whether there is a next one.
	gs, err := d.Backend.Grants(r.Context(), a.ID, store.GrantFilter{
		Desc: true, Limit: grantsPerPage + 1, Offset: (page - 1) * grantsPerPage,
	})
	if err != nil {
		d.fail(w, r, s, "list grants", err)
		return
	}
	data := grantsData{Grants: gs, Page: page}
	if len(gs) > grantsPerPage {
		data.Grants, data.NextPage = gs[:grantsPerPage], page+1
	}
	if page > 1 {
		data.PrevPage = page - 1
	}
	d.render(w, r, http.StatusOK, "grants", &view{Title: "Grants — " + a.Name, Heading: "Grants — " + a.Name,
		Session: s, App: a, Tab: "grants", Data: data})
}

type grantData struct {
	Grant     *store.Grant
	Sync      *api.SyncStatus
	ReauthURL string // "" when the application has no redirect URI
}

// grantRef names a grant by id only: a bare path segment with an "@"
// would otherwise be looked up as an email address.
func grantRef(id string) string { return "grant:" + id }

func (d *dashboard) grantPage(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	d.renderGrant(w, r, s, a, http.StatusOK, "")
}

func (d *dashboard) renderGrant(w http.ResponseWriter, r *http.Request, s *session, a *appInfo, status int, msg string) {
	ctx := r.Context()
	ref := grantRef(r.PathValue("grant"))
	g, err := d.Backend.Grant(ctx, a.ID, ref)
	if err != nil {
		d.fail(w, r, s, "get grant", err)
		return
	}
	sync, err := d.Backend.SyncStatus(ctx, a.ID, ref)
	if err != nil {
		d.fail(w, r, s, "sync status", err)
		return
	}
	uris, err := d.Backend.RedirectURIs(ctx, a.ID)
	if err != nil {
		d.fail(w, r, s, "list redirect URIs", err)
		return
	}
	data := grantData{Grant: g, Sync: sync}
	if len(uris) > 0 {
		data.ReauthURL = d.hostedAuthURL(a.ID, uris[0].URL, g.Provider, g.Email)
	}
	title := "Grant " + g.Email + " — " + a.Name
	d.render(w, r, status, "grant", &view{Title: title, Heading: title, Session: s, App: a, Tab: "grants", Error: msg, Data: data})
}

// hostedAuthURL is the link that starts hosted authentication, with the
// parameters in the order the Nylas documentation lists them (url.Values
// would sort them). An empty login hint is left out.
func (d *dashboard) hostedAuthURL(appID, redirectURI, provider, loginHint string) string {
	u := d.PublicURL + "/v3/connect/auth?client_id=" + url.QueryEscape(appID) +
		"&redirect_uri=" + url.QueryEscape(redirectURI) +
		"&response_type=code&provider=" + url.QueryEscape(provider)
	if loginHint != "" {
		u += "&login_hint=" + url.QueryEscape(loginHint)
	}
	return u
}

// deleteGrant needs the "I understand" box ticked: the confirmation step
// that a script would otherwise ask for.
func (d *dashboard) deleteGrant(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	if r.PostFormValue("confirm") != "yes" {
		d.renderGrant(w, r, s, a, http.StatusBadRequest, "Tick “I understand” to delete the grant.")
		return
	}
	id := r.PathValue("grant")
	if err := d.Backend.DeleteGrant(r.Context(), a.ID, grantRef(id)); err != nil {
		status, msg := d.failure(r, "delete grant", err)
		if status == http.StatusNotFound {
			d.errorPage(w, r, s, status, "Not found", msg)
			return
		}
		d.renderGrant(w, r, s, a, status, msg)
		return
	}
	d.Logger.Info("dashboard: grant deleted", "application_id", a.ID, "grant_id", id)
	d.redirect(w, r, appPath(a.ID, "grants"), "grant-deleted")
}
