// Package quota enforces providers' sending limits before anything is
// sent: per message (recipients, encoded size) and per rolling day
// (messages, recipients), counted durably per grant in the store so that
// a restart forgets nothing and concurrent sends cannot both take the
// last free unit.
package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// Limits are one provider's sending limits; 0 means no limit.
type Limits struct {
	MessagesPerDay       int
	RecipientsPerDay     int // to + cc + bcc over a rolling 24 hours
	RecipientsPerMessage int
	MaxMessageBytes      int64 // the encoded size that goes over SMTP
}

// ICloud are Apple's published limits (support.apple.com/102198).
var ICloud = Limits{MessagesPerDay: 1000, RecipientsPerDay: 1000, RecipientsPerMessage: 500, MaxMessageBytes: 20 << 20}

// DefaultLimits is the per-provider table: generic IMAP grants have no
// limits unless configured.
func DefaultLimits() map[string]Limits {
	return map[string]Limits{"icloud": ICloud}
}

// Window is the length of the rolling day.
const Window = 24 * time.Hour

// Store is what quota needs of the store.
type Store interface {
	ReserveSend(ctx context.Context, grantID, id string, at time.Time, n int, window time.Duration, maxMessages, maxRecipients int) (store.SendRefusal, error)
	ReleaseSend(ctx context.Context, grantID, id string) error
}

// Kind says which limit refused a send.
type Kind int

const (
	TooManyRecipients Kind = iota + 1 // per message: 400
	TooLarge                          // per message: 413
	DailyMessages                     // per day: 429
	DailyRecipients                   // per day: 429
)

// Error is a refused send. RetryAfter is set for the daily limits.
type Error struct {
	Kind       Kind
	Message    string
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message }

// Quota checks and counts sends.
type Quota struct {
	store  Store
	limits map[string]Limits
	now    func() time.Time
}

// New returns a Quota with limits per provider name (nil: DefaultLimits).
func New(st Store, limits map[string]Limits, now func() time.Time) *Quota {
	if limits == nil {
		limits = DefaultLimits()
	}
	if now == nil {
		now = time.Now
	}
	return &Quota{store: st, limits: limits, now: now}
}

// Reserve checks a send of a message of size bytes to recipients
// addresses and, when it fits, counts it. Call the returned release if
// the send does not go out. A refusal is an *Error.
func (q *Quota) Reserve(ctx context.Context, provider, grantID string, recipients int, size int64) (release func(context.Context) error, err error) {
	l := q.limits[provider]
	if l.RecipientsPerMessage > 0 && recipients > l.RecipientsPerMessage {
		return nil, &Error{Kind: TooManyRecipients,
			Message: fmt.Sprintf("this message has %d recipients; %s allows at most %d per message (to, cc and bcc together)", recipients, provider, l.RecipientsPerMessage)}
	}
	if l.MaxMessageBytes > 0 && size > l.MaxMessageBytes {
		return nil, &Error{Kind: TooLarge,
			Message: fmt.Sprintf("this message is %d bytes once encoded; %s accepts at most %d (%d MB), attachments included", size, provider, l.MaxMessageBytes, l.MaxMessageBytes>>20)}
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	now := q.now()
	r, err := q.store.ReserveSend(ctx, grantID, id, now, recipients, Window, l.MessagesPerDay, l.RecipientsPerDay)
	if err != nil {
		return nil, err
	}
	if r.Exceeded != "" {
		wait := max(r.RetryAt.Sub(now), time.Second).Round(time.Second)
		kind, what, limit := DailyMessages, "messages", l.MessagesPerDay
		if r.Exceeded == "recipients" {
			kind, what, limit = DailyRecipients, "recipients", l.RecipientsPerDay
		}
		return nil, &Error{Kind: kind, RetryAfter: wait,
			Message: fmt.Sprintf("%s allows %d %s a day per account and this send would exceed it; retry in %s", provider, limit, what, wait)}
	}
	return func(ctx context.Context) error { return q.store.ReleaseSend(ctx, grantID, id) }, nil
}
