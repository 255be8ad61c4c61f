package storetest

import (
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

var webhookTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"WebhookCRUD", testWebhookCRUD},
	{"WebhookTenantIsolation", testWebhookTenantIsolation},
	{"DispatchableWebhooks", testDispatchableWebhooks},
	{"EnqueueDeliveriesCompareAndSet", testEnqueueDeliveries},
	{"ClaimDeliveries", testClaimDeliveries},
	{"ClaimBlockedByRetry", testClaimBlockedByRetry},
	{"ClaimReplayWaitsForInFlight", testClaimBlockedByRetryOfOlder},
	{"FinishAttempt", testFinishAttempt},
	{"RecentDeliveries", testRecentDeliveries},
	{"RetryDelivery", testRetryDelivery},
	{"WebhookOutcomes", testWebhookOutcomes},
	{"PurgeDeliveries", testPurgeDeliveries},
	{"WebhookDeleteCascades", testWebhookDeleteCascades},
	{"ConcurrentClaims", testConcurrentClaims},
}

// --- helpers ---------------------------------------------------------------

func newWebhook(t *testing.T, s store.Store, appID, id, status string, created time.Time) *store.Webhook {
	t.Helper()
	if _, err := s.GetApplication(t.Context(), appID); err != nil {
		newApp(t, s, appID)
	}
	w := &store.Webhook{
		ID:                 id,
		ApplicationID:      appID,
		URL:                "https://hooks.example/" + id,
		Description:        "hook " + id,
		TriggerTypes:       []string{"message.created", "message.updated"},
		Status:             status,
		NotificationEmails: []string{"ops@example.com"},
		Secret:             []byte{0x00, 0xff, 's', 'e', 'c'},
		CreatedAt:          created,
	}
	ok(t, s.CreateWebhook(t.Context(), w), "create webhook "+id)
	return w
}

func dlv(w *store.Webhook, id string, due time.Time) store.Delivery {
	return store.Delivery{
		ID:            id,
		WebhookID:     w.ID,
		ApplicationID: w.ApplicationID,
		GrantID:       "grant-1",
		Type:          "message.created",
		Payload:       []byte(`{"specversion":"1.0","id":"` + id + `"}`),
		NextAttemptAt: due,
	}
}

// enqueue enqueues ds as the deliveries of one more change row.
func enqueue(t *testing.T, s store.Store, ds ...store.Delivery) []store.Delivery {
	t.Helper()
	cur, err := s.DispatchCursor(t.Context())
	ok(t, err, "cursor")
	ok(t, s.EnqueueDeliveries(t.Context(), cur, cur+1, ds), "enqueue")
	return ds
}

func claimIDs(t *testing.T, s store.Store, now time.Time, n int, lease time.Duration) []string {
	t.Helper()
	ds, err := s.ClaimDeliveries(t.Context(), now, n, lease)
	ok(t, err, "claim")
	return deliveryIDs(ds)
}

func deliveryIDs(ds []store.Delivery) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return ids
}

func getDelivery(t *testing.T, s store.Store, appID, id string) *store.Delivery {
	t.Helper()
	d, err := s.GetDelivery(t.Context(), appID, id)
	ok(t, err, "get delivery "+id)
	return d
}

func finish(t *testing.T, s store.Store, id string, n int, at time.Time, status int, state string, next time.Time) {
	t.Helper()
	a := store.DeliveryAttempt{N: n, At: at, Status: status, Latency: 150 * time.Millisecond}
	if status == 0 {
		a.Error = "connection refused"
	}
	ok(t, s.FinishAttempt(t.Context(), id, a, state, next), fmt.Sprintf("finish %s attempt %d", id, n))
}

// --- tests -----------------------------------------------------------------

func testWebhookCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "app-a")

	w := &store.Webhook{
		ID:                 "wh-1",
		ApplicationID:      "app-a",
		URL:                "https://a.example/hook",
		Description:        "Production",
		TriggerTypes:       []string{"message.created", "grant.deleted"},
		Status:             store.WebhookPaused,
		NotificationEmails: []string{"jane@example.com", "ops@example.com"},
		Secret:             []byte{0x00, 0x01, 0xfe, 0xff},
		CompressedDelivery: true,
		StatusUpdatedAt:    at(1),
		CreatedAt:          at(0),
		UpdatedAt:          at(2),
	}
	ok(t, s.CreateWebhook(ctx, w), "create")
	if !w.CreatedAt.Equal(normalized(at(0))) || w.CreatedAt.Location() != time.UTC {
		t.Fatalf("written-back CreatedAt %v, want %v in UTC to the microsecond", w.CreatedAt, normalized(at(0)))
	}
	got, err := s.GetWebhook(ctx, "app-a", "wh-1")
	ok(t, err, "get")
	same(t, got, w, "round trip")

	// Defaults: id, status, times; lists come back empty, not nil.
	before := time.Now().Add(-time.Second)
	bare := &store.Webhook{ApplicationID: "app-a", URL: "https://a.example/bare"}
	ok(t, s.CreateWebhook(ctx, bare), "create bare")
	if bare.ID == "" || bare.Status != store.WebhookActive || bare.CreatedAt.Before(before) ||
		!bare.UpdatedAt.Equal(bare.CreatedAt) || !bare.StatusUpdatedAt.Equal(bare.CreatedAt) {
		t.Fatalf("bare webhook not filled: %+v", bare)
	}
	got, err = s.GetWebhook(ctx, "app-a", bare.ID)
	ok(t, err, "get bare")
	if got.TriggerTypes == nil || len(got.TriggerTypes) != 0 || got.NotificationEmails == nil || len(got.NotificationEmails) != 0 ||
		got.Secret != nil || got.CompressedDelivery || got.Status != store.WebhookActive || !got.CreatedAt.Equal(bare.CreatedAt) {
		t.Fatalf("bare webhook read back as %+v", got)
	}

	isErr(t, s.CreateWebhook(ctx, &store.Webhook{ID: "wh-1", ApplicationID: "app-a"}), store.ErrConflict, "duplicate id")
	isErr(t, s.CreateWebhook(ctx, &store.Webhook{ID: "wh-x", ApplicationID: "no-such-app"}), store.ErrNotFound, "missing application")
	if err := s.CreateWebhook(ctx, &store.Webhook{ID: "wh-y", ApplicationID: "app-a", Status: "paused"}); err == nil {
		t.Fatal("created a webhook with status \"paused\" (Nylas spells it \"pause\")")
	}
	_, err = s.GetWebhook(ctx, "app-a", "wh-y")
	isErr(t, err, store.ErrNotFound, "the refused webhook")

	// Listing: by CreatedAt then id, whatever the insertion order.
	w0 := &store.Webhook{ID: "wh-0", ApplicationID: "app-a", CreatedAt: at(0)} // same time as wh-1, smaller id
	ok(t, s.CreateWebhook(ctx, w0), "create wh-0")
	early := &store.Webhook{ID: "wh-z", ApplicationID: "app-a", CreatedAt: at(-5)}
	ok(t, s.CreateWebhook(ctx, early), "create early")
	list, err := s.ListWebhooks(ctx, "app-a")
	ok(t, err, "list")
	same(t, webhookIDs(list), []string{"wh-z", "wh-0", "wh-1", bare.ID}, "list order")
	same(t, list[2], *w, "listed webhook")

	// Update with the same status: StatusUpdatedAt stays.
	w.URL, w.Description = "https://a.example/v2", "Staging"
	w.TriggerTypes, w.NotificationEmails = []string{"event.created"}, nil
	w.Secret, w.CompressedDelivery = []byte("rotated"), false
	ok(t, s.UpdateWebhook(ctx, w), "update")
	if w.UpdatedAt.Before(before) || !w.StatusUpdatedAt.Equal(normalized(at(1))) || !w.CreatedAt.Equal(normalized(at(0))) {
		t.Fatalf("after an update keeping the status: updated %v, status updated %v", w.UpdatedAt, w.StatusUpdatedAt)
	}
	got, err = s.GetWebhook(ctx, "app-a", "wh-1")
	ok(t, err, "get updated")
	w.NotificationEmails = []string{}
	same(t, got, w, "after update")

	// A status change moves StatusUpdatedAt.
	w.Status = store.WebhookActive
	ok(t, s.UpdateWebhook(ctx, w), "activate")
	if w.StatusUpdatedAt.Before(before) || !w.StatusUpdatedAt.Equal(w.UpdatedAt) {
		t.Fatalf("status change: status updated %v, updated %v", w.StatusUpdatedAt, w.UpdatedAt)
	}
	got, err = s.GetWebhook(ctx, "app-a", "wh-1")
	ok(t, err, "get activated")
	same(t, got, w, "after status change")

	w.Status = "disabled"
	if err := s.UpdateWebhook(ctx, w); err == nil {
		t.Fatal("updated to an unknown status")
	}
	isErr(t, s.UpdateWebhook(ctx, &store.Webhook{ID: "nope", ApplicationID: "app-a", Status: store.WebhookActive}), store.ErrNotFound, "update missing")

	ok(t, s.DeleteWebhook(ctx, "app-a", "wh-1"), "delete")
	_, err = s.GetWebhook(ctx, "app-a", "wh-1")
	isErr(t, err, store.ErrNotFound, "get deleted")
	isErr(t, s.DeleteWebhook(ctx, "app-a", "wh-1"), store.ErrNotFound, "delete twice")
	list, err = s.ListWebhooks(ctx, "app-a")
	ok(t, err, "list after delete")
	same(t, webhookIDs(list), []string{"wh-z", "wh-0", bare.ID}, "list after delete")
	list, err = s.ListWebhooks(ctx, "no-such-app")
	ok(t, err, "list of an unknown application")
	if list == nil || len(list) != 0 {
		t.Fatalf("unknown application lists %#v", list)
	}
}

func webhookIDs(ws []store.Webhook) []string {
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.ID
	}
	return ids
}

func testWebhookTenantIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newWebhook(t, s, "app-a", "wh-a", store.WebhookActive, at(0))
	newWebhook(t, s, "app-b", "wh-b", store.WebhookActive, at(1))
	enqueue(t, s, dlv(a, "d-a", at(0)))

	_, err := s.GetWebhook(ctx, "app-b", "wh-a")
	isErr(t, err, store.ErrNotFound, "B gets A's webhook")
	list, err := s.ListWebhooks(ctx, "app-b")
	ok(t, err, "list B")
	same(t, webhookIDs(list), []string{"wh-b"}, "B's list")
	hijack := *a
	hijack.ApplicationID, hijack.URL = "app-b", "https://evil.example"
	isErr(t, s.UpdateWebhook(ctx, &hijack), store.ErrNotFound, "B updates A's webhook")
	isErr(t, s.DeleteWebhook(ctx, "app-b", "wh-a"), store.ErrNotFound, "B deletes A's webhook")
	got, err := s.GetWebhook(ctx, "app-a", "wh-a")
	ok(t, err, "A's webhook")
	same(t, got, a, "A's webhook after B's attempts")

	_, err = s.GetDelivery(ctx, "app-b", "d-a")
	isErr(t, err, store.ErrNotFound, "B gets A's delivery")
	isErr(t, s.RetryDelivery(ctx, "app-b", "d-a", at(0)), store.ErrNotFound, "B retries A's delivery")
	recent, err := s.RecentDeliveries(ctx, "app-b", "wh-a", 0)
	ok(t, err, "B lists A's deliveries")
	if recent == nil || len(recent) != 0 {
		t.Fatalf("B sees A's deliveries: %+v", recent)
	}
	if d := getDelivery(t, s, "app-a", "d-a"); d.State != store.DeliveryPending || d.Attempts != 0 {
		t.Fatalf("A's delivery after B's attempts: %+v", d)
	}

	// A delivery filed under another application than its webhook's is
	// not stored.
	enqueue(t, s, store.Delivery{ID: "d-mixed", WebhookID: "wh-a", ApplicationID: "app-b", Type: "message.created"})
	_, err = s.GetDelivery(ctx, "app-b", "d-mixed")
	isErr(t, err, store.ErrNotFound, "mismatched delivery, as B")
	_, err = s.GetDelivery(ctx, "app-a", "d-mixed")
	isErr(t, err, store.ErrNotFound, "mismatched delivery, as A")
}

