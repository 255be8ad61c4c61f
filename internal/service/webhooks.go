package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/webhook"
)

// Webhook statuses an application may set; failing and failed are the
// dispatcher's.
const (
	WebhookActive  = "active"
	WebhookPause   = "pause"
	WebhookFailing = "failing"
	WebhookFailed  = "failed"
)

// Dispatcher is what the service needs of the webhook dispatcher.
type Dispatcher interface {
	// Notify wakes the dispatcher: new change rows are waiting.
	Notify()
	// Publish enqueues a notification that has no change row (a
	// grant.deleted: the grant's rows go with it).
	Publish(ctx context.Context, n webhook.Notification) error
}

// WebhookInput is the body of webhook create and update; nil fields were
// absent.
type WebhookInput struct {
	TriggerTypes       *[]string `json:"trigger_types"`
	WebhookURL         *string   `json:"webhook_url"`
	Description        *string   `json:"description"`
	NotificationEmails *[]string `json:"notification_email_addresses"`
	CompressedDelivery *bool     `json:"compressed_delivery"`
	Status             *string   `json:"status"`
}

// WebhookWire is the API form of a webhook; secret is shown only on
// create and rotate.
func WebhookWire(w *store.Webhook, secret string) api.Webhook {
	emails := w.NotificationEmails
	if emails == nil {
		emails = []string{}
	}
	return api.Webhook{ID: w.ID, Description: w.Description, TriggerTypes: slices.Clone(w.TriggerTypes), WebhookURL: w.URL,
		Status: w.Status, NotificationEmailAddresses: emails, StatusUpdatedAt: w.StatusUpdatedAt.Unix(),
		CreatedAt: w.CreatedAt.Unix(), UpdatedAt: w.UpdatedAt.Unix(), CompressedDelivery: w.CompressedDelivery, WebhookSecret: secret}
}

// Webhooks lists an application's webhooks.
func (s *Service) Webhooks(ctx context.Context, appID string) ([]store.Webhook, error) {
	return s.store.ListWebhooks(ctx, appID)
}

// Webhook returns one webhook.
func (s *Service) Webhook(ctx context.Context, appID, id string) (*store.Webhook, error) {
	w, err := s.store.GetWebhook(ctx, appID, id)
	return w, storeErr(err, "webhook "+id)
}

// CreateWebhook checks that the URL answers the challenge, then creates
// the webhook with a fresh secret, returned once.
func (s *Service) CreateWebhook(ctx context.Context, appID string, in WebhookInput) (*store.Webhook, string, error) {
	if in.WebhookURL == nil || *in.WebhookURL == "" {
		return nil, "", invalid("webhook_url is required")
	}
	if in.TriggerTypes == nil || len(*in.TriggerTypes) == 0 {
		return nil, "", invalid("trigger_types is required: one or more of %s", strings.Join(webhook.Triggers(), ", "))
	}
	w := &store.Webhook{ApplicationID: appID, Status: WebhookActive}
	if err := applyWebhookInput(w, in); err != nil {
		return nil, "", err
	}
	if err := s.verifyWebhookURL(ctx, w.URL); err != nil {
		return nil, "", err
	}
	w.ID = newID()
	secret, err := s.newWebhookSecret(w)
	if err != nil {
		return nil, "", err
	}
	if err := s.store.CreateWebhook(ctx, w); err != nil {
		return nil, "", storeErr(err, "webhook")
	}
	return w, secret, nil
}

// UpdateWebhook changes a webhook; a new URL must answer the challenge
// again. Status may be set to active (also to revive a failed webhook) or
// pause.
func (s *Service) UpdateWebhook(ctx context.Context, appID, id string, in WebhookInput) (*store.Webhook, error) {
	w, err := s.Webhook(ctx, appID, id)
	if err != nil {
		return nil, err
	}
	oldURL := w.URL
	if err := applyWebhookInput(w, in); err != nil {
		return nil, err
	}
	if in.Status != nil {
		if *in.Status != WebhookActive && *in.Status != WebhookPause {
			return nil, invalid("status can be set to active or pause")
		}
		w.Status = *in.Status
	}
	if w.URL != oldURL {
		if err := s.verifyWebhookURL(ctx, w.URL); err != nil {
			return nil, err
		}
	}
	if err := s.store.UpdateWebhook(ctx, w); err != nil {
		return nil, storeErr(err, "webhook "+id)
	}
	return s.Webhook(ctx, appID, id)
}

// DeleteWebhook deletes a webhook and its pending deliveries.
func (s *Service) DeleteWebhook(ctx context.Context, appID, id string) error {
	return storeErr(s.store.DeleteWebhook(ctx, appID, id), "webhook "+id)
}

