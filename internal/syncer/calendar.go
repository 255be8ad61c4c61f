package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/orchard-mail/orchard/internal/caldavx"
	"github.com/orchard-mail/orchard/internal/icalconv"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
)

// CalendarSource is what the calendar sync reads from a CalDAV server.
type CalendarSource interface {
	Discover(ctx context.Context, baseURL string, a caldavx.Account) (string, error)
	Calendars(ctx context.Context, a caldavx.Account) ([]caldavx.Calendar, error)
	DefaultCalendarURL(ctx context.Context, a caldavx.Account) (string, error)
	SyncCollection(ctx context.Context, a caldavx.Account, calURL, token string) ([]caldavx.ObjectRef, []string, string, error)
	ListObjects(ctx context.Context, a caldavx.Account, calURL string) ([]caldavx.ObjectRef, error)
	GetObjects(ctx context.Context, a caldavx.Account, calURL string, hrefs []string) ([]caldavx.Object, error)
}

// CalendarID is the id of the grant's calendar at url: derived, so that
// the sync and Orchard's own writes agree without a lookup.
func CalendarID(grantID, url string) string { return derivedID(grantID, "calendar", url) }

// EventID is the id of the calendar object (a single event or a whole
// series) at href.
func EventID(calendarID, href string) string { return derivedID(calendarID, "event", href) }

// CalendarObjectFrom is the store row of the calendar object at href as
// the server holds it.
func CalendarObjectFrom(grantID, calendarID, href, etag string, data []byte) (store.CalendarObject, error) {
	obj, err := icalconv.Parse(data)
	if err != nil {
		return store.CalendarObject{}, fmt.Errorf("calendar object %s: %w", href, err)
	}
	start, end, err := obj.Bounds()
	if err != nil {
		return store.CalendarObject{}, fmt.Errorf("calendar object %s: %w", href, err)
	}
	return store.CalendarObject{ID: EventID(calendarID, href), GrantID: grantID, CalendarID: calendarID,
		Href: href, ETag: etag, UID: obj.UID(), Data: data, Start: start, End: end}, nil
}

// calendarGuard keeps a grant's calendar sync pass from writing back what
// it read before one of Orchard's own calendar writes: a pass applies its
// batches only while no write is in flight and none has happened since
// the pass began; otherwise it starts over (the write woke it anyway).
type calendarGuard struct {
	mu       sync.Mutex
	gen      uint64 // counts writes begun and ended
	inflight int
}

func (g *calendarGuard) idle() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inflight == 0
}

func (s *Supervisor) calendarGuard(grantID string) *calendarGuard {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.calGuards[grantID]
	if g == nil {
		g = &calendarGuard{}
		s.calGuards[grantID] = g
	}
	return g
}

// BeginCalendarWrite announces one of Orchard's own writes to the grant's
// calendars (CalDAV, then the store); call end when it is recorded. The
// sync then runs a pass, to read back what the server made of it (iCloud
// rewrites time zones).
func (s *Supervisor) BeginCalendarWrite(grantID string) (end func()) {
	g := s.calendarGuard(grantID)
	g.mu.Lock() // waits for a pass's batch being applied
	g.gen++
	g.inflight++
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.gen++
		g.inflight--
		g.mu.Unlock()
		s.calendarWake(grantID)
	}
}

func (s *Supervisor) calendarWake(grantID string) {
	s.mu.Lock()
	w := s.workers[grantID]
	s.mu.Unlock()
	if w == nil || w.calWake == nil {
		return
	}
	select {
	case w.calWake <- struct{}{}:
	default:
	}
}

// errCalendarRaced: Orchard wrote to the calendars during the pass.
var errCalendarRaced = errors.New("calendar written during the sync pass")

