package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/store"
)

const (
	apiKeyPrefix = "ork_"
	// apiKeyLookupLen characters of a key are stored in clear and indexed;
	// the rest is only ever compared by hash.
	apiKeyLookupLen = 16
)

// CreateApplication makes an application and its first API key. The key is
// returned once and stored only as a hash.
func (s *Service) CreateApplication(ctx context.Context, name string) (*store.Application, string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, "", invalid("application name must not be empty")
	}
	now := s.now()
	settings, _ := json.Marshal(map[string]any{"branding": map[string]any{"name": name}})
	app := &store.Application{ID: newID(), Name: name, Settings: settings, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateApplication(ctx, app); err != nil {
		return nil, "", err
	}
	key, err := s.CreateAPIKey(ctx, app.ID, "default")
	if err != nil {
		return nil, "", err
	}
	return app, key, nil
}

// CountApplications tells whether this is an empty installation.
func (s *Service) CountApplications(ctx context.Context) (int, error) {
	return s.store.CountApplications(ctx)
}

// CreateAPIKey adds a key to an application and returns it in clear, once.
func (s *Service) CreateAPIKey(ctx context.Context, appID, name string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	key := apiKeyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(key))
	err := s.store.CreateAPIKey(ctx, &store.APIKey{
		ID: newID(), ApplicationID: appID, Name: name,
		Prefix: key[:apiKeyLookupLen], Hash: sum[:], CreatedAt: s.now(),
	})
	return key, err
}

// AuthenticateAPIKey returns the application a key belongs to. Every
// failure is the same CodeUnauthorized error, so that a caller learns
// nothing about which keys exist.
func (s *Service) AuthenticateAPIKey(ctx context.Context, key string) (string, error) {
	denied := &Error{Code: CodeUnauthorized, Message: "invalid API key"}
	if !strings.HasPrefix(key, apiKeyPrefix) || len(key) < apiKeyLookupLen+8 || len(key) > 256 {
		return "", denied
	}
	candidates, err := s.store.APIKeysByPrefix(ctx, key[:apiKeyLookupLen])
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(key))
	for _, c := range candidates {
		if subtle.ConstantTimeCompare(c.Hash, sum[:]) == 1 {
			return c.ApplicationID, nil
		}
	}
	return "", denied
}

// Application returns the wire form of an application with its callback URIs.
func (s *Service) Application(ctx context.Context, appID string) (*api.Application, error) {
	app, err := s.store.GetApplication(ctx, appID)
	if err != nil {
		return nil, storeErr(err, "application")
	}
	uris, err := s.store.ListRedirectURIs(ctx, appID)
	if err != nil {
		return nil, err
	}
	settings := map[string]json.RawMessage{}
	_ = json.Unmarshal(app.Settings, &settings) // written by us; an unreadable blob reads as empty
	out := &api.Application{
		ApplicationID:        app.ID,
		OrganizationID:       "",
		Region:               "self-hosted",
		Environment:          "production",
		Branding:             objectOrEmpty(settings["branding"]),
		HostedAuthentication: objectOrEmpty(settings["hosted_authentication"]),
		CallbackURIs:         make([]api.RedirectURI, 0, len(uris)),
	}
	for _, u := range uris {
		out.CallbackURIs = append(out.CallbackURIs, redirectURIWire(u))
	}
	return out, nil
}

// ApplicationPatch is the body of PATCH /v3/applications. Objects given
// replace the stored ones whole (Nylas semantics).
type ApplicationPatch struct {
	Branding             json.RawMessage     `json:"branding"`
	HostedAuthentication json.RawMessage     `json:"hosted_authentication"`
	AdditionalSettings   json.RawMessage     `json:"additional_settings"`
	CallbackURIs         *[]RedirectURIInput `json:"callback_uris"`
}

// UpdateApplication applies a patch.
func (s *Service) UpdateApplication(ctx context.Context, appID string, p ApplicationPatch) (*api.Application, error) {
	app, err := s.store.GetApplication(ctx, appID)
	if err != nil {
		return nil, storeErr(err, "application")
	}
	settings := map[string]json.RawMessage{}
	_ = json.Unmarshal(app.Settings, &settings)
	for name, v := range map[string]json.RawMessage{
		"branding": p.Branding, "hosted_authentication": p.HostedAuthentication,
		"additional_settings": p.AdditionalSettings,
	} {
		if v == nil {
			continue
		}
		if !isJSONObject(v) {
			return nil, invalid("%s must be a JSON object", name)
		}
		settings[name] = v
	}
	if b := settings["branding"]; b != nil {
		var br struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(b, &br) == nil && strings.TrimSpace(br.Name) != "" {
			app.Name = strings.TrimSpace(br.Name)
		}
	}
	if p.CallbackURIs != nil {
		if err := s.replaceRedirectURIs(ctx, appID, *p.CallbackURIs); err != nil {
			return nil, err
		}
	}
	app.Settings, _ = json.Marshal(settings)
	app.UpdatedAt = s.now()
	if err := s.store.UpdateApplication(ctx, app); err != nil {
		return nil, storeErr(err, "application")
	}
	return s.Application(ctx, appID)
}

// replaceRedirectURIs makes the application's callback URIs equal to in:
// entries with an id update that URI, entries without one are created,
// and stored URIs not mentioned are deleted.
func (s *Service) replaceRedirectURIs(ctx context.Context, appID string, in []RedirectURIInput) error {
	existing, err := s.store.ListRedirectURIs(ctx, appID)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, u := range in {
		if u.ID != "" {
			keep[u.ID] = true
		}
	}
	for _, e := range existing {
		if !keep[e.ID] {
			if err := s.store.DeleteRedirectURI(ctx, appID, e.ID); err != nil {
				return storeErr(err, "redirect URI")
			}
		}
	}
	for _, u := range in {
		if u.ID != "" {
			if _, err := s.UpdateRedirectURI(ctx, appID, u.ID, u); err != nil {
				return err
			}
			continue
		}
		if _, err := s.CreateRedirectURI(ctx, appID, u); err != nil {
			return err
		}
	}
	return nil
}

func objectOrEmpty(raw json.RawMessage) json.RawMessage {
	if isJSONObject(raw) {
		return raw
	}
	return json.RawMessage("{}")
}

func isJSONObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{' && json.Valid(raw)
}

// Applications lists every application, oldest first (the operator's view).
func (s *Service) Applications(ctx context.Context) ([]store.Application, error) {
	return s.store.ListApplications(ctx)
}

// APIKeys lists an application's keys, revoked ones included; the secrets
// themselves were never stored.
func (s *Service) APIKeys(ctx context.Context, appID string) ([]store.APIKey, error) {
	return s.store.ListAPIKeys(ctx, appID)
}

// RevokeAPIKey revokes a key at once.
func (s *Service) RevokeAPIKey(ctx context.Context, appID, keyID string) error {
	return storeErr(s.store.RevokeAPIKey(ctx, appID, keyID, s.now()), "API key")
}
