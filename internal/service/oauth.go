package service

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// Hosted authentication's codes and tokens (RFC 6749 with PKCE, RFC 7636),
// as Nylas v3 shapes them: the code is exchanged at POST /v3/connect/token
// for an access token that stands for one grant (/v3/grants/me/...), and,
// with access_type=offline, a refresh token. Codes and tokens are random;
// only their SHA-256 hashes are stored.

const (
	authCodeTTL    = 10 * time.Minute
	accessTokenTTL = time.Hour
	// Prefixes tell the kinds apart at a glance (and in the API-key
	// middleware) without a database lookup.
	accessTokenPrefix  = "ora_"
	refreshTokenPrefix = "orr_"
	authCodePrefix     = "orc_"
)

// OAuthError is a failure of the token endpoints, in RFC 6749 §5.2 terms;
// the HTTP layer writes it in the OAuth error shape, not the API envelope.
type OAuthError struct {
	Status      int
	Code        string // invalid_request, invalid_client, invalid_grant, unsupported_grant_type, invalid_token
	Description string
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(status int, code, format string, args ...any) error {
	return &OAuthError{Status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

// AuthRequest is what GET /v3/connect/auth asks for, carried through the
// login form and bound to the code it ends with.
type AuthRequest struct {
	ClientID            string
	RedirectURI         string
	ResponseType        string
	Provider            string // "" when the user still has to choose
	LoginHint           string
	State               string
	Scope               string
	AccessType          string // online | offline
	CodeChallenge       string
	CodeChallengeMethod string // plain | s256, lower case after CheckAuthRequest
}

// Hosted-auth request failures. ErrUnknownClient and ErrRedirectNotAllowed
// must end on an error page and never in a redirect: sending the browser
// to an unregistered URL would make Orchard an open redirector.
var (
	ErrUnknownClient      = errors.New("client_id is not an application of this Orchard")
	ErrRedirectNotAllowed = errors.New("redirect_uri is not registered for this application")
)

// CheckAuthRequest validates an authorization request and normalises it.
// The errors are *Error (CodeInvalid) with a message for the page, wrapping
// ErrUnknownClient or ErrRedirectNotAllowed where those apply.
func (s *Service) CheckAuthRequest(ctx context.Context, req *AuthRequest) error {
	if req.ClientID == "" {
		return invalid("client_id is required")
	}
	if _, err := s.store.GetApplication(ctx, req.ClientID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &Error{Code: CodeInvalid, Message: ErrUnknownClient.Error(), wrapped: ErrUnknownClient}
		}
		return err
	}
	if req.RedirectURI == "" {
		return invalid("redirect_uri is required")
	}
	uris, err := s.store.ListRedirectURIs(ctx, req.ClientID)
	if err != nil {
		return err
	}
	registered := false
	for _, u := range uris {
		registered = registered || u.URL == req.RedirectURI
	}
	if !registered {
		return &Error{Code: CodeInvalid, Message: ErrRedirectNotAllowed.Error() + ": add it under Redirect URIs first", wrapped: ErrRedirectNotAllowed}
	}
	switch {
	case req.ResponseType != "code":
		return invalid("response_type must be code")
	case req.Provider != "" && req.Provider != ProviderICloud && req.Provider != ProviderIMAP:
		return invalid("provider %q is not served here: Orchard signs in icloud and imap accounts", req.Provider)
	case len(req.State) > 256:
		return invalid("state is longer than 256 characters")
	case len(req.LoginHint) > 320:
		return invalid("login_hint is too long")
	}
	switch req.AccessType {
	case "":
		req.AccessType = "online"
	case "online", "offline":
	default:
		return invalid("access_type must be online or offline")
	}
	req.CodeChallengeMethod = strings.ToLower(req.CodeChallengeMethod)
	switch {
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		return invalid("code_challenge_method without code_challenge")
	case req.CodeChallenge == "":
	case req.CodeChallengeMethod == "":
		req.CodeChallengeMethod = "plain" // RFC 7636 §4.3
	case req.CodeChallengeMethod != "plain" && req.CodeChallengeMethod != "s256":
		return invalid("code_challenge_method must be S256 or plain")
	}
	if len(req.CodeChallenge) > 256 {
		return invalid("code_challenge is too long")
	}
	if req.Provider != "" {
		if _, err := s.store.GetConnector(ctx, req.ClientID, req.Provider); errors.Is(err, store.ErrNotFound) {
			return invalid("this application has no %s connector", req.Provider)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// ProvidersOffered returns the providers an application can sign users in
// with (its connectors that Orchard serves), for the choice page.
func (s *Service) ProvidersOffered(ctx context.Context, appID string) ([]string, error) {
	cs, _, err := s.store.ListConnectors(ctx, appID, 0, 0)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cs {
		if c.Provider == ProviderICloud || c.Provider == ProviderIMAP {
			out = append(out, c.Provider)
		}
	}
	return out, nil
}

// IssueAuthCode returns a fresh single-use code for grantID, bound to the
// request's client, redirect URI and PKCE challenge.
func (s *Service) IssueAuthCode(ctx context.Context, req AuthRequest, grantID string) (string, error) {
	code := authCodePrefix + randomToken()
	now := s.now()
	// Expired codes and access tokens are of no use: each sign-in drops
	// them (an index range), which bounds the tables without a janitor.
	if _, err := s.store.PurgeAuth(ctx, now); err != nil {
		s.log.Warn("purge expired codes and tokens", "error", err)
	}
	err := s.store.CreateAuthCode(ctx, &store.AuthCode{
		Hash: tokenHash(code), ApplicationID: req.ClientID, GrantID: grantID, RedirectURI: req.RedirectURI,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: req.CodeChallengeMethod,
		Offline: req.AccessType == "offline", CreatedAt: now, ExpiresAt: now.Add(authCodeTTL),
	})
	return code, err
}

// TokenRequest is the body of POST /v3/connect/token.
type TokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RedirectURI  string `json:"redirect_uri"`
	Code         string `json:"code"`
	CodeVerifier string `json:"code_verifier"`
	RefreshToken string `json:"refresh_token"`
	// BearerKey is the API key of the Authorization header, which the
	// SDKs send too; it stands in for a missing client_secret.
	BearerKey string `json:"-"`
}

// TokenResponse is the flat (no envelope) answer of the token endpoint.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	GrantID      string `json:"grant_id"`
	Email        string `json:"email"`
	ExpiresIn    int    `json:"expires_in"`
	IDToken      string `json:"id_token"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
	Provider     string `json:"provider,omitempty"`
}

// Token serves POST /v3/connect/token. Errors are *OAuthError.
func (s *Service) Token(ctx context.Context, in TokenRequest) (*TokenResponse, error) {
	switch in.GrantType {
	case "authorization_code":
		return s.exchangeCode(ctx, in)
	case "refresh_token":
		return s.refresh(ctx, in)
	case "":
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Missing required parameter: grant_type")
	}
	return nil, oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type %q is not supported: use authorization_code or refresh_token", in.GrantType)
}

// checkClient authenticates the caller as client_id. A confidential client
// proves itself with an API key of the application; a public client (a
// PKCE flow without a secret) has only its verifier, checked by the caller.
func (s *Service) checkClient(ctx context.Context, in TokenRequest, publicOK bool) error {
	if in.ClientID == "" {
		return oauthErr(http.StatusBadRequest, "invalid_request", "Missing required parameter: client_id")
	}
	secret := in.ClientSecret
	if secret == "" {
		secret = in.BearerKey
	}
	if secret == "" {
		if publicOK {
			return nil
		}
		return oauthErr(http.StatusUnauthorized, "invalid_client", "client_secret (an API key of the application) is required")
	}
	appID, err := s.AuthenticateAPIKey(ctx, secret)
	var e *Error
	if errors.As(err, &e) || (err == nil && appID != in.ClientID) {
		return oauthErr(http.StatusUnauthorized, "invalid_client", "client_secret is not an API key of client_id %s", in.ClientID)
	}
	return err
}

func (s *Service) exchangeCode(ctx context.Context, in TokenRequest) (*TokenResponse, error) {
	if in.Code == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Missing required parameter: code")
	}
	if err := s.checkClient(ctx, in, in.CodeVerifier != ""); err != nil {
		return nil, err
	}
	// Taking the code deletes it, whatever happens next: a code that was
	// tried with a wrong verifier is spent, so it cannot be guessed at.
	c, err := s.store.TakeAuthCode(ctx, tokenHash(in.Code))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "the code is unknown, expired or already used")
	case err != nil:
		return nil, err
	case !s.now().Before(c.ExpiresAt):
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "the code expired: codes are valid for 10 minutes")
	case c.ApplicationID != in.ClientID:
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "the code was issued to another client_id")
	case c.RedirectURI != in.RedirectURI:
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the one the code was issued for")
	}
	if err := verifyPKCE(c.CodeChallenge, c.CodeChallengeMethod, in.CodeVerifier); err != nil {
		return nil, err
	}
	g, err := s.store.GetGrant(ctx, c.ApplicationID, c.GrantID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "the grant of this code was deleted")
	} else if err != nil {
		return nil, err
	}
	resp, err := s.issueTokens(ctx, g, newID(), c.Offline)
	if err != nil {
		return nil, err
	}
	resp.Provider = g.Provider
	return resp, nil
}

func (s *Service) refresh(ctx context.Context, in TokenRequest) (*TokenResponse, error) {
	if in.RefreshToken == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Missing required parameter: refresh_token")
	}
	if err := s.checkClient(ctx, in, true); err != nil {
		return nil, err
	}
	t, err := s.store.TokenByHash(ctx, tokenHash(in.RefreshToken))
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && t.Kind != store.TokenRefresh):
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "the refresh token is unknown or revoked")
	case err != nil:
		return nil, err
	case t.ApplicationID != in.ClientID:
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "the refresh token was issued to another client_id")
	}
	g, err := s.store.GetGrant(ctx, t.ApplicationID, t.GrantID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "the grant of this refresh token was deleted")
	} else if err != nil {
		return nil, err
	}
	// The refresh token stays valid (Nylas does not rotate by default);
	// the new access token joins its family so that revoking either
	// revokes both.
	resp, err := s.issueTokens(ctx, g, t.FamilyID, false)
	if err != nil {
		return nil, err
	}
	resp.RefreshToken = in.RefreshToken
	return resp, nil
}

func (s *Service) issueTokens(ctx context.Context, g *store.Grant, family string, withRefresh bool) (*TokenResponse, error) {
	now := s.now()
	access := accessTokenPrefix + randomToken()
	if err := s.store.CreateToken(ctx, &store.Token{
		Hash: tokenHash(access), Kind: store.TokenAccess, FamilyID: family, ApplicationID: g.ApplicationID,
		GrantID: g.ID, CreatedAt: now, ExpiresAt: now.Add(accessTokenTTL),
	}); err != nil {
		return nil, err
	}
	resp := &TokenResponse{
		AccessToken: access, GrantID: g.ID, Email: g.Email, ExpiresIn: int(accessTokenTTL / time.Second),
		Scope: strings.Join(g.Scope, " "), TokenType: "Bearer",
		IDToken: s.idToken(g, now),
	}
	if withRefresh {
		resp.RefreshToken = refreshTokenPrefix + randomToken()
		if err := s.store.CreateToken(ctx, &store.Token{
			Hash: tokenHash(resp.RefreshToken), Kind: store.TokenRefresh, FamilyID: family,
			ApplicationID: g.ApplicationID, GrantID: g.ID, CreatedAt: now,
		}); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// verifyPKCE checks the verifier against the code's challenge. "s256" is
// checked both ways the world computes it: RFC 7636 (base64url of the
// SHA-256 digest) and the Nylas SDKs' (base64 of the hex digest, padding
// stripped).
func verifyPKCE(challenge, method, verifier string) error {
	if challenge == "" {
		if verifier != "" {
			return oauthErr(http.StatusBadRequest, "invalid_grant", "code_verifier given, but the authorization request had no code_challenge")
		}
		return nil
	}
	if verifier == "" {
		return oauthErr(http.StatusBadRequest, "invalid_request", "Missing required parameter: code_verifier")
	}
	ok := false
	switch method {
	case "plain":
		ok = subtle.ConstantTimeCompare([]byte(challenge), []byte(verifier)) == 1
	case "s256":
		sum := sha256.Sum256([]byte(verifier))
		rfc := base64.RawURLEncoding.EncodeToString(sum[:])
		sdk := strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:]))), "=")
		ok = subtle.ConstantTimeCompare([]byte(challenge), []byte(rfc)) == 1 ||
			subtle.ConstantTimeCompare([]byte(strings.TrimRight(challenge, "=")), []byte(sdk)) == 1
	}
	if !ok {
		return oauthErr(http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
	}
	return nil
}

// RevokeToken revokes a token and the tokens issued with it (the access
// token and its refresh token), not the grant.
func (s *Service) RevokeToken(ctx context.Context, token string) error {
	if token == "" {
		return oauthErr(http.StatusBadRequest, "invalid_request", "Missing required parameter: token")
	}
	t, err := s.store.TokenByHash(ctx, tokenHash(token))
	if errors.Is(err, store.ErrNotFound) {
		return oauthErr(http.StatusBadRequest, "invalid_token", "Token expired or revoked")
	} else if err != nil {
		return err
	}
	_, err = s.store.DeleteTokenFamily(ctx, t.FamilyID)
	return err
}

// AuthenticateAccessToken returns the application and grant an access
// token stands for. Every failure is the same CodeUnauthorized error.
func (s *Service) AuthenticateAccessToken(ctx context.Context, token string) (appID, grantID string, err error) {
	t, err := s.liveAccessToken(ctx, token)
	if err != nil {
		return "", "", err
	}
	return t.ApplicationID, t.GrantID, nil
}

// liveAccessToken finds an unexpired access token; every failure is the
// same CodeUnauthorized error, so a caller learns nothing about tokens.
func (s *Service) liveAccessToken(ctx context.Context, token string) (*store.Token, error) {
	denied := &Error{Code: CodeUnauthorized, Message: "invalid or expired access token"}
	if !IsAccessToken(token) || len(token) > 256 {
		return nil, denied
	}
	t, err := s.store.TokenByHash(ctx, tokenHash(token))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, denied
	case err != nil:
		return nil, err
	case t.Kind != store.TokenAccess || !s.now().Before(t.ExpiresAt):
		return nil, denied
	}
	return t, nil
}

// IsAccessToken tells an access token from an API key by its shape.
func IsAccessToken(bearer string) bool { return strings.HasPrefix(bearer, accessTokenPrefix) }

// TokenInfo is the data of GET /v3/connect/tokeninfo.
type TokenInfo struct {
	Issuer   string `json:"iss"`
	Audience string `json:"aud"`
	Subject  string `json:"sub"`
	Email    string `json:"email"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
}

// AccessTokenInfo describes a live access token. Its failures are
// *OAuthError: the SDKs read this endpoint's errors in OAuth's shape.
func (s *Service) AccessTokenInfo(ctx context.Context, token string) (*TokenInfo, error) {
	t, err := s.liveAccessToken(ctx, token)
	var e *Error
	if errors.As(err, &e) {
		return nil, oauthErr(http.StatusUnauthorized, "invalid_token", "the access token is unknown, expired or revoked")
	} else if err != nil {
		return nil, err
	}
	g, err := s.store.GetGrant(ctx, t.ApplicationID, t.GrantID)
	if err != nil {
		return nil, storeErr(err, "grant")
	}
	return &TokenInfo{Issuer: s.issuer, Audience: t.ApplicationID, Subject: g.ID, Email: g.Email,
		IssuedAt: t.CreatedAt.Unix(), Expires: t.ExpiresAt.Unix()}, nil
}

// IDTokenInfo checks an id_token made by this Orchard and returns its
// claims; failures are *OAuthError, as for AccessTokenInfo.
func (s *Service) IDTokenInfo(token string) (*TokenInfo, error) {
	denied := oauthErr(http.StatusUnauthorized, "invalid_token", "the id_token is not one of this Orchard's, or it expired")
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(s.idTokenKey) == 0 {
		return nil, denied
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, s.jwtMAC(parts[0]+"."+parts[1])) {
		return nil, denied
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	var info TokenInfo
	if err != nil || json.Unmarshal(body, &info) != nil || s.now().Unix() >= info.Expires {
		return nil, denied
	}
	return &info, nil
}

// idToken is an OpenID-Connect-shaped JWT (HS256 under a key of this
// installation) naming the grant; only this Orchard can check it, through
// tokeninfo.
func (s *Service) idToken(g *store.Grant, now time.Time) string {
	if len(s.idTokenKey) == 0 {
		return ""
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(TokenInfo{Issuer: s.issuer, Audience: g.ApplicationID, Subject: g.ID, Email: g.Email,
		IssuedAt: now.Unix(), Expires: now.Add(accessTokenTTL).Unix()})
	signed := header + "." + base64.RawURLEncoding.EncodeToString(claims)
	return signed + "." + base64.RawURLEncoding.EncodeToString(s.jwtMAC(signed))
}

func (s *Service) jwtMAC(signed string) []byte {
	m := hmac.New(sha256.New, s.idTokenKey)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// RedirectWithCode is where the browser goes after a successful login:
// the registered redirect URI with code and state added to its query.
func RedirectWithCode(redirectURI, code, state string) (string, error) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("code", code)
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func tokenHash(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}
