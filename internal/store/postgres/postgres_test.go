package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/postgres"
	"github.com/orchard-mail/orchard/internal/store/storetest"
)

// server is a PostgreSQL server on which each test gets its own database.
type server struct {
	admin *sql.DB
	url   *url.URL
}

// testServer connects to ORCHARD_TEST_POSTGRES_URL, whose role must be
// allowed to create databases.
func testServer(t *testing.T) *server {
	t.Helper()
	raw := os.Getenv("ORCHARD_TEST_POSTGRES_URL")
	if raw == "" {
		if os.Getenv("ORCHARD_TESTENV_REQUIRED") == "1" {
			t.Fatal("ORCHARD_TEST_POSTGRES_URL is not set (ORCHARD_TESTENV_REQUIRED=1): run scripts/testenv/up.sh and source /tmp/orchard-testenv/env")
		}
		t.Skip("ORCHARD_TEST_POSTGRES_URL is not set: run scripts/testenv/up.sh and source /tmp/orchard-testenv/env to run the PostgreSQL tests")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("ORCHARD_TEST_POSTGRES_URL: %v", err)
	}
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		t.Fatalf("ORCHARD_TEST_POSTGRES_URL: %v", err)
	}
	admin := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { admin.Close() })
	if err := admin.PingContext(t.Context()); err != nil {
		t.Fatalf("ORCHARD_TEST_POSTGRES_URL: %v", err)
	}
	return &server{admin: admin, url: u}
}

// freshDatabase creates an empty database that is dropped when t ends and
// returns its URL.
func (srv *server) freshDatabase(t testing.TB) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "orchard_t_" + hex.EncodeToString(b[:])
	// name is ours (hex), so quoting it is only for form's sake.
	if _, err := srv.admin.ExecContext(t.Context(), `CREATE DATABASE "`+name+`"`); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled during cleanup.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := srv.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u := *srv.url
	u.Path = "/" + name
	return u.String()
}

func openAt(t testing.TB, dbURL string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the database's drop, so it runs before it.
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	srv := testServer(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openAt(t, srv.freshDatabase(t))
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Several nodes start at once against one empty database: every Migrate
// must succeed and each migration must run exactly once.
func TestConcurrentMigrate(t *testing.T) {
	srv := testServer(t)
	dbURL := srv.freshDatabase(t)
	stores := make([]*postgres.Store, 8)
	for i := range stores {
		stores[i] = openAt(t, dbURL)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	start := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.Migrate(t.Context())
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := stores[0].ReadDB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if n != len(entries) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(entries))
	}
}

func TestOpenBadURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://orchard:s3cret-pw@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error leaks the password: %v", err)
	}
}
