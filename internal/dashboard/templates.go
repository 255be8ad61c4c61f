package dashboard

import (
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// pageNames are the templates/<name>.html files; each defines "content"
// and is parsed with layout.html into a set of its own, so the pages'
// "content" blocks do not overwrite each other.
var pageNames = []string{
	"error", "login", "apps", "overview", "keys", "connectors", "redirect_uris",
	"grants", "grant", "webhooks", "webhook",
}

func parsePages() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFiles,
			"templates/layout.html", "templates/"+name+".html"))
	}
	return pages
}

// badgeClasses map statuses to the stylesheet's badge colours; anything
// else gets the plain badge.
var badgeClasses = map[string]string{
	"valid": "valid", "invalid": "invalid",
	"active": "active", "pause": "paused", "failing": "failing", "failed": "failed",
	"delivered": "delivered", "pending": "pending",
	// Sync worker states.
	"idle": "active", "connecting": "pending", "initial_sync": "pending", "retrying": "failing",
}

var statusTexts = map[string]string{
	"pause": "paused", "initial_sync": "initial sync", "not_running": "not running on this node",
}

var providerNames = map[string]string{"icloud": "iCloud", "imap": "IMAP"}

var funcs = template.FuncMap{
	"appPath": appPath,
	"when":    when,
	"unix": func(sec int64) string {
		if sec == 0 {
			return "—"
		}
		return when(time.Unix(sec, 0))
	},
	"ms": func(d time.Duration) string {
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	},
	"badge": func(status string) string {
		if c, ok := badgeClasses[status]; ok {
			return "badge " + c
		}
		return "badge"
	},
	"statusText": func(status string) string {
		if t, ok := statusTexts[status]; ok {
			return t
		}
		return status
	},
	"provider": func(p string) string {
		if n, ok := providerNames[p]; ok {
			return n
		}
		return p
	},
	"join": strings.Join,
	"has":  slices.Contains[[]string],
	"httpStatus": func(code int) string {
		if code == 0 {
			return "no response"
		}
		return strconv.Itoa(code) + " " + http.StatusText(code)
	},
	"keyState": func(k store.APIKey, now time.Time) string {
		switch {
		case k.RevokedAt == nil:
			return ""
		case k.RevokedAt.After(now):
			return "revoked from " + when(*k.RevokedAt)
		}
		return "revoked " + when(*k.RevokedAt)
	},
	"live":       live,
	"statusForm": statusForm,
}

// statusFormData feeds the "webhook-status" template: the pause or
// activate button of one webhook, which the list and the webhook page share.
type statusFormData struct {
	App, CSRF, Back string
	Webhook         *store.Webhook
}

func statusForm(v *view, w any, back string) statusFormData {
	var hook *store.Webhook
	switch w := w.(type) {
	case store.Webhook:
		hook = &w
	case *store.Webhook:
		hook = w
	}
	return statusFormData{App: v.App.ID, CSRF: v.CSRF, Back: back, Webhook: hook}
}

// when shows times in UTC: operators compare them with server logs.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
