package service

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/store"
)

// RedirectURIInput is the body of redirect-URI create and update.
type RedirectURIInput struct {
	ID       string          `json:"id"`
	URL      *string         `json:"url"`
	Platform *string         `json:"platform"`
	Settings json.RawMessage `json:"settings"`
}

var redirectPlatforms = map[string]bool{"web": true, "desktop": true, "js": true, "ios": true, "android": true}

// CreateRedirectURI registers a callback URL.
func (s *Service) CreateRedirectURI(ctx context.Context, appID string, in RedirectURIInput) (*api.RedirectURI, error) {
	if in.URL == nil {
		return nil, invalid("url is required")
	}
	now := s.now()
	r := &store.RedirectURI{ID: newID(), ApplicationID: appID, Platform: "web", Settings: []byte("{}"), CreatedAt: now, UpdatedAt: now}
	if err := applyRedirectURIInput(r, in); err != nil {
		return nil, err
	}
	if err := s.store.CreateRedirectURI(ctx, r); err != nil {
		return nil, storeErr(err, "redirect URI "+r.URL)
	}
	w := redirectURIWire(*r)
	return &w, nil
}

// RedirectURI returns one callback URL.
func (s *Service) RedirectURI(ctx context.Context, appID, id string) (*api.RedirectURI, error) {
	r, err := s.store.GetRedirectURI(ctx, appID, id)
	if err != nil {
		return nil, storeErr(err, "redirect URI")
	}
	w := redirectURIWire(*r)
	return &w, nil
}

// RedirectURIs lists the application's callback URLs, oldest first.
func (s *Service) RedirectURIs(ctx context.Context, appID string) ([]api.RedirectURI, error) {
	rs, err := s.store.ListRedirectURIs(ctx, appID)
	if err != nil {
		return nil, err
	}
	out := make([]api.RedirectURI, 0, len(rs))
	for _, r := range rs {
		out = append(out, redirectURIWire(r))
	}
	return out, nil
}

// UpdateRedirectURI changes the fields given.
func (s *Service) UpdateRedirectURI(ctx context.Context, appID, id string, in RedirectURIInput) (*api.RedirectURI, error) {
	r, err := s.store.GetRedirectURI(ctx, appID, id)
	if err != nil {
		return nil, storeErr(err, "redirect URI")
	}
	if err := applyRedirectURIInput(r, in); err != nil {
		return nil, err
	}
	r.UpdatedAt = s.now()
	if err := s.store.UpdateRedirectURI(ctx, r); err != nil {
		return nil, storeErr(err, "redirect URI "+r.URL)
	}
	w := redirectURIWire(*r)
	return &w, nil
}

// DeleteRedirectURI removes a callback URL.
func (s *Service) DeleteRedirectURI(ctx context.Context, appID, id string) error {
	return storeErr(s.store.DeleteRedirectURI(ctx, appID, id), "redirect URI")
}

func applyRedirectURIInput(r *store.RedirectURI, in RedirectURIInput) error {
	if in.URL != nil {
		u, err := url.Parse(strings.TrimSpace(*in.URL))
		if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
			return invalid("url must be an absolute URL, e.g. https://app.example.com/callback")
		}
		if u.Fragment != "" {
			return invalid("url must not contain a fragment (#...)")
		}
		r.URL = u.String()
	}
	if in.Platform != nil {
		if !redirectPlatforms[*in.Platform] {
			return invalid("platform must be one of web, desktop, js, ios, android")
		}
		r.Platform = *in.Platform
	}
	if r.Platform == "web" && in.URL != nil {
		if u, _ := url.Parse(r.URL); u.Scheme != "https" && u.Scheme != "http" {
			return invalid("a web redirect URI must use http or https")
		}
	}
	if in.Settings != nil {
		if !isJSONObject(in.Settings) {
			return invalid("settings must be a JSON object")
		}
		r.Settings = in.Settings
	}
	return nil
}

func redirectURIWire(r store.RedirectURI) api.RedirectURI {
	return api.RedirectURI{ID: r.ID, URL: r.URL, Platform: r.Platform, Settings: objectOrEmpty(r.Settings)}
}
