package dashboard

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
)

// fakeBackend is an in-memory Backend that answers like *service.Service:
// *service.Error for what the operator did wrong, plain errors otherwise.
type fakeBackend struct {
	mu         sync.Mutex
	n          int
	apps       []store.Application
	keys       []store.APIKey
	clearKeys  map[string]string // API key in clear → key id
	connectors map[string][]api.Connector
	uris       map[string][]api.RedirectURI
	grants     map[string][]store.Grant
	syncs      map[string]*api.SyncStatus // by grant id
	hooks      map[string][]store.Webhook
	deliveries map[string][]store.Delivery // by webhook id

	connectorInputs []service.ConnectorInput
	webhookInputs   []service.WebhookInput
	tests           []string // "trigger url" of each SendTestEvent
	challengeFails  bool     // CreateWebhook: the URL does not echo the challenge
	testErr         error    // SendTestEvent's answer
	listErr         error    // Applications' answer, when set
}

func newFake() *fakeBackend {
	return &fakeBackend{
		clearKeys: map[string]string{}, connectors: map[string][]api.Connector{}, uris: map[string][]api.RedirectURI{},
		grants: map[string][]store.Grant{}, syncs: map[string]*api.SyncStatus{}, hooks: map[string][]store.Webhook{},
		deliveries: map[string][]store.Delivery{},
	}
}

func (f *fakeBackend) id(prefix string) string {
	f.n++
	return fmt.Sprintf("%s%04d", prefix, f.n)
}

func svcErr(code service.Code, format string, args ...any) error {
	return &service.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (f *fakeBackend) Applications(context.Context) ([]store.Application, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	return slices.Clone(f.apps), nil
}

func (f *fakeBackend) CreateApplication(ctx context.Context, name string) (*store.Application, string, error) {
	if strings.TrimSpace(name) == "" {
		return nil, "", svcErr(service.CodeInvalid, "application name must not be empty")
	}
	f.mu.Lock()
	app := store.Application{ID: f.id("app"), Name: name, CreatedAt: time.Unix(1_700_000_000, 0)}
	f.apps = append(f.apps, app)
	f.mu.Unlock()
	key, err := f.CreateAPIKey(ctx, app.ID, "default")
	return &app, key, err
}

func (f *fakeBackend) APIKeys(_ context.Context, appID string) ([]store.APIKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.APIKey
	for _, k := range f.keys {
		if k.ApplicationID == appID {
			out = append(out, k)
		}
	}
	return out, nil
}

func (f *fakeBackend) CreateAPIKey(_ context.Context, appID, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.id("key")
	plain := "ork_secret" + id + "xxxxxxxxxxxxxxxxxxxxxxxx"
	sum := sha256.Sum256([]byte(plain))
	f.keys = append(f.keys, store.APIKey{ID: id, ApplicationID: appID, Name: name, Prefix: plain[:16], Hash: sum[:], CreatedAt: time.Unix(1_700_000_100, 0)})
	f.clearKeys[plain] = id
	return plain, nil
}

func (f *fakeBackend) RevokeAPIKey(_ context.Context, appID, keyID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, k := range f.keys {
		if k.ApplicationID == appID && k.ID == keyID {
			at := time.Now().Add(-time.Second)
			f.keys[i].RevokedAt = &at
			return nil
		}
	}
	return svcErr(service.CodeNotFound, "API key not found")
}

func (f *fakeBackend) AuthenticateAPIKey(_ context.Context, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.clearKeys[key]; ok {
		for _, k := range f.keys {
			if k.ID == id && k.RevokedAt == nil {
				return k.ApplicationID, nil
			}
		}
	}
	return "", svcErr(service.CodeUnauthorized, "invalid API key")
}

func (f *fakeBackend) Connectors(_ context.Context, appID string, limit, offset int) ([]api.Connector, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.connectors[appID]), nil
}

func (f *fakeBackend) CreateConnector(_ context.Context, appID string, in service.ConnectorInput) (*api.Connector, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connectorInputs = append(f.connectorInputs, in)
	for _, c := range f.connectors[appID] {
		if c.Provider == in.Provider {
			return nil, svcErr(service.CodeConflict, "a %s connector already exists; update it with PATCH /v3/connectors/%s", in.Provider, in.Provider)
		}
	}
	c := api.Connector{Name: map[string]string{"icloud": "iCloud", "imap": "IMAP"}[in.Provider], Provider: in.Provider, Scope: []string{}}
	f.connectors[appID] = append(f.connectors[appID], c)
	return &c, nil
}

func (f *fakeBackend) DeleteConnector(_ context.Context, appID, provider string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs := f.connectors[appID]
	i := slices.IndexFunc(cs, func(c api.Connector) bool { return c.Provider == provider })
	if i < 0 {
		return svcErr(service.CodeNotFound, "connector %s not found", provider)
	}
	f.connectors[appID] = slices.Delete(cs, i, i+1)
	return nil
}

func (f *fakeBackend) RedirectURIs(_ context.Context, appID string) ([]api.RedirectURI, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.uris[appID]), nil
}

func (f *fakeBackend) CreateRedirectURI(_ context.Context, appID string, in service.RedirectURIInput) (*api.RedirectURI, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := url.Parse(*in.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, svcErr(service.CodeInvalid, "url must be an absolute URL, e.g. https://app.example.com/callback")
	}
	r := api.RedirectURI{ID: f.id("uri"), URL: *in.URL, Platform: *in.Platform}
	f.uris[appID] = append(f.uris[appID], r)
	return &r, nil
}

