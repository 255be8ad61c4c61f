// Package postgres is the shared store dialect: every Orchard node of a
// cluster points at the same PostgreSQL database.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockKey identifies Orchard's migration lock among the advisory
// locks of the database; any fixed number that other software is unlikely
// to pick will do ("orchard" in ASCII).
const migrationLockKey int64 = 0x6f72636861726400

// changesLockKey serialises the insertion of change rows ("orchard" and 1).
const changesLockKey int64 = 0x6f72636861726401

// Store is the PostgreSQL implementation of store.Store.
type Store struct {
	*sqlstore.Store
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (postgres://...) and checks that it
// answers. It does not migrate: call Migrate before use; concurrent Migrate
// calls from several nodes are safe.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, fmt.Errorf("store: postgres open: %w", err)
	}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	// database/sql keeps only 2 idle connections by default, which makes
	// a busy server reconnect constantly.
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: postgres open: %w", err)
	}
	return &Store{sqlstore.New(db, db, sqlstore.Dialect{
		Name:           "postgres",
		Migrations:     migrations,
		LockMigrations: lockMigrations,
		LockGrant:      lockGrant,
		LockChanges:    lockChanges,
		Classify:       classify,
	})}, nil
}

// lockMigrations holds the lock until the transaction ends, so a node that
// waited finds the migration already recorded and skips it.
func lockMigrations(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey)
	return err
}

// grantLockClass is the first key of the per-grant advisory locks (the
// two-key form, whose second key is a hash of the grant id); a collision of
// hashes only makes two grants' batches wait for each other.
const grantLockClass int32 = 0x6f726368 // "orch"

// lockGrant serialises ApplyMailBatch per grant until the transaction ends.
func lockGrant(ctx context.Context, tx *sql.Tx, grantID string) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, grantLockClass, grantID)
	return err
}

// lockChanges makes change ids follow commit order. Identity values are
// taken when a row is inserted, so two transactions could commit their
// change rows in the opposite order of their ids, and a dispatcher that
// had read past the higher id would never see the lower one. Holding this
// lock from the insertion until the end of the transaction (the insertion
// is ApplyMailBatch's last step) serialises only that short tail: the ids
// of a later commit are always higher, and visible once the lock is free.
func lockChanges(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, changesLockKey)
	return err
}

func classify(err error) error {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Code {
	case "23505": // unique_violation
		return store.ErrConflict
	case "23503": // foreign_key_violation
		return store.ErrNotFound
	}
	return nil
}