// apply writes a pass's batch unless Orchard wrote meanwhile.
func (cs *calendarSync) apply(ctx context.Context, b *store.CalendarBatch) error {
	g := cs.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inflight > 0 || g.gen != cs.gen {
		return errCalendarRaced
	}
	if err := cs.w.sup.opts.Store.ApplyCalendarBatch(ctx, b); err != nil {
		return err
	}
	if len(b.Changes) > 0 {
		cs.w.sup.changed()
	}
	return nil
}

// syncsCalendars tells whether the grant has calendars to sync: iCloud
// grants, when a CalDAV source is configured.
func (w *worker) syncsCalendars() bool {
	return w.grant.Provider == "icloud" && w.sup.opts.CalDAV != nil
}

// calendarLoop syncs the grant's calendars every CalendarInterval, and
// when woken, until ctx ends.
func (w *worker) calendarLoop(ctx context.Context) {
	o := w.sup.opts
	cs := &calendarSync{w: w, guard: w.sup.calendarGuard(w.grant.ID)}
	failures := 0
	for ctx.Err() == nil {
		err := cs.pass(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := o.CalendarInterval
		if errors.Is(err, errCalendarRaced) {
			// The write's end wakes the loop; the short wait only
			// bounds a missed wake-up.
			wait = time.Second
		} else if err != nil {
			failures++
			wait = max(backoff(failures), min(o.CalendarInterval, backoffMin))
			if provider.KindOf(err) == provider.KindAuth {
				wait = max(wait, authBackoffMin)
				w.loginRefused(ctx)
			}
			cs.acct.Home = "" // the home may have moved: discover again
			w.log.Warn("calendar sync failed", "error", err, "retry_in", wait.Round(time.Second))
			w.sup.setStatus(w.grant.ID, func(s *Status) { s.CalendarError = errText(err) })
		} else {
			failures = 0
			w.sup.setStatus(w.grant.ID, func(s *Status) { s.CalendarError, s.CalendarSyncedAt = "", o.Now() })
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-w.calWake:
			t.Stop()
		}
	}
}

// calendarSync is one grant's calendar sync state between passes.
type calendarSync struct {
	w     *worker
	acct  caldavx.Account
	guard *calendarGuard
	gen   uint64 // the guard's generation when the pass began
}

// pass brings the grant's calendars and their objects in step with the
// server. Changes found on a grant's first pass are history, not news: no
// change rows.
func (cs *calendarSync) pass(ctx context.Context) error {
	o := cs.w.sup.opts
	grantID := cs.w.grant.ID
	cs.guard.mu.Lock()
	cs.gen = cs.guard.gen
	cs.guard.mu.Unlock()
	if cs.acct.Username == "" {
		creds, err := o.Credentials(&cs.w.grant)
		if err != nil {
			return err
		}
		cs.acct = caldavx.Account{Username: creds.IMAPUsername, Password: creds.IMAPPassword}
	}
	if cs.acct.Home == "" {
		home, err := o.CalDAV.Discover(ctx, o.CalDAVURL, cs.acct)
		if err != nil {
			return err
		}
		cs.acct.Home = home
	}
	// The store first, the server second: a calendar Orchard creates
	// meanwhile is then either listed by the server or unknown to this
	// pass, never taken for one the server deleted.
	stored, err := o.Store.ListCalendars(ctx, grantID)
	if err != nil {
		return err
	}
	remote, err := o.CalDAV.Calendars(ctx, cs.acct)
	if err != nil {
		return err
	}
	defaultURL, err := o.CalDAV.DefaultCalendarURL(ctx, cs.acct)
	if err != nil {
		cs.w.log.Debug("no default calendar URL", "error", err)
		defaultURL = ""
	}
	notify := len(stored) > 0
	old := make(map[string]store.Calendar, len(stored))
	for _, c := range stored {
		old[c.ID] = c
	}
	primary := primaryURL(remote, defaultURL, stored)
	b := &store.CalendarBatch{GrantID: grantID}
	current := make([]store.Calendar, 0, len(remote))
	for _, r := range remote {
		c := store.Calendar{ID: CalendarID(grantID, r.URL), GrantID: grantID, Href: r.URL, Name: r.Name,
			Description: r.Description, Timezone: r.Timezone, Color: r.Color, ReadOnly: r.ReadOnly,
			IsOwned: !r.ReadOnly, IsPrimary: r.URL == primary}
		prev, known := old[c.ID]
		if known {
			c.CTag, c.SyncToken, c.CreatedAt = prev.CTag, prev.SyncToken, prev.CreatedAt
			delete(old, c.ID)
		}
		current = append(current, c)
		switch {
		case !known:
			b.Calendars = append(b.Calendars, c)
			if notify {
				b.Changes = append(b.Changes, store.Change{GrantID: grantID, ObjectType: "calendar", ObjectID: c.ID, Action: "created"})
			}
		case !sameCalendar(prev, c):
			b.Calendars = append(b.Calendars, c)
			b.Changes = append(b.Changes, store.Change{GrantID: grantID, ObjectType: "calendar", ObjectID: c.ID, Action: "updated"})
		}
	}
	for id := range old {
		b.DeletedCalendars = append(b.DeletedCalendars, id)
		b.Changes = append(b.Changes, store.Change{GrantID: grantID, ObjectType: "calendar", ObjectID: id, Action: "deleted"})
	}
	if len(b.Calendars)+len(b.DeletedCalendars) > 0 {
		if err := cs.apply(ctx, b); err != nil {
			return err
		}
	}
	for i, r := range remote {
		if err := cs.syncCalendar(ctx, r, current[i], notify); err != nil {
			return fmt.Errorf("calendar %q: %w", r.Name, err) // errCalendarRaced stays visible to errors.Is
		}
	}
	return nil
}

// primaryURL is the account's default calendar: the server's
// schedule-default-calendar-URL; else the one already primary, so that
// it does not move when calendars come and go; else the oldest writable
// one Orchard knows (a new account: the first by name).
func primaryURL(remote []caldavx.Calendar, defaultURL string, stored []store.Calendar) string {
	for _, r := range remote {
		if defaultURL != "" && sameURL(r.URL, defaultURL) {
			return r.URL
		}
	}
	writable := map[string]bool{}
	for _, r := range remote {
		if !r.ReadOnly {
			writable[r.URL] = true
		}
	}
	known := slices.DeleteFunc(slices.Clone(stored), func(c store.Calendar) bool { return !writable[c.Href] })
	for _, c := range known {
		if c.IsPrimary {
			return c.Href
		}
	}
	if i := oldestWritable(known); i >= 0 {
		return known[i].Href
	}
	candidates := slices.DeleteFunc(slices.Clone(remote), func(r caldavx.Calendar) bool { return r.ReadOnly })
	slices.SortFunc(candidates, func(a, b caldavx.Calendar) int { return strings.Compare(a.Name+a.URL, b.Name+b.URL) })
	if len(candidates) == 0 {
		return ""
	}
	return candidates[0].URL
}

// oldestWritable is the index of the writable calendar stored first
// (then by URL), or -1.
func oldestWritable(cals []store.Calendar) int {
	best := -1
	for i, c := range cals {
		if c.ReadOnly {
			continue
		}
		if best < 0 || c.CreatedAt.Before(cals[best].CreatedAt) || (c.CreatedAt.Equal(cals[best].CreatedAt) && c.Href < cals[best].Href) {
			best = i
		}
	}
	return best
}

// MarkPrimary marks the oldest writable calendar primary when none is:
// the rule of the sync, for calendars Orchard created before a sync pass
// looked at them.
func MarkPrimary(cals []store.Calendar) {
	if slices.ContainsFunc(cals, func(c store.Calendar) bool { return c.IsPrimary }) {
		return
	}
	if i := oldestWritable(cals); i >= 0 {
		cals[i].IsPrimary = true
	}
}

func sameURL(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/") ||
		strings.HasSuffix(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}

func sameCalendar(a, b store.Calendar) bool {
	return a.Name == b.Name && a.Description == b.Description && a.Timezone == b.Timezone && a.Color == b.Color &&
		a.ReadOnly == b.ReadOnly && a.IsOwned == b.IsOwned && a.IsPrimary == b.IsPrimary && a.Href == b.Href
}

// syncCalendar brings one calendar's objects in step: with sync-collection
// from the stored token where the server supports it (RFC 6578), else by
// comparing every ETag; nothing at all when the ctag has not moved.
func (cs *calendarSync) syncCalendar(ctx context.Context, r caldavx.Calendar, c store.Calendar, notify bool) error {
	o := cs.w.sup.opts
	if c.CTag != "" && c.CTag == r.CTag && (r.SyncToken == "" || r.SyncToken == c.SyncToken) {
		return nil
	}
	// The stored tags before the server's listing, as in pass: an event
	// Orchard writes meanwhile is never taken for a deleted one.
	tags, err := o.Store.CalendarObjectTags(ctx, c.GrantID, c.ID)
	if err != nil {
		return err
	}
	var changed []caldavx.ObjectRef
	var deleted []string
	token := ""
	incremental := false
	if r.SyncToken != "" {
		changed, deleted, token, err = o.CalDAV.SyncCollection(ctx, cs.acct, r.URL, c.SyncToken)
		incremental = c.SyncToken != ""
		if errors.Is(err, caldavx.ErrSyncTokenInvalid) {
			changed, deleted, token, err = o.CalDAV.SyncCollection(ctx, cs.acct, r.URL, "")
			incremental = false
		}
	} else {
		changed, err = o.CalDAV.ListObjects(ctx, cs.acct, r.URL)
	}
	if err != nil {
		return err
	}
	if !incremental {
		// A full listing: whatever is stored and not listed is gone.
		listed := make(map[string]bool, len(changed))
		for _, ref := range changed {
			listed[ref.Href] = true
		}
		deleted = deleted[:0]
		for href := range tags {
			if !listed[href] {
				deleted = append(deleted, href)
			}
		}
	}
	// Unchanged ETags (Orchard's own writes, recorded already) need no fetch.
	var hrefs []string
	for _, ref := range changed {
		if tag, ok := tags[ref.Href]; !ok || tag != ref.ETag || ref.ETag == "" {
			hrefs = append(hrefs, ref.Href)
		}
	}
	b := &store.CalendarBatch{GrantID: c.GrantID}
	for start := 0; start < len(hrefs); start += 100 {
		objs, err := o.CalDAV.GetObjects(ctx, cs.acct, r.URL, hrefs[start:min(start+100, len(hrefs))])
		if err != nil {
			return err
		}
		for _, obj := range objs {
			row, err := CalendarObjectFrom(c.GrantID, c.ID, obj.Href, obj.ETag, obj.Data)
			if err != nil {
				// A VTODO in an event calendar, or iCalendar nobody can
				// read: skip it rather than stop the calendar's sync.
				cs.w.log.Info("skipping calendar object", "href", obj.Href, "error", err)
				continue
			}
			b.Objects = append(b.Objects, row)
			action := "updated"
			if _, ok := tags[obj.Href]; !ok {
				action = "created"
			}
			if notify {
				b.Changes = append(b.Changes, store.Change{GrantID: c.GrantID, ObjectType: "event", ObjectID: row.ID, Action: action})
			}
		}
	}
	for _, href := range deleted {
		if _, ok := tags[href]; !ok {
			continue
		}
		id := EventID(c.ID, href)
		b.DeletedObjects = append(b.DeletedObjects, store.CalendarObjectKey{CalendarID: c.ID, ID: id})
		if notify {
			b.Changes = append(b.Changes, store.Change{GrantID: c.GrantID, ObjectType: "event", ObjectID: id, Action: "deleted"})
		}
	}
	c.CTag, c.SyncToken = r.CTag, token
	b.Calendars = []store.Calendar{c}
	return cs.apply(ctx, b)
}
