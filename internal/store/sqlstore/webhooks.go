package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// webhookClaimLockKey is the PostgreSQL advisory lock that serialises
// ClaimDeliveries across nodes ("orchard" and 2, after postgres.go's
// migration (0) and changes (1) keys).
//
// Why a lock rather than SELECT … FOR UPDATE SKIP LOCKED: the rule to keep
// is "at most one delivery per webhook in flight", a property of a set of
// rows, and row locks only protect the rows a claim picked. A node whose
// snapshot predates another node's claim would see that webhook as free and
// claim its next delivery (SKIP LOCKED only skips rows still locked, and
// the re-check of a row whose lock was released does not re-run the
// subqueries that decided which delivery heads the queue). Under the lock,
// each claim's statement takes its snapshot after the previous claim
// committed, so it sees every live claim. A claim is one short UPDATE that
// takes a batch, so serialising claims costs little; the POSTs, which take
// the time, run outside it.
const webhookClaimLockKey int64 = 0x6f72636861726402

// lockWebhookClaims runs first in every ClaimDeliveries transaction. SQLite
// needs nothing: its transactions begin IMMEDIATE on the single write
// connection, so claims already run one at a time. (This is the only
// dialect-specific statement of the package; if another appears, it belongs
// in Dialect next to LockGrant.)
func (s *Store) lockWebhookClaims(ctx context.Context, tx *sql.Tx) error {
	if s.d.Name != "postgres" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, webhookClaimLockKey)
	return err
}

// The SQL below spells the dispatchable statuses and the delivery states as
// literals, not parameters: SQLite only uses a partial index (WHERE state =
// 'pending') when the query's WHERE names the same literal. They are the
// values of these constants.
var (
	webhookStatuses = []string{store.WebhookActive, store.WebhookPaused, store.WebhookFailing, store.WebhookFailed}
	deliveryStates  = []string{store.DeliveryPending, store.DeliveryDelivered, store.DeliveryFailed}
)

func listIn(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l) // a []string always encodes
	return string(b)
}

func listOut(what, s string) ([]string, error) {
	l := []string{}
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("store: decode %s: %w", what, err)
	}
	if l == nil {
		l = []string{}
	}
	return l, nil
}

// optMicros stores a zero time as 0 and fromOptMicros reads 0 back as the
// zero time (claimed_until 0: no claim; 0 <= now, so a zero NextAttemptAt
// is due).
func optMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

func fromOptMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromMicros(v)
}

// --- webhooks ---------------------------------------------------------------