// RotateWebhookSecret replaces the secret; the old one stops at once.
func (s *Service) RotateWebhookSecret(ctx context.Context, appID, id string) (*store.Webhook, string, error) {
	w, err := s.Webhook(ctx, appID, id)
	if err != nil {
		return nil, "", err
	}
	secret, err := s.newWebhookSecret(w)
	if err != nil {
		return nil, "", err
	}
	if err := s.store.UpdateWebhook(ctx, w); err != nil {
		return nil, "", storeErr(err, "webhook "+id)
	}
	return w, secret, nil
}

// WebhookSecret opens a webhook's sealed secret (for signing).
func (s *Service) WebhookSecret(w *store.Webhook) ([]byte, error) {
	return s.box.Open(w.Secret, []byte("webhook:"+w.ID))
}

func (s *Service) newWebhookSecret(w *store.Webhook) (string, error) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	sealed, err := s.box.Seal([]byte(secret), []byte("webhook:"+w.ID))
	if err != nil {
		return "", err
	}
	w.Secret = sealed
	return secret, nil
}

func applyWebhookInput(w *store.Webhook, in WebhookInput) error {
	if in.WebhookURL != nil {
		u, err := url.Parse(*in.WebhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return invalid("webhook_url must be an absolute http(s) URL")
		}
		w.URL = *in.WebhookURL
	}
	if in.TriggerTypes != nil {
		if len(*in.TriggerTypes) == 0 {
			return invalid("trigger_types must not be empty")
		}
		known := webhook.Triggers()
		for _, t := range *in.TriggerTypes {
			if !slices.Contains(known, t) {
				return invalid("trigger_types: %q is not a trigger Orchard sends (%s)", t, strings.Join(known, ", "))
			}
		}
		w.TriggerTypes = slices.Compact(slices.Sorted(slices.Values(*in.TriggerTypes)))
	}
	if in.Description != nil {
		w.Description = *in.Description
	}
	if in.NotificationEmails != nil {
		w.NotificationEmails = slices.Clone(*in.NotificationEmails)
	}
	if in.CompressedDelivery != nil {
		w.CompressedDelivery = *in.CompressedDelivery
	}
	return nil
}

// verifyWebhookURL runs the challenge: the URL must echo it within 10 s.
func (s *Service) verifyWebhookURL(ctx context.Context, u string) error {
	err := webhook.VerifyURL(ctx, s.webhookClient(), u)
	if errors.Is(err, webhook.ErrVerification) {
		return invalid("%v. Orchard sends GET %s?challenge=<value> and expects 200 with exactly <value> as the body within 10 seconds", err, u)
	}
	return err
}

func (s *Service) webhookClient() *http.Client {
	if s.hookClient != nil {
		return s.hookClient
	}
	return http.DefaultClient
}

// MockPayload is an example notification of a trigger type.
func (s *Service) MockPayload(triggerType string) (json.RawMessage, error) {
	p, err := webhook.Mock(triggerType)
	if err != nil {
		return nil, invalid("trigger_type: %v", err)
	}
	return p, nil
}

// SendTestEvent POSTs a mock notification, signed with the secret
// "mock-webhook-secret", to url.
func (s *Service) SendTestEvent(ctx context.Context, triggerType, u string) error {
	if _, err := webhook.Mock(triggerType); err != nil {
		return invalid("trigger_type: %v", err)
	}
	if err := webhook.SendTest(ctx, s.webhookClient(), u, triggerType); err != nil {
		return invalid("the test event could not be delivered to %s: %v", u, err)
	}
	return nil
}

// WebhookDeliveries are a webhook's recent deliveries with their attempts.
func (s *Service) WebhookDeliveries(ctx context.Context, appID, id string, limit int) ([]store.Delivery, error) {
	if _, err := s.Webhook(ctx, appID, id); err != nil {
		return nil, err
	}
	return s.store.RecentDeliveries(ctx, appID, id, limit)
}

// ReplayDelivery makes a delivery due again now.
func (s *Service) ReplayDelivery(ctx context.Context, appID, webhookID, deliveryID string) error {
	d, err := s.store.GetDelivery(ctx, appID, deliveryID)
	if err != nil || d.WebhookID != webhookID {
		return notFound("delivery %s not found", deliveryID)
	}
	if err := s.store.RetryDelivery(ctx, appID, deliveryID, s.now()); err != nil {
		return storeErr(err, "delivery "+deliveryID)
	}
	s.notifyWebhooks()
	return nil
}

func (s *Service) notifyWebhooks() {
	if s.dispatcher != nil {
		s.dispatcher.Notify()
	}
}
