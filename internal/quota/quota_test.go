package quota_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/quota"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
	"github.com/orchard-mail/orchard/internal/store/storetest"
)

func openStore(t *testing.T, path string) *sqlite.Store { return storetest.SQLite(t, path) }

func grant(t *testing.T, st store.Store, email string) string {
	t.Helper()
	ctx := context.Background()
	app := &store.Application{Name: email}
	if err := st.CreateApplication(ctx, app); err != nil {
		t.Fatal(err)
	}
	g := &store.Grant{ApplicationID: app.ID, Provider: "icloud", Email: email, Status: "valid", Credentials: []byte("x")}
	if err := st.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	return g.ID
}

func kindOf(err error) quota.Kind {
	var qe *quota.Error
	if errors.As(err, &qe) {
		return qe.Kind
	}
	return 0
}

// iCloud's limits at their edges: 500 recipients pass, 501 do not; 20 MB
// passes, a byte more does not; the 1,000th message of the day passes, the
// 1,001st gets a daily refusal with a sane Retry-After; a restart
// forgets nothing.
func TestICloudEdges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	st := openStore(t, path)
	g := grant(t, st, "q@icloud.com")
	clock := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	q := quota.New(st, nil, now)

	if _, err := q.Reserve(ctx, "icloud", g, 501, 100); kindOf(err) != quota.TooManyRecipients {
		t.Fatalf("501 recipients: %v", err)
	}
	if _, err := q.Reserve(ctx, "icloud", g, 1, 20<<20+1); kindOf(err) != quota.TooLarge {
		t.Fatalf("20 MB + 1 byte: %v", err)
	}
	if _, err := q.Reserve(ctx, "icloud", g, 500, 20<<20); err != nil {
		t.Fatalf("500 recipients, 20 MB: %v", err)
	}
	// 500 recipients used: the recipients-per-day limit is the next edge.
	if _, err := q.Reserve(ctx, "icloud", g, 500, 100); err != nil {
		t.Fatalf("1,000th recipient: %v", err)
	}
	_, err := q.Reserve(ctx, "icloud", g, 1, 100)
	var qe *quota.Error
	if !errors.As(err, &qe) || qe.Kind != quota.DailyRecipients || qe.RetryAfter != 24*time.Hour {
		t.Fatalf("1,001st recipient: %#v", err)
	}

	// Messages per day, on a fresh grant: 999 sends of one recipient over
	// the day, then the 1,000th passes and the 1,001st waits until the
	// first leaves the rolling window.
	g2 := grant(t, st, "q2@icloud.com")
	q2 := quota.New(st, map[string]quota.Limits{"icloud": {MessagesPerDay: 1000}}, now)
	start := clock
	for i := 0; i < 1000; i++ {
		clock = start.Add(time.Duration(i) * time.Minute)
		if _, err := q2.Reserve(ctx, "icloud", g2, 1, 100); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	// A restart: a new store and quota on the same file.
	st.Close()
	st2 := openStore(t, path)
	q3 := quota.New(st2, map[string]quota.Limits{"icloud": {MessagesPerDay: 1000}}, now)
	_, err = q3.Reserve(ctx, "icloud", g2, 1, 100)
	if !errors.As(err, &qe) || qe.Kind != quota.DailyMessages {
		t.Fatalf("1,001st message after a restart: %v", err)
	}
	if want := start.Add(24 * time.Hour).Sub(clock); qe.RetryAfter != want {
		t.Fatalf("Retry-After %v, want %v (until the first send leaves the window)", qe.RetryAfter, want)
	}
	clock = start.Add(24*time.Hour + time.Second)
	if _, err := q3.Reserve(ctx, "icloud", g2, 1, 100); err != nil {
		t.Fatalf("after the first send left the window: %v", err)
	}
	// Generic IMAP has no limits unless configured.
	if _, err := q3.Reserve(ctx, "imap", g2, 100000, 1<<40); err != nil {
		t.Fatalf("imap: %v", err)
	}
}

// Parallel sends at the last free units: exactly that many pass; a
// release gives a unit back.
func TestConcurrentLastUnits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	g := grant(t, st, "q@icloud.com")
	q := quota.New(st, map[string]quota.Limits{"icloud": {MessagesPerDay: 5}}, nil)
	for i := 0; i < 3; i++ {
		if _, err := q.Reserve(ctx, "icloud", g, 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var releases []func(context.Context) error
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := q.Reserve(ctx, "icloud", g, 1, 1)
			if err == nil {
				mu.Lock()
				releases = append(releases, rel)
				mu.Unlock()
			} else if kindOf(err) != quota.DailyMessages {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(releases) != 2 {
		t.Fatalf("%d of 10 parallel sends passed with 2 units free", len(releases))
	}
	if err := releases[0](ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Reserve(ctx, "icloud", g, 1, 1); err != nil {
		t.Fatalf("after a release: %v", err)
	}
}
