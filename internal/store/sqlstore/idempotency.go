package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// BeginIdempotent claims the key with one upsert that inserts a free key
// or replaces a stale record and leaves any other record alone; whether it
// touched a row says whether the claim was won. Both dialects make that
// atomic: SQLite has a single writer, and PostgreSQL makes a concurrent
// insert of the same key wait for the first to commit, then sees the
// conflict (and locks the row it lost to, so the SELECT that follows in the
// same transaction is sure to find it even if it is abandoned meanwhile).
func (s *Store) BeginIdempotent(ctx context.Context, r *store.IdempotentRequest, staleBefore time.Time) (*store.IdempotentRequest, error) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now()
	} else {
		r.CreatedAt = normTime(r.CreatedAt)
	}
	r.Status, r.Response, r.FinishedAt = 0, nil, time.Time{}
	var stored *store.IdempotentRequest
	err := inTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys
				(grant_id, key, request_hash, status, response, created_at, finished_at)
			VALUES ($1, $2, $3, 0, $4, $5, NULL)
			ON CONFLICT (grant_id, key) DO UPDATE SET
				request_hash = excluded.request_hash, status = 0, response = excluded.response,
				created_at = excluded.created_at, finished_at = NULL
			WHERE idempotency_keys.created_at < $6`,
			r.GrantID, r.Key, blobIn(r.RequestHash), []byte{}, micros(r.CreatedAt), micros(staleBefore))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n > 0 {
			return err
		}
		stored, err = scanIdempotent(tx.QueryRowContext(ctx, `SELECT grant_id, key, request_hash, status, response, created_at, finished_at
			FROM idempotency_keys WHERE grant_id = $1 AND key = $2`, r.GrantID, r.Key))
		return err
	})
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("begin idempotent request of grant %s", r.GrantID), err)
	}
	return stored, nil
}

func scanIdempotent(row rowScanner) (*store.IdempotentRequest, error) {
	var r store.IdempotentRequest
	var created int64
	var finished sql.NullInt64
	if err := row.Scan(&r.GrantID, &r.Key, &r.RequestHash, &r.Status, &r.Response, &created, &finished); err != nil {
		return nil, err
	}
	r.RequestHash, r.Response = blobOut(r.RequestHash), blobOut(r.Response)
	r.CreatedAt = fromMicros(created)
	if finished.Valid {
		r.FinishedAt = fromMicros(finished.Int64)
	}
	return &r, nil
}

// FinishIdempotent only finishes a record in progress, so the first stored
// response is the one every retry replays.
func (s *Store) FinishIdempotent(ctx context.Context, grantID, key string, status int, response []byte) error {
	op := fmt.Sprintf("finish idempotent request of grant %s", grantID)
	if status <= 0 {
		return fmt.Errorf("store: %s: status %d, want > 0", op, status)
	}
	return s.execOne(ctx, op, `UPDATE idempotency_keys SET status = $3, response = $4, finished_at = $5
		WHERE grant_id = $1 AND key = $2 AND status = 0`,
		grantID, key, status, blobIn(response), micros(now()))
}

// AbandonIdempotent deletes the record only while it is in progress.
func (s *Store) AbandonIdempotent(ctx context.Context, grantID, key string) error {
	_, err := s.write.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE grant_id = $1 AND key = $2 AND status = 0`, grantID, key)
	return s.wrap(fmt.Sprintf("abandon idempotent request of grant %s", grantID), err)
}

// PurgeIdempotent deletes old records through the created_at index.
func (s *Store) PurgeIdempotent(ctx context.Context, before time.Time) (int, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, micros(before))
	if err != nil {
		return 0, s.wrap("purge idempotent requests", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.wrap("purge idempotent requests", err)
	}
	return int(n), nil
}
