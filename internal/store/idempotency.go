package store

import (
	"context"
	"time"
)

// IdempotencyStore remembers requests made with an Idempotency-Key, per
// grant, so a retry returns the first result.
//
// A send that times out on the client's side may still have gone out; a
// client that retries it must not make it go out twice. The record is
// durable (not in memory) so that this holds across restarts and across
// nodes sharing one PostgreSQL. Keys are scoped by grant because that is
// the unit a client retries against, and because records then go with
// their grant when it is deleted.
type IdempotencyStore interface {
	// BeginIdempotent claims r.Key for r.GrantID. When the key is free
	// (or its record was created before staleBefore, which is then
	// replaced) it records r as in progress (Status 0) and returns
	// (nil, nil). Otherwise it changes nothing and returns the stored
	// record (in progress or finished), so the caller can answer 409
	// (different RequestHash, or still in progress) or replay the stored
	// response. Atomic: of concurrent callers with one key exactly one
	// gets (nil, nil).
	//
	// A claim is always stored in progress: r's Status, Response and
	// FinishedAt are reset, its CreatedAt is filled with the store's clock
	// if zero, and the stored values are written back into r. A grant that
	// does not exist is ErrNotFound. The caller validates the key (not
	// empty, at most 256 characters).
	BeginIdempotent(ctx context.Context, r *IdempotentRequest, staleBefore time.Time) (*IdempotentRequest, error)
	// FinishIdempotent stores the response of a claimed key (status > 0).
	// ErrNotFound if the key is not claimed: unknown, abandoned, or
	// already finished (the first stored response is what every retry
	// replays, so it is never overwritten).
	FinishIdempotent(ctx context.Context, grantID, key string, status int, response []byte) error
	// AbandonIdempotent forgets an in-progress claim (the request failed
	// before it had any effect, so a retry may run again). Finished
	// records are left alone. Unknown keys are not an error.
	AbandonIdempotent(ctx context.Context, grantID, key string) error
	// PurgeIdempotent deletes records created before `before` (of every
	// grant), in progress or finished, and returns how many. Records are
	// only worth keeping as long as clients retry; purging bounds the
	// table.
	PurgeIdempotent(ctx context.Context, before time.Time) (int, error)
}

// IdempotentRequest is one Idempotency-Key record: the claim of a request
// and, once it has finished, the response every retry gets back.
type IdempotentRequest struct {
	GrantID string
	Key     string // as the client sent it, ≤ 256 characters
	// RequestHash is the SHA-256 of method, path and body, computed by
	// the caller: a retry with the same key but another request is a
	// client error (409), not a replay.
	RequestHash []byte
	Status      int       // HTTP status of the stored response; 0 while in progress
	Response    []byte    // the response body to replay; nil while in progress
	CreatedAt   time.Time // set by BeginIdempotent from the store's clock if zero
	FinishedAt  time.Time // zero while in progress
}
