package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
	"github.com/orchard-mail/orchard/internal/store/storetest"
)

func openAt(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

func openMigrated(tb testing.TB) *sqlite.Store {
	tb.Helper()
	// A missing parent directory is part of what Open must handle.
	s := openAt(tb, filepath.Join(tb.TempDir(), "data", "orchard.db"))
	if err := s.Migrate(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openMigrated(t) })
}

// Pragmas come from the DSN, so every pooled connection must have them, not
// only the first one.
func TestPragmasOnEveryConnection(t *testing.T) {
	s := openMigrated(t)
	ctx := t.Context()
	want := map[string]string{"journal_mode": "wal", "foreign_keys": "1", "synchronous": "1", "busy_timeout": "5000"}
	check := func(pool string, db *sql.DB, n int) {
		// Hold n connections at once so that the pool has to open them.
		for i := range n {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for pragma, v := range want {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != v {
					t.Errorf("%s conn %d: %s = %s, want %s", pool, i, pragma, got, v)
				}
			}
		}
	}
	check("write", s.WriteDB(), 1) // its only connection
	check("read", s.ReadDB(), 3)
	if _, err := s.ReadDB().ExecContext(ctx, `CREATE TABLE nope (x INTEGER)`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestMigrationsRecorded(t *testing.T) {
	s := openMigrated(t)
	ctx := t.Context()
	for range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := s.ReadDB().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
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

// Two processes (here: two Stores) may migrate the same file at once, e.g.
// `orchard migrate` racing `orchard serve`.
func TestConcurrentMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orchard.db")
	stores := []*sqlite.Store{openAt(t, path), openAt(t, path), openAt(t, path)}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := stores[0].CreateApplication(t.Context(), &store.Application{ID: "a", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[1].GetApplication(t.Context(), "a"); err != nil {
		t.Fatalf("second store does not see the first one's write: %v", err)
	}
}

func TestOpenRejectsNonPaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "x.db?mode=ro")} {
		if s, err := sqlite.Open(t.Context(), p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func BenchmarkGetGrant(b *testing.B) {
	s := openMigrated(b)
	ctx := b.Context()
	app := &store.Application{ID: "app", Name: "bench"}
	if err := s.CreateApplication(ctx, app); err != nil {
		b.Fatal(err)
	}
	const n = 1000
	for i := range n {
		g := &store.Grant{ID: fmt.Sprintf("g-%d", i), ApplicationID: app.ID, Provider: "icloud",
			Email: fmt.Sprintf("u%d@example.com", i), Status: "valid", Scope: []string{"mail"},
			Settings: []byte(`{"imap_host":"imap.example.com"}`), Credentials: make([]byte, 64)}
		if err := s.CreateGrant(ctx, g); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.GetGrant(ctx, app.ID, fmt.Sprintf("g-%d", i%n)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkAPIKeysByPrefix(b *testing.B) {
	s := openMigrated(b)
	ctx := b.Context()
	if err := s.CreateApplication(ctx, &store.Application{ID: "app", Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	const n = 1000
	for i := range n {
		k := &store.APIKey{ApplicationID: "app", Prefix: fmt.Sprintf("ork_%04d", i), Hash: make([]byte, 32)}
		if err := s.CreateAPIKey(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			keys, err := s.APIKeysByPrefix(ctx, fmt.Sprintf("ork_%04d", i%n))
			if err != nil || len(keys) != 1 {
				b.Errorf("got %d keys, err %v", len(keys), err)
				return
			}
			i++
		}
	})
}

func BenchmarkCreateGrant(b *testing.B) {
	s := openMigrated(b)
	ctx := b.Context()
	if err := s.CreateApplication(ctx, &store.Application{ID: "app", Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		g := &store.Grant{ApplicationID: "app", Provider: "icloud", Email: fmt.Sprintf("u%d@example.com", i), Status: "valid"}
		if err := s.CreateGrant(ctx, g); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
