// Package sqlstore is the store.Store implementation shared by the SQLite and
// PostgreSQL dialects. Both run over database/sql and the queries are written
// once, with $N placeholders, which both drivers accept. What differs between
// the dialects (schema DDL, error codes, how migration runners are kept from
// racing) comes in through a Dialect.
package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// Dialect is what a database brings to the shared implementation.
type Dialect struct {
	// Name appears in error messages ("sqlite", "postgres").
	Name string
	// Migrations holds files named NNNN_description.sql at its root,
	// applied in NNNN order.
	Migrations fs.FS
	// LockMigrations, if set, runs first inside every migration
	// transaction. PostgreSQL needs it because several nodes may start at
	// once; SQLite's BEGIN IMMEDIATE already serialises writers.
	LockMigrations func(ctx context.Context, tx *sql.Tx) error
	// LockGrant, if set, runs first in every ApplyMailBatch transaction.
	// Batches of one grant must not interleave: folder counts are kept by
	// differences and threads are recomputed from what the transaction
	// reads. The syncer writes a grant from one worker, but two nodes may
	// overlap for a moment; SQLite has one writer at a time anyway.
	LockGrant func(ctx context.Context, tx *sql.Tx, grantID string) error
	// LockChanges, if set, runs in ApplyMailBatch just before the change
	// rows are inserted, as the transaction's last step. PostgreSQL needs
	// it so that change ids are assigned in commit order (concurrent
	// batches of different grants would otherwise commit ids out of order,
	// and a dispatcher reading "id > cursor" could skip one); SQLite has
	// one writer at a time anyway.
	LockChanges func(ctx context.Context, tx *sql.Tx) error
	// Positional makes the mail queries reach the driver with "?"
	// placeholders instead of "$N". modernc.org/sqlite treats "$N" as a
	// named parameter and resolves each name with a linear search, at
	// parse and again at bind time, which makes a statement with
	// thousands of parameters (multi-row inserts, long IN lists) cost
	// quadratic time; anonymous "?" parameters are bound by position.
	Positional bool
	// CacheStatements keeps the mail read queries prepared, per query
	// text. modernc.org/sqlite has no statement cache, and parsing a
	// listing query costs as much as running it; pgx caches statements
	// itself.
	CacheStatements bool
	// Classify returns store.ErrConflict for a unique violation,
	// store.ErrNotFound for a foreign-key violation (the parent row, e.g.
	// the application, does not exist) and nil for anything else.
	Classify func(err error) error
}

// Store implements store.Store over database/sql.
type Store struct {
	// read serves queries and write serves changes. They are the same pool
	// for PostgreSQL; SQLite gives writes a single connection so that
	// writers queue in Go instead of failing with SQLITE_BUSY, while reads
	// run in parallel under WAL.
	read, write *sql.DB
	d           Dialect
	stmts       stmtCache
}

// stmtCache holds prepared statements of the read pool by query text. It
// is bounded: once full, further query shapes run unprepared, which only
// long IN lists or unusual filter combinations ever need.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

const (
	maxCachedStmts = 256
	// Queries with more arguments are rarely repeated verbatim (their IN
	// lists vary in length), so they are not worth a cache slot.
	maxCachedArgs = 16
)

var _ store.Store = (*Store)(nil)

// New wraps the pools. read and write may be the same *sql.DB. The Store
// owns them: Close closes both.
func New(read, write *sql.DB, d Dialect) *Store {
	return &Store{read: read, write: write, d: d}
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.d.Name, err)
	}
	if s.read != s.write {
		if err := s.read.PingContext(ctx); err != nil {
			return fmt.Errorf("store: ping %s: %w", s.d.Name, err)
		}
	}
	return nil
}

