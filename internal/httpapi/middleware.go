package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
)

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyAppID
	// keyLogAppID holds a *string the access log reads after the handler
	// ran: authentication happens deeper in the chain.
	keyLogAppID
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

// appID is the application the request authenticated as; handlers wrapped
// by s.app always have one.
func appID(r *http.Request) string {
	id, _ := r.Context().Value(keyAppID).(string)
	return id
}

// withRequestID gives every request a fresh id, in the X-Request-Id header
// (which the Node SDK reads into its errors) and in every body.
func (s *server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:4]) + "-" + hex.EncodeToString(b[4:6]) + "-" + hex.EncodeToString(b[6:8]) + "-" +
			hex.EncodeToString(b[8:10]) + "-" + hex.EncodeToString(b[10:])
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyRequestID, id)))
	})
}

// statusRecorder remembers what a handler wrote, for the access log and
// for the recovery middleware (which must not write twice).
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rec *statusRecorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *statusRecorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

func (rec *statusRecorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// withAccessLog logs one line per request. It logs the path but never the
// query string or headers, which may carry tokens.
func (s *server) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		app := new(string)
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), keyLogAppID, app)))
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), level, "http request",
			slog.String("request_id", requestID(r.Context())),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("application_id", *app), slog.String("remote", service.ClientInfoOf(r).IP))
	})
}

// withRecovery turns a panic into a 500 envelope (the stack goes to the
// log, never to the client).
func (s *server) withRecovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, _ := w.(*statusRecorder)
		defer func() {
			v := recover()
			if v == nil || v == http.ErrAbortHandler {
				if v != nil {
					panic(v)
				}
				return
			}
			s.log.ErrorContext(r.Context(), "panic serving request", "request_id", requestID(r.Context()),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if rec == nil || rec.status == 0 {
				writeError(w, r, s.log, errorf(http.StatusInternalServerError, "internal_error",
					"internal error (request id %s)", requestID(r.Context())))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *server) withBodyLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := s.bodyLimit(r)
		if r.ContentLength > limit {
			writeError(w, r, s.log, tooLarge(limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// bodyLimit: requests that carry a message (send, draft create and
// update) may hold attachments and get the larger send limit.
func (s *server) bodyLimit(r *http.Request) int64 {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		return s.maxBody
	}
	p := r.URL.Path
	if strings.HasPrefix(p, "/v3/grants/") && (strings.HasSuffix(p, "/messages/send") || strings.Contains(p, "/drafts")) {
		return max(s.maxSendBody, s.maxBody)
	}
	return s.maxBody
}

// app wraps a handler that needs an application: it authenticates the
// Bearer API key and stores the application id in the request context.
func (s *server) app(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := bearer(r)
		if !ok {
			writeError(w, r, s.log, errorf(http.StatusUnauthorized, "unauthorized",
				"missing API key: send the header Authorization: Bearer <API key>"))
			return
		}
		id, err := s.authenticate(r, key)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if slot, ok := r.Context().Value(keyLogAppID).(*string); ok {
			*slot = id
		}
		r = r.WithContext(context.WithValue(r.Context(), keyAppID, id))
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// authenticate finds the application of a request. An API key reaches all
// of its application; an access token from hosted authentication reaches
// its one grant, as /v3/grants/me/... (or by the grant's own id), and
// nothing else. "me" is rewritten to the grant id for the handlers.
func (s *server) authenticate(r *http.Request, bearer string) (string, error) {
	ref := r.PathValue("grant")
	if !service.IsAccessToken(bearer) {
		if ref == "me" {
			return "", errorf(http.StatusBadRequest, api.ErrInvalidRequest,
				"/v3/grants/me needs an access token from hosted authentication; with an API key, use the grant id")
		}
		return s.svc.AuthenticateAPIKey(r.Context(), bearer)
	}
	appID, grantID, err := s.svc.AuthenticateAccessToken(r.Context(), bearer)
	switch {
	case err != nil:
		return "", err
	case ref == "":
		return "", errorf(http.StatusUnauthorized, api.ErrUnauthorized,
			"an access token only reaches its own grant at /v3/grants/me/...; this endpoint needs an API key")
	case ref != "me" && ref != grantID:
		return "", errorf(http.StatusUnauthorized, api.ErrUnauthorized, "this access token is for another grant")
	}
	r.SetPathValue("grant", grantID)
	return appID, nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