func testDispatchableWebhooks(t *testing.T, s store.Store) {
	ctx := t.Context()
	ws, err := s.DispatchableWebhooks(ctx)
	ok(t, err, "dispatchable of an empty store")
	if ws == nil || len(ws) != 0 {
		t.Fatalf("empty store: %#v", ws)
	}
	newWebhook(t, s, "app-a", "a-active", store.WebhookActive, at(3))
	newWebhook(t, s, "app-a", "a-pause", store.WebhookPaused, at(0))
	failing := newWebhook(t, s, "app-b", "b-failing", store.WebhookFailing, at(1))
	newWebhook(t, s, "app-b", "b-failed", store.WebhookFailed, at(2))
	newWebhook(t, s, "app-b", "b-active", store.WebhookActive, at(4))

	ws, err = s.DispatchableWebhooks(ctx)
	ok(t, err, "dispatchable")
	same(t, webhookIDs(ws), []string{"b-failing", "a-active", "b-active"}, "dispatchable webhooks (both applications, by creation)")
	same(t, ws[0], *failing, "a dispatchable webhook in full")

	// Pausing and reactivating move webhooks in and out.
	failing.Status = store.WebhookPaused
	ok(t, s.UpdateWebhook(ctx, failing), "pause")
	re, err := s.GetWebhook(ctx, "app-a", "a-pause")
	ok(t, err, "get paused")
	re.Status = store.WebhookActive
	ok(t, s.UpdateWebhook(ctx, re), "resume")
	ws, err = s.DispatchableWebhooks(ctx)
	ok(t, err, "dispatchable after changes")
	same(t, webhookIDs(ws), []string{"a-pause", "a-active", "b-active"}, "dispatchable after pausing one and resuming another")
}

func testEnqueueDeliveries(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := newWebhook(t, s, "app-a", "wh-1", store.WebhookActive, at(0))
	cur, err := s.DispatchCursor(ctx)
	ok(t, err, "cursor")
	if cur != 0 {
		t.Fatalf("fresh cursor %d, want 0", cur)
	}

	before := time.Now().Add(-time.Second)
	ds := []store.Delivery{
		{WebhookID: w.ID, ApplicationID: w.ApplicationID, GrantID: "g", Type: "message.created", Payload: []byte(`{"n":1}`),
			// Stale fields of the caller's are not stored.
			State: store.DeliveryDelivered, Attempts: 7, ClaimedUntil: at(99), LastStatus: 500, LastError: "x", FinishedAt: at(98)},
		{ID: "d-2", WebhookID: w.ID, ApplicationID: w.ApplicationID, Type: "grant.deleted", Payload: []byte{0x00, 0xff},
			CreatedAt: at(0), NextAttemptAt: at(5)},
	}
	ok(t, s.EnqueueDeliveries(ctx, 0, 5, ds), "enqueue")
	d1 := ds[0]
	if d1.ID == "" || d1.State != store.DeliveryPending || d1.Attempts != 0 || !d1.ClaimedUntil.IsZero() ||
		d1.LastStatus != 0 || d1.LastError != "" || !d1.FinishedAt.IsZero() || d1.CreatedAt.Before(before) ||
		!d1.NextAttemptAt.Equal(d1.CreatedAt) || d1.CreatedAt.Location() != time.UTC {
		t.Fatalf("written-back delivery: %+v", d1)
	}
	if ds[1].ID != "d-2" || ds[1].CreatedAt != normalized(at(0)) || ds[1].NextAttemptAt != normalized(at(5)) {
		t.Fatalf("written-back delivery with its own id and times: %+v", ds[1])
	}
	for _, want := range ds {
		got := getDelivery(t, s, "app-a", want.ID)
		want.AttemptLog = []store.DeliveryAttempt{}
		same(t, got, &want, "stored delivery "+want.ID)
	}
	cur, err = s.DispatchCursor(ctx)
	ok(t, err, "cursor")
	if cur != 5 {
		t.Fatalf("cursor %d after enqueueing up to 5", cur)
	}

	// A second node enqueueing from the old cursor loses: nothing written.
	err = s.EnqueueDeliveries(ctx, 0, 7, []store.Delivery{dlv(w, "d-late", at(0))})
	isErr(t, err, store.ErrConflict, "enqueue from the old cursor")
	_, err = s.GetDelivery(ctx, "app-a", "d-late")
	isErr(t, err, store.ErrNotFound, "the losing node's delivery")
	if cur, _ = s.DispatchCursor(ctx); cur != 5 {
		t.Fatalf("cursor moved to %d by a losing enqueue", cur)
	}
	// So does one from a cursor that was never reached.
	isErr(t, s.EnqueueDeliveries(ctx, 6, 7, nil), store.ErrConflict, "enqueue from a future cursor")

	// An empty batch just moves the cursor; moving it back is refused.
	ok(t, s.EnqueueDeliveries(ctx, 5, 9, nil), "empty batch")
	if err := s.EnqueueDeliveries(ctx, 9, 8, nil); err == nil {
		t.Fatal("moved the cursor back")
	}

	// A reused id fails the whole batch, cursor included.
	err = s.EnqueueDeliveries(ctx, 9, 10, []store.Delivery{dlv(w, "d-new", at(0)), dlv(w, "d-2", at(0))})
	isErr(t, err, store.ErrConflict, "reused delivery id")
	_, err = s.GetDelivery(ctx, "app-a", "d-new")
	isErr(t, err, store.ErrNotFound, "the first delivery of the failed batch")
	if cur, _ = s.DispatchCursor(ctx); cur != 9 {
		t.Fatalf("cursor at %d after a failed batch, want 9", cur)
	}

	// Deliveries of a webhook deleted since it was listed are skipped;
	// the rest of the batch goes in.
	gone := newWebhook(t, s, "app-a", "wh-gone", store.WebhookActive, at(1))
	ok(t, s.DeleteWebhook(ctx, "app-a", gone.ID), "delete webhook")
	ok(t, s.EnqueueDeliveries(ctx, 9, 12, []store.Delivery{dlv(gone, "d-gone", at(0)), dlv(w, "d-kept", at(0))}), "enqueue with a deleted webhook")
	_, err = s.GetDelivery(ctx, "app-a", "d-gone")
	isErr(t, err, store.ErrNotFound, "delivery of a deleted webhook")
	getDelivery(t, s, "app-a", "d-kept")
	if cur, _ = s.DispatchCursor(ctx); cur != 12 {
		t.Fatalf("cursor at %d, want 12", cur)
	}

	// Durable across migrations.
	ok(t, s.Migrate(ctx), "migrate")
	if cur, _ = s.DispatchCursor(ctx); cur != 12 {
		t.Fatalf("cursor at %d after migrating again, want 12", cur)
	}
}

