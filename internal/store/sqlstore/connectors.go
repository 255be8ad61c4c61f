package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/orchard-mail/orchard/internal/store"
)

// CreateConnector inserts c, filling zero timestamps.
func (s *Store) CreateConnector(ctx context.Context, c *store.Connector) error {
	settings, err := settingsIn("connector", c.Settings)
	if err != nil {
		return err
	}
	scope, err := scopeIn(c.Scope)
	if err != nil {
		return err
	}
	stampCreate(&c.CreatedAt, &c.UpdatedAt)
	_, err = s.write.ExecContext(ctx,
		`INSERT INTO connectors (application_id, provider, name, settings, scope, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		c.ApplicationID, c.Provider, c.Name, settings, scope, micros(c.CreatedAt), micros(c.UpdatedAt))
	return s.wrap(fmt.Sprintf("create connector %s", c.Provider), err)
}

const connectorColumns = `application_id, provider, name, settings, scope, created_at, updated_at`

func scanConnector(sc rowScanner) (store.Connector, error) {
	var (
		c                store.Connector
		settings, scope  string
		created, updated int64
	)
	if err := sc.Scan(&c.ApplicationID, &c.Provider, &c.Name, &settings, &scope, &created, &updated); err != nil {
		return c, err
	}
	c.Settings = []byte(settings)
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	var err error
	c.Scope, err = scopeOut(scope)
	return c, err
}

func (s *Store) GetConnector(ctx context.Context, appID, provider string) (*store.Connector, error) {
	c, err := scanConnector(s.read.QueryRowContext(ctx,
		`SELECT `+connectorColumns+` FROM connectors WHERE application_id = $1 AND provider = $2`, appID, provider))
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get connector %s", provider), err)
	}
	return &c, nil
}

// ListConnectors returns one page, oldest first, and the total count. Both
// come from one snapshot so the count matches the page. limit <= 0 means no
// limit.
func (s *Store) ListConnectors(ctx context.Context, appID string, limit, offset int) ([]store.Connector, int, error) {
	var (
		page  = []store.Connector{}
		total int
	)
	// Repeatable read because PostgreSQL's default, read committed, takes a
	// new snapshot per statement; SQLite transactions are serializable anyway.
	opts := &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
	err := inTx(ctx, s.read, opts, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM connectors WHERE application_id = $1`, appID).Scan(&total); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx,
			`SELECT `+connectorColumns+` FROM connectors WHERE application_id = $1
			 ORDER BY created_at, provider LIMIT $2 OFFSET $3`,
			appID, pageLimit(limit), max(offset, 0))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanConnector(rows)
			if err != nil {
				return err
			}
			page = append(page, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, s.wrap("list connectors", err)
	}
	return page, total, nil
}

// UpdateConnector writes Name, Settings and Scope and sets UpdatedAt to now.
func (s *Store) UpdateConnector(ctx context.Context, c *store.Connector) error {
	settings, err := settingsIn("connector", c.Settings)
	if err != nil {
		return err
	}
	scope, err := scopeIn(c.Scope)
	if err != nil {
		return err
	}
	at := now()
	if err := s.execOne(ctx, fmt.Sprintf("update connector %s", c.Provider),
		`UPDATE connectors SET name = $3, settings = $4, scope = $5, updated_at = $6
		 WHERE application_id = $1 AND provider = $2`,
		c.ApplicationID, c.Provider, c.Name, settings, scope, micros(at)); err != nil {
		return err
	}
	c.UpdatedAt = at
	return nil
}

func (s *Store) DeleteConnector(ctx context.Context, appID, provider string) error {
	return s.execOne(ctx, fmt.Sprintf("delete connector %s", provider),
		`DELETE FROM connectors WHERE application_id = $1 AND provider = $2`, appID, provider)
}

// pageLimit turns "no limit" into a number, because SQLite cannot take an
// OFFSET without a LIMIT and PostgreSQL refuses a negative LIMIT.
func pageLimit(limit int) int64 {
	if limit <= 0 {
		return 1<<63 - 1
	}
	return int64(limit)
}
