package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// ReserveSend checks and records in one transaction, under the grant's
// lock on PostgreSQL (SQLite's single writer serialises it already), so
// two concurrent sends see each other.
func (s *Store) ReserveSend(ctx context.Context, grantID, id string, at time.Time, n int, window time.Duration, maxMessages, maxRecipients int) (store.SendRefusal, error) {
	var refusal store.SendRefusal
	err := inTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		if s.d.LockGrant != nil {
			if err := s.d.LockGrant(ctx, tx, grantID); err != nil {
				return fmt.Errorf("lock grant: %w", err)
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT sent_at, recipients FROM send_log
			WHERE grant_id = $1 AND sent_at > $2 ORDER BY sent_at, id`, grantID, micros(at.Add(-window)))
		if err != nil {
			return err
		}
		type sent struct {
			at         int64
			recipients int
		}
		var log []sent
		messages, recipients := 0, 0
		for rows.Next() {
			var e sent
			if err := rows.Scan(&e.at, &e.recipients); err != nil {
				rows.Close()
				return err
			}
			log = append(log, e)
			messages++
			recipients += e.recipients
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		over := func() bool {
			return (maxMessages > 0 && messages+1 > maxMessages) || (maxRecipients > 0 && recipients+n > maxRecipients)
		}
		if over() {
			refusal.Exceeded = "recipients"
			if maxMessages > 0 && messages+1 > maxMessages {
				refusal.Exceeded = "messages"
			}
			// The oldest sends leave the window first: find the one whose
			// leaving makes room.
			for _, e := range log {
				messages--
				recipients -= e.recipients
				if !over() {
					refusal.RetryAt = fromMicros(e.at).Add(window)
					return nil
				}
			}
			refusal.RetryAt = at.Add(window) // n alone exceeds the limit
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO send_log (grant_id, id, sent_at, recipients) VALUES ($1, $2, $3, $4)`,
			grantID, id, micros(at), n)
		return err
	})
	return refusal, s.wrap("reserve send", err)
}

// ReleaseSend removes a reservation.
func (s *Store) ReleaseSend(ctx context.Context, grantID, id string) error {
	_, err := s.write.ExecContext(ctx, `DELETE FROM send_log WHERE grant_id = $1 AND id = $2`, grantID, id)
	return s.wrap("release send", err)
}
