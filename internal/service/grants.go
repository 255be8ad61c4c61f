package service

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
)

// Grant statuses.
const (
	GrantValid   = "valid"
	GrantInvalid = "invalid"
)

// ClientInfo is what Orchard records about the client that created a grant.
type ClientInfo struct {
	IP        string
	UserAgent string
}

// ClientInfoOf reads a request's client: the address it connected from
// (forwarding headers are not trusted) and its user agent, cut to 256 bytes.
func ClientInfoOf(r *http.Request) ClientInfo {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	ua := r.UserAgent()
	if len(ua) > 256 {
		ua = ua[:256]
	}
	return ClientInfo{IP: ip, UserAgent: ua}
}

// Grant resolves a grant reference of a /v3/grants/{ref} path: a grant id,
// "grant:<id>", an email address or "email:<address>".
func (s *Service) Grant(ctx context.Context, appID, ref string) (*store.Grant, error) {
	var g *store.Grant
	var err error
	switch {
	case strings.HasPrefix(ref, "grant:"):
		g, err = s.store.GetGrant(ctx, appID, strings.TrimPrefix(ref, "grant:"))
	case strings.HasPrefix(ref, "email:"):
		g, err = s.store.GetGrantByEmail(ctx, appID, strings.TrimPrefix(ref, "email:"))
	case strings.Contains(ref, "@"):
		g, err = s.store.GetGrantByEmail(ctx, appID, ref)
	default:
		g, err = s.store.GetGrant(ctx, appID, ref)
	}
	if err != nil {
		return nil, storeErr(err, "grant "+ref)
	}
	return g, nil
}

// Grants lists grants. The filter has been validated by the caller's
// parser except for the sort column, checked here.
func (s *Service) Grants(ctx context.Context, appID string, f store.GrantFilter) ([]api.Grant, error) {
	if f.SortBy != "" && f.SortBy != "created_at" && f.SortBy != "updated_at" {
		return nil, invalid("sort_by must be created_at or updated_at")
	}
	if f.Status != "" && f.Status != GrantValid && f.Status != GrantInvalid {
		return nil, invalid("grant_status must be valid or invalid")
	}
	gs, err := s.store.ListGrants(ctx, appID, f)
	if err != nil {
		return nil, err
	}
	out := make([]api.Grant, 0, len(gs))
	for i := range gs {
		out = append(out, GrantWire(&gs[i]))
	}
	return out, nil
}

// GrantPatch is the body of PATCH /v3/grants/{id}. New settings are
// checked against the provider like a re-authentication.
type GrantPatch struct {
	Settings map[string]json.RawMessage `json:"settings"`
	Scope    *[]string                  `json:"scope"`
}

// UpdateGrant applies a patch.
func (s *Service) UpdateGrant(ctx context.Context, appID, ref string, p GrantPatch) (*api.Grant, error) {
	g, err := s.Grant(ctx, appID, ref)
	if err != nil {
		return nil, err
	}
	if p.Settings != nil {
		acct, err := parseAccountSettings(g.Provider, p.Settings)
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(acct.email, g.Email) {
			return nil, invalid("these settings are for %s but the grant is for %s; create a new grant with POST /v3/connect/custom instead", acct.email, g.Email)
		}
		creds, err := s.verify(ctx, g.Provider, acct)
		if err != nil {
			return nil, err
		}
		if err := s.setCredentials(g, acct, creds); err != nil {
			return nil, err
		}
		g.Status = GrantValid
	}
	if p.Scope != nil {
		g.Scope = append([]string{}, (*p.Scope)...)
	}
	g.UpdatedAt = s.now()
	if err := s.store.UpdateGrant(ctx, g); err != nil {
		return nil, storeErr(err, "grant")
	}
	s.recordGrantChange(ctx, g.ID, "updated")
	if p.Settings != nil {
		s.grantChanged(g.ID)
	}
	w := GrantWire(g)
	return &w, nil
}

// DeleteGrant removes a grant and its stored credentials.
func (s *Service) DeleteGrant(ctx context.Context, appID, ref string) error {
	g, err := s.Grant(ctx, appID, ref)
	if err != nil {
		return err
	}
	if err := s.store.DeleteGrant(ctx, appID, g.ID); err != nil {
		return storeErr(err, "grant")
	}
	s.publishGrantDeleted(ctx, g)
	s.grantChanged(g.ID)
	return nil
}

// Credentials opens a grant's stored credentials and adds the server
// addresses (iCloud's come from configuration, so that a changed
// configuration applies to existing grants).
func (s *Service) Credentials(g *store.Grant) (provider.Credentials, error) {
	plain, err := s.box.Open(g.Credentials, []byte(g.ID))
	if err != nil {
		return provider.Credentials{}, err
	}
	var c provider.Credentials
	if err := json.Unmarshal(plain, &c); err != nil {
		return provider.Credentials{}, errors.New("service: stored credentials do not parse")
	}
	if g.Provider == ProviderICloud {
		c.IMAPAddr, c.SMTPAddr = s.icloudIMAPAddr, s.icloudSMTPAddr
	}
	return c, nil
}

// GrantWire is the API form of a grant: never any secret.
func GrantWire(g *store.Grant) api.Grant {
	scope := g.Scope
	if scope == nil {
		scope = []string{}
	}
	return api.Grant{
		ID: g.ID, Provider: g.Provider, GrantStatus: g.Status, Email: g.Email, Name: g.Name,
		Scope: scope, Settings: objectOrEmpty(g.Settings), State: g.State, IP: g.IP, UserAgent: g.UserAgent,
		CreatedAt: g.CreatedAt.Unix(), UpdatedAt: g.UpdatedAt.Unix(),
	}
}
