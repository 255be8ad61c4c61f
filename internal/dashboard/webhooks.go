package dashboard

import (
	"net/http"
	"slices"
	"strings"

	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/webhook"
)

// recentDeliveries is how many deliveries a webhook page lists.
const recentDeliveries = 50

type webhooksData struct {
	Webhooks []store.Webhook
	Triggers []string
	Form     webhookForm
	Created  *createdWebhook
}

// webhookForm is what was typed into the create form, kept on an error.
type webhookForm struct {
	URL         string
	Description string
	Triggers    []string
}

type createdWebhook struct {
	ID, URL, Secret string
}

func (d *dashboard) webhooksPage(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	d.renderWebhooks(w, r, s, a, http.StatusOK, "", webhooksData{Created: revealed[createdWebhook](d, w, r, "webhook:"+a.ID)})
}

func (d *dashboard) renderWebhooks(w http.ResponseWriter, r *http.Request, s *session, a *appInfo, status int, msg string, data webhooksData) {
	hooks, err := d.Backend.Webhooks(r.Context(), a.ID)
	if err != nil {
		d.fail(w, r, s, "list webhooks", err)
		return
	}
	data.Webhooks, data.Triggers = hooks, webhook.Triggers()
	d.render(w, r, status, "webhooks", &view{Title: "Webhooks — " + a.Name, Heading: "Webhooks — " + a.Name,
		Session: s, App: a, Tab: "webhooks", Error: msg, Data: data})
}

func (d *dashboard) createWebhook(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	form := webhookForm{
		URL:         strings.TrimSpace(r.PostFormValue("webhook_url")),
		Description: strings.TrimSpace(r.PostFormValue("description")),
		Triggers:    r.PostForm["trigger_types"],
	}
	data := webhooksData{Form: form}
	switch {
	case form.URL == "":
		d.renderWebhooks(w, r, s, a, http.StatusBadRequest, "Enter the webhook URL.", data)
		return
	case len(form.Triggers) == 0:
		d.renderWebhooks(w, r, s, a, http.StatusBadRequest, "Choose at least one trigger.", data)
		return
	}
	in := service.WebhookInput{WebhookURL: &form.URL, Description: &form.Description, TriggerTypes: &form.Triggers}
	// CreateWebhook runs the challenge against the URL, so a URL that does
	// not answer it comes back here as a *service.Error saying why.
	hook, secret, err := d.Backend.CreateWebhook(r.Context(), a.ID, in)
	if err != nil {
		status, msg := d.failure(r, "create webhook", err)
		d.renderWebhooks(w, r, s, a, status, msg, data)
		return
	}
	d.Logger.Info("dashboard: webhook created", "application_id", a.ID, "webhook_id", hook.ID)
	d.redirectRevealing(w, r, appPath(a.ID, "webhooks"), "webhook:"+a.ID, createdWebhook{ID: hook.ID, URL: hook.URL, Secret: secret})
}

type webhookData struct {
	Webhook    *store.Webhook
	Deliveries []store.Delivery
	Triggers   []string
	Trigger    string // chosen for the test event
}

func (d *dashboard) webhookPage(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	d.renderWebhook(w, r, s, a, http.StatusOK, "", "")
}

func (d *dashboard) renderWebhook(w http.ResponseWriter, r *http.Request, s *session, a *appInfo, status int, msg, trigger string) {
	ctx := r.Context()
	id := r.PathValue("id")
	hook, err := d.Backend.Webhook(ctx, a.ID, id)
	if err != nil {
		d.fail(w, r, s, "get webhook", err)
		return
	}
	ds, err := d.Backend.WebhookDeliveries(ctx, a.ID, id, recentDeliveries)
	if err != nil {
		d.fail(w, r, s, "list deliveries", err)
		return
	}
	triggers := webhook.Triggers()
	if trigger == "" && len(hook.TriggerTypes) > 0 {
		trigger = hook.TriggerTypes[0]
	}
	title := "Webhook " + hook.URL + " — " + a.Name
	d.render(w, r, status, "webhook", &view{Title: title, Heading: "Webhook — " + a.Name, Session: s, App: a, Tab: "webhooks", Error: msg,
		Data: webhookData{Webhook: hook, Deliveries: ds, Triggers: triggers, Trigger: trigger}})
}

// setWebhookStatus pauses or activates a webhook, from the list or from
// its own page; "back" says which, from a fixed choice.
func (d *dashboard) setWebhookStatus(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	id := r.PathValue("id")
	st := r.PostFormValue("status")
	back := appPath(a.ID, "webhooks")
	if r.PostFormValue("back") == "webhook" {
		back = appPath(a.ID, "webhooks", id)
	}
	if st != service.WebhookPause && st != service.WebhookActive {
		d.renderWebhooks(w, r, s, a, http.StatusBadRequest, "A webhook can be paused or activated.", webhooksData{})
		return
	}
	if _, err := d.Backend.UpdateWebhook(r.Context(), a.ID, id, service.WebhookInput{Status: &st}); err != nil {
		status, msg := d.failure(r, "update webhook", err)
		d.renderWebhooks(w, r, s, a, status, msg, webhooksData{})
		return
	}
	flash := "webhook-activated"
	if st == service.WebhookPause {
		flash = "webhook-paused"
	}
	d.redirect(w, r, back, flash)
}

// sendTestEvent POSTs a mock notification to the webhook's URL now, so an
// operator can check the receiver without waiting for real mail.
func (d *dashboard) sendTestEvent(w http.ResponseWriter, r *http.Request, s *session, a *appInfo) {
	id := r.PathValue("id")
	trigger := r.PostFormValue("trigger_type")
	if !slices.Contains(webhook.Triggers(), trigger) {
		d.renderWebhook(w, r, s, a, http.StatusBadRequest, "Choose a trigger type for the test event.", "")
		return
	}
	hook, err := d.Backend.Webhook(r.Context(), a.ID, id)
	if err != nil {
		d.fail(w, r, s, "get webhook", err)
		return
	}
	if err := d.Backend.SendTestEvent(r.Context(), trigger, hook.URL); err != nil {
		status, msg := d.failure(r, "send test event", err)
		d.renderWebhook(w, r, s, a, status, msg, trigger)
		return
	}
	d.redirect(w, r, appPath(a.ID, "webhooks", id), "test-sent")
}
