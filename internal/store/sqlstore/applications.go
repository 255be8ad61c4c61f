package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// CreateApplication inserts app, filling an empty ID and zero timestamps.
func (s *Store) CreateApplication(ctx context.Context, app *store.Application) error {
	settings, err := settingsIn("application", app.Settings)
	if err != nil {
		return err
	}
	if app.ID == "" {
		app.ID = newID()
	}
	stampCreate(&app.CreatedAt, &app.UpdatedAt)
	_, err = s.write.ExecContext(ctx,
		`INSERT INTO applications (id, name, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
		app.ID, app.Name, settings, micros(app.CreatedAt), micros(app.UpdatedAt))
	return s.wrap(fmt.Sprintf("create application %s", app.ID), err)
}

func (s *Store) GetApplication(ctx context.Context, id string) (*store.Application, error) {
	var (
		app              store.Application
		settings         string
		created, updated int64
	)
	err := s.read.QueryRowContext(ctx,
		`SELECT id, name, settings, created_at, updated_at FROM applications WHERE id = $1`, id).
		Scan(&app.ID, &app.Name, &settings, &created, &updated)
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get application %s", id), err)
	}
	app.Settings = []byte(settings)
	app.CreatedAt, app.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &app, nil
}

// UpdateApplication writes Name and Settings and sets UpdatedAt to now.
func (s *Store) UpdateApplication(ctx context.Context, app *store.Application) error {
	settings, err := settingsIn("application", app.Settings)
	if err != nil {
		return err
	}
	at := now()
	if err := s.execOne(ctx, fmt.Sprintf("update application %s", app.ID),
		`UPDATE applications SET name = $2, settings = $3, updated_at = $4 WHERE id = $1`,
		app.ID, app.Name, settings, micros(at)); err != nil {
		return err
	}
	app.UpdatedAt = at
	return nil
}

func (s *Store) CountApplications(ctx context.Context) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM applications`).Scan(&n)
	return n, s.wrap("count applications", err)
}

// ListApplications returns every application by CreatedAt, then ID.
func (s *Store) ListApplications(ctx context.Context) ([]store.Application, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT id, name, settings, created_at, updated_at FROM applications ORDER BY created_at, id`)
	if err != nil {
		return nil, s.wrap("list applications", err)
	}
	defer rows.Close()
	apps := []store.Application{}
	for rows.Next() {
		var (
			app              store.Application
			settings         string
			created, updated int64
		)
		if err := rows.Scan(&app.ID, &app.Name, &settings, &created, &updated); err != nil {
			return nil, s.wrap("list applications", err)
		}
		app.Settings = []byte(settings)
		app.CreatedAt, app.UpdatedAt = fromMicros(created), fromMicros(updated)
		apps = append(apps, app)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list applications", err)
	}
	return apps, nil
}

// CreateAPIKey inserts key, filling an empty ID and a zero CreatedAt.
func (s *Store) CreateAPIKey(ctx context.Context, key *store.APIKey) error {
	if key.ID == "" {
		key.ID = newID()
	}
	if key.CreatedAt.IsZero() {
		key.CreatedAt = now()
	} else {
		key.CreatedAt = normTime(key.CreatedAt)
	}
	if key.RevokedAt != nil {
		t := normTime(*key.RevokedAt)
		key.RevokedAt = &t
	}
	_, err := s.write.ExecContext(ctx,
		`INSERT INTO api_keys (id, application_id, name, prefix, hash, created_at, revoked_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		key.ID, key.ApplicationID, key.Name, key.Prefix, blobIn(key.Hash), micros(key.CreatedAt), nullMicros(key.RevokedAt))
	return s.wrap(fmt.Sprintf("create api key %s", key.ID), err)
}

const apiKeyColumns = `id, application_id, name, prefix, hash, created_at, revoked_at`

func scanAPIKeys(rows *sql.Rows) ([]store.APIKey, error) {
	defer rows.Close()
	keys := []store.APIKey{}
	for rows.Next() {
		var (
			k       store.APIKey
			created int64
			revoked sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.ApplicationID, &k.Name, &k.Prefix, &k.Hash, &created, &revoked); err != nil {
			return nil, err
		}
		k.Hash = blobOut(k.Hash)
		k.CreatedAt, k.RevokedAt = fromMicros(created), fromNullMicros(revoked)
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// APIKeysByPrefix is the one lookup not scoped by application: it is how a
// request's application is found in the first place. A key whose RevokedAt
// lies in the future still works until then, which allows rotation with a
// grace period.
func (s *Store) APIKeysByPrefix(ctx context.Context, prefix string) ([]store.APIKey, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT `+apiKeyColumns+` FROM api_keys
		 WHERE prefix = $1 AND (revoked_at IS NULL OR revoked_at > $2)
		 ORDER BY created_at, id`, prefix, micros(now()))
	if err != nil {
		return nil, s.wrap("api keys by prefix", err)
	}
	keys, err := scanAPIKeys(rows)
	return keys, s.wrap("api keys by prefix", err)
}

// ListAPIKeys includes revoked keys, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, appID string) ([]store.APIKey, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT `+apiKeyColumns+` FROM api_keys WHERE application_id = $1 ORDER BY created_at, id`, appID)
	if err != nil {
		return nil, s.wrap("list api keys", err)
	}
	keys, err := scanAPIKeys(rows)
	return keys, s.wrap("list api keys", err)
}

// RevokeAPIKey only ever moves a key's revocation earlier: revoking an
// already revoked key with a later time keeps the earlier one.
func (s *Store) RevokeAPIKey(ctx context.Context, appID, id string, at time.Time) error {
	return s.execOne(ctx, fmt.Sprintf("revoke api key %s", id),
		`UPDATE api_keys SET revoked_at = CASE WHEN revoked_at IS NULL OR revoked_at > $3 THEN $3 ELSE revoked_at END
		 WHERE application_id = $1 AND id = $2`,
		appID, id, micros(at))
}
