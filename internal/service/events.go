package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/caldavx"
	"github.com/orchard-mail/orchard/internal/icalconv"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/syncer"
)

// Limits of event listings: a range longer than a year (iCloud's own cap)
// or more occurrences than maxInstances is refused rather than expanded.
const (
	maxEventRange = 366 * 24 * time.Hour
	maxInstances  = 10000
	// instanceLookupCap bounds the two years searched for one occurrence
	// by its instance id (an hourly series has 17,544 in two years).
	instanceLookupCap = 20000
)

// EventFilter is a parsed events list request. Start and End are set by
// the caller (Nylas defaults: now and a month later).
type EventFilter struct {
	CalendarID                   string
	Start, End                   time.Time
	Expand                       bool
	ShowCancelled                bool
	Busy                         *bool
	Title, Description, Location string // case-insensitive substrings
	ICalUID                      string
	MasterEventID                string
	UpdatedAfter, UpdatedBefore  time.Time
}

// Events lists a calendar's events overlapping [Start, End), by start time
// then id. With Expand every occurrence of a series is its own event;
// without it a series is its master event.
func (s *Service) Events(ctx context.Context, appID, grantRef string, f EventFilter) (*store.Grant, []api.Event, error) {
	if !f.End.After(f.Start) {
		return nil, nil, invalid("end must be after start")
	}
	if f.End.Sub(f.Start) > maxEventRange {
		return nil, nil, invalid("start and end may be at most 366 days apart")
	}
	g, c, err := s.Calendar(ctx, appID, grantRef, f.CalendarID)
	if err != nil {
		return nil, nil, err
	}
	q := store.CalendarObjectQuery{GrantID: g.ID, CalendarID: c.ID, Start: f.Start, End: f.End, UID: f.ICalUID,
		UpdatedAfter: f.UpdatedAfter, UpdatedBefore: f.UpdatedBefore}
	if f.MasterEventID != "" {
		// The occurrences of one series, whatever expand says.
		obj, err := s.store.GetCalendarObject(ctx, g.ID, c.ID, f.MasterEventID)
		if errors.Is(err, store.ErrNotFound) {
			return g, []api.Event{}, nil
		}
		if err != nil {
			return nil, nil, err
		}
		return s.eventsOf(g, c, []store.CalendarObject{*obj}, f, true)
	}
	objs, err := s.store.ListCalendarObjects(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	return s.eventsOf(g, c, objs, f, f.Expand)
}

func (s *Service) eventsOf(g *store.Grant, c *store.Calendar, objs []store.CalendarObject, f EventFilter, expand bool) (*store.Grant, []api.Event, error) {
	out := []api.Event{}
	for _, o := range objs {
		obj, err := icalconv.Parse(o.Data)
		if err != nil {
			s.log.Warn("unreadable calendar object", "grant_id", g.ID, "href", o.Href, "error", err)
			continue
		}
		ids := icalconv.IDs{GrantID: g.ID, CalendarID: c.ID, EventID: o.ID}
		var evs []api.Event
		if expand && obj.Recurring() {
			left := maxInstances - len(out)
			if left <= 0 {
				return nil, nil, invalid("more than %d occurrences between start and end: narrow the range", maxInstances)
			}
			evs, err = obj.Instances(ids, f.Start, f.End, left)
			if errors.Is(err, icalconv.ErrTooManyInstances) {
				return nil, nil, invalid("more than %d occurrences between start and end: narrow the range", maxInstances)
			}
		} else {
			var e api.Event
			e, err = obj.Event(ids)
			evs = []api.Event{e}
		}
		if err != nil {
			s.log.Warn("unreadable calendar object", "grant_id", g.ID, "href", o.Href, "error", err)
			continue
		}
		for _, e := range evs {
			e.ReadOnly = e.ReadOnly || c.ReadOnly
			if keepEvent(e, f) {
				out = append(out, e)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b api.Event) int {
		if d := startOf(a.When) - startOf(b.When); d != 0 {
			if d < 0 {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return g, out, nil
}

// keepEvent applies the filters the store cannot.
func keepEvent(e api.Event, f EventFilter) bool {
	contains := func(s, sub string) bool {
		return sub == "" || strings.Contains(strings.ToLower(s), strings.ToLower(sub))
	}
	switch {
	case e.Status == "cancelled" && !f.ShowCancelled:
		return false
	case f.Busy != nil && e.Busy != *f.Busy:
		return false
	case !contains(e.Title, f.Title), !contains(e.Description, f.Description), !contains(e.Location, f.Location):
		return false
	}
	return true
}

// startOf is the Unix second an event starts (all-day: midnight UTC).
func startOf(w api.When) int64 {
	switch {
	case w.StartTime != 0:
		return w.StartTime
	case w.Time != 0:
		return w.Time
	}
	d := w.Date
	if d == "" {
		d = w.StartDate
	}
	t, _ := time.Parse("2006-01-02", d)
	return t.Unix()
}

// eventOp is an event being read or changed: its calendar, its stored
// object (a series or single event) and, for one occurrence, the
// occurrence's original start.
type eventOp struct {
	g        *store.Grant
	cals     []store.Calendar
	cal      *store.Calendar
	obj      *store.CalendarObject
	parsed   *icalconv.Object
	instance time.Time // zero: the event or series itself
	allDay   bool
}

func (s *Service) eventOp(ctx context.Context, appID, grantRef, calendarID, id string) (*eventOp, error) {
	g, cals, err := s.Calendars(ctx, appID, grantRef)
	if err != nil {
		return nil, err
	}
	c, err := findCalendar(cals, calendarID)
	if err != nil {
		return nil, err
	}
	op := &eventOp{g: g, cals: cals, cal: c}
	objID := id
	if master, start, allDay, ok := icalconv.ParseInstanceID(id); ok {
		objID, op.instance, op.allDay = master, start, allDay
	}
	op.obj, err = s.store.GetCalendarObject(ctx, g.ID, c.ID, objID)
	if err != nil {
		return nil, storeErr(err, "event "+id)
	}
	if op.parsed, err = icalconv.Parse(op.obj.Data); err != nil {
		return nil, fmt.Errorf("event %s: stored object does not parse: %w", id, err)
	}
	return op, nil
}

func (op *eventOp) ids() icalconv.IDs {
	return icalconv.IDs{GrantID: op.g.ID, CalendarID: op.cal.ID, EventID: op.obj.ID}
}

// event is the API form of what op names: the series or one occurrence.
func (op *eventOp) event(id string) (api.Event, error) {
	if op.instance.IsZero() {
		e, err := op.parsed.Event(op.ids())
		e.ReadOnly = e.ReadOnly || op.cal.ReadOnly
		return e, err
	}
	// An override may have moved the occurrence anywhere: look a year
	// either side of where it was.
	evs, err := op.parsed.Instances(op.ids(), op.instance.AddDate(-1, 0, 0), op.instance.AddDate(1, 0, 1), instanceLookupCap)
	if err != nil {
		return api.Event{}, err
	}
	for _, e := range evs {
		if e.ID == id {
			e.ReadOnly = e.ReadOnly || op.cal.ReadOnly
			return e, nil
		}
	}
	return api.Event{}, notFound("event %s not found: the series has no occurrence then", id)
}

// Event returns one event, or one occurrence of a series by its instance
// id.
func (s *Service) Event(ctx context.Context, appID, grantRef, calendarID, id string) (*store.Grant, api.Event, error) {
	op, err := s.eventOp(ctx, appID, grantRef, calendarID, id)
	if err != nil {
		return nil, api.Event{}, err
	}
	e, err := op.event(id)
	return op.g, e, err
}

// CreateEvent writes a new event to the calendar (PUT with If-None-Match)
// and records it.
func (s *Service) CreateEvent(ctx context.Context, appID, grantRef, calendarID string, in api.EventInput) (*store.Grant, api.Event, error) {
	g, cals, err := s.Calendars(ctx, appID, grantRef)
	if err != nil {
		return nil, api.Event{}, err
	}
	c, err := findCalendar(cals, calendarID)
	if err != nil {
		return nil, api.Event{}, err
	}
	if c.ReadOnly {
		return nil, api.Event{}, invalid("calendar %s is read-only", c.ID)
	}
	if in.When == nil {
		return nil, api.Event{}, invalid("when is required")
	}
	obj, err := icalconv.New(in, "", s.now())
	if err != nil {
		return nil, api.Event{}, eventInputErr(err)
	}
	defer s.beginCalendarWrite(g.ID)()
	href := strings.TrimSuffix(c.Href, "/") + "/" + obj.UID() + ".ics"
	op := &eventOp{g: g, cals: cals, cal: c, parsed: obj,
		obj: &store.CalendarObject{ID: syncer.EventID(c.ID, href), GrantID: g.ID, CalendarID: c.ID, Href: href}}
	if err := s.writeEvent(ctx, op, "created"); err != nil {
		return nil, api.Event{}, err
	}
	e, err := op.event(op.obj.ID)
	return g, e, err
}

// UpdateEvent changes an event, a whole series (its overrides kept) or,
// by instance id, one occurrence (an override). A change made meanwhile
// by someone else is a 409, never overwritten.
func (s *Service) UpdateEvent(ctx context.Context, appID, grantRef, calendarID, id string, in api.EventInput) (*store.Grant, api.Event, error) {
	op, err := s.eventOp(ctx, appID, grantRef, calendarID, id)
	if err != nil {
		return nil, api.Event{}, err
	}
	if op.cal.ReadOnly {
		return nil, api.Event{}, invalid("calendar %s is read-only", op.cal.ID)
	}
	defer s.beginCalendarWrite(op.g.ID)()
	if op.instance.IsZero() {
		err = op.parsed.Update(in, s.now())
	} else {
		if _, err := op.event(id); err != nil {
			return nil, api.Event{}, err
		}
		err = op.parsed.UpdateInstance(op.instance, in, s.now())
	}
	if err != nil {
		return nil, api.Event{}, eventInputErr(err)
	}
	if err := s.writeEvent(ctx, op, "updated"); err != nil {
		return nil, api.Event{}, err
	}
	e, err := op.event(id)
	return op.g, e, err
}

// DeleteEvent deletes an event or series, or by instance id one
// occurrence (an EXDATE).
func (s *Service) DeleteEvent(ctx context.Context, appID, grantRef, calendarID, id string) error {
	op, err := s.eventOp(ctx, appID, grantRef, calendarID, id)
	if err != nil {
		return err
	}
	if op.cal.ReadOnly {
		return invalid("calendar %s is read-only", op.cal.ID)
	}
	defer s.beginCalendarWrite(op.g.ID)()
	if !op.instance.IsZero() {
		if _, err := op.event(id); err != nil {
			return err
		}
		if err := op.parsed.DeleteInstance(op.instance, s.now()); err != nil {
			return eventInputErr(err)
		}
		return s.writeEvent(ctx, op, "updated")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	a, err := s.calendarAccount(ctx, op.g, op.cals)
	if err != nil {
		return err
	}
	if err := s.caldav.DeleteObject(ctx, a, op.obj.Href, op.obj.ETag); err != nil && !errors.Is(err, caldavx.ErrNotFound) {
		return calDAVErr(err, "event "+id)
	}
	return s.store.ApplyCalendarBatch(ctx, &store.CalendarBatch{GrantID: op.g.ID,
		DeletedObjects: []store.CalendarObjectKey{{CalendarID: op.cal.ID, ID: op.obj.ID}},
		Changes:        []store.Change{{GrantID: op.g.ID, ObjectType: "event", ObjectID: op.obj.ID, Action: "deleted"}}})
}

// writeEvent PUTs op's object (If-None-Match for a new one, If-Match its
// ETag otherwise) and records what the server now holds.
func (s *Service) writeEvent(ctx context.Context, op *eventOp, action string) error {
	data, err := op.parsed.Encode()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	a, err := s.calendarAccount(ctx, op.g, op.cals)
	if err != nil {
		return err
	}
	etag, err := s.caldav.PutObject(ctx, a, op.obj.Href, data, op.obj.ETag)
	if err != nil {
		return calDAVErr(err, "event "+op.obj.ID)
	}
	obj, err := syncer.CalendarObjectFrom(op.g.ID, op.cal.ID, op.obj.Href, etag, data)
	if err != nil {
		return err
	}
	obj.CreatedAt = op.obj.CreatedAt
	op.obj = &obj
	err = s.store.ApplyCalendarBatch(ctx, &store.CalendarBatch{GrantID: op.g.ID, Objects: []store.CalendarObject{obj},
		Changes: []store.Change{{GrantID: op.g.ID, ObjectType: "event", ObjectID: obj.ID, Action: action}}})
	return err
}

// calDAVErr turns the CalDAV preconditions into use-case errors.
func calDAVErr(err error, what string) error {
	switch {
	case errors.Is(err, caldavx.ErrPreconditionFailed):
		return conflict("%s was changed on the server since Orchard last read it; read it again and retry", what)
	case errors.Is(err, caldavx.ErrNotFound):
		return notFound("%s is no longer on the server", what)
	}
	return err
}

// eventInputErr turns a refused conversion into a 400 naming the field.
func eventInputErr(err error) error {
	var ie *icalconv.InvalidError
	if errors.As(err, &ie) {
		return invalid("%s: %s", ie.Field, ie.Message)
	}
	return err
}

// FreeBusy computes busy time from the grant's own calendars (iCloud has
// no free/busy service): the grant's address gets its busy slots, any
// other address an error entry.
func (s *Service) FreeBusy(ctx context.Context, appID, grantRef string, in api.FreeBusyRequest) ([]api.FreeBusy, error) {
	start, end := time.Unix(in.StartTime, 0), time.Unix(in.EndTime, 0)
	switch {
	case in.StartTime == 0 || in.EndTime == 0:
		return nil, invalid("start_time and end_time are required")
	case !end.After(start):
		return nil, invalid("end_time must be after start_time")
	case end.Sub(start) > maxEventRange:
		return nil, invalid("start_time and end_time may be at most 366 days apart")
	case len(in.Emails) == 0:
		return nil, invalid("emails is required")
	}
	g, cals, err := s.Calendars(ctx, appID, grantRef)
	if err != nil {
		return nil, err
	}
	tentative := in.TentativeAsBusy == nil || *in.TentativeAsBusy
	out := []api.FreeBusy{}
	var own []api.TimeSlot
	ownDone := false
	for _, email := range in.Emails {
		if !strings.EqualFold(email, g.Email) {
			out = append(out, api.FreeBusy{Object: "error", Email: email,
				Error: "Orchard computes free/busy from this grant's own calendars only; " + email + " is not its address"})
			continue
		}
		if !ownDone {
			if own, err = s.busySlots(ctx, g, ownedCalendars(cals), start, end, tentative); err != nil {
				return nil, err
			}
			ownDone = true
		}
		out = append(out, api.FreeBusy{Object: "free_busy", Email: email, TimeSlots: &own})
	}
	return out, nil
}

func (s *Service) busySlots(ctx context.Context, g *store.Grant, cals []store.Calendar, start, end time.Time, tentative bool) ([]api.TimeSlot, error) {
	var periods [][2]time.Time
	for _, c := range cals {
		objs, err := s.store.ListCalendarObjects(ctx, store.CalendarObjectQuery{GrantID: g.ID, CalendarID: c.ID, Start: start, End: end})
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			obj, err := icalconv.Parse(o.Data)
			if err != nil {
				continue
			}
			ps, err := obj.BusyPeriods(start, end, tentative)
			if err != nil {
				continue
			}
			periods = append(periods, ps...)
		}
	}
	slices.SortFunc(periods, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	slots := []api.TimeSlot{}
	for _, p := range periods {
		if n := len(slots); n > 0 && p[0].Unix() <= slots[n-1].EndTime {
			slots[n-1].EndTime = max(slots[n-1].EndTime, p[1].Unix())
			continue
		}
		slots = append(slots, api.TimeSlot{Object: "time_slot", StartTime: p[0].Unix(), EndTime: p[1].Unix(), Status: "busy"})
	}
	return slots, nil
}