func testClaimDeliveries(t *testing.T, s store.Store) {
	ctx := t.Context()
	T := at(0)
	w1 := newWebhook(t, s, "app-a", "wh-1", store.WebhookActive, at(0))
	w2 := newWebhook(t, s, "app-a", "wh-2", store.WebhookFailing, at(1))
	w3 := newWebhook(t, s, "app-b", "wh-3", store.WebhookActive, at(2))
	paused := newWebhook(t, s, "app-a", "wh-paused", store.WebhookPaused, at(3))
	failed := newWebhook(t, s, "app-a", "wh-failed", store.WebhookFailed, at(4))

	enqueue(t, s, dlv(w1, "w1-a", T), dlv(w2, "w2-later", T.Add(10*time.Minute)), dlv(paused, "p-a", T))
	enqueue(t, s, dlv(w2, "w2-due", T), dlv(w3, "w3-a", T), dlv(failed, "f-a", T), dlv(w1, "w1-b", T))
	enqueue(t, s, dlv(w3, "w3-future", T.Add(time.Hour)), dlv(w1, "w1-c", T))

	if ids := claimIDs(t, s, T, 0, time.Minute); len(ids) != 0 {
		t.Fatalf("claiming 0 took %v", ids)
	}
	if _, err := s.ClaimDeliveries(ctx, T, 1, 0); err == nil {
		t.Fatal("claimed with no lease")
	}
	// Before anything is due: nothing.
	same(t, claimIDs(t, s, T.Add(-time.Second), 10, time.Minute), []string{}, "claim before anything is due")

	// n=1: the oldest due delivery.
	claimed, err := s.ClaimDeliveries(ctx, T, 1, time.Minute)
	ok(t, err, "claim 1")
	same(t, deliveryIDs(claimed), []string{"w1-a"}, "claim one")
	if c := claimed[0]; c.Attempts != 1 || c.ClaimedUntil != normalized(T.Add(time.Minute)) || c.State != store.DeliveryPending ||
		c.WebhookID != "wh-1" || c.ApplicationID != "app-a" || c.GrantID != "grant-1" || c.Type != "message.created" ||
		string(c.Payload) != `{"specversion":"1.0","id":"w1-a"}` || c.NextAttemptAt != normalized(T) || c.AttemptLog != nil {
		t.Fatalf("claimed delivery: %+v", c)
	}
	// The attempt is saved before the POST: another reader sees it.
	if d := getDelivery(t, s, "app-a", "w1-a"); d.Attempts != 1 || d.ClaimedUntil != normalized(T.Add(time.Minute)) {
		t.Fatalf("stored claim: %+v", d)
	}

	// One per webhook: wh-1 has one in flight, wh-2's head (w2-later) is
	// not due so w2-due waits behind it, paused and failed webhooks get
	// nothing, wh-3 gives its head only.
	same(t, claimIDs(t, s, T, 10, time.Minute), []string{"w3-a"}, "second claim")
	same(t, claimIDs(t, s, T.Add(30*time.Second), 10, time.Minute), []string{}, "claim while everything is in flight or blocked")

	// wh-3's next one is not due; w1-a finishes delivered, so wh-1's next
	// is claimable.
	finish(t, s, "w3-a", 1, T.Add(time.Second), 200, store.DeliveryDelivered, time.Time{})
	finish(t, s, "w1-a", 1, T.Add(time.Second), 204, store.DeliveryDelivered, time.Time{})
	same(t, claimIDs(t, s, T.Add(2*time.Second), 10, time.Minute), []string{"w1-b"}, "after finishing")

	// The claim of w1-b lapses (its node died): it is due again, the
	// attempt counted twice; w1-c still waits.
	same(t, claimIDs(t, s, T.Add(61*time.Second), 10, time.Minute), []string{}, "claim just before the lease ends")
	claimed, err = s.ClaimDeliveries(ctx, T.Add(62*time.Second), 10, 20*time.Minute)
	ok(t, err, "claim after the lease")
	same(t, deliveryIDs(claimed), []string{"w1-b"}, "lapsed claim taken again")
	if claimed[0].Attempts != 2 || claimed[0].ClaimedUntil != normalized(T.Add(62*time.Second+20*time.Minute)) {
		t.Fatalf("reclaimed delivery: %+v", claimed[0])
	}

	// When wh-2's head becomes due, both of wh-2's are delivered in order.
	T10 := T.Add(10 * time.Minute)
	same(t, claimIDs(t, s, T10, 10, time.Minute), []string{"w2-later"}, "wh-2's head once due")
	finish(t, s, "w2-later", 1, T10, 200, store.DeliveryDelivered, time.Time{})
	same(t, claimIDs(t, s, T10, 10, time.Minute), []string{"w2-due"}, "wh-2's second")

	// Reactivating a paused webhook releases its deliveries.
	paused.Status = store.WebhookActive
	ok(t, s.UpdateWebhook(ctx, paused), "resume")
	same(t, claimIDs(t, s, T10, 10, time.Minute), []string{"p-a"}, "resumed webhook")
	if d := getDelivery(t, s, "app-a", "f-a"); d.Attempts != 0 {
		t.Fatalf("a failed webhook's delivery was claimed: %+v", d)
	}
}

