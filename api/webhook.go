package api

// Webhook is an application's webhook (GET /v3/webhooks). WebhookSecret is
// set only in the answers of create and rotate-secret.
type Webhook struct {
	ID                         string   `json:"id"`
	Description                string   `json:"description"`
	TriggerTypes               []string `json:"trigger_types"`
	WebhookURL                 string   `json:"webhook_url"`
	Status                     string   `json:"status"`
	NotificationEmailAddresses []string `json:"notification_email_addresses"`
	StatusUpdatedAt            int64    `json:"status_updated_at"`
	CreatedAt                  int64    `json:"created_at"`
	UpdatedAt                  int64    `json:"updated_at"`
	CompressedDelivery         bool     `json:"compressed_delivery"`
	WebhookSecret              string   `json:"webhook_secret,omitempty"`
}

// WebhookDelivery is one notification to a webhook and its attempts (an
// Orchard extension: GET /v3/webhooks/{id}/deliveries).
type WebhookDelivery struct {
	ID          string            `json:"id"`
	Type        string            `json:"type"`
	GrantID     string            `json:"grant_id,omitempty"`
	State       string            `json:"state"` // pending, delivered, failed
	Attempts    []DeliveryAttempt `json:"attempts"`
	NextAttempt int64             `json:"next_attempt_at,omitempty"`
	CreatedAt   int64             `json:"created_at"`
	FinishedAt  int64             `json:"finished_at,omitempty"`
}

// DeliveryAttempt is one POST of a delivery.
type DeliveryAttempt struct {
	N         int    `json:"attempt"`
	At        int64  `json:"at"`
	Status    int    `json:"status_code,omitempty"`
	LatencyMS int64  `json:"latency_ms"`
	Error     string `json:"error,omitempty"`
}
