package service

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/store"
)

// Providers Orchard can connect, with their default connector names.
var providerNames = map[string]string{ProviderICloud: "iCloud", ProviderIMAP: "IMAP"}

const (
	ProviderICloud = "icloud"
	ProviderIMAP   = "imap"
)

// ConnectorInput is the body of connector create and update.
type ConnectorInput struct {
	Provider string          `json:"provider"`
	Name     *string         `json:"name"`
	Settings json.RawMessage `json:"settings"`
	Scope    *[]string       `json:"scope"`
}

func checkProvider(p string) error {
	if p == "" {
		return invalid("provider is required: icloud or imap")
	}
	if _, ok := providerNames[p]; !ok {
		return invalid("unknown provider %q: Orchard supports icloud and imap", p)
	}
	return nil
}

// CreateConnector enables a provider for the application.
func (s *Service) CreateConnector(ctx context.Context, appID string, in ConnectorInput) (*api.Connector, error) {
	if err := checkProvider(in.Provider); err != nil {
		return nil, err
	}
	now := s.now()
	c := &store.Connector{ApplicationID: appID, Provider: in.Provider, Name: providerNames[in.Provider],
		Settings: []byte("{}"), Scope: []string{}, CreatedAt: now, UpdatedAt: now}
	if err := applyConnectorInput(c, in); err != nil {
		return nil, err
	}
	if err := s.store.CreateConnector(ctx, c); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, conflict("a %s connector already exists; update it with PATCH /v3/connectors/%s", c.Provider, c.Provider)
		}
		return nil, err
	}
	return connectorWire(c), nil
}

// Connector returns the application's connector for provider.
func (s *Service) Connector(ctx context.Context, appID, provider string) (*api.Connector, error) {
	c, err := s.store.GetConnector(ctx, appID, provider)
	if err != nil {
		return nil, storeErr(err, "connector "+provider)
	}
	return connectorWire(c), nil
}

// Connectors lists a page of connectors.
func (s *Service) Connectors(ctx context.Context, appID string, limit, offset int) ([]api.Connector, error) {
	cs, _, err := s.store.ListConnectors(ctx, appID, limit, offset)
	if err != nil {
		return nil, err
	}
	out := make([]api.Connector, 0, len(cs))
	for i := range cs {
		out = append(out, *connectorWire(&cs[i]))
	}
	return out, nil
}

// UpdateConnector changes the fields given. The provider cannot change.
func (s *Service) UpdateConnector(ctx context.Context, appID, provider string, in ConnectorInput) (*api.Connector, error) {
	c, err := s.store.GetConnector(ctx, appID, provider)
	if err != nil {
		return nil, storeErr(err, "connector "+provider)
	}
	if in.Provider != "" && in.Provider != provider {
		return nil, invalid("the provider of a connector cannot change; create a connector for %s instead", in.Provider)
	}
	if err := applyConnectorInput(c, in); err != nil {
		return nil, err
	}
	c.UpdatedAt = s.now()
	if err := s.store.UpdateConnector(ctx, c); err != nil {
		return nil, storeErr(err, "connector "+provider)
	}
	return connectorWire(c), nil
}

// DeleteConnector disables a provider. Existing grants stay; new ones for
// that provider are refused until the connector is added again.
func (s *Service) DeleteConnector(ctx context.Context, appID, provider string) error {
	return storeErr(s.store.DeleteConnector(ctx, appID, provider), "connector "+provider)
}

func applyConnectorInput(c *store.Connector, in ConnectorInput) error {
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" {
			return invalid("name must not be empty")
		}
		c.Name = name
	}
	if in.Settings != nil && string(in.Settings) != "null" {
		if !isJSONObject(in.Settings) {
			return invalid("settings must be a JSON object")
		}
		c.Settings = in.Settings
	}
	if in.Scope != nil {
		c.Scope = append([]string{}, (*in.Scope)...)
	}
	return nil
}

func connectorWire(c *store.Connector) *api.Connector {
	scope := c.Scope
	if scope == nil {
		scope = []string{}
	}
	return &api.Connector{Name: c.Name, Provider: c.Provider, Settings: objectOrEmpty(c.Settings), Scope: scope}
}