// A delivery waiting for its retry holds back the newer ones of its webhook
// (their order is kept), but not other webhooks'.
func testClaimBlockedByRetry(t *testing.T, s store.Store) {
	T := at(0)
	w1 := newWebhook(t, s, "app-a", "wh-1", store.WebhookActive, at(0))
	w2 := newWebhook(t, s, "app-a", "wh-2", store.WebhookActive, at(1))
	enqueue(t, s, dlv(w1, "first", T), dlv(w1, "second", T), dlv(w2, "other", T))

	same(t, claimIDs(t, s, T, 10, time.Minute), []string{"first", "other"}, "claim")
	finish(t, s, "first", 1, T, 503, store.DeliveryPending, T.Add(5*time.Minute))
	finish(t, s, "other", 1, T, 200, store.DeliveryDelivered, time.Time{})
	enqueue(t, s, dlv(w2, "other-2", T))
	same(t, claimIDs(t, s, T.Add(time.Minute), 10, time.Minute), []string{"other-2"}, "while wh-1's first waits for its retry")
	finish(t, s, "other-2", 1, T.Add(time.Minute), 200, store.DeliveryDelivered, time.Time{})
	same(t, claimIDs(t, s, T.Add(5*time.Minute), 10, time.Minute), []string{"first"}, "the retry")
	finish(t, s, "first", 2, T.Add(5*time.Minute), 200, store.DeliveryDelivered, time.Time{})
	same(t, claimIDs(t, s, T.Add(5*time.Minute), 10, time.Minute), []string{"second"}, "then the next")
}

func testFinishAttempt(t *testing.T, s store.Store) {
	ctx := t.Context()
	T := at(0)
	w := newWebhook(t, s, "app-a", "wh-1", store.WebhookActive, at(0))
	enqueue(t, s, dlv(w, "d-1", T), dlv(w, "d-2", T))

	isErr(t, s.FinishAttempt(ctx, "nope", store.DeliveryAttempt{N: 1}, store.DeliveryDelivered, time.Time{}), store.ErrNotFound, "unknown delivery")
	if err := s.FinishAttempt(ctx, "d-1", store.DeliveryAttempt{N: 1, Status: 200}, store.DeliveryDelivered, time.Time{}); err == nil {
		t.Fatal("finished an attempt that was never claimed")
	}
	same(t, claimIDs(t, s, T, 10, time.Minute), []string{"d-1"}, "claim")
	if err := s.FinishAttempt(ctx, "d-1", store.DeliveryAttempt{N: 1, Status: 200}, "done", time.Time{}); err == nil {
		t.Fatal("finished with an unknown state")
	}

	// A temporary failure: the log gets the attempt; the delivery waits.
	a1 := store.DeliveryAttempt{N: 1, At: at(1), Status: 503, Latency: 1234567 * time.Nanosecond, Error: ""}
	ok(t, s.FinishAttempt(ctx, "d-1", a1, store.DeliveryPending, at(3)), "finish 1")
	a1.At = normalized(at(1))
	d := getDelivery(t, s, "app-a", "d-1")
	if d.State != store.DeliveryPending || d.Attempts != 1 || !d.ClaimedUntil.IsZero() || d.NextAttemptAt != normalized(at(3)) ||
		d.LastStatus != 503 || d.LastError != "" || !d.FinishedAt.IsZero() {
		t.Fatalf("after a temporary failure: %+v", d)
	}
	same(t, d.AttemptLog, []store.DeliveryAttempt{a1}, "attempt log")
	isErr(t, s.FinishAttempt(ctx, "d-1", a1, store.DeliveryPending, at(3)), store.ErrConflict, "finishing attempt 1 twice")

	// Second attempt with no response; its claim lapses, a third claim
	// takes over, and the late outcome of the second is logged without
	// touching the third's claim.
	same(t, claimIDs(t, s, at(3), 10, time.Minute), []string{"d-1"}, "claim 2")
	same(t, claimIDs(t, s, at(5), 10, time.Minute), []string{"d-1"}, "claim 3 after claim 2 lapsed")
	a2 := store.DeliveryAttempt{N: 2, At: at(3), Latency: 10 * time.Second, Error: "timeout"}
	ok(t, s.FinishAttempt(ctx, "d-1", a2, store.DeliveryFailed, time.Time{}), "late finish of attempt 2")
	a2.At = normalized(at(3))
	d = getDelivery(t, s, "app-a", "d-1")
	if d.State != store.DeliveryPending || d.Attempts != 3 || d.ClaimedUntil != normalized(at(6)) || d.LastStatus != 503 || !d.FinishedAt.IsZero() {
		t.Fatalf("a superseded attempt changed the delivery: %+v", d)
	}
	same(t, d.AttemptLog, []store.DeliveryAttempt{a1, a2}, "attempt log with the late attempt")
	same(t, claimIDs(t, s, at(5), 10, time.Minute), []string{}, "claim while attempt 3 is in flight")

	// N 0 means the latest attempt; a zero At is now.
	before := time.Now().Add(-time.Second)
	ok(t, s.FinishAttempt(ctx, "d-1", store.DeliveryAttempt{Status: 200, Latency: time.Millisecond}, store.DeliveryDelivered, time.Time{}), "finish 3")
	d = getDelivery(t, s, "app-a", "d-1")
	if d.State != store.DeliveryDelivered || d.Attempts != 3 || !d.ClaimedUntil.IsZero() || d.LastStatus != 200 || d.LastError != "" ||
		len(d.AttemptLog) != 3 || d.AttemptLog[2].N != 3 || d.AttemptLog[2].At.Before(before) || d.AttemptLog[2].At.Location() != time.UTC ||
		!d.FinishedAt.Equal(d.AttemptLog[2].At) || !d.NextAttemptAt.IsZero() {
		t.Fatalf("delivered: %+v", d)
	}
	if err := s.FinishAttempt(ctx, "d-1", store.DeliveryAttempt{N: 4, Status: 200}, store.DeliveryDelivered, time.Time{}); err == nil {
		t.Fatal("finished attempt 4 of 3")
	}

	// A permanent failure records an error and FinishedAt.
	same(t, claimIDs(t, s, at(5), 10, time.Minute), []string{"d-2"}, "claim d-2")
	ok(t, s.FinishAttempt(ctx, "d-2", store.DeliveryAttempt{N: 1, At: at(7), Status: 410, Error: "gone"}, store.DeliveryFailed, time.Time{}), "fail d-2")
	d = getDelivery(t, s, "app-a", "d-2")
	if d.State != store.DeliveryFailed || d.LastStatus != 410 || d.LastError != "gone" || d.FinishedAt != normalized(at(7)) || !d.ClaimedUntil.IsZero() {
		t.Fatalf("failed: %+v", d)
	}
	same(t, claimIDs(t, s, at(60), 10, time.Minute), []string{}, "nothing left")
}

