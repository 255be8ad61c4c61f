package webhook

import (
	"context"
	"errors"
	"fmt"

	"github.com/orchard-mail/orchard/internal/store"
)

// Publish enqueues a notification that has no change row to come from —
// a grant.deleted, whose change rows go with the grant — for every
// subscribed webhook of its application. It enqueues without moving the
// dispatch cursor (a compare-and-set on its current value), so it never
// races the enqueue loop into skipping or repeating change rows.
func (d *Dispatcher) Publish(ctx context.Context, n Notification) error {
	hooks, err := d.opts.Store.DispatchableWebhooks(ctx)
	if err != nil {
		return err
	}
	ds := d.deliveries(store.Change{CreatedAt: d.opts.Now()}, n, hooks)
	if len(ds) == 0 {
		return nil
	}
	for range 10 {
		cur, err := d.opts.Store.DispatchCursor(ctx)
		if err != nil {
			return err
		}
		err = d.opts.Store.EnqueueDeliveries(ctx, cur, cur, ds)
		if errors.Is(err, store.ErrConflict) {
			continue // the enqueue loop moved the cursor meanwhile
		}
		if err != nil {
			return err
		}
		wake(d.wakeDeliver)
		return nil
	}
	return fmt.Errorf("webhook: publish %s: the dispatch cursor kept moving", n.Type)
}
