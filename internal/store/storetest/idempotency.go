package storetest

import (
	"bytes"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

var idempotencyTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"IdempotencyClaimAndReplay", testIdempotencyReplay},
	{"IdempotencyPerGrant", testIdempotencyPerGrant},
	{"IdempotencyAbandon", testIdempotencyAbandon},
	{"IdempotencyStale", testIdempotencyStale},
	{"IdempotencyPurge", testIdempotencyPurge},
	{"IdempotencyGrantDeleted", testIdempotencyGrantDeleted},
	{"IdempotencyFinishUnclaimed", testIdempotencyFinishUnclaimed},
	{"IdempotencyConcurrentBegin", testIdempotencyConcurrent},
}

func reqHash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// claim begins key for grantID and fails unless the claim was won.
func claim(t *testing.T, s store.Store, grantID, key, hash string, created, staleBefore time.Time) *store.IdempotentRequest {
	t.Helper()
	r := &store.IdempotentRequest{GrantID: grantID, Key: key, RequestHash: reqHash(hash), CreatedAt: created}
	got, err := s.BeginIdempotent(t.Context(), r, staleBefore)
	ok(t, err, "begin "+key)
	if got != nil {
		t.Fatalf("begin %s of %s: the key was taken: %+v", key, grantID, got)
	}
	return r
}

// taken begins key for grantID and fails unless the key was taken; it
// returns the stored record.
func taken(t *testing.T, s store.Store, grantID, key, hash string, staleBefore time.Time) *store.IdempotentRequest {
	t.Helper()
	got, err := s.BeginIdempotent(t.Context(), &store.IdempotentRequest{GrantID: grantID, Key: key, RequestHash: reqHash(hash)}, staleBefore)
	ok(t, err, "begin again "+key)
	if got == nil {
		t.Fatalf("begin %s of %s again: claimed a key that was taken", key, grantID)
	}
	return got
}

func testIdempotencyReplay(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	// A caller-supplied time comes back in UTC, to the microsecond.
	r := claim(t, s, g, "key-1", "POST /send body-1", at(0), time.Time{})
	if want := at(0).Truncate(time.Microsecond).UTC(); !r.CreatedAt.Equal(want) || r.CreatedAt.Location() != time.UTC || r.CreatedAt.Nanosecond()%1000 != 0 {
		t.Fatalf("written-back CreatedAt %v, want %v in UTC", r.CreatedAt, want)
	}
	// A zero time is stamped from the store's clock.
	before := time.Now().Add(-time.Second)
	r2 := claim(t, s, g, "key-2", "POST /send body-2", time.Time{}, time.Time{})
	if r2.CreatedAt.Before(before) || r2.CreatedAt.After(time.Now().Add(time.Second)) || r2.CreatedAt.Location() != time.UTC {
		t.Fatalf("stamped CreatedAt %v, want about now in UTC", r2.CreatedAt)
	}

	// In progress: a retry (even with another body) gets the claim back,
	// unchanged, so the caller can tell "in progress" and "other request".
	got := taken(t, s, g, "key-1", "POST /send other body", time.Time{})
	same(t, got, &store.IdempotentRequest{GrantID: g, Key: "key-1", RequestHash: reqHash("POST /send body-1"), CreatedAt: r.CreatedAt}, "in-progress record")

	body := []byte("{\"request_id\":\"r\",\"data\":{\"id\":\"m1\"}}\x00\xff")
	ok(t, s.FinishIdempotent(ctx, g, "key-1", 200, body), "finish")
	got = taken(t, s, g, "key-1", "POST /send body-1", time.Time{})
	if got.Status != 200 || !bytes.Equal(got.Response, body) || !bytes.Equal(got.RequestHash, reqHash("POST /send body-1")) ||
		!got.CreatedAt.Equal(r.CreatedAt) || got.FinishedAt.IsZero() || got.FinishedAt.Location() != time.UTC || got.FinishedAt.Before(before) {
		t.Fatalf("finished record: %+v", got)
	}
	// The first response stands: finishing again is refused and changes
	// nothing.
	isErr(t, s.FinishIdempotent(ctx, g, "key-1", 500, []byte("late")), store.ErrNotFound, "finish twice")
	again := taken(t, s, g, "key-1", "POST /send body-1", time.Time{})
	same(t, again, got, "record after a second finish")

	// Durable: still there after migrating again; the other key is still
	// in progress.
	ok(t, s.Migrate(ctx), "migrate")
	same(t, taken(t, s, g, "key-1", "x", time.Time{}), got, "record after migrate")
	if got := taken(t, s, g, "key-2", "x", time.Time{}); got.Status != 0 || !got.FinishedAt.IsZero() || got.Response != nil {
		t.Fatalf("key-2 should still be in progress: %+v", got)
	}
	// An empty response (204) is stored as finished too.
	ok(t, s.FinishIdempotent(ctx, g, "key-2", 204, nil), "finish with no body")
	if got := taken(t, s, g, "key-2", "x", time.Time{}); got.Status != 204 || got.Response != nil || got.FinishedAt.IsZero() {
		t.Fatalf("key-2 finished with no body: %+v", got)
	}
}

