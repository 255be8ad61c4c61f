package store

import (
	"context"
	"time"
)

// CalendarStore keeps each grant's synced calendars and calendar objects,
// written only through ApplyCalendarBatch (one transaction with its change
// rows, like ApplyMailBatch), so that the API never sees half of a sync
// step and every change row describes something that committed.
//
// A calendar object is one CalDAV calendar object resource: one .ics
// holding a single event, or a recurring series with its overrides. The
// store keeps its text as the server holds it; expanding recurrences and
// reading properties is left to the caller. It also keeps the bounds of all
// its occurrences, so that a time-range listing needs no parsing.
//
// Every method is scoped by the grant id it is given: another grant's rows
// are never seen nor written, even under the same ids. Deleting a grant
// deletes its calendars, their objects and its change rows. Slices and maps
// are returned non-nil; times in UTC with microsecond precision. Text that
// is ordered (names, ids) is compared byte by byte in both dialects.
type CalendarStore interface {
	ApplyCalendarBatch(ctx context.Context, b *CalendarBatch) error

	// ListCalendars returns the grant's calendars by name, then id.
	ListCalendars(ctx context.Context, grantID string) ([]Calendar, error)
	// GetCalendar returns ErrNotFound for an unknown id (or another
	// grant's).
	GetCalendar(ctx context.Context, grantID, id string) (*Calendar, error)

	// ListCalendarObjects returns a calendar's objects overlapping
	// [Start, End) — Start < object.End (or object.End zero: endless) and
	// object.Start < End; zero bounds do not limit — ordered by Start then
	// ID. Limit 0 = no limit. An empty q.CalendarID is an error rather
	// than "every calendar", so that a caller's bug cannot turn into a scan
	// of the whole grant.
	ListCalendarObjects(ctx context.Context, q CalendarObjectQuery) ([]CalendarObject, error)
	// GetCalendarObject returns ErrNotFound for an unknown key (or another
	// grant's).
	GetCalendarObject(ctx context.Context, grantID, calendarID, id string) (*CalendarObject, error)
	// CalendarObjectTags maps href → etag of a calendar's objects, for the
	// sync's etag comparison (which objects to fetch again, which are
	// gone). It reads neither the objects' text nor their other columns.
	// Hrefs are expected to be unique within a calendar, as CalDAV makes
	// them; the store does not enforce it, and if two objects share one
	// the greater ID's etag is returned.
	CalendarObjectTags(ctx context.Context, grantID, calendarID string) (map[string]string, error)
}

// Calendar is one CalDAV calendar collection of a grant with its sync
// state.
type Calendar struct {
	ID      string // opaque and stable for the calendar's life
	GrantID string
	Href    string // absolute URL of the collection
	// Name, Description, Timezone (an IANA name) and Color are the
	// collection's properties as the server gave them; "" when it has none.
	Name        string
	Description string
	Timezone    string
	Color       string
	ReadOnly    bool // the grant may not write into it
	IsOwned     bool // the grant's own, not shared with it
	IsPrimary   bool // the account's default calendar
	// CTag and SyncToken are the sync's state (getctag and the
	// sync-collection token), written only by the sync.
	CTag      string
	SyncToken string
	// CreatedAt is kept when an upsert finds the calendar stored; both
	// default to the time of the batch when zero.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CalendarObject is one calendar object resource (.ics) of a calendar.
type CalendarObject struct {
	ID         string // unique within its calendar
	GrantID    string
	CalendarID string
	Href       string // absolute URL of the resource
	ETag       string
	UID        string // the iCalendar UID shared by the series and its overrides
	// Data is the iCalendar text as the server holds it, stored verbatim.
	// An empty Data reads back as nil.
	Data []byte
	// Start and End bound all occurrences (of the series with its
	// overrides): Start is the earliest occurrence's start, End the latest
	// occurrence's end. End zero means an endless series.
	Start time.Time
	End   time.Time
	// CreatedAt is kept when an upsert finds the object stored; both
	// default to the time of the batch when zero.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CalendarObjectQuery selects a calendar's objects for ListCalendarObjects.
// Zero fields do not filter; filters combine with AND.
type CalendarObjectQuery struct {
	GrantID    string
	CalendarID string // required
	// Start and End select the objects overlapping [Start, End) (see
	// ListCalendarObjects).
	Start time.Time
	End   time.Time
	UID   string // only objects with this UID
	// UpdatedAfter and UpdatedBefore are exclusive: UpdatedAt >
	// UpdatedAfter and UpdatedAt < UpdatedBefore.
	UpdatedAfter  time.Time
	UpdatedBefore time.Time
	Limit         int // 0: no limit
}

// CalendarObjectKey names one calendar object.
type CalendarObjectKey struct {
	CalendarID string
	ID         string
}

// CalendarBatch is one atomic unit of calendar sync work for one grant.
// ApplyCalendarBatch applies its parts in field order inside one
// transaction, the change rows last, and any error leaves nothing behind.
// It does not modify b.
//
// Rows with an empty GrantID take b.GrantID; another grant's is an error.
// Within one part, the last entry for an id or key wins. An object whose
// calendar is not stored for the grant (including one that DeletedCalendars
// removed earlier in the batch) fails the batch with ErrNotFound, as does an
// unknown grant. Ids and keys that are not stored are ignored in
// DeletedCalendars and DeletedObjects: the sync may learn of a deletion
// twice.
type CalendarBatch struct {
	GrantID string
	// Calendars are upserted by ID: every field but CreatedAt, which a
	// stored calendar keeps.
	Calendars []Calendar
	// DeletedCalendars are removed with their objects.
	DeletedCalendars []string
	// Objects are upserted by (CalendarID, ID): every field but
	// CreatedAt, which a stored object keeps.
	Objects        []CalendarObject
	DeletedObjects []CalendarObjectKey
	// Changes are recorded as given (ObjectType "calendar" or "event"),
	// in the same table and with the same ids as the mail's, so the
	// webhook dispatcher reads both through ListChanges; a zero CreatedAt
	// is the time of the batch.
	Changes []Change
}