func testRecentDeliveries(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := newWebhook(t, s, "app-a", "wh-1", store.WebhookActive, at(0))
	other := newWebhook(t, s, "app-a", "wh-2", store.WebhookActive, at(1))
	// Equal creation times: the order is the order of enqueueing.
	for i := range 53 {
		d := dlv(w, fmt.Sprintf("d-%02d", i), at(0))
		d.CreatedAt = at(0)
		enqueue(t, s, d)
	}
	enqueue(t, s, dlv(other, "o-1", at(0)))

	// d-00 gets three attempts, d-01 one.
	same(t, claimIDs(t, s, at(0), 10, time.Minute), []string{"d-00", "o-1"}, "claim")
	finish(t, s, "d-00", 1, at(1), 0, store.DeliveryPending, at(2))
	claimIDs(t, s, at(2), 1, time.Minute)
	finish(t, s, "d-00", 2, at(2), 502, store.DeliveryPending, at(3))
	claimIDs(t, s, at(3), 1, time.Minute)
	finish(t, s, "d-00", 3, at(3), 200, store.DeliveryDelivered, time.Time{})
	same(t, claimIDs(t, s, at(3), 1, time.Minute), []string{"d-01"}, "claim d-01")
	finish(t, s, "d-01", 1, at(4), 200, store.DeliveryDelivered, time.Time{})

	all, err := s.RecentDeliveries(ctx, "app-a", "wh-1", 0)
	ok(t, err, "recent")
	if len(all) != 50 {
		t.Fatalf("limit 0 returned %d deliveries, want 50", len(all))
	}
	for i, d := range all {
		if want := fmt.Sprintf("d-%02d", 52-i); d.ID != want || d.WebhookID != "wh-1" {
			t.Fatalf("recent[%d] = %s of %s, want %s (newest first)", i, d.ID, d.WebhookID, want)
		}
		if d.AttemptLog == nil || len(d.AttemptLog) != 0 {
			t.Fatalf("recent[%d]: attempt log %#v, want empty", i, d.AttemptLog)
		}
	}
	recent, err := s.RecentDeliveries(ctx, "app-a", "wh-1", 60)
	ok(t, err, "recent 60")
	if len(recent) != 53 {
		t.Fatalf("limit 60 returned %d deliveries, want 53", len(recent))
	}
	d0, d1 := recent[52], recent[51]
	if d0.ID != "d-00" || d1.ID != "d-01" {
		t.Fatalf("oldest two: %s %s", d0.ID, d1.ID)
	}
	var ns []int
	var statuses []int
	for _, a := range d0.AttemptLog {
		ns, statuses = append(ns, a.N), append(statuses, a.Status)
	}
	same(t, ns, []int{1, 2, 3}, "d-00's attempts, oldest first")
	same(t, statuses, []int{0, 502, 200}, "d-00's attempt statuses")
	if a := d0.AttemptLog[0]; a.Error != "connection refused" || a.At != normalized(at(1)) || a.Latency != 150*time.Millisecond {
		t.Fatalf("d-00's first attempt: %+v", a)
	}
	same(t, d1.AttemptLog, []store.DeliveryAttempt{{N: 1, At: normalized(at(4)), Status: 200, Latency: 150 * time.Millisecond}}, "d-01's attempts")
	// The same delivery through GetDelivery.
	same(t, getDelivery(t, s, "app-a", "d-00"), &d0, "d-00 through GetDelivery")

	three, err := s.RecentDeliveries(ctx, "app-a", "wh-1", 3)
	ok(t, err, "recent 3")
	same(t, deliveryIDs(three), []string{"d-52", "d-51", "d-50"}, "limit 3")
	o, err := s.RecentDeliveries(ctx, "app-a", "wh-2", 0)
	ok(t, err, "recent of wh-2")
	same(t, deliveryIDs(o), []string{"o-1"}, "the other webhook's")
}

func testRetryDelivery(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := newWebhook(t, s, "app-a", "wh-1", store.WebhookActive, at(0))
	enqueue(t, s, dlv(w, "d-1", at(0)))
	claimIDs(t, s, at(0), 1, time.Minute)
	finish(t, s, "d-1", 1, at(1), 500, store.DeliveryFailed, time.Time{})
	same(t, claimIDs(t, s, at(10), 10, time.Minute), []string{}, "a failed delivery is not claimed")

	ok(t, s.RetryDelivery(ctx, "app-a", "d-1", at(20)), "retry")
	d := getDelivery(t, s, "app-a", "d-1")
	if d.State != store.DeliveryPending || d.NextAttemptAt != normalized(at(20)) || !d.FinishedAt.IsZero() || d.Attempts != 1 || len(d.AttemptLog) != 1 {
		t.Fatalf("after retry: %+v", d)
	}
	same(t, claimIDs(t, s, at(19), 10, time.Minute), []string{}, "claim before the retry is due")
	claimed, err := s.ClaimDeliveries(ctx, at(20), 10, time.Minute)
	ok(t, err, "claim the retry")
	if len(claimed) != 1 || claimed[0].ID != "d-1" || claimed[0].Attempts != 2 {
		t.Fatalf("claimed retry: %+v", claimed)
	}
	finish(t, s, "d-1", 2, at(20), 200, store.DeliveryDelivered, time.Time{})
	// A delivered one can be replayed too.
	ok(t, s.RetryDelivery(ctx, "app-a", "d-1", at(30)), "replay a delivered one")
	same(t, claimIDs(t, s, at(30), 10, time.Minute), []string{"d-1"}, "claim the replay")
	isErr(t, s.RetryDelivery(ctx, "app-a", "nope", at(0)), store.ErrNotFound, "retry unknown")
}

