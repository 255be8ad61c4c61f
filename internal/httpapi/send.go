package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
)

func (s *server) sendMessage(w http.ResponseWriter, r *http.Request) error {
	out, err := decodeOutgoing(r, s.svc.Now())
	if err != nil {
		return err
	}
	return s.idempotently(w, r, out.hash, func() (any, error) {
		sent, err := s.svc.SendMessage(r.Context(), appID(r), r.PathValue("grant"), out.Outgoing)
		if err != nil {
			return nil, err
		}
		return sendResponse(r, sent), nil
	})
}

func (s *server) sendDraft(w http.ResponseWriter, r *http.Request) error {
	// The SDK sends {}; nothing in the body changes the draft.
	hash := fingerprint(r, &service.Outgoing{})
	return s.idempotently(w, r, hash, func() (any, error) {
		sent, err := s.svc.SendDraft(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		return sendResponse(r, sent), nil
	})
}

func sendResponse(r *http.Request, sent *service.Sent) api.SendResponse {
	return api.SendResponse{RequestID: requestID(r.Context()), GrantID: sent.Grant.ID,
		Data: service.MessageWire(sent.Message, service.HeadersNone)}
}

// idempotently runs a request that must not take effect twice. Without an
// Idempotency-Key it just runs. With one, the first request with the key
// runs and its outcome is stored; a retry with the same key and the same
// content gets that outcome again (header Idempotent-Replayed: true), one
// with other content, or while the first still runs, gets 409. A request
// that failed without effect frees the key so that a retry runs anew; one
// that may have had an effect (a send the server did not confirm) keeps
// its error, so a retry never sends twice.
func (s *server) idempotently(w http.ResponseWriter, r *http.Request, hash []byte, run func() (any, error)) error {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		v, err := run()
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
	g, prev, err := s.svc.BeginIdempotent(r.Context(), appID(r), r.PathValue("grant"), key, hash)
	if err != nil {
		return err
	}
	if prev != nil {
		switch {
		case !bytes.Equal(prev.RequestHash, hash):
			return errorf(http.StatusConflict, api.ErrConflict, "Idempotency-Key %q was already used with a different request", key)
		case prev.Status == 0:
			return errorf(http.StatusConflict, api.ErrConflict, "a request with Idempotency-Key %q is still in progress", key)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(prev.Status)
		_, _ = w.Write(prev.Response)
		return nil
	}
	v, err := run()
	if err != nil {
		var uncertain *service.UncertainSendError
		if !errors.As(err, &uncertain) {
			if aerr := s.svc.AbandonIdempotent(r.Context(), g.ID, key); aerr != nil {
				s.log.WarnContext(r.Context(), "free idempotency key", "error", aerr)
			}
			return err
		}
		status, body, retryAfter := renderError(r, s.log, err)
		if retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		}
		return s.finishIdempotent(w, r, g.ID, key, status, body)
	}
	return s.finishIdempotent(w, r, g.ID, key, http.StatusOK, v)
}

func (s *server) finishIdempotent(w http.ResponseWriter, r *http.Request, grantID, key string, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := s.svc.FinishIdempotent(r.Context(), grantID, key, status, body); err != nil {
		// The request took effect; only its replay is lost.
		s.log.ErrorContext(r.Context(), "store idempotent response", "request_id", requestID(r.Context()), "error", err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return nil
}
