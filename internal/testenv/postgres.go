package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// FreshPostgresDB creates an empty database on the test PostgreSQL server
// and returns its URL; it is dropped when the test ends. Tests that share
// one server stay isolated this way and may run in parallel.
func (e *Env) FreshPostgresDB(t testing.TB) string {
	t.Helper()
	return FreshPostgresDB(t)
}

// FreshPostgresDB is Env.FreshPostgresDB for tests that need only
// PostgreSQL (ORCHARD_TEST_POSTGRES_URL), not the mail servers.
func FreshPostgresDB(t testing.TB) string {
	t.Helper()
	admin := PostgresURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "orchard_t_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("testenv: connect to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// A backend the orchard role may not terminate (a server worker)
		// can hold the database for a moment: retry before giving up.
		for attempt := 1; ; attempt++ {
			_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			if err == nil {
				return
			}
			if attempt == 10 || ctx.Err() != nil {
				t.Errorf("testenv: drop %s: %v", name, err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("testenv: ORCHARD_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// PostgresURL returns ORCHARD_TEST_POSTGRES_URL, skipping or failing the
// test like Get when it is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	v := os.Getenv("ORCHARD_TEST_POSTGRES_URL")
	if v == "" {
		notRunning(t, "ORCHARD_TEST_POSTGRES_URL is unset")
	}
	return v
}