// Close closes the pools.
func (s *Store) Close() error {
	s.stmts.mu.Lock()
	for _, st := range s.stmts.m {
		st.Close()
	}
	s.stmts.m = nil
	s.stmts.mu.Unlock()
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// ReadDB is the pool for queries. It is exposed for the dialects' own tests
// and tooling; the rest of Orchard goes through store.Store.
func (s *Store) ReadDB() *sql.DB { return s.read }

// WriteDB is the pool for changes; see ReadDB.
func (s *Store) WriteDB() *sql.DB { return s.write }

// wrap turns a driver error into one that names the operation and, when the
// dialect recognises it, wraps a store sentinel instead of the driver error,
// so that callers never depend on driver types.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, store.ErrNotFound)
	}
	if s.d.Classify != nil {
		if sentinel := s.d.Classify(err); sentinel != nil {
			return fmt.Errorf("store: %s: %w", op, sentinel)
		}
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// execOne runs a statement that must touch exactly one row; touching none
// means the row is missing (or belongs to another application).
func (s *Store) execOne(ctx context.Context, op, query string, args ...any) error {
	res, err := s.write.ExecContext(ctx, query, args...)
	if err != nil {
		return s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s: %w", op, store.ErrNotFound)
	}
	return nil
}

// rebind adapts a query written with $N placeholders to the dialect: for
// Positional dialects each $N becomes "?" and args are reordered (and
// repeated) to match. Quoted literals are left alone.
func (s *Store) rebind(query string, args []any) (string, []any) {
	if !s.d.Positional {
		return query, args
	}
	var b strings.Builder
	b.Grow(len(query))
	out := make([]any, 0, len(args))
	quoted := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		if c == '\'' {
			quoted = !quoted // '' inside a literal toggles twice
		}
		if c != '$' || quoted || i+1 == len(query) || !isDigit(query[i+1]) {
			b.WriteByte(c)
			continue
		}
		j, n := i+1, 0
		for j < len(query) && isDigit(query[j]) {
			n = n*10 + int(query[j]-'0')
			j++
		}
		if n < 1 || n > len(args) {
			// Left for the driver to report.
			b.WriteString(query[i:j])
		} else {
			b.WriteByte('?')
			out = append(out, args[n-1])
		}
		i = j - 1
	}
	return b.String(), out
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// execer is what *sql.DB and *sql.Tx have in common.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) execOn(ctx context.Context, db execer, query string, args ...any) (sql.Result, error) {
	query, args = s.rebind(query, args)
	return db.ExecContext(ctx, query, args...)
}

func (s *Store) queryOn(ctx context.Context, db execer, query string, args ...any) (*sql.Rows, error) {
	query, args = s.rebind(query, args)
	return db.QueryContext(ctx, query, args...)
}

// query and queryRow run a query on the read pool, prepared once if the
// dialect wants it.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query, args = s.rebind(query, args)
	if st := s.readStmt(ctx, query, len(args)); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.read.QueryContext(ctx, query, args...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	query, args = s.rebind(query, args)
	if st := s.readStmt(ctx, query, len(args)); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.read.QueryRowContext(ctx, query, args...)
}

// readStmt returns the cached statement for query, preparing it if there
// is room; nil means "run it unprepared" (which also reports any error).
func (s *Store) readStmt(ctx context.Context, query string, nargs int) *sql.Stmt {
	if !s.d.CacheStatements || nargs > maxCachedArgs {
		return nil
	}
	s.stmts.mu.Lock()
	st, full := s.stmts.m[query], len(s.stmts.m) >= maxCachedStmts
	s.stmts.mu.Unlock()
	if st != nil || full {
		return st
	}
	st, err := s.read.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if prev := s.stmts.m[query]; prev != nil {
		st.Close() // another caller prepared it first
		return prev
	}
	if s.stmts.m == nil {
		s.stmts.m = map[string]*sql.Stmt{}
	}
	s.stmts.m[query] = st
	return st
}

func inTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	return tx.Commit()
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface {
	Scan(dest ...any) error
}

// Timestamps are stored as Unix microseconds: one integer type in both
// dialects, exact, sortable, and free of driver time-zone handling.

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// normTime is what the database will give back for t, so that the caller's
// struct matches a later Get exactly.
func normTime(t time.Time) time.Time { return fromMicros(micros(t)) }

func now() time.Time { return normTime(time.Now()) }

// stampCreate fills zero creation times with now and writes the stored form
// back, so a caller may supply its own (imports, tests) or leave them zero.
func stampCreate(created, updated *time.Time) {
	if created.IsZero() {
		*created = now()
	} else {
		*created = normTime(*created)
	}
	if updated.IsZero() {
		*updated = *created
	} else {
		*updated = normTime(*updated)
	}
}

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(*t), Valid: true}
}

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// settingsIn validates a JSON settings document. It is checked here because
// the two dialects would otherwise disagree on garbage (PostgreSQL refuses
// invalid UTF-8 in text, SQLite stores anything).
func settingsIn(what string, b []byte) (string, error) {
	if len(b) == 0 {
		return "{}", nil
	}
	if !json.Valid(b) {
		return "", fmt.Errorf("store: %s settings are not valid JSON", what)
	}
	return string(b), nil
}

func scopeIn(scope []string) (string, error) {
	if scope == nil {
		scope = []string{}
	}
	b, err := json.Marshal(scope)
	if err != nil {
		return "", fmt.Errorf("store: encode scope: %w", err)
	}
	return string(b), nil
}

func scopeOut(s string) ([]string, error) {
	scope := []string{}
	if err := json.Unmarshal([]byte(s), &scope); err != nil {
		return nil, fmt.Errorf("store: decode scope: %w", err)
	}
	if scope == nil { // the column held JSON null
		scope = []string{}
	}
	return scope, nil
}

// blobIn keeps NOT NULL byte columns from receiving NULL: both drivers send
// a nil slice as NULL.
func blobIn(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// blobOut hides the drivers' disagreement on empty blobs (nil vs []byte{}).
func blobOut(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// newID returns a random (version 4) UUID, used when a caller creates a row
// without choosing its id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
