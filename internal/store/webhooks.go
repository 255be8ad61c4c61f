package store

import (
	"context"
	"time"
)

// WebhookStore keeps an application's webhook destinations and the queue of
// notifications to deliver to them.
//
// The queue is modelled on mox's: every delivery is a row, and an attempt is
// recorded (ClaimDeliveries counts it and leases the delivery) before the
// dispatcher POSTs it, so a crash or a restart never loses a notification and
// never forgets that one was attempted. Delivery is therefore at least once:
// a node that dies mid-POST leaves a claim that lapses, and the delivery is
// sent again under the same id, which receivers dedupe by.
//
// Change rows (MailStore.ListChanges) become deliveries through a single
// cursor shared by every node (DispatchCursor, EnqueueDeliveries), so each
// change is enqueued exactly once however many nodes run the dispatcher.
type WebhookStore interface {
	// CreateWebhook inserts w, filling an empty ID, an empty Status
	// (active) and zero CreatedAt/UpdatedAt/StatusUpdatedAt (UpdatedAt and
	// StatusUpdatedAt default to CreatedAt), and writes the stored values
	// back. An unknown Status is an error; a missing application is
	// ErrNotFound.
	CreateWebhook(ctx context.Context, w *Webhook) error
	// GetWebhook returns ErrNotFound also for another application's
	// webhook.
	GetWebhook(ctx context.Context, appID, id string) (*Webhook, error)
	// ListWebhooks returns the application's webhooks by CreatedAt, then ID.
	ListWebhooks(ctx context.Context, appID string) ([]Webhook, error)
	// UpdateWebhook writes every mutable field (URL, Description,
	// TriggerTypes, Status, NotificationEmails, Secret, CompressedDelivery)
	// and sets UpdatedAt to now. StatusUpdatedAt moves to now only when
	// Status changes, because the failing/failed rules and the API's
	// status_updated_at measure how long a webhook has been in its status.
	// Both are written back into w.
	UpdateWebhook(ctx context.Context, w *Webhook) error
	// DeleteWebhook deletes the webhook with its deliveries and their
	// attempts.
	DeleteWebhook(ctx context.Context, appID, id string) error
	// DispatchableWebhooks returns every application's webhooks whose
	// status is active or failing, by CreatedAt then ID: paused and failed
	// ones receive nothing, so the dispatcher enqueues nothing for them.
	DispatchableWebhooks(ctx context.Context) ([]Webhook, error)

	// DispatchCursor is the id of the last change row already turned into
	// deliveries: 0 on a fresh database (a database that had change rows
	// before webhooks existed starts after them, as no webhook could have
	// wanted those).
	DispatchCursor(ctx context.Context) (int64, error)
	// EnqueueDeliveries inserts ds and moves the cursor from `from` to `to`
	// in one transaction, only if the cursor is still at `from`; otherwise
	// it returns ErrConflict and writes nothing. With several nodes each
	// change is therefore enqueued exactly once: the node that loses the
	// race drops its batch and reads the cursor again.
	//
	// Each delivery is stored pending with no attempt: an empty ID is
	// filled, a zero CreatedAt is now and a zero NextAttemptAt is
	// CreatedAt (due at once); State, Attempts, ClaimedUntil, LastStatus,
	// LastError, FinishedAt and AttemptLog are reset. The stored values are
	// written back into ds. A delivery whose webhook no longer exists
	// (deleted since the dispatcher listed it), or is another
	// application's, is skipped rather than failing the batch (a deletion
	// racing the enqueue itself can still fail it with ErrNotFound, and
	// nothing is written: enqueue again). Deliveries
	// of one webhook are delivered in the order of ds and of successive
	// calls. A reused delivery id is ErrConflict too (the cursor is checked
	// first, so that only happens when a caller reuses ids).
	EnqueueDeliveries(ctx context.Context, from, to int64, ds []Delivery) error
	// ClaimDeliveries takes up to n deliveries that are due (state pending,
	// NextAttemptAt <= now, no live claim), oldest (first enqueued) first,
	// and at most ONE per webhook: a webhook with a delivery claimed
	// (ClaimedUntil > now) or whose oldest pending delivery is not due yet
	// gets nothing, so one URL never has two deliveries in flight and its
	// notifications keep their order (a delivery waiting for its retry
	// holds back the newer ones). Only webhooks that are active or failing
	// are served; a paused or failed webhook's pending deliveries stay
	// pending.
	//
	// Claiming counts the attempt (Attempts++) and sets ClaimedUntil to
	// now+lease in the same transaction: the attempt is saved before the
	// POST. A claim that lapses (the node died) makes the delivery due
	// again. Safe with several nodes at once. AttemptLog is not filled.
	ClaimDeliveries(ctx context.Context, now time.Time, n int, lease time.Duration) ([]Delivery, error)
	// FinishAttempt records the outcome of attempt a.N (0: the delivery's
	// latest, i.e. its Attempts): it appends a.N to the attempt log (a zero
	// a.At is now) and, if a.N is still the latest attempt, sets State,
	// NextAttemptAt, LastStatus/LastError (from a), FinishedAt (a.At when
	// state is delivered or failed, zero when pending) and clears the
	// claim. The outcome of an attempt whose claim lapsed and was taken
	// over by a later claim is logged but changes nothing else, so it can
	// neither clear the newer claim (which would let a third node start
	// while the second is in flight) nor overwrite its outcome.
	//
	// ErrNotFound for an unknown delivery; ErrConflict when attempt a.N was
	// already finished; an error for an unknown state or an attempt that
	// was never claimed.
	FinishAttempt(ctx context.Context, deliveryID string, a DeliveryAttempt, state string, nextAttemptAt time.Time) error
	// RecentDeliveries returns up to limit (0: 50) deliveries of one
	// webhook, newest (last enqueued) first, each with its attempts
	// (oldest first). An unknown webhook, or another application's, has
	// none.
	RecentDeliveries(ctx context.Context, appID, webhookID string, limit int) ([]Delivery, error)
	// GetDelivery returns a delivery with its attempts; ErrNotFound also
	// for another application's.
	GetDelivery(ctx context.Context, appID, id string) (*Delivery, error)
	// RetryDelivery makes a delivery pending and due at now again
	// (operator replay), whatever its state. Attempts keeps counting (the
	// receiver sees webhook_delivery_attempt go on) and the attempt log is
	// kept. A delivery in flight keeps its claim, so it is not sent twice
	// at once; the outcome of that attempt then decides its state.
	RetryDelivery(ctx context.Context, appID, id string, now time.Time) error
	// WebhookOutcomes counts the webhook's attempts made at or after
	// `since`: total and failed (status not 2xx, or an error), for the
	// failing (15 min) and failed (72 h) rules. Purged deliveries take
	// their attempts with them, so purge only past the longest window.
	WebhookOutcomes(ctx context.Context, webhookID string, since time.Time) (total, failed int, err error)
	// PurgeDeliveries deletes the delivered and failed deliveries (of
	// every application) finished before `before`, with their attempts,
	// and returns how many. Pending ones are kept, however old.
	PurgeDeliveries(ctx context.Context, before time.Time) (int, error)
}