// CreateWebhook inserts w, filling an empty ID and Status and zero times.
func (s *Store) CreateWebhook(ctx context.Context, w *store.Webhook) error {
	if w.Status == "" {
		w.Status = store.WebhookActive
	}
	if !slices.Contains(webhookStatuses, w.Status) {
		return fmt.Errorf("store: create webhook: unknown status %q", w.Status)
	}
	if w.ID == "" {
		w.ID = newID()
	}
	stampCreate(&w.CreatedAt, &w.UpdatedAt)
	if w.StatusUpdatedAt.IsZero() {
		w.StatusUpdatedAt = w.CreatedAt
	} else {
		w.StatusUpdatedAt = normTime(w.StatusUpdatedAt)
	}
	_, err := s.write.ExecContext(ctx,
		`INSERT INTO webhooks (id, application_id, url, description, trigger_types, status, notification_emails,
		                       secret, compressed_delivery, status_updated_at, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		w.ID, w.ApplicationID, w.URL, w.Description, listIn(w.TriggerTypes), w.Status, listIn(w.NotificationEmails),
		blobIn(w.Secret), b2i(w.CompressedDelivery), micros(w.StatusUpdatedAt), micros(w.CreatedAt), micros(w.UpdatedAt))
	return s.wrap(fmt.Sprintf("create webhook %s", w.ID), err)
}

const webhookColumns = `id, application_id, url, description, trigger_types, status, notification_emails,
	secret, compressed_delivery, status_updated_at, created_at, updated_at`

func scanWebhook(sc rowScanner) (store.Webhook, error) {
	var (
		w                         store.Webhook
		triggers, emails          string
		compressed                int
		statusAt, created, update int64
	)
	if err := sc.Scan(&w.ID, &w.ApplicationID, &w.URL, &w.Description, &triggers, &w.Status, &emails,
		&w.Secret, &compressed, &statusAt, &created, &update); err != nil {
		return w, err
	}
	var err error
	if w.TriggerTypes, err = listOut("trigger types", triggers); err != nil {
		return w, err
	}
	if w.NotificationEmails, err = listOut("notification emails", emails); err != nil {
		return w, err
	}
	w.Secret = blobOut(w.Secret)
	w.CompressedDelivery = compressed == 1
	w.StatusUpdatedAt, w.CreatedAt, w.UpdatedAt = fromMicros(statusAt), fromMicros(created), fromMicros(update)
	return w, nil
}

func (s *Store) GetWebhook(ctx context.Context, appID, id string) (*store.Webhook, error) {
	w, err := scanWebhook(s.read.QueryRowContext(ctx,
		`SELECT `+webhookColumns+` FROM webhooks WHERE application_id = $1 AND id = $2`, appID, id))
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get webhook %s", id), err)
	}
	return &w, nil
}

func (s *Store) listWebhooks(ctx context.Context, op, query string, args ...any) ([]store.Webhook, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	out := []store.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, w)
	}
	return out, s.wrap(op, rows.Err())
}

// ListWebhooks returns the application's webhooks, oldest first.
func (s *Store) ListWebhooks(ctx context.Context, appID string) ([]store.Webhook, error) {
	return s.listWebhooks(ctx, "list webhooks",
		`SELECT `+webhookColumns+` FROM webhooks WHERE application_id = $1 ORDER BY created_at, id`, appID)
}

// DispatchableWebhooks returns the active and failing webhooks of every
// application.
func (s *Store) DispatchableWebhooks(ctx context.Context) ([]store.Webhook, error) {
	return s.listWebhooks(ctx, "list dispatchable webhooks",
		`SELECT `+webhookColumns+` FROM webhooks WHERE status IN ('active', 'failing') ORDER BY created_at, id`)
}

// UpdateWebhook writes the mutable fields in one statement; the CASE reads
// the status as it was before the update (SET expressions see the old row
// in both dialects), so status_updated_at moves only on a change.
func (s *Store) UpdateWebhook(ctx context.Context, w *store.Webhook) error {
	op := fmt.Sprintf("update webhook %s", w.ID)
	if !slices.Contains(webhookStatuses, w.Status) {
		return fmt.Errorf("store: %s: unknown status %q", op, w.Status)
	}
	at := now()
	var statusAt int64
	err := s.write.QueryRowContext(ctx,
		`UPDATE webhooks SET url = $3, description = $4, trigger_types = $5,
		        status_updated_at = CASE WHEN status = $6 THEN status_updated_at ELSE $10 END,
		        status = $6, notification_emails = $7, secret = $8, compressed_delivery = $9, updated_at = $10
		 WHERE application_id = $1 AND id = $2
		 RETURNING status_updated_at`,
		w.ApplicationID, w.ID, w.URL, w.Description, listIn(w.TriggerTypes), w.Status, listIn(w.NotificationEmails),
		blobIn(w.Secret), b2i(w.CompressedDelivery), micros(at)).Scan(&statusAt)
	if err != nil {
		return s.wrap(op, err)
	}
	w.UpdatedAt, w.StatusUpdatedAt = at, fromMicros(statusAt)
	return nil
}

// DeleteWebhook relies on the cascade to deliveries and their attempts.
func (s *Store) DeleteWebhook(ctx context.Context, appID, id string) error {
	return s.execOne(ctx, fmt.Sprintf("delete webhook %s", id),
		`DELETE FROM webhooks WHERE application_id = $1 AND id = $2`, appID, id)
}

// --- the queue ----------------------------------------------------------------

func (s *Store) DispatchCursor(ctx context.Context) (int64, error) {
	var id int64
	err := s.read.QueryRowContext(ctx, `SELECT change_id FROM webhook_dispatch_cursor WHERE id = 1`).Scan(&id)
	return id, s.wrap("read webhook dispatch cursor", err)
}

// EnqueueDeliveries moves the cursor first: in PostgreSQL the UPDATE locks
// the cursor row, so a concurrent enqueue waits for this one to end and
// then finds the cursor moved (ErrConflict) before inserting anything. That
// also makes the enqueueing transactions take their seq values one after
// the other, so seq follows commit order.
func (s *Store) EnqueueDeliveries(ctx context.Context, from, to int64, ds []store.Delivery) error {
	op := fmt.Sprintf("enqueue webhook deliveries of changes %d..%d", from, to)
	if to < from {
		return fmt.Errorf("store: %s: the cursor would move back", op)
	}
	created := now()
	for i := range ds {
		d := &ds[i]
		if d.ID == "" {
			d.ID = newID()
		}
		if d.CreatedAt.IsZero() {
			d.CreatedAt = created
		} else {
			d.CreatedAt = normTime(d.CreatedAt)
		}
		if d.NextAttemptAt.IsZero() {
			d.NextAttemptAt = d.CreatedAt
		} else {
			d.NextAttemptAt = normTime(d.NextAttemptAt)
		}
		d.Payload = blobOut(d.Payload)
		d.State, d.Attempts, d.ClaimedUntil = store.DeliveryPending, 0, time.Time{}
		d.LastStatus, d.LastError, d.FinishedAt, d.AttemptLog = 0, "", time.Time{}, nil
	}
	err := inTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_dispatch_cursor SET change_id = $2 WHERE id = 1 AND change_id = $1`, from, to)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("the cursor is no longer at %d: %w", from, store.ErrConflict)
			}
			return err
		}
		// Skip deliveries of webhooks deleted since the dispatcher listed
		// them (or of a mismatched application), rather than fail the
		// batch: their deliveries would have been deleted with them.
		exists := map[[2]string]bool{}
		for _, d := range ds {
			k := [2]string{d.WebhookID, d.ApplicationID}
			if _, seen := exists[k]; seen {
				continue
			}
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM webhooks WHERE id = $1 AND application_id = $2`, k[0], k[1]).Scan(&one)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			exists[k] = err == nil
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO webhook_deliveries
			(id, webhook_id, application_id, grant_id, type, payload, state, attempts,
			 next_attempt_at, claimed_until, last_status, last_error, created_at, finished_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, 0, 0, '', $8, NULL)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, d := range ds {
			if !exists[[2]string{d.WebhookID, d.ApplicationID}] {
				continue
			}
			if _, err := ins.ExecContext(ctx, d.ID, d.WebhookID, d.ApplicationID, d.GrantID, d.Type,
				blobIn(d.Payload), micros(d.NextAttemptAt), micros(d.CreatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap(op, err)
}

const deliveryColumns = `seq, id, webhook_id, application_id, grant_id, type, payload, state, attempts,
	next_attempt_at, claimed_until, last_status, last_error, created_at, finished_at`

// deliveryColumnsD is deliveryColumns qualified by the alias d.
var deliveryColumnsD = func() string {
	cols := strings.Split(deliveryColumns, ",")
	for i, c := range cols {
		cols[i] = "d." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// scanDelivery reads deliveryColumns, then extra (the attempt columns of a
// join).
func scanDelivery(sc rowScanner, extra ...any) (store.Delivery, int64, error) {
	var (
		d                           store.Delivery
		seq, next, claimed, created int64
		finished                    sql.NullInt64
	)
	err := sc.Scan(append([]any{&seq, &d.ID, &d.WebhookID, &d.ApplicationID, &d.GrantID, &d.Type, &d.Payload, &d.State,
		&d.Attempts, &next, &claimed, &d.LastStatus, &d.LastError, &created, &finished}, extra...)...)
	if err != nil {
		return d, 0, err
	}
	d.Payload = blobOut(d.Payload)
	d.NextAttemptAt, d.ClaimedUntil, d.CreatedAt = fromOptMicros(next), fromOptMicros(claimed), fromMicros(created)
	if finished.Valid {
		d.FinishedAt = fromMicros(finished.Int64)
	}
	return d, seq, nil
}

// ClaimDeliveries claims in one UPDATE. Its subquery walks the dispatchable
// webhooks and computes, for each, the head of its queue (first pending
// delivery, by seq) if it is due: one probe of webhook_deliveries_head per
// webhook, whatever the backlog behind the head. A webhook with a live
// claim is left out; the claim is looked for among all its pending
// deliveries, not only the head, because after RetryDelivery an older
// delivery can head the queue while a newer one is in flight. At most one
// delivery per webhook comes out, since each webhook yields one head.
//
// The heads are computed in the select list and filtered outside, not
// joined back to webhook_deliveries: PostgreSQL cannot drive an index
// lookup from a join condition that is a correlated subquery, and hashed
// the whole table instead.
//
// The outer WHERE repeats "pending and not claimed" for PostgreSQL: if a
// late FinishAttempt (of a lapsed claim) updates a chosen row before this
// UPDATE locks it, the UPDATE re-checks its own WHERE against the new row
// version, but not the subquery's snapshot, and must then skip the row.
func (s *Store) ClaimDeliveries(ctx context.Context, at time.Time, n int, lease time.Duration) ([]store.Delivery, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("store: claim webhook deliveries: lease %v, want > 0", lease)
	}
	out := []store.Delivery{}
	if n <= 0 {
		return out, nil
	}
	at = normTime(at)
	until := normTime(at.Add(lease))
	type claimed struct {
		d   store.Delivery
		seq int64
	}
	var got []claimed
	err := inTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		got = got[:0]
		if err := s.lockWebhookClaims(ctx, tx); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, claimed_until = $2
			WHERE seq IN (
				SELECT head FROM (
					SELECT (SELECT CASE WHEN h.next_attempt_at <= $1 THEN h.seq END
					        FROM webhook_deliveries h
					        WHERE h.webhook_id = w.id AND h.state = 'pending'
					        ORDER BY h.seq LIMIT 1) AS head
					FROM webhooks w
					WHERE w.status IN ('active', 'failing')
					  AND NOT EXISTS (
						SELECT 1 FROM webhook_deliveries c
						WHERE c.webhook_id = w.id AND c.state = 'pending' AND c.claimed_until > $1)
				) heads
				WHERE head IS NOT NULL
				ORDER BY head
				LIMIT $3)
			  AND state = 'pending' AND claimed_until <= $1
			RETURNING `+deliveryColumns, micros(at), micros(until), n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, seq, err := scanDelivery(rows)
			if err != nil {
				return err
			}
			got = append(got, claimed{d, seq})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.wrap("claim webhook deliveries", err)
	}
	// RETURNING has no order.
	slices.SortFunc(got, func(a, b claimed) int { return cmp.Compare(a.seq, b.seq) })
	for _, c := range got {
		out = append(out, c.d)
	}
	return out, nil
}