// An operator replays an old delivery while a newer one of the same webhook
// is in flight: the old one, now first in line, must wait for the claim, or
// the URL would have two in flight.
func testClaimBlockedByRetryOfOlder(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := newWebhook(t, s, "app-a", "wh-1", store.WebhookActive, at(0))
	enqueue(t, s, dlv(w, "old", at(0)), dlv(w, "new", at(0)))
	claimIDs(t, s, at(0), 1, time.Minute)
	finish(t, s, "old", 1, at(0), 200, store.DeliveryDelivered, time.Time{})
	same(t, claimIDs(t, s, at(1), 10, 10*time.Minute), []string{"new"}, "claim the newer")
	ok(t, s.RetryDelivery(ctx, "app-a", "old", at(1)), "replay the older")
	same(t, claimIDs(t, s, at(2), 10, time.Minute), []string{}, "claim while the newer is in flight")
	// A retry of the delivery in flight keeps its claim.
	ok(t, s.RetryDelivery(ctx, "app-a", "new", at(2)), "retry the one in flight")
	same(t, claimIDs(t, s, at(3), 10, time.Minute), []string{}, "claim after retrying the one in flight")
	finish(t, s, "new", 1, at(3), 200, store.DeliveryDelivered, time.Time{})
	same(t, claimIDs(t, s, at(4), 10, time.Minute), []string{"old"}, "the replay once the newer is done")
}

func testWebhookOutcomes(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := newWebhook(t, s, "app-a", "wh-1", store.WebhookActive, at(0))
	other := newWebhook(t, s, "app-a", "wh-2", store.WebhookActive, at(1))
	total, failed, err := s.WebhookOutcomes(ctx, w.ID, at(-100))
	ok(t, err, "outcomes of no attempts")
	if total != 0 || failed != 0 {
		t.Fatalf("no attempts: %d/%d", failed, total)
	}
	outcomes := []struct {
		at     time.Time
		status int
		err    string
	}{
		{at(0), 200, ""},             // before since: not counted
		{at(10), 200, ""},            // at since: counted, ok
		{at(11), 204, ""},            // ok
		{at(12), 299, ""},            // ok
		{at(13), 500, ""},            // failed
		{at(14), 0, "timeout"},       // failed
		{at(15), 301, ""},            // failed: not 2xx
		{at(16), 199, ""},            // failed
		{at(17), 200, "body lost"},   // failed: an error
		{at(18), 408, "server said"}, // failed
	}
	for i, o := range outcomes {
		id := fmt.Sprintf("d-%d", i)
		enqueue(t, s, dlv(w, id, at(0)))
		same(t, claimIDs(t, s, at(0), 1, time.Minute), []string{id}, "claim "+id)
		ok(t, s.FinishAttempt(ctx, id, store.DeliveryAttempt{N: 1, At: o.at, Status: o.status, Error: o.err}, store.DeliveryDelivered, time.Time{}), "finish "+id)
	}
	enqueue(t, s, dlv(other, "o-1", at(0)))
	claimIDs(t, s, at(0), 1, time.Minute)
	finish(t, s, "o-1", 1, at(12), 500, store.DeliveryFailed, time.Time{})

	total, failed, err = s.WebhookOutcomes(ctx, w.ID, at(10))
	ok(t, err, "outcomes")
	if total != 9 || failed != 6 {
		t.Fatalf("since at(10): %d failed of %d, want 6 of 9", failed, total)
	}
	total, failed, err = s.WebhookOutcomes(ctx, w.ID, at(14))
	ok(t, err, "outcomes since 14")
	if total != 5 || failed != 5 {
		t.Fatalf("since at(14): %d failed of %d, want 5 of 5", failed, total)
	}
	total, failed, err = s.WebhookOutcomes(ctx, other.ID, at(0))
	ok(t, err, "outcomes of the other")
	if total != 1 || failed != 1 {
		t.Fatalf("other webhook: %d failed of %d, want 1 of 1", failed, total)
	}
	total, _, err = s.WebhookOutcomes(ctx, "nope", at(0))
	ok(t, err, "outcomes of an unknown webhook")
	if total != 0 {
		t.Fatalf("unknown webhook has %d attempts", total)
	}
}

func testPurgeDeliveries(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := newWebhook(t, s, "app-a", "wh-1", store.WebhookActive, at(0))
	w2 := newWebhook(t, s, "app-b", "wh-2", store.WebhookActive, at(0))
	enqueue(t, s, dlv(w, "delivered-old", at(0)), dlv(w2, "failed-old", at(0)), dlv(w2, "edge", at(0)))
	enqueue(t, s, dlv(w, "delivered-new", at(0)), dlv(w2, "pending-old", at(0)), dlv(w, "in-flight", at(0)))
	claimIDs(t, s, at(0), 10, time.Minute)
	finish(t, s, "delivered-old", 1, at(1), 200, store.DeliveryDelivered, time.Time{})
	finish(t, s, "failed-old", 1, at(2), 500, store.DeliveryFailed, time.Time{})
	claimIDs(t, s, at(0), 10, time.Minute)
	finish(t, s, "delivered-new", 1, at(20), 200, store.DeliveryDelivered, time.Time{})
	finish(t, s, "edge", 1, at(10), 200, store.DeliveryDelivered, time.Time{}) // not before at(10)
	claimIDs(t, s, at(0), 10, time.Minute)
	finish(t, s, "pending-old", 1, at(3), 503, store.DeliveryPending, at(100)) // pending: kept however old

	n, err := s.PurgeDeliveries(ctx, at(10))
	ok(t, err, "purge")
	if n != 2 {
		t.Fatalf("purged %d, want 2", n)
	}
	for _, c := range []struct{ app, id string }{{"app-a", "delivered-old"}, {"app-b", "failed-old"}} {
		_, err := s.GetDelivery(ctx, c.app, c.id)
		isErr(t, err, store.ErrNotFound, "purged "+c.id)
	}
	for _, c := range []struct{ app, id string }{{"app-a", "delivered-new"}, {"app-b", "edge"}, {"app-b", "pending-old"}, {"app-a", "in-flight"}} {
		getDelivery(t, s, c.app, c.id)
	}
	// Their attempts went with them.
	total, _, err := s.WebhookOutcomes(ctx, w.ID, at(-100))
	ok(t, err, "outcomes")
	if total != 1 {
		t.Fatalf("wh-1 has %d attempts after the purge, want 1", total)
	}
	total, _, err = s.WebhookOutcomes(ctx, w2.ID, at(-100))
	ok(t, err, "outcomes")
	if total != 2 {
		t.Fatalf("wh-2 has %d attempts after the purge, want 2", total)
	}
	n, err = s.PurgeDeliveries(ctx, at(10))
	ok(t, err, "purge again")
	if n != 0 {
		t.Fatalf("second purge removed %d", n)
	}
	n, err = s.PurgeDeliveries(ctx, at(1000))
	ok(t, err, "purge all finished")
	if n != 2 {
		t.Fatalf("purging every finished delivery removed %d, want 2", n)
	}
}

func testWebhookDeleteCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := newWebhook(t, s, "app-a", "wh-1", store.WebhookActive, at(0))
	keep := newWebhook(t, s, "app-a", "wh-keep", store.WebhookActive, at(1))
	wb := newWebhook(t, s, "app-b", "wh-b", store.WebhookActive, at(2))
	enqueue(t, s, dlv(w, "d-1", at(0)), dlv(w, "d-2", at(0)), dlv(keep, "k-1", at(0)), dlv(wb, "b-1", at(0)))
	claimIDs(t, s, at(0), 10, time.Minute)
	for _, id := range []string{"d-1", "k-1", "b-1"} {
		finish(t, s, id, 1, at(1), 500, store.DeliveryPending, at(2))
	}

	ok(t, s.DeleteWebhook(ctx, "app-a", "wh-1"), "delete webhook")
	for _, id := range []string{"d-1", "d-2"} {
		_, err := s.GetDelivery(ctx, "app-a", id)
		isErr(t, err, store.ErrNotFound, "delivery of a deleted webhook")
	}
	total, _, err := s.WebhookOutcomes(ctx, "wh-1", at(-100))
	ok(t, err, "outcomes")
	if total != 0 {
		t.Fatalf("a deleted webhook still has %d attempts", total)
	}
	getDelivery(t, s, "app-a", "k-1")
	// A webhook created again under the same id starts empty.
	newWebhook(t, s, "app-a", "wh-1", store.WebhookActive, at(3))
	recent, err := s.RecentDeliveries(ctx, "app-a", "wh-1", 0)
	ok(t, err, "recent")
	if len(recent) != 0 {
		t.Fatalf("recreated webhook has deliveries: %v", deliveryIDs(recent))
	}
	same(t, claimIDs(t, s, at(2), 10, time.Minute), []string{"k-1", "b-1"}, "claim after the delete")

	// Deleting an application takes its webhooks and their deliveries.
	// The store has no DeleteApplication; the dialects expose their pool.
	db, isSQL := s.(interface{ WriteDB() *sql.DB })
	if !isSQL {
		t.Log("store does not expose its database; application deletion not tested")
		return
	}
	_, err = db.WriteDB().ExecContext(ctx, `DELETE FROM applications WHERE id = $1`, "app-b")
	ok(t, err, "delete application")
	_, err = s.GetWebhook(ctx, "app-b", "wh-b")
	isErr(t, err, store.ErrNotFound, "webhook of a deleted application")
	_, err = s.GetDelivery(ctx, "app-b", "b-1")
	isErr(t, err, store.ErrNotFound, "delivery of a deleted application")
	total, _, err = s.WebhookOutcomes(ctx, "wh-b", at(-100))
	ok(t, err, "outcomes")
	if total != 0 {
		t.Fatalf("a deleted application's webhook still has %d attempts", total)
	}
	ws, err := s.DispatchableWebhooks(ctx)
	ok(t, err, "dispatchable")
	same(t, webhookIDs(ws), []string{"wh-keep", "wh-1"}, "dispatchable after deleting an application")
	getDelivery(t, s, "app-a", "k-1")
}

// Eight dispatchers claim at once: no delivery is ever handed out twice,
// a webhook never has two deliveries in flight, and each webhook's
// deliveries go out in the order they were enqueued.
func testConcurrentClaims(t *testing.T, s store.Store) {
	ctx := t.Context()
	const hooks, perHook, workers = 12, 6, 8
	want := map[string][]string{}
	var ws []*store.Webhook
	for i := range hooks {
		ws = append(ws, newWebhook(t, s, fmt.Sprintf("app-%d", i%3), fmt.Sprintf("wh-%02d", i), store.WebhookActive, at(i)))
	}
	for j := range perHook {
		var batch []store.Delivery
		for _, w := range ws {
			id := fmt.Sprintf("%s-%d", w.ID, j)
			batch = append(batch, dlv(w, id, at(0)))
			want[w.ID] = append(want[w.ID], id)
		}
		enqueue(t, s, batch...)
	}

	var (
		mu       sync.Mutex
		seen     = map[string]bool{}
		inFlight = map[string]string{} // webhook -> delivery
		order    = map[string][]string{}
		done     int
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(60 * time.Second)
	now := time.Now() // every delivery is due; leases (1h) never lapse
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) && !t.Failed() {
				mu.Lock()
				finished := done == hooks*perHook
				mu.Unlock()
				if finished {
					return
				}
				claimed, err := s.ClaimDeliveries(ctx, now, 3, time.Hour)
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				mu.Lock()
				for _, d := range claimed {
					if seen[d.ID] {
						t.Errorf("delivery %s claimed twice", d.ID)
					}
					seen[d.ID] = true
					if other, busy := inFlight[d.WebhookID]; busy {
						t.Errorf("%s claimed while %s of the same webhook is in flight", d.ID, other)
					}
					inFlight[d.WebhookID] = d.ID
					order[d.WebhookID] = append(order[d.WebhookID], d.ID)
					if d.Attempts != 1 {
						t.Errorf("%s claimed with %d attempts, want 1", d.ID, d.Attempts)
					}
				}
				mu.Unlock()
				for _, d := range claimed {
					mu.Lock()
					delete(inFlight, d.WebhookID) // before the finish commits, so a quick next claim is no false alarm
					mu.Unlock()
					if err := s.FinishAttempt(ctx, d.ID, store.DeliveryAttempt{N: d.Attempts, At: now, Status: 200}, store.DeliveryDelivered, time.Time{}); err != nil {
						t.Errorf("finish %s: %v", d.ID, err)
						return
					}
					mu.Lock()
					done++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if done != hooks*perHook {
		t.Fatalf("%d of %d deliveries delivered", done, hooks*perHook)
	}
	for _, w := range ws {
		if !slices.Equal(order[w.ID], want[w.ID]) {
			t.Errorf("%s delivered in order %v, want %v", w.ID, order[w.ID], want[w.ID])
		}
	}
}
