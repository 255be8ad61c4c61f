package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/mailbox"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/quota"
	"github.com/orchard-mail/orchard/internal/service"
)

// httpError is an error the HTTP layer itself raises (bad JSON, bad query
// parameter, unknown route), already carrying its status and type.
type httpError struct {
	status     int
	typ        string
	msg        string
	retryAfter int // seconds; 0 = no Retry-After header
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, typ, format string, args ...any) *httpError {
	return &httpError{status: status, typ: typ, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *httpError {
	return errorf(http.StatusBadRequest, api.ErrInvalidRequest, format, args...)
}

func tooLarge(limit int64) *httpError {
	return errorf(http.StatusRequestEntityTooLarge, api.ErrTooLarge, "request body is larger than the limit of %d bytes", limit)
}

// writeError is the one place where an error becomes an HTTP answer.
// Unknown errors are logged and answered with a generic 500 that names the
// request id, never with their text (it may hold internal details).
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var oe *service.OAuthError
	if errors.As(err, &oe) {
		// The token endpoints answer in OAuth's shape, not the envelope.
		writeJSON(w, oe.Status, oauthErrorBody{RequestID: requestID(r.Context()), Error: oe.Code,
			ErrorDescription: oe.Description, ErrorCode: oe.Status})
		return
	}
	status, body, retryAfter := renderError(r, log, err)
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	writeJSON(w, status, body)
}

// renderError is writeError without the writing: the status, the
// envelope and the Retry-After seconds (0: none).
func renderError(r *http.Request, log *slog.Logger, err error) (int, api.ErrorResponse, int) {
	status, detail, retryAfter := classify(err)
	if status >= 500 && detail.Type == api.ErrInternal {
		log.ErrorContext(r.Context(), "request failed", "request_id", requestID(r.Context()), "error", err)
		detail.Message = "internal error (request id " + requestID(r.Context()) + ")"
	}
	return status, api.ErrorResponse{RequestID: requestID(r.Context()), Error: detail}, retryAfter
}

func classify(err error) (int, api.ErrorDetail, int) {
	var he *httpError
	var se *service.Error
	var pe *provider.Error
	var mbe *http.MaxBytesError
	var search *mailbox.SearchError
	var qe *quota.Error
	var uncertain *service.UncertainSendError
	switch {
	case errors.As(err, &qe):
		return quotaStatus[qe.Kind], api.ErrorDetail{Type: quotaType(qe.Kind), Message: qe.Message}, int(qe.RetryAfter.Seconds())
	case errors.As(err, &uncertain):
		// No Retry-After: retrying blindly may send the message twice.
		return http.StatusGatewayTimeout, api.ErrorDetail{Type: api.ErrProvider, Message: uncertain.Error()}, 0
	case errors.As(err, &search):
		return http.StatusBadRequest, api.ErrorDetail{Type: api.ErrInvalidRequest, Message: search.Error()}, 0
	case errors.As(err, &he):
		return he.status, api.ErrorDetail{Type: he.typ, Message: he.msg}, he.retryAfter
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, api.ErrorDetail{Type: api.ErrTooLarge,
			Message: fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit)}, 0
	case errors.As(err, &se):
		if m, ok := serviceErrors[se.Code]; ok {
			return m.status, api.ErrorDetail{Type: m.typ, Message: se.Message}, 0
		}
	case errors.As(err, &pe):
		return providerStatus(pe), providerDetail(pe), providerRetry(pe)
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, api.ErrorDetail{Type: api.ErrProvider, Message: "the operation timed out"}, 5
	}
	return http.StatusInternalServerError, api.ErrorDetail{Type: api.ErrInternal}, 0
}

// quotaStatus: a message over a per-message limit must change (400 for
// recipients, 413 for size); the daily limits pass with time (429).
var quotaStatus = map[quota.Kind]int{
	quota.TooManyRecipients: http.StatusBadRequest,
	quota.TooLarge:          http.StatusRequestEntityTooLarge,
	quota.DailyMessages:     http.StatusTooManyRequests,
	quota.DailyRecipients:   http.StatusTooManyRequests,
}

func quotaType(k quota.Kind) string {
	switch k {
	case quota.TooLarge:
		return api.ErrTooLarge
	case quota.DailyMessages, quota.DailyRecipients:
		return api.ErrRateLimit
	}
	return api.ErrInvalidRequest
}

// serviceErrors maps each use-case error code to its status and type.
var serviceErrors = map[service.Code]struct {
	status int
	typ    string
}{
	service.CodeInvalid:      {http.StatusBadRequest, api.ErrInvalidRequest},
	service.CodeUnauthorized: {http.StatusUnauthorized, api.ErrUnauthorized},
	service.CodeNotFound:     {http.StatusNotFound, api.ErrNotFound},
	service.CodeConflict:     {http.StatusConflict, api.ErrConflict},
}

// providerStatus: a refused login is the end user's to fix (401); a server
// that is down or slow is nobody's fault and worth a retry (503, 504); a
// TLS failure needs configuration (400); a request the server refused for
// good (an SMTP 5xx: unknown recipient, policy) must change (400);
// anything else the server did wrong is a bad gateway (502).
func providerStatus(e *provider.Error) int {
	switch e.Kind {
	case provider.KindAuth:
		return http.StatusUnauthorized
	case provider.KindUnavailable:
		return http.StatusServiceUnavailable
	case provider.KindTimeout:
		return http.StatusGatewayTimeout
	case provider.KindTLS, provider.KindRejected:
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}

func providerRetry(e *provider.Error) int {
	if e.Permanent() {
		return 0
	}
	return 30
}

// because puts the server's own words (never credentials: see
// provider.Error.Text) into a message.
func because(text string) string {
	if text == "" {
		return ""
	}
	return " (" + text + ")"
}

func providerDetail(e *provider.Error) api.ErrorDetail {
	var msg string
	switch e.Kind {
	case provider.KindAuth:
		msg = fmt.Sprintf("the %s server refused the login", e.Service)
	case provider.KindUnavailable:
		msg = fmt.Sprintf("the %s server %s is unavailable%s; try again later", e.Service, e.Addr, because(e.Text))
	case provider.KindTimeout:
		msg = fmt.Sprintf("the %s server %s did not answer in time; try again later", e.Service, e.Addr)
	case provider.KindTLS:
		msg = fmt.Sprintf("secure connection to the %s server %s failed (%s); if the server uses a private certificate authority, the Orchard operator must add it with ORCHARD_CA_FILE", e.Service, e.Addr, e.Text)
	case provider.KindRejected:
		msg = fmt.Sprintf("the %s server %s refused the request%s", e.Service, e.Addr, because(e.Text))
	default:
		msg = fmt.Sprintf("the %s server %s answered unexpectedly%s", e.Service, e.Addr, because(e.Text))
	}
	if e.Hint != "" {
		msg += ". " + e.Hint
	}
	return api.ErrorDetail{Type: api.ErrProvider, Message: msg,
		ProviderError: &api.ProviderError{Service: e.Service, Message: e.Text}}
}
