package sqlstore

import (
	"context"
	"fmt"

	"github.com/orchard-mail/orchard/internal/store"
)

// CreateRedirectURI inserts r, filling an empty ID and zero timestamps.
func (s *Store) CreateRedirectURI(ctx context.Context, r *store.RedirectURI) error {
	settings, err := settingsIn("redirect uri", r.Settings)
	if err != nil {
		return err
	}
	if r.ID == "" {
		r.ID = newID()
	}
	stampCreate(&r.CreatedAt, &r.UpdatedAt)
	_, err = s.write.ExecContext(ctx,
		`INSERT INTO redirect_uris (id, application_id, url, platform, settings, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		r.ID, r.ApplicationID, r.URL, r.Platform, settings, micros(r.CreatedAt), micros(r.UpdatedAt))
	return s.wrap(fmt.Sprintf("create redirect uri %s", r.ID), err)
}

const redirectURIColumns = `id, application_id, url, platform, settings, created_at, updated_at`

func scanRedirectURI(sc rowScanner) (store.RedirectURI, error) {
	var (
		r                store.RedirectURI
		settings         string
		created, updated int64
	)
	err := sc.Scan(&r.ID, &r.ApplicationID, &r.URL, &r.Platform, &settings, &created, &updated)
	r.Settings = []byte(settings)
	r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
	return r, err
}

func (s *Store) GetRedirectURI(ctx context.Context, appID, id string) (*store.RedirectURI, error) {
	r, err := scanRedirectURI(s.read.QueryRowContext(ctx,
		`SELECT `+redirectURIColumns+` FROM redirect_uris WHERE application_id = $1 AND id = $2`, appID, id))
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get redirect uri %s", id), err)
	}
	return &r, nil
}

// ListRedirectURIs returns the application's URIs, oldest first.
func (s *Store) ListRedirectURIs(ctx context.Context, appID string) ([]store.RedirectURI, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT `+redirectURIColumns+` FROM redirect_uris WHERE application_id = $1 ORDER BY created_at, id`, appID)
	if err != nil {
		return nil, s.wrap("list redirect uris", err)
	}
	defer rows.Close()
	out := []store.RedirectURI{}
	for rows.Next() {
		r, err := scanRedirectURI(rows)
		if err != nil {
			return nil, s.wrap("list redirect uris", err)
		}
		out = append(out, r)
	}
	return out, s.wrap("list redirect uris", rows.Err())
}

// UpdateRedirectURI writes URL, Platform and Settings and sets UpdatedAt to
// now.
func (s *Store) UpdateRedirectURI(ctx context.Context, r *store.RedirectURI) error {
	settings, err := settingsIn("redirect uri", r.Settings)
	if err != nil {
		return err
	}
	at := now()
	if err := s.execOne(ctx, fmt.Sprintf("update redirect uri %s", r.ID),
		`UPDATE redirect_uris SET url = $3, platform = $4, settings = $5, updated_at = $6
		 WHERE application_id = $1 AND id = $2`,
		r.ApplicationID, r.ID, r.URL, r.Platform, settings, micros(at)); err != nil {
		return err
	}
	r.UpdatedAt = at
	return nil
}

func (s *Store) DeleteRedirectURI(ctx context.Context, appID, id string) error {
	return s.execOne(ctx, fmt.Sprintf("delete redirect uri %s", id),
		`DELETE FROM redirect_uris WHERE application_id = $1 AND id = $2`, appID, id)
}
