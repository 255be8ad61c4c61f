package sqlstore

import (
	"context"
	"fmt"

	"github.com/orchard-mail/orchard/internal/store"
)

// GrantsWithStatus returns every application's grants with that status,
// oldest first. Only the syncer calls it: it is the one component that
// works across applications.
func (s *Store) GrantsWithStatus(ctx context.Context, status string) ([]store.Grant, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT `+grantColumns+` FROM grants WHERE status = $1 ORDER BY created_at, id`, status)
	if err != nil {
		return nil, s.wrap("list grants by status", err)
	}
	defer rows.Close()
	out := []store.Grant{}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, s.wrap("list grants by status", err)
		}
		out = append(out, g)
	}
	return out, s.wrap("list grants by status", rows.Err())
}

// GrantByID returns a grant whatever its application.
func (s *Store) GrantByID(ctx context.Context, id string) (*store.Grant, error) {
	g, err := scanGrant(s.read.QueryRowContext(ctx,
		`SELECT `+grantColumns+` FROM grants WHERE id = $1`, id))
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get grant %s", id), err)
	}
	return &g, nil
}