func (f *fakeBackend) DeleteRedirectURI(_ context.Context, appID, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	us := f.uris[appID]
	i := slices.IndexFunc(us, func(u api.RedirectURI) bool { return u.ID == id })
	if i < 0 {
		return svcErr(service.CodeNotFound, "redirect URI not found")
	}
	f.uris[appID] = slices.Delete(us, i, i+1)
	return nil
}

func (f *fakeBackend) Grants(_ context.Context, appID string, flt store.GrantFilter) ([]api.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.Grant
	for i := range f.grants[appID] {
		out = append(out, service.GrantWire(&f.grants[appID][i]))
	}
	if flt.Offset >= len(out) {
		return nil, nil
	}
	out = out[flt.Offset:]
	if flt.Limit > 0 && len(out) > flt.Limit {
		out = out[:flt.Limit]
	}
	return out, nil
}

func (f *fakeBackend) Grant(_ context.Context, appID, ref string) (*store.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := strings.CutPrefix(ref, "grant:")
	if !ok {
		return nil, errors.New("fake: grants are looked up by grant:<id> only")
	}
	for _, g := range f.grants[appID] {
		if g.ID == id {
			return &g, nil
		}
	}
	return nil, svcErr(service.CodeNotFound, "grant %s not found", ref)
}

func (f *fakeBackend) DeleteGrant(ctx context.Context, appID, ref string) error {
	g, err := f.Grant(ctx, appID, ref)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grants[appID] = slices.DeleteFunc(f.grants[appID], func(x store.Grant) bool { return x.ID == g.ID })
	return nil
}

func (f *fakeBackend) SyncStatus(ctx context.Context, appID, ref string) (*api.SyncStatus, error) {
	g, err := f.Grant(ctx, appID, ref)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.syncs[g.ID]; ok {
		return s, nil
	}
	return &api.SyncStatus{GrantID: g.ID, State: "not_running", Folders: []api.FolderSync{}}, nil
}

func (f *fakeBackend) Webhooks(_ context.Context, appID string) ([]store.Webhook, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.hooks[appID]), nil
}

func (f *fakeBackend) Webhook(_ context.Context, appID, id string) (*store.Webhook, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.hooks[appID] {
		if w.ID == id {
			return &w, nil
		}
	}
	return nil, svcErr(service.CodeNotFound, "webhook %s not found", id)
}

func (f *fakeBackend) CreateWebhook(_ context.Context, appID string, in service.WebhookInput) (*store.Webhook, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.webhookInputs = append(f.webhookInputs, in)
	if f.challengeFails {
		return nil, "", svcErr(service.CodeInvalid, "webhook challenge failed: %s answered 404", *in.WebhookURL)
	}
	w := store.Webhook{ID: f.id("wh"), ApplicationID: appID, URL: *in.WebhookURL, Description: *in.Description,
		TriggerTypes: slices.Clone(*in.TriggerTypes), Status: "active", CreatedAt: time.Unix(1_700_000_200, 0)}
	f.hooks[appID] = append(f.hooks[appID], w)
	return &w, "whsec-" + w.ID + "-topsecret", nil
}

func (f *fakeBackend) UpdateWebhook(_ context.Context, appID, id string, in service.WebhookInput) (*store.Webhook, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, w := range f.hooks[appID] {
		if w.ID == id {
			if in.Status != nil {
				if *in.Status != "active" && *in.Status != "pause" {
					return nil, svcErr(service.CodeInvalid, "status can be set to active or pause")
				}
				f.hooks[appID][i].Status = *in.Status
			}
			w := f.hooks[appID][i]
			return &w, nil
		}
	}
	return nil, svcErr(service.CodeNotFound, "webhook %s not found", id)
}

func (f *fakeBackend) WebhookDeliveries(_ context.Context, appID, id string, limit int) ([]store.Delivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ds := f.deliveries[id]
	if len(ds) > limit {
		ds = ds[:limit]
	}
	return slices.Clone(ds), nil
}

func (f *fakeBackend) SendTestEvent(_ context.Context, triggerType, u string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tests = append(f.tests, triggerType+" "+u)
	return f.testErr
}

// Helpers to set up state directly.

func (f *fakeBackend) addApp(name string) (appID, key string) {
	app, key, err := f.CreateApplication(context.Background(), name)
	if err != nil {
		panic(err)
	}
	return app.ID, key
}

func (f *fakeBackend) addGrant(appID string, g store.Grant) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g.ApplicationID = appID
	f.grants[appID] = append(f.grants[appID], g)
}

func (f *fakeBackend) addURI(appID, u string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uris[appID] = append(f.uris[appID], api.RedirectURI{ID: f.id("uri"), URL: u, Platform: "web"})
}

func (f *fakeBackend) addWebhook(appID string, w store.Webhook) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.ApplicationID = appID
	f.hooks[appID] = append(f.hooks[appID], w)
}

func (f *fakeBackend) hookStatus(appID, id string) string {
	w, err := f.Webhook(context.Background(), appID, id)
	if err != nil {
		return "<none>"
	}
	return w.Status
}
