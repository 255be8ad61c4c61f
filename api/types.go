// Package api holds the public wire types of Orchard's Nylas v3 compatible
// REST API: snake_case JSON, Unix-second timestamps.
package api

import "encoding/json"

// Response is the success envelope. Data is omitted only for DELETEs.
type Response struct {
	RequestID  string `json:"request_id"`
	Data       any    `json:"data,omitempty"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// OffsetResponse is the envelope of offset-paginated lists (grants,
// connectors).
type OffsetResponse struct {
	RequestID string `json:"request_id"`
	Data      any    `json:"data"`
	Limit     int    `json:"limit"`
	Offset    int    `json:"offset"`
}

// ErrorResponse is the error envelope of every non-OAuth endpoint.
type ErrorResponse struct {
	RequestID string      `json:"request_id"`
	Error     ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong. Type is one of the Nylas error types
// (invalid_request_error, not_found_error, provider_error, ...).
type ErrorDetail struct {
	Type          string         `json:"type"`
	Message       string         `json:"message"`
	ProviderError *ProviderError `json:"provider_error,omitempty"`
}

// ProviderError carries what the mail or calendar server answered.
type ProviderError struct {
	Service string `json:"service,omitempty"` // imap, smtp, caldav
	Message string `json:"message"`
}

// Error types used by Orchard.
const (
	ErrInvalidRequest = "invalid_request_error"
	ErrInvalidPayload = "api.invalid_request_payload"
	ErrUnauthorized   = "unauthorized"
	ErrNotFound       = "not_found_error"
	ErrConflict       = "conflict_error"
	ErrTooLarge       = "request_too_large"
	ErrMethod         = "method_not_allowed"
	ErrRateLimit      = "rate_limit_error"
	ErrProvider       = "provider_error"
	ErrInternal       = "internal_error"
)

// Application is an application's details (GET /v3/applications).
type Application struct {
	ApplicationID        string          `json:"application_id"`
	OrganizationID       string          `json:"organization_id"`
	Region               string          `json:"region"`
	Environment          string          `json:"environment"`
	Branding             json.RawMessage `json:"branding"`
	HostedAuthentication json.RawMessage `json:"hosted_authentication"`
	CallbackURIs         []RedirectURI   `json:"callback_uris"`
}

// RedirectURI is a registered hosted-auth callback.
type RedirectURI struct {
	ID       string          `json:"id"`
	URL      string          `json:"url"`
	Platform string          `json:"platform"`
	Settings json.RawMessage `json:"settings"`
}

// Connector enables a provider for an application.
type Connector struct {
	Name     string          `json:"name"`
	Provider string          `json:"provider"`
	Settings json.RawMessage `json:"settings"`
	Scope    []string        `json:"scope"`
}

// Grant is one connected end-user account. Settings never holds secrets.
type Grant struct {
	ID          string          `json:"id"`
	Provider    string          `json:"provider"`
	GrantStatus string          `json:"grant_status"`
	Email       string          `json:"email"`
	Name        string          `json:"name,omitempty"`
	Scope       []string        `json:"scope"`
	Settings    json.RawMessage `json:"settings"`
	State       string          `json:"state,omitempty"`
	IP          string          `json:"ip,omitempty"`
	UserAgent   string          `json:"user_agent,omitempty"`
	CreatedAt   int64           `json:"created_at"`
	UpdatedAt   int64           `json:"updated_at"`
}
