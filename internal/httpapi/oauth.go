package httpapi

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"

	"github.com/orchard-mail/orchard/internal/service"
)

// The JSON side of hosted authentication (the pages are internal/
// hostedauth): code exchange and refresh, revocation, token info. These
// need no API key: the client authenticates in the body (client_secret),
// or with PKCE alone, and tokens speak for themselves.

// oauthErrorBody is RFC 6749's error shape as Nylas sends it; the Node SDK
// turns it into a NylasOAuthError for connect/token and connect/revoke.
type oauthErrorBody struct {
	RequestID        string `json:"request_id"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCode        int    `json:"error_code"`
}

// token serves POST /v3/connect/token with a JSON or form-encoded body.
func (s *server) token(w http.ResponseWriter, r *http.Request) error {
	var in service.TokenRequest
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		if err := r.ParseForm(); err != nil {
			return &service.OAuthError{Status: http.StatusBadRequest, Code: "invalid_request", Description: "the form body could not be read"}
		}
		f := r.PostForm
		in = service.TokenRequest{GrantType: f.Get("grant_type"), ClientID: f.Get("client_id"), ClientSecret: f.Get("client_secret"),
			RedirectURI: f.Get("redirect_uri"), Code: f.Get("code"), CodeVerifier: f.Get("code_verifier"), RefreshToken: f.Get("refresh_token")}
	} else if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return &service.OAuthError{Status: http.StatusBadRequest, Code: "invalid_request", Description: "the body must be a JSON object: " + err.Error()}
	}
	in.BearerKey, _ = bearer(r)
	if service.IsAccessToken(in.BearerKey) {
		in.BearerKey = "" // the SDK may be configured with an access token: it is not a client secret
	}
	resp, err := s.svc.Token(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// revoke serves POST /v3/connect/revoke?token=…
func (s *server) revoke(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	if token == "" {
		token = r.PostFormValue("token")
	}
	if err := s.svc.RevokeToken(r.Context(), token); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"request_id": requestID(r.Context()), "success": true})
	return nil
}

// tokenInfo serves GET /v3/connect/tokeninfo?access_token=… or ?id_token=…
func (s *server) tokenInfo(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var info *service.TokenInfo
	var err error
	switch {
	case q.Get("access_token") != "":
		info, err = s.svc.AccessTokenInfo(r.Context(), q.Get("access_token"))
	case q.Get("id_token") != "":
		info, err = s.svc.IDTokenInfo(q.Get("id_token"))
	default:
		return &service.OAuthError{Status: http.StatusBadRequest, Code: "invalid_request", Description: "Missing required parameter: access_token or id_token"}
	}
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, info)
}

// public wraps a handler that authenticates by itself.
func (s *server) public(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}
