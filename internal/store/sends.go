package store

import (
	"context"
	"time"
)

// SendLog counts a grant's sends for the provider's daily limits. A send
// is reserved before it goes out and released if it does not, so that
// concurrent sends cannot both take the last free unit.
type SendLog interface {
	// ReserveSend records send id of grantID at `at` with n recipients when,
	// counting it, the sends of the window ending at `at` stay within
	// maxMessages and maxRecipients (0: no limit). Otherwise nothing is
	// recorded and the refusal says which limit and when enough of the
	// window will have passed for this send to fit.
	ReserveSend(ctx context.Context, grantID, id string, at time.Time, n int, window time.Duration, maxMessages, maxRecipients int) (SendRefusal, error)
	// ReleaseSend forgets a reservation whose send did not go out.
	ReleaseSend(ctx context.Context, grantID, id string) error
}

// SendRefusal is a ReserveSend that did not fit; the zero value means the
// send was recorded.
type SendRefusal struct {
	Exceeded string // "messages" or "recipients"; "" when the send fits
	RetryAt  time.Time
}
