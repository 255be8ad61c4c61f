// Package httpapi serves Orchard's Nylas v3 compatible REST API: routing on
// net/http ServeMux patterns, the middleware chain, the success and error
// envelopes and the one mapping from errors to HTTP statuses (errors.go).
package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/orchard-mail/orchard/internal/service"
)

// Options configure the handler.
type Options struct {
	Service *service.Service
	Logger  *slog.Logger
	// MaxBodyBytes caps request bodies; larger ones get 413.
	MaxBodyBytes int64
	// MaxSendBodyBytes caps the bodies of send and draft requests, which
	// carry attachments (default 36 MiB: 25 MB of files as base64 JSON).
	MaxSendBodyBytes int64
	// Pages are the browser-facing handlers mounted beside the API.
	Pages Pages
}

// Pages are the HTML handlers served on the API's address: hosted
// authentication at /v3/connect/auth and /oauth/authorize, the dashboard
// at /dashboard, and their shared assets at /static/. Nil ones are not
// mounted.
type Pages struct {
	HostedAuth http.Handler
	Dashboard  http.Handler
	Static     http.Handler
}

// server is the handler's state. It is read-only after New.
type server struct {
	svc     *service.Service
	log     *slog.Logger
	maxBody int64
	// maxSendBody is the limit of requests carrying a message.
	maxSendBody int64
	mux         *http.ServeMux
	pages       Pages
}

// New returns the API handler with its middleware applied.
func New(o Options) http.Handler {
	s := &server{svc: o.Service, log: o.Logger, maxBody: o.MaxBodyBytes, maxSendBody: o.MaxSendBodyBytes, mux: http.NewServeMux(), pages: o.Pages}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	if s.maxSendBody <= 0 {
		s.maxSendBody = 36 << 20
	}
	s.routes()
	return s.withRequestID(s.withAccessLog(s.withRecovery(s.withBodyLimit(s.mux))))
}

