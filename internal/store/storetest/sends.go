package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

var sendTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"SendLimitsAtTheEdge", testSendLimits},
	{"SendRelease", testSendRelease},
	{"SendConcurrentLastUnit", testSendConcurrent},
}

const day = 24 * time.Hour

func testSendLimits(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	other := mailGrant(t, s, "app", "grant-2")
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	// Nine messages of 10 recipients, one minute apart: messages limit 10,
	// recipients limit 100.
	for i := 0; i < 9; i++ {
		r, err := s.ReserveSend(ctx, g, fmt.Sprint("m", i), t0.Add(time.Duration(i)*time.Minute), 10, day, 10, 100)
		ok2(t, r, err, fmt.Sprint("send ", i))
	}
	at := t0.Add(time.Hour)
	// The 10th message fits exactly (10 messages, 100 recipients)...
	r, err := s.ReserveSend(ctx, g, "m9", at, 10, day, 10, 100)
	ok2(t, r, err, "10th send")
	// ...the 11th does not, until the first leaves the window.
	r, err = s.ReserveSend(ctx, g, "m10", at, 1, day, 10, 100)
	if err != nil || r.Exceeded != "messages" || !r.RetryAt.Equal(t0.Add(day)) {
		t.Fatalf("11th send: %+v %v, want refused (messages) until %v", r, err, t0.Add(day))
	}
	r, err = s.ReserveSend(ctx, g, "m10", t0.Add(day+time.Second), 1, day, 10, 100)
	ok2(t, r, err, "after the first left the window")
	// Recipients: 91 in the window (m1..m9, m10); 25 more needs m1 and m2
	// to leave.
	r, err = s.ReserveSend(ctx, g, "big", t0.Add(day+time.Second), 25, day, 0, 100)
	if err != nil || r.Exceeded != "recipients" || !r.RetryAt.Equal(t0.Add(2*time.Minute).Add(day)) {
		t.Fatalf("25 recipients: %+v %v", r, err)
	}
	// A send that alone exceeds the limit waits a whole window.
	r, _ = s.ReserveSend(ctx, g, "huge", at, 101, day, 0, 100)
	if !r.RetryAt.Equal(at.Add(day)) {
		t.Fatalf("a send over the limit by itself: %+v", r)
	}
	// Other grants are counted apart; 0 means no limit.
	r, err = s.ReserveSend(ctx, other, "o1", at, 1000, day, 1, 0)
	ok2(t, r, err, "another grant")
	// Migrate again and the counts are still there (durable).
	ok2(t, store.SendRefusal{}, s.Migrate(ctx), "migrate")
	if r, _ = s.ReserveSend(ctx, other, "o2", at, 1, day, 1, 0); r.Exceeded == "" {
		t.Fatal("the other grant's second send fit a limit of one")
	}
}

func testSendRelease(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	r, err := s.ReserveSend(ctx, g, "a", at, 1, day, 1, 0)
	ok2(t, r, err, "first")
	if r, _ := s.ReserveSend(ctx, g, "b", at, 1, day, 1, 0); r.Exceeded == "" {
		t.Fatal("second send fit a limit of one")
	}
	ok2(t, store.SendRefusal{}, s.ReleaseSend(ctx, g, "a"), "release")
	r, err = s.ReserveSend(ctx, g, "b", at, 1, day, 1, 0)
	ok2(t, r, err, "after release")
}

// Many sends race for the last free units: exactly that many win.
func testSendConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 7; i++ {
		r, err := s.ReserveSend(ctx, g, fmt.Sprint("pre", i), at, 1, day, 10, 0)
		ok2(t, r, err, "prefill")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.ReserveSend(ctx, g, fmt.Sprint("race", i), at, 1, day, 10, 0)
			if err != nil {
				t.Error(err)
			}
			if err == nil && r.Exceeded == "" {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 3 {
		t.Fatalf("%d concurrent sends won the last 3 units", won)
	}
}

// ok2 fails unless the send was recorded without error.
func ok2(t *testing.T, r store.SendRefusal, err error, what string) {
	t.Helper()
	if err != nil || r.Exceeded != "" {
		t.Fatalf("%s: refusal %+v, err %v", what, r, err)
	}
}
