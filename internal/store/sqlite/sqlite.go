// Package sqlite is the embedded store dialect: one database file, used by a
// single Orchard process (modernc.org/sqlite, so CGO_ENABLED=0 builds work).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is the SQLite implementation of store.Store.
type Store struct {
	*sqlstore.Store
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and its parent
// directory. It does not migrate: call Migrate before use.
//
// Writes go through a single connection, so concurrent writers wait their
// turn in Go rather than failing with SQLITE_BUSY; reads use a separate pool
// and run in parallel thanks to WAL. busy_timeout still covers other
// processes (such as `orchard migrate` next to a running server).
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.Contains(path, "?") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		// The driver reads everything after '?' as its own options, and
		// an in-memory database would differ between the two pools.
		return nil, fmt.Errorf("store: sqlite path %q: want a plain file path", path)
	}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}

	write, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("store: sqlite open: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	// The writer connects first: on a new file it is the one that switches
	// the journal to WAL, which read-only connections cannot do.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("store: sqlite open %s: %w", path, err)
	}

	read, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: sqlite open: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("store: sqlite open %s: %w", path, err)
	}
	return &Store{sqlstore.New(read, write, sqlstore.Dialect{
		Name:            "sqlite",
		Migrations:      migrations,
		Positional:      true,
		CacheStatements: true,
		Classify:        classify,
	})}, nil
}

// dsn puts every setting in the connection string so that each connection
// the pool opens gets them, not just the first.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	// NORMAL is durable across application crashes in WAL mode; only a
	// power loss may drop the last transactions, never corrupt the file.
	q.Add("_pragma", "synchronous(NORMAL)")
	// 64 MiB of page cache per connection (SQLite's default is 2 MiB): a
	// sync batch touches a dozen indexes, and evicted pages cost a read
	// and a rewrite each.
	q.Add("_pragma", "cache_size(-65536)")
	// Checkpoint the WAL every ~40 MiB instead of every 4 MiB: a sync
	// batch writes several MiB, and each checkpoint rewrites pages that
	// the next batches dirty again.
	q.Add("_pragma", "wal_autocheckpoint(10000)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		// Take the write lock at BEGIN, so a transaction that reads then
		// writes cannot fail halfway with SQLITE_BUSY against another
		// process.
		q.Set("_txlock", "immediate")
	}
	return path + "?" + q.Encode()
}

func classify(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return store.ErrConflict
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return store.ErrNotFound
	}
	return nil
}