func (s *server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)

	m.Handle("GET /v3/applications", s.app(s.getApplication))
	m.Handle("PATCH /v3/applications", s.app(s.patchApplication))
	m.Handle("GET /v3/applications/redirect-uris", s.app(s.listRedirectURIs))
	m.Handle("POST /v3/applications/redirect-uris", s.app(s.createRedirectURI))
	m.Handle("GET /v3/applications/redirect-uris/{id}", s.app(s.getRedirectURI))
	m.Handle("PATCH /v3/applications/redirect-uris/{id}", s.app(s.updateRedirectURI))
	m.Handle("PUT /v3/applications/redirect-uris/{id}", s.app(s.updateRedirectURI))
	m.Handle("DELETE /v3/applications/redirect-uris/{id}", s.app(s.deleteRedirectURI))

	m.Handle("GET /v3/connectors", s.app(s.listConnectors))
	m.Handle("POST /v3/connectors", s.app(s.createConnector))
	m.Handle("GET /v3/connectors/{provider}", s.app(s.getConnector))
	// The Node SDK updates with PUT, the OpenAPI spec and other SDKs with PATCH.
	m.Handle("PUT /v3/connectors/{provider}", s.app(s.updateConnector))
	m.Handle("PATCH /v3/connectors/{provider}", s.app(s.updateConnector))
	m.Handle("DELETE /v3/connectors/{provider}", s.app(s.deleteConnector))

	m.Handle("POST /v3/connect/custom", s.app(s.connectCustom))
	m.Handle("POST /v3/connect/token", s.public(s.token))
	m.Handle("POST /v3/connect/revoke", s.public(s.revoke))
	m.Handle("GET /v3/connect/tokeninfo", s.public(s.tokenInfo))
	if s.pages.HostedAuth != nil {
		m.Handle("GET /v3/connect/auth", s.pages.HostedAuth)
		m.Handle("POST /v3/connect/auth", s.pages.HostedAuth)
		m.Handle("GET /oauth/authorize", s.pages.HostedAuth)
	}
	if s.pages.Dashboard != nil {
		m.Handle("/dashboard", s.pages.Dashboard)
		m.Handle("/dashboard/", s.pages.Dashboard)
	}
	if s.pages.Static != nil {
		m.Handle("GET /static/", s.pages.Static)
	}

	m.Handle("GET /v3/grants", s.app(s.listGrants))
	m.Handle("GET /v3/grants/{grant}", s.app(s.getGrant))
	m.Handle("PATCH /v3/grants/{grant}", s.app(s.patchGrant))
	m.Handle("DELETE /v3/grants/{grant}", s.app(s.deleteGrant))

	m.Handle("GET /v3/grants/{grant}/sync", s.app(s.getSyncStatus))
	m.Handle("GET /v3/grants/{grant}/messages", s.app(s.listMessages))
	m.Handle("GET /v3/grants/{grant}/messages/{id}", s.app(s.getMessage))
	m.Handle("PUT /v3/grants/{grant}/messages/{id}", s.app(s.updateMessage))
	m.Handle("DELETE /v3/grants/{grant}/messages/{id}", s.app(s.deleteMessage))
	m.Handle("POST /v3/grants/{grant}/messages/send", s.app(s.sendMessage))
	m.Handle("GET /v3/grants/{grant}/drafts", s.app(s.listDrafts))
	m.Handle("POST /v3/grants/{grant}/drafts", s.app(s.createDraft))
	m.Handle("GET /v3/grants/{grant}/drafts/{id}", s.app(s.getDraft))
	m.Handle("PUT /v3/grants/{grant}/drafts/{id}", s.app(s.updateDraft))
	m.Handle("DELETE /v3/grants/{grant}/drafts/{id}", s.app(s.deleteDraft))
	m.Handle("POST /v3/grants/{grant}/drafts/{id}", s.app(s.sendDraft))
	m.Handle("GET /v3/grants/{grant}/threads", s.app(s.listThreads))
	m.Handle("GET /v3/grants/{grant}/threads/{id}", s.app(s.getThread))
	m.Handle("PUT /v3/grants/{grant}/threads/{id}", s.app(s.updateThread))
	m.Handle("DELETE /v3/grants/{grant}/threads/{id}", s.app(s.deleteThread))
	m.Handle("GET /v3/grants/{grant}/folders", s.app(s.listFolders))
	m.Handle("GET /v3/grants/{grant}/folders/{id}", s.app(s.getFolder))
	m.Handle("POST /v3/grants/{grant}/folders", s.app(s.createFolder))
	m.Handle("PUT /v3/grants/{grant}/folders/{id}", s.app(s.updateFolder))
	m.Handle("DELETE /v3/grants/{grant}/folders/{id}", s.app(s.deleteFolder))
	m.Handle("GET /v3/grants/{grant}/attachments/{id}", s.app(s.getAttachment))
	m.Handle("GET /v3/grants/{grant}/attachments/{id}/download", s.app(s.downloadAttachment))

	m.Handle("GET /v3/grants/{grant}/calendars", s.app(s.listCalendars))
	m.Handle("POST /v3/grants/{grant}/calendars", s.app(s.createCalendar))
	m.Handle("POST /v3/grants/{grant}/calendars/free-busy", s.app(s.freeBusy))
	m.Handle("GET /v3/grants/{grant}/calendars/{id}", s.app(s.getCalendar))
	m.Handle("PUT /v3/grants/{grant}/calendars/{id}", s.app(s.updateCalendar))
	m.Handle("DELETE /v3/grants/{grant}/calendars/{id}", s.app(s.deleteCalendar))
	m.Handle("GET /v3/grants/{grant}/events", s.app(s.listEvents))
	m.Handle("POST /v3/grants/{grant}/events", s.app(s.createEvent))
	m.Handle("GET /v3/grants/{grant}/events/{id}", s.app(s.getEvent))
	m.Handle("PUT /v3/grants/{grant}/events/{id}", s.app(s.updateEvent))
	m.Handle("DELETE /v3/grants/{grant}/events/{id}", s.app(s.deleteEvent))

	m.Handle("GET /v3/webhooks", s.app(s.listWebhooks))
	m.Handle("POST /v3/webhooks", s.app(s.createWebhook))
	m.Handle("GET /v3/webhooks/ip-addresses", s.app(s.webhookIPAddresses))
	m.Handle("POST /v3/webhooks/mock-payload", s.app(s.mockPayload))
	m.Handle("POST /v3/webhooks/send-test-event", s.app(s.sendTestEvent))
	m.Handle("GET /v3/webhooks/{id}", s.app(s.getWebhook))
	m.Handle("PUT /v3/webhooks/{id}", s.app(s.updateWebhook))
	m.Handle("DELETE /v3/webhooks/{id}", s.app(s.deleteWebhook))
	// The Node SDK rotates with POST …/rotate-secret/{id}, the Python SDK
	// with PUT …/{id}/rotate-secret.
	m.Handle("POST /v3/webhooks/rotate-secret/{id}", s.app(s.rotateWebhookSecret))
	m.Handle("PUT /v3/webhooks/{id}/rotate-secret", s.app(s.rotateWebhookSecret))
	// Orchard extensions: what was delivered, and replaying one.
	m.Handle("GET /v3/webhooks/{id}/deliveries", s.app(s.listDeliveries))
	m.Handle("POST /v3/webhooks/{id}/deliveries/{delivery}/replay", s.app(s.replayDelivery))

	m.HandleFunc("/", s.noRoute)
}

// noRoute answers paths no pattern serves: 405 when the path exists with
// another method, else 404, both in the error envelope.
func (s *server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, method)
		}
	}
	if len(allowed) > 0 {
		for _, m := range allowed {
			w.Header().Add("Allow", m)
		}
		writeError(w, r, s.log, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	writeError(w, r, s.log, errorf(http.StatusNotFound, "not_found_error", "no such endpoint: %s %s", r.Method, r.URL.Path))
}
