// Package store is Orchard's persistence: one Store interface, row types and
// sentinel errors. Two dialects implement it (store/sqlite, store/postgres)
// and both run the same conformance suite (store/storetest).
//
// Every method that reads or writes tenant data takes the application id and
// scopes its query by it, so one application can never see another's rows.
//
// Conventions shared by all methods:
//   - Create* fill an empty ID with a random UUID and zero CreatedAt/UpdatedAt
//     with the current time (UpdatedAt defaults to CreatedAt), and write the
//     stored values back into the argument.
//   - Update* set UpdatedAt to the current time and write it back; they never
//     change ID, ApplicationID or CreatedAt.
//   - Times are stored with microsecond precision and returned in UTC.
//   - Settings must be valid JSON (an error otherwise); nil or empty is stored
//     and returned as "{}". Scope is returned as a non-nil slice.
//   - List* return a non-nil, possibly empty slice, oldest first unless stated.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Dialects wrap driver errors into these so that callers
// never see driver-specific types.
var (
	// ErrNotFound: no row matched (including rows of another application),
	// or a Create referred to an application that does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a unique constraint was violated (duplicate id,
	// duplicate connector provider, duplicate grant email, duplicate
	// redirect URI URL within the application, duplicate code or token
	// hash).
	ErrConflict = errors.New("store: conflict")
)

// Store is everything Orchard persists. Implementations are safe for
// concurrent use.
type Store interface {
	// Migrate applies the embedded migrations that have not run yet. It is
	// idempotent and safe to call from several processes at once. Open does
	// not migrate; callers do, before anything else.
	Migrate(ctx context.Context) error
	// Ping reports whether the database answers (used by /readyz).
	Ping(ctx context.Context) error
	Close() error

	MailStore
	CalendarStore
	SendLog
	IdempotencyStore
	WebhookStore
	AuthStore

	// Applications.
	CreateApplication(ctx context.Context, app *Application) error
	GetApplication(ctx context.Context, id string) (*Application, error)
	UpdateApplication(ctx context.Context, app *Application) error
	CountApplications(ctx context.Context) (int, error)
	// ListApplications returns every application, oldest first (then by id).
	ListApplications(ctx context.Context) ([]Application, error)

	// API keys. Only the SHA-256 hash of a key is stored; lookups go by the
	// key's public prefix and the caller compares hashes in constant time.
	CreateAPIKey(ctx context.Context, key *APIKey) error
	// APIKeysByPrefix returns the keys with that prefix that are not
	// revoked (RevokedAt nil or still in the future), of any application:
	// it is how a request's application is found.
	APIKeysByPrefix(ctx context.Context, prefix string) ([]APIKey, error)
	// ListAPIKeys includes revoked keys.
	ListAPIKeys(ctx context.Context, appID string) ([]APIKey, error)
	// RevokeAPIKey revokes the key from at on (a future time leaves a grace
	// period). Revoking again only ever moves the time earlier.
	RevokeAPIKey(ctx context.Context, appID, id string, at time.Time) error

	// Redirect URIs (callback URIs of hosted authentication).
	CreateRedirectURI(ctx context.Context, r *RedirectURI) error
	GetRedirectURI(ctx context.Context, appID, id string) (*RedirectURI, error)
	ListRedirectURIs(ctx context.Context, appID string) ([]RedirectURI, error)
	UpdateRedirectURI(ctx context.Context, r *RedirectURI) error
	DeleteRedirectURI(ctx context.Context, appID, id string) error

	// Connectors: at most one per (application, provider).
	CreateConnector(ctx context.Context, c *Connector) error
	GetConnector(ctx context.Context, appID, provider string) (*Connector, error)
	// ListConnectors returns the page and the total count. limit <= 0
	// means no limit.
	ListConnectors(ctx context.Context, appID string, limit, offset int) ([]Connector, int, error)
	UpdateConnector(ctx context.Context, c *Connector) error
	DeleteConnector(ctx context.Context, appID, provider string) error

	// Grants: at most one per (application, lower-cased email).
	CreateGrant(ctx context.Context, g *Grant) error
	GetGrant(ctx context.Context, appID, id string) (*Grant, error)
	// GetGrantByEmail matches the email case-insensitively.
	GetGrantByEmail(ctx context.Context, appID, email string) (*Grant, error)
	// ListGrants returns the grants that pass f, in f's order. An unknown
	// SortBy is an error.
	ListGrants(ctx context.Context, appID string, f GrantFilter) ([]Grant, error)
	// UpdateGrant replaces every mutable column of the grant with g's
	// (everything but ID, ApplicationID and CreatedAt).
	UpdateGrant(ctx context.Context, g *Grant) error
	DeleteGrant(ctx context.Context, appID, id string) error
	// GrantsWithStatus returns the grants of every application with that
	// status, for the syncer, which serves them all.
	GrantsWithStatus(ctx context.Context, status string) ([]Grant, error)
	// GrantByID returns a grant of any application (the syncer's view).
	GrantByID(ctx context.Context, id string) (*Grant, error)
}

// Application is a tenant: it owns API keys, connectors, grants.
type Application struct {
	ID   string
	Name string
	// Settings is the application's free-form JSON (branding,
	// hosted_authentication, ...), stored and returned verbatim.
	Settings  []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// APIKey authenticates an application. The secret itself is never stored.
type APIKey struct {
	ID            string
	ApplicationID string
	Name          string
	Prefix        string // public, indexed: the first characters of the key
	Hash          []byte // SHA-256 of the whole key
	CreatedAt     time.Time
	RevokedAt     *time.Time // nil: not revoked
}

// RedirectURI is a registered callback URL of an application.
type RedirectURI struct {
	ID            string
	ApplicationID string
	URL           string
	Platform      string
	Settings      []byte // JSON object, verbatim
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Connector enables a provider for an application.
type Connector struct {
	ApplicationID string
	Provider      string
	Name          string
	Settings      []byte // JSON object, verbatim (never secrets for icloud/imap)
	Scope         []string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Grant is one end user's connected account.
type Grant struct {
	ID            string
	ApplicationID string
	Provider      string
	Email         string // stored as given; unique and looked up by strings.ToLower(Email)
	Name          string
	Status        string // "valid" | "invalid"
	Scope         []string
	// Settings is the non-secret part of the provider settings (hosts,
	// ports, usernames) as a JSON object.
	Settings []byte
	// Credentials is the sealed (encrypted) secret part; the store never
	// sees plaintext passwords.
	Credentials []byte
	State       string
	IP          string
	UserAgent   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// GrantFilter selects and orders grants for ListGrants. Zero values mean
// "no filter"; Limit <= 0 means no limit.
type GrantFilter struct {
	Provider string
	Email    string // case-insensitive exact match
	Status   string
	IP       string
	Since    time.Time // created_at >= Since
	Before   time.Time // created_at < Before
	SortBy   string    // "created_at" (default, also for "") | "updated_at"
	Desc     bool      // newest first; ties are broken by id in the same direction
	Limit    int
	Offset   int
}