func testIdempotencyPerGrant(t *testing.T, s store.Store) {
	ctx := t.Context()
	g1 := mailGrant(t, s, "app", "grant-1")
	g2 := mailGrant(t, s, "app", "grant-2")
	g3 := mailGrant(t, s, "other-app", "grant-3")
	claim(t, s, g1, "shared", "one", time.Time{}, time.Time{})
	claim(t, s, g2, "shared", "two", time.Time{}, time.Time{})
	claim(t, s, g3, "shared", "three", time.Time{}, time.Time{})
	ok(t, s.FinishIdempotent(ctx, g1, "shared", 200, []byte("one")), "finish g1")
	if got := taken(t, s, g2, "shared", "two", time.Time{}); got.Status != 0 || got.GrantID != g2 || !bytes.Equal(got.RequestHash, reqHash("two")) {
		t.Fatalf("grant-2 sees another grant's record: %+v", got)
	}
	if got := taken(t, s, g1, "shared", "one", time.Time{}); got.Status != 200 || string(got.Response) != "one" {
		t.Fatalf("grant-1's record: %+v", got)
	}
	// Keys are exact: case and spaces matter.
	claim(t, s, g1, "Shared", "one", time.Time{}, time.Time{})
	claim(t, s, g1, "shared ", "one", time.Time{}, time.Time{})
	// A key of a grant that does not exist cannot be claimed.
	_, err := s.BeginIdempotent(ctx, &store.IdempotentRequest{GrantID: "no-such-grant", Key: "k", RequestHash: reqHash("x")}, time.Time{})
	isErr(t, err, store.ErrNotFound, "begin for a missing grant")
}

func testIdempotencyAbandon(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	other := mailGrant(t, s, "app", "grant-2")
	claim(t, s, g, "k", "first", time.Time{}, time.Time{})
	claim(t, s, other, "k", "first", time.Time{}, time.Time{})
	ok(t, s.AbandonIdempotent(ctx, g, "k"), "abandon")
	// Abandoned: the key is free again, and a finish of the old claim is
	// refused. The other grant's claim stays.
	isErr(t, s.FinishIdempotent(ctx, g, "k", 200, []byte("x")), store.ErrNotFound, "finish an abandoned claim")
	if got := taken(t, s, other, "k", "first", time.Time{}); got.Status != 0 {
		t.Fatalf("the other grant's claim: %+v", got)
	}
	claim(t, s, g, "k", "second", time.Time{}, time.Time{})
	ok(t, s.FinishIdempotent(ctx, g, "k", 202, []byte("sent")), "finish")
	// Finished records are not abandoned.
	ok(t, s.AbandonIdempotent(ctx, g, "k"), "abandon a finished record")
	if got := taken(t, s, g, "k", "second", time.Time{}); got.Status != 202 || string(got.Response) != "sent" || !bytes.Equal(got.RequestHash, reqHash("second")) {
		t.Fatalf("finished record after abandon: %+v", got)
	}
	// Unknown keys and grants are not an error.
	ok(t, s.AbandonIdempotent(ctx, g, "never-claimed"), "abandon an unknown key")
	ok(t, s.AbandonIdempotent(ctx, "no-such-grant", "k"), "abandon for an unknown grant")
}

func testIdempotencyStale(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	claim(t, s, g, "done", "old", at(0), time.Time{})
	ok(t, s.FinishIdempotent(ctx, g, "done", 200, []byte("old response")), "finish")
	claim(t, s, g, "stuck", "old", at(0), time.Time{})

	// Created exactly at staleBefore is not stale.
	if got := taken(t, s, g, "done", "new", at(0)); got.Status != 200 || !bytes.Equal(got.RequestHash, reqHash("old")) {
		t.Fatalf("record created at staleBefore: %+v", got)
	}
	taken(t, s, g, "stuck", "new", at(0))

	// Older than staleBefore: replaced by the new claim, finished or not.
	r := claim(t, s, g, "done", "new", at(60), at(30))
	claim(t, s, g, "stuck", "new", at(60), at(30))
	got := taken(t, s, g, "done", "newer", at(30))
	same(t, got, &store.IdempotentRequest{GrantID: g, Key: "done", RequestHash: reqHash("new"), CreatedAt: r.CreatedAt}, "replaced record")
	if got := taken(t, s, g, "stuck", "newer", at(30)); !got.CreatedAt.Equal(r.CreatedAt) || !bytes.Equal(got.RequestHash, reqHash("new")) {
		t.Fatalf("replaced in-progress record: %+v", got)
	}
	// The replacement is a fresh claim that can be finished.
	ok(t, s.FinishIdempotent(ctx, g, "done", 201, []byte("new response")), "finish the replacement")
	if got := taken(t, s, g, "done", "new", at(30)); got.Status != 201 || string(got.Response) != "new response" {
		t.Fatalf("finished replacement: %+v", got)
	}
}

func testIdempotencyPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	g1 := mailGrant(t, s, "app", "grant-1")
	g2 := mailGrant(t, s, "other-app", "grant-2")
	claim(t, s, g1, "old-done", "x", at(0), time.Time{})
	ok(t, s.FinishIdempotent(ctx, g1, "old-done", 200, []byte("x")), "finish")
	claim(t, s, g1, "old-stuck", "x", at(5), time.Time{})
	claim(t, s, g2, "old", "x", at(9), time.Time{})
	claim(t, s, g1, "edge", "x", at(10), time.Time{}) // not before at(10)
	claim(t, s, g2, "new", "x", at(20), time.Time{})

	n, err := s.PurgeIdempotent(ctx, at(10))
	ok(t, err, "purge")
	if n != 3 {
		t.Fatalf("purge removed %d records, want 3", n)
	}
	// The purged keys are free; the others are kept.
	claim(t, s, g1, "old-done", "y", at(30), time.Time{})
	claim(t, s, g1, "old-stuck", "y", at(30), time.Time{})
	claim(t, s, g2, "old", "y", at(30), time.Time{})
	taken(t, s, g1, "edge", "x", time.Time{})
	taken(t, s, g2, "new", "x", time.Time{})

	n, err = s.PurgeIdempotent(ctx, at(10))
	ok(t, err, "purge again")
	if n != 0 {
		t.Fatalf("second purge removed %d records, want 0", n)
	}
	n, err = s.PurgeIdempotent(ctx, at(31))
	ok(t, err, "purge all")
	if n != 5 {
		t.Fatalf("purging everything removed %d records, want 5", n)
	}
}

func testIdempotencyGrantDeleted(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	other := mailGrant(t, s, "app", "grant-2")
	claim(t, s, g, "a", "x", at(0), time.Time{})
	ok(t, s.FinishIdempotent(ctx, g, "a", 200, []byte("x")), "finish")
	claim(t, s, g, "b", "x", at(0), time.Time{})
	claim(t, s, other, "a", "x", at(0), time.Time{})

	ok(t, s.DeleteGrant(ctx, "app", g), "delete grant")
	// Only the other grant's record is left to purge.
	n, err := s.PurgeIdempotent(ctx, at(1))
	ok(t, err, "purge")
	if n != 1 {
		t.Fatalf("after deleting the grant %d records were left, want 1 (the other grant's)", n)
	}
	// A grant created again under the same id starts with free keys.
	mailGrant(t, s, "app", "grant-1")
	claim(t, s, g, "a", "y", time.Time{}, time.Time{})
}

func testIdempotencyFinishUnclaimed(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	isErr(t, s.FinishIdempotent(ctx, g, "never-claimed", 200, []byte("x")), store.ErrNotFound, "finish an unknown key")
	isErr(t, s.FinishIdempotent(ctx, "no-such-grant", "k", 200, []byte("x")), store.ErrNotFound, "finish for an unknown grant")
	// A finish with no status would leave the record looking in progress.
	claim(t, s, g, "k", "x", time.Time{}, time.Time{})
	if err := s.FinishIdempotent(ctx, g, "k", 0, []byte("x")); err == nil {
		t.Fatal("finish with status 0 succeeded")
	}
	if got := taken(t, s, g, "k", "x", time.Time{}); got.Status != 0 || got.Response != nil {
		t.Fatalf("record after a refused finish: %+v", got)
	}
}

// Many requests with one key race: exactly one runs, the others see its
// claim.
func testIdempotencyConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	// A stale record makes the race a replace rather than an insert for
	// the first round; the second round races on a free key.
	claim(t, s, g, "stale", "old", at(0), time.Time{})
	for _, key := range []string{"stale", "fresh"} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, lost := 0, 0
		start := make(chan struct{})
		for i := 0; i < 12; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := &store.IdempotentRequest{GrantID: g, Key: key, RequestHash: reqHash("body")}
				got, err := s.BeginIdempotent(ctx, r, time.Now().Add(-time.Hour))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("begin %s: %v", key, err)
				case got == nil:
					won++
				case got.Status != 0 || !bytes.Equal(got.RequestHash, reqHash("body")):
					t.Errorf("begin %s lost to an unexpected record: %+v", key, got)
				default:
					lost++
				}
			}()
		}
		close(start)
		wg.Wait()
		if won != 1 || lost != 11 {
			t.Fatalf("key %s: %d concurrent begins won and %d saw the claim, want 1 and 11", key, won, lost)
		}
	}
}
