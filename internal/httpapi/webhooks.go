package httpapi

import (
	"net/http"
	"time"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
)

func (s *server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	hooks, err := s.svc.Webhooks(r.Context(), appID(r))
	if err != nil {
		return err
	}
	out := make([]api.Webhook, len(hooks))
	for i := range hooks {
		out[i] = service.WebhookWire(&hooks[i], "")
	}
	return writeData(w, r, http.StatusOK, out)
}

func (s *server) getWebhook(w http.ResponseWriter, r *http.Request) error {
	hook, err := s.svc.Webhook(r.Context(), appID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, service.WebhookWire(hook, ""))
}

func (s *server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	var in service.WebhookInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	hook, secret, err := s.svc.CreateWebhook(r.Context(), appID(r), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, service.WebhookWire(hook, secret))
}

func (s *server) updateWebhook(w http.ResponseWriter, r *http.Request) error {
	var in service.WebhookInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	hook, err := s.svc.UpdateWebhook(r.Context(), appID(r), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, service.WebhookWire(hook, ""))
}

func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteWebhook(r.Context(), appID(r), r.PathValue("id")); err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, map[string]string{"status": "success"})
}

func (s *server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	hook, secret, err := s.svc.RotateWebhookSecret(r.Context(), appID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, service.WebhookWire(hook, secret))
}

func (s *server) webhookIPAddresses(w http.ResponseWriter, r *http.Request) error {
	// Orchard posts from wherever it runs: there is no fixed list.
	return writeData(w, r, http.StatusOK, map[string]any{"ip_addresses": []string{}, "updated_at": time.Now().Unix()})
}

type triggerRequest struct {
	TriggerType string `json:"trigger_type"`
	WebhookURL  string `json:"webhook_url"`
}

func (s *server) mockPayload(w http.ResponseWriter, r *http.Request) error {
	var in triggerRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	p, err := s.svc.MockPayload(in.TriggerType)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, p)
}

func (s *server) sendTestEvent(w http.ResponseWriter, r *http.Request) error {
	var in triggerRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.WebhookURL == "" {
		return badRequest("webhook_url is required")
	}
	if err := s.svc.SendTestEvent(r.Context(), in.TriggerType, in.WebhookURL); err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, "success")
}

func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 50, 1, maxLimit)
	if err != nil {
		return err
	}
	ds, err := s.svc.WebhookDeliveries(r.Context(), appID(r), r.PathValue("id"), limit)
	if err != nil {
		return err
	}
	out := make([]api.WebhookDelivery, len(ds))
	for i := range ds {
		out[i] = deliveryWire(&ds[i])
	}
	return writeData(w, r, http.StatusOK, out)
}

func deliveryWire(d *store.Delivery) api.WebhookDelivery {
	out := api.WebhookDelivery{ID: d.ID, Type: d.Type, GrantID: d.GrantID, State: d.State, Attempts: []api.DeliveryAttempt{},
		CreatedAt: d.CreatedAt.Unix()}
	if d.State == store.DeliveryPending && !d.NextAttemptAt.IsZero() {
		out.NextAttempt = d.NextAttemptAt.Unix()
	}
	if !d.FinishedAt.IsZero() {
		out.FinishedAt = d.FinishedAt.Unix()
	}
	for _, a := range d.AttemptLog {
		out.Attempts = append(out.Attempts, api.DeliveryAttempt{N: a.N, At: a.At.Unix(), Status: a.Status,
			LatencyMS: a.Latency.Milliseconds(), Error: a.Error})
	}
	return out
}

func (s *server) replayDelivery(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.ReplayDelivery(r.Context(), appID(r), r.PathValue("id"), r.PathValue("delivery")); err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, map[string]string{"status": "queued"})
}
