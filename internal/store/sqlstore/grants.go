package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/orchard-mail/orchard/internal/store"
)

// Grant emails are unique per application in lower case. The lower-cased
// form is computed here and kept in its own column rather than left to the
// database's lower(), which folds only ASCII in SQLite but follows the
// locale in PostgreSQL; the two dialects must agree on what is a duplicate.
func emailKey(email string) string { return strings.ToLower(email) }

type grantArgs struct {
	scope, settings string
}

func grantIn(g *store.Grant) (grantArgs, error) {
	var (
		a   grantArgs
		err error
	)
	if a.settings, err = settingsIn("grant", g.Settings); err != nil {
		return a, err
	}
	if a.scope, err = scopeIn(g.Scope); err != nil {
		return a, err
	}
	return a, nil
}

// CreateGrant inserts g, filling an empty ID and zero timestamps.
func (s *Store) CreateGrant(ctx context.Context, g *store.Grant) error {
	a, err := grantIn(g)
	if err != nil {
		return err
	}
	if g.ID == "" {
		g.ID = newID()
	}
	stampCreate(&g.CreatedAt, &g.UpdatedAt)
	_, err = s.write.ExecContext(ctx,
		`INSERT INTO grants (id, application_id, provider, email, email_lower, name, status, scope,
		                     settings, credentials, state, ip, user_agent, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		g.ID, g.ApplicationID, g.Provider, g.Email, emailKey(g.Email), g.Name, g.Status, a.scope,
		a.settings, blobIn(g.Credentials), g.State, g.IP, g.UserAgent, micros(g.CreatedAt), micros(g.UpdatedAt))
	return s.wrap(fmt.Sprintf("create grant %s", g.ID), err)
}

const grantColumns = `id, application_id, provider, email, name, status, scope,
	settings, credentials, state, ip, user_agent, created_at, updated_at`

func scanGrant(sc rowScanner) (store.Grant, error) {
	var (
		g                store.Grant
		scope, settings  string
		created, updated int64
	)
	if err := sc.Scan(&g.ID, &g.ApplicationID, &g.Provider, &g.Email, &g.Name, &g.Status, &scope,
		&settings, &g.Credentials, &g.State, &g.IP, &g.UserAgent, &created, &updated); err != nil {
		return g, err
	}
	g.Settings = []byte(settings)
	g.Credentials = blobOut(g.Credentials)
	g.CreatedAt, g.UpdatedAt = fromMicros(created), fromMicros(updated)
	var err error
	g.Scope, err = scopeOut(scope)
	return g, err
}

func (s *Store) GetGrant(ctx context.Context, appID, id string) (*store.Grant, error) {
	g, err := scanGrant(s.read.QueryRowContext(ctx,
		`SELECT `+grantColumns+` FROM grants WHERE application_id = $1 AND id = $2`, appID, id))
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get grant %s", id), err)
	}
	return &g, nil
}

// GetGrantByEmail matches the email case-insensitively. The email is left out
// of errors because it is personal data and errors end up in logs.
func (s *Store) GetGrantByEmail(ctx context.Context, appID, email string) (*store.Grant, error) {
	g, err := scanGrant(s.read.QueryRowContext(ctx,
		`SELECT `+grantColumns+` FROM grants WHERE application_id = $1 AND email_lower = $2`, appID, emailKey(email)))
	if err != nil {
		return nil, s.wrap("get grant by email", err)
	}
	return &g, nil
}

// grantSortColumn maps the caller's choice to a column name; the name in the
// query always comes from here, never from the caller.
func grantSortColumn(sortBy string) (string, bool) {
	switch sortBy {
	case "", "created_at":
		return "created_at", true
	case "updated_at":
		return "updated_at", true
	}
	return "", false
}

func (s *Store) ListGrants(ctx context.Context, appID string, f store.GrantFilter) ([]store.Grant, error) {
	col, ok := grantSortColumn(f.SortBy)
	if !ok {
		return nil, fmt.Errorf("store: list grants: cannot sort by %q", f.SortBy)
	}
	dir := "ASC"
	if f.Desc {
		dir = "DESC"
	}

	var q strings.Builder
	args := []any{appID}
	q.WriteString(`SELECT ` + grantColumns + ` FROM grants WHERE application_id = $1`)
	where := func(cond string, v any) {
		args = append(args, v)
		fmt.Fprintf(&q, " AND %s $%d", cond, len(args))
	}
	if f.Provider != "" {
		where("provider =", f.Provider)
	}
	if f.Email != "" {
		where("email_lower =", emailKey(f.Email))
	}
	if f.Status != "" {
		where("status =", f.Status)
	}
	if f.IP != "" {
		where("ip =", f.IP)
	}
	if !f.Since.IsZero() {
		where("created_at >=", micros(f.Since))
	}
	if !f.Before.IsZero() {
		where("created_at <", micros(f.Before))
	}
	// id breaks ties in the same direction so that pages do not overlap
	// or skip rows that share a timestamp.
	fmt.Fprintf(&q, " ORDER BY %s %s, id %s", col, dir, dir)
	args = append(args, pageLimit(f.Limit), max(f.Offset, 0))
	fmt.Fprintf(&q, " LIMIT $%d OFFSET $%d", len(args)-1, len(args))

	rows, err := s.read.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, s.wrap("list grants", err)
	}
	defer rows.Close()
	out := []store.Grant{}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, s.wrap("list grants", err)
		}
		out = append(out, g)
	}
	return out, s.wrap("list grants", rows.Err())
}

// UpdateGrant writes every column but ID, ApplicationID and CreatedAt, and
// sets UpdatedAt to now.
func (s *Store) UpdateGrant(ctx context.Context, g *store.Grant) error {
	a, err := grantIn(g)
	if err != nil {
		return err
	}
	at := now()
	if err := s.execOne(ctx, fmt.Sprintf("update grant %s", g.ID),
		`UPDATE grants SET provider = $3, email = $4, email_lower = $5, name = $6, status = $7, scope = $8,
		        settings = $9, credentials = $10, state = $11, ip = $12, user_agent = $13, updated_at = $14
		 WHERE application_id = $1 AND id = $2`,
		g.ApplicationID, g.ID, g.Provider, g.Email, emailKey(g.Email), g.Name, g.Status, a.scope,
		a.settings, blobIn(g.Credentials), g.State, g.IP, g.UserAgent, micros(at)); err != nil {
		return err
	}
	g.UpdatedAt = at
	return nil
}

func (s *Store) DeleteGrant(ctx context.Context, appID, id string) error {
	return s.execOne(ctx, fmt.Sprintf("delete grant %s", id),
		`DELETE FROM grants WHERE application_id = $1 AND id = $2`, appID, id)
}