// FinishAttempt updates the delivery only while the attempt is its latest
// (attempts = n in the UPDATE's WHERE): in PostgreSQL a claim committed
// between the SELECT and the UPDATE makes the UPDATE re-check the row and
// skip it.
func (s *Store) FinishAttempt(ctx context.Context, deliveryID string, a store.DeliveryAttempt, state string, nextAttemptAt time.Time) error {
	op := fmt.Sprintf("finish attempt %d of webhook delivery %s", a.N, deliveryID)
	if !slices.Contains(deliveryStates, state) {
		return fmt.Errorf("store: %s: unknown state %q", op, state)
	}
	at := now()
	if !a.At.IsZero() {
		at = normTime(a.At)
	}
	var finished sql.NullInt64
	if state != store.DeliveryPending {
		finished = sql.NullInt64{Int64: micros(at), Valid: true}
	}
	err := inTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		var webhookID string
		var attempts int
		if err := tx.QueryRowContext(ctx, `SELECT webhook_id, attempts FROM webhook_deliveries WHERE id = $1`,
			deliveryID).Scan(&webhookID, &attempts); err != nil {
			return err
		}
		n := a.N
		if n == 0 {
			n = attempts
		}
		if n < 1 || n > attempts {
			return fmt.Errorf("attempt %d was never claimed (%d claimed)", n, attempts)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_delivery_attempts
				(delivery_id, n, webhook_id, at, status, latency_ns, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			deliveryID, n, webhookID, micros(at), a.Status, a.Latency.Nanoseconds(), a.Error); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries
			SET state = $3, next_attempt_at = $4, last_status = $5, last_error = $6, claimed_until = 0, finished_at = $7
			WHERE id = $1 AND attempts = $2`,
			deliveryID, n, state, optMicros(nextAttemptAt), a.Status, a.Error, finished)
		return err
	})
	return s.wrap(op, err)
}

// deliveriesWithAttempts runs query, which selects deliveryColumnsD then
// the attempt columns of a LEFT JOIN (NULL when a delivery has none),
// ordered by delivery then attempt. One statement, so one snapshot:
// Attempts and the log agree.
func (s *Store) deliveriesWithAttempts(ctx context.Context, op, query string, args ...any) ([]store.Delivery, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	out := []store.Delivery{}
	for rows.Next() {
		var (
			n, at, status, latency sql.NullInt64
			msg                    sql.NullString
		)
		d, _, err := scanDelivery(rows, &n, &at, &status, &latency, &msg)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		if len(out) == 0 || out[len(out)-1].ID != d.ID {
			d.AttemptLog = []store.DeliveryAttempt{}
			out = append(out, d)
		}
		if n.Valid {
			last := &out[len(out)-1]
			last.AttemptLog = append(last.AttemptLog, store.DeliveryAttempt{
				N: int(n.Int64), At: fromMicros(at.Int64), Status: int(status.Int64),
				Latency: time.Duration(latency.Int64), Error: msg.String,
			})
		}
	}
	return out, s.wrap(op, rows.Err())
}

const attemptColumnsA = `a.n, a.at, a.status, a.latency_ns, a.error`

// RecentDeliveries goes through webhook_deliveries_webhook backwards.
func (s *Store) RecentDeliveries(ctx context.Context, appID, webhookID string, limit int) ([]store.Delivery, error) {
	if limit <= 0 {
		limit = 50
	}
	return s.deliveriesWithAttempts(ctx, "list recent webhook deliveries",
		`SELECT `+deliveryColumnsD+`, `+attemptColumnsA+`
		 FROM (SELECT `+deliveryColumns+` FROM webhook_deliveries
		       WHERE webhook_id = $2 AND application_id = $1
		       ORDER BY seq DESC LIMIT $3) d
		 LEFT JOIN webhook_delivery_attempts a ON a.delivery_id = d.id
		 ORDER BY d.seq DESC, a.n`, appID, webhookID, limit)
}

func (s *Store) GetDelivery(ctx context.Context, appID, id string) (*store.Delivery, error) {
	op := fmt.Sprintf("get webhook delivery %s", id)
	ds, err := s.deliveriesWithAttempts(ctx, op,
		`SELECT `+deliveryColumnsD+`, `+attemptColumnsA+`
		 FROM webhook_deliveries d
		 LEFT JOIN webhook_delivery_attempts a ON a.delivery_id = d.id
		 WHERE d.application_id = $1 AND d.id = $2
		 ORDER BY a.n`, appID, id)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("store: %s: %w", op, store.ErrNotFound)
	}
	return &ds[0], nil
}

// RetryDelivery leaves claimed_until alone: a delivery in flight stays
// claimed, which keeps the claim from sending it (or any other delivery of
// its webhook) a second time meanwhile.
func (s *Store) RetryDelivery(ctx context.Context, appID, id string, at time.Time) error {
	return s.execOne(ctx, fmt.Sprintf("retry webhook delivery %s", id),
		`UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $3, finished_at = NULL
		 WHERE application_id = $1 AND id = $2`, appID, id, optMicros(at))
}

// WebhookOutcomes counts through webhook_delivery_attempts_webhook.
func (s *Store) WebhookOutcomes(ctx context.Context, webhookID string, since time.Time) (total, failed int, err error) {
	err = s.read.QueryRowContext(ctx, `SELECT COUNT(*),
			COALESCE(SUM(CASE WHEN status BETWEEN 200 AND 299 AND error = '' THEN 0 ELSE 1 END), 0)
		FROM webhook_delivery_attempts WHERE webhook_id = $1 AND at >= $2`, webhookID, micros(since)).Scan(&total, &failed)
	if err != nil {
		return 0, 0, s.wrap(fmt.Sprintf("count outcomes of webhook %s", webhookID), err)
	}
	return total, failed, nil
}

// PurgeDeliveries deletes through webhook_deliveries_finished; attempts go
// by cascade. finished_at is NULL exactly while a delivery is pending; the
// state test is a second guard.
func (s *Store) PurgeDeliveries(ctx context.Context, before time.Time) (int, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM webhook_deliveries
		WHERE finished_at < $1 AND state IN ('delivered', 'failed')`, micros(before))
	if err != nil {
		return 0, s.wrap("purge webhook deliveries", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.wrap("purge webhook deliveries", err)
	}
	return int(n), nil
}
