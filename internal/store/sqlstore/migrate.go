package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

type migration struct {
	version int64
	name    string
	sql     string
}

// loadMigrations reads NNNN_description.sql files from fsys, sorted by
// version. Anything else at the root is an error rather than silently
// skipped, so a misnamed file cannot go unapplied unnoticed.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var ms []migration
	seen := map[int64]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".sql" {
			return nil, fmt.Errorf("store: migration %q: not a .sql file", name)
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration %q: name must be NNNN_description.sql", name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("store: migrations %q and %q share version %d", prev, name, v)
		}
		seen[v] = name
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("store: read migration %q: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// Migrate applies the migrations that have not run yet, each in its own
// transaction together with its schema_migrations row, so a failed migration
// leaves nothing half-applied and a rerun picks up where it stopped.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.d.Migrations)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := inTx(ctx, s.write, nil, func(tx *sql.Tx) error { return s.applyMigration(ctx, tx, m) }); err != nil {
			return fmt.Errorf("store: migrate %s %s: %w", s.d.Name, m.name, err)
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, tx *sql.Tx, m migration) error {
	// The lock comes first, before even the CREATE TABLE IF NOT EXISTS:
	// in PostgreSQL two sessions creating the same table concurrently can
	// both pass the "if not exists" check and one then fails.
	if s.d.LockMigrations != nil {
		if err := s.d.LockMigrations(ctx, tx); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.version, micros(now()))
	return err
}
