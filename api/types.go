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

// Participant is a name and address.
type Participant struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// Attachment is a message attachment's metadata.
type Attachment struct {
	ID                 string `json:"id"`
	GrantID            string `json:"grant_id"`
	Filename           string `json:"filename"`
	ContentType        string `json:"content_type"`
	Size               int64  `json:"size"`
	ContentID          string `json:"content_id,omitempty"`
	ContentDisposition string `json:"content_disposition"`
	IsInline           bool   `json:"is_inline"`
}

// Header is one header field, undecoded.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Message is a message (nylas-v3-api.md §4.1).
type Message struct {
	Object      string         `json:"object"`
	ID          string         `json:"id"`
	GrantID     string         `json:"grant_id"`
	ThreadID    string         `json:"thread_id,omitempty"`
	Subject     string         `json:"subject"`
	From        []Participant  `json:"from"`
	To          []Participant  `json:"to"`
	Cc          []Participant  `json:"cc"`
	Bcc         []Participant  `json:"bcc"`
	ReplyTo     []Participant  `json:"reply_to"`
	Date        int64          `json:"date"`
	Unread      bool           `json:"unread"`
	Starred     bool           `json:"starred"`
	Folders     []string       `json:"folders"`
	Snippet     string         `json:"snippet"`
	Body        string         `json:"body"`
	Attachments []Attachment   `json:"attachments"`
	Metadata    map[string]any `json:"metadata"`
	Headers     []Header       `json:"headers,omitempty"`
	CreatedAt   int64          `json:"created_at"`
}

// RawMessage is a message requested with fields=raw_mime.
type RawMessage struct {
	Object  string `json:"object"`
	ID      string `json:"id"`
	GrantID string `json:"grant_id"`
	RawMIME string `json:"raw_mime"` // base64url
}

// Thread is a conversation.
type Thread struct {
	Object                    string        `json:"object"`
	ID                        string        `json:"id"`
	GrantID                   string        `json:"grant_id"`
	Subject                   string        `json:"subject"`
	Participants              []Participant `json:"participants"`
	MessageIDs                []string      `json:"message_ids"`
	DraftIDs                  []string      `json:"draft_ids"`
	Folders                   []string      `json:"folders"`
	HasAttachments            bool          `json:"has_attachments"`
	HasDrafts                 bool          `json:"has_drafts"`
	Starred                   bool          `json:"starred"`
	Unread                    bool          `json:"unread"`
	Snippet                   string        `json:"snippet"`
	EarliestMessageDate       int64         `json:"earliest_message_date"`
	LatestMessageReceivedDate int64         `json:"latest_message_received_date"`
	LatestDraftOrMessage      *Message      `json:"latest_draft_or_message,omitempty"`
}

// Folder is a mail folder.
type Folder struct {
	Object       string   `json:"object"`
	ID           string   `json:"id"`
	GrantID      string   `json:"grant_id"`
	Name         string   `json:"name"`
	ParentID     string   `json:"parent_id,omitempty"`
	Attributes   []string `json:"attributes"`
	SystemFolder bool     `json:"system_folder"`
	ChildCount   int      `json:"child_count"`
	TotalCount   int      `json:"total_count"`
	UnreadCount  int      `json:"unread_count"`
}

// SyncStatus is Orchard's view of a grant's mail sync
// (GET /v3/grants/{id}/sync, an Orchard extension).
type SyncStatus struct {
	GrantID         string       `json:"grant_id"`
	State           string       `json:"state"` // connecting, initial_sync, idle, retrying, stopped, not_running
	InitialSyncDone bool         `json:"initial_sync_done"`
	Messages        int          `json:"messages"`
	LastError       string       `json:"last_error,omitempty"`
	LastErrorAt     int64        `json:"last_error_at,omitempty"`
	Retries         int          `json:"retries"`
	Folders         []FolderSync `json:"folders"`
}

// FolderSync is one folder's sync progress.
type FolderSync struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	InitialSyncDone bool   `json:"initial_sync_done"`
	Messages        int    `json:"messages"`
	LastSyncAt      int64  `json:"last_sync_at,omitempty"`
}

// OutgoingMessage is the body of messages/send and of drafts create and
// update (JSON, or the "message"/"draft" part of a multipart form). Nil
// fields were absent: a draft update keeps what the draft had.
type OutgoingMessage struct {
	To               *[]Participant        `json:"to"`
	Cc               *[]Participant        `json:"cc"`
	Bcc              *[]Participant        `json:"bcc"`
	ReplyTo          *[]Participant        `json:"reply_to"`
	From             *[]Participant        `json:"from"`
	Subject          *string               `json:"subject"`
	Body             *string               `json:"body"`
	IsPlaintext      *bool                 `json:"is_plaintext"`
	ReplyToMessageID *string               `json:"reply_to_message_id"`
	Attachments      *[]OutgoingAttachment `json:"attachments"`
	CustomHeaders    *[]Header             `json:"custom_headers"`
	Starred          *bool                 `json:"starred"`
	Unread           *bool                 `json:"unread"`
	SendAt           *int64                `json:"send_at"`
	UseDraft         *bool                 `json:"use_draft"`
	TrackingOptions  json.RawMessage       `json:"tracking_options"`
	Metadata         json.RawMessage       `json:"metadata"`
}

// OutgoingAttachment is an attachment of an OutgoingMessage; Content is
// base64 (standard alphabet) in JSON bodies.
type OutgoingAttachment struct {
	Filename           string  `json:"filename"`
	ContentType        string  `json:"content_type"`
	Content            *string `json:"content"`
	ContentID          string  `json:"content_id"`
	ContentDisposition string  `json:"content_disposition"`
	IsInline           bool    `json:"is_inline"`
	Size               int64   `json:"size"`
}

// SendResponse is the answer of messages/send, which carries grant_id
// beside data.
type SendResponse struct {
	RequestID string  `json:"request_id"`
	GrantID   string  `json:"grant_id"`
	Data      Message `json:"data"`
}
