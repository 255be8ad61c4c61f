package service

import (
	"context"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// IdempotencyWindow is how long an Idempotency-Key is remembered: long
// enough for any client's retries, short enough to keep the table small.
const IdempotencyWindow = 24 * time.Hour

// BeginIdempotent claims an Idempotency-Key of the grant for a request
// with this fingerprint. It returns the grant and, when the key was used
// before within IdempotencyWindow, that earlier request (in progress or
// with its response); nil means the caller runs the request and then
// finishes or abandons the key.
func (s *Service) BeginIdempotent(ctx context.Context, appID, grantRef, key string, hash []byte) (*store.Grant, *store.IdempotentRequest, error) {
	if key == "" || len(key) > 256 {
		return nil, nil, invalid("Idempotency-Key must be 1 to 256 characters")
	}
	g, err := s.Grant(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	// Old records are of no use to anyone: dropping them here bounds the
	// table without a janitor goroutine (the delete reads an index range).
	if _, err := s.store.PurgeIdempotent(ctx, now.Add(-IdempotencyWindow)); err != nil {
		s.log.Warn("purge idempotency keys", "error", err)
	}
	prev, err := s.store.BeginIdempotent(ctx, &store.IdempotentRequest{GrantID: g.ID, Key: key, RequestHash: hash, CreatedAt: now},
		now.Add(-IdempotencyWindow))
	if err != nil {
		return nil, nil, storeErr(err, "grant "+grantRef)
	}
	return g, prev, nil
}

// FinishIdempotent stores the response that retries with the key replay.
func (s *Service) FinishIdempotent(ctx context.Context, grantID, key string, status int, response []byte) error {
	return s.store.FinishIdempotent(context.WithoutCancel(ctx), grantID, key, status, response)
}

// AbandonIdempotent frees a key whose request had no effect.
func (s *Service) AbandonIdempotent(ctx context.Context, grantID, key string) error {
	return s.store.AbandonIdempotent(context.WithoutCancel(ctx), grantID, key)
}