// Webhook statuses (Nylas's spelling: "pause", not "paused").
const (
	WebhookActive  = "active"
	WebhookPaused  = "pause"
	WebhookFailing = "failing" // still delivering; notification emails sent
	WebhookFailed  = "failed"  // stops delivering until set active again
)

// Webhook is a destination an application subscribed to notifications.
type Webhook struct {
	ID                 string
	ApplicationID      string
	URL                string
	Description        string
	TriggerTypes       []string // returned non-nil
	Status             string   // WebhookActive, WebhookPaused, WebhookFailing, WebhookFailed
	NotificationEmails []string // returned non-nil
	// Secret is sealed (encrypted) by the service: the store never sees it
	// in clear. Returned nil when empty.
	Secret             []byte
	CompressedDelivery bool
	StatusUpdatedAt    time.Time
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"   // waiting for its next attempt, or in flight
	DeliveryDelivered = "delivered" // an attempt succeeded
	DeliveryFailed    = "failed"    // the dispatcher gave up
)

// Delivery is one notification to one webhook, with its retry state.
type Delivery struct {
	// ID is the notification id, stable across attempts: receivers dedupe
	// by it. Generated when empty.
	ID            string
	WebhookID     string
	ApplicationID string
	GrantID       string // "" for notifications of no grant
	Type          string // trigger type, e.g. message.created
	// Payload is the notification body without webhook_delivery_attempt,
	// which the dispatcher adds per attempt (from Attempts). Returned nil
	// when empty.
	Payload       []byte
	State         string // DeliveryPending, DeliveryDelivered, DeliveryFailed
	Attempts      int    // attempts claimed so far, the one in flight included
	NextAttemptAt time.Time
	ClaimedUntil  time.Time // zero: not claimed
	LastStatus    int       // HTTP status of the last finished attempt; 0 if none or no response
	LastError     string
	CreatedAt     time.Time
	FinishedAt    time.Time // zero while pending
	// AttemptLog is filled by RecentDeliveries and GetDelivery (non-nil),
	// oldest first; nil elsewhere.
	AttemptLog []DeliveryAttempt
}

// DeliveryAttempt is the outcome of one POST of a delivery.
type DeliveryAttempt struct {
	N       int       // 1 for the first attempt
	At      time.Time // when the POST was made
	Status  int       // HTTP status; 0 when there was no response
	Latency time.Duration
	Error   string // transport error, or why the response was refused
}
