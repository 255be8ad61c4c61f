package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// calendarTests are the CalendarStore part of the suite.
var calendarTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"CalendarRoundTrip", testCalendarRoundTrip},
	{"CalendarCreatedAtKept", testCalendarCreatedAtKept},
	{"CalendarObjectRange", testCalendarObjectRange},
	{"CalendarOrderAndLimit", testCalendarOrderAndLimit},
	{"CalendarUIDFilter", testCalendarUIDFilter},
	{"CalendarUpdatedFilters", testCalendarUpdatedFilters},
	{"CalendarDeletes", testCalendarDeletes},
	{"CalendarValidation", testCalendarValidation},
	{"CalendarBatchAtomicity", testCalendarBatchAtomicity},
	{"CalendarTenantIsolation", testCalendarTenantIsolation},
	{"CalendarObjectTags", testCalendarObjectTags},
	{"CalendarChanges", testCalendarChanges},
	{"CalendarGrantDeletion", testCalendarGrantDeletion},
	{"CalendarLargeBatch", testCalendarLargeBatch},
}

// --- helpers ---------------------------------------------------------------

func applyCal(t *testing.T, s store.Store, b *store.CalendarBatch) {
	t.Helper()
	ok(t, s.ApplyCalendarBatch(t.Context(), b), "apply calendar batch")
}

// mkCalendar returns a calendar with every field set.
func mkCalendar(grantID, id, name string) store.Calendar {
	return store.Calendar{
		ID: id, GrantID: grantID,
		Href:        "https://caldav.example.com/123/calendars/" + id + "/",
		Name:        name,
		Description: "Description of " + id,
		Timezone:    "Europe/Paris",
		Color:       "#FF2968",
		ReadOnly:    true,
		IsOwned:     true,
		IsPrimary:   true,
		CTag:        "ctag-" + id,
		SyncToken:   "https://caldav.example.com/sync/" + id + "/1",
		CreatedAt:   at(-60),
		UpdatedAt:   at(-59),
	}
}

// mkObject returns an object of calendarID with every field set, from
// startMin to endMin minutes after the suite's reference time.
func mkObject(grantID, calendarID, id string, startMin, endMin int) store.CalendarObject {
	return store.CalendarObject{
		ID: id, GrantID: grantID, CalendarID: calendarID,
		Href:  "https://caldav.example.com/123/calendars/" + calendarID + "/" + id + ".ics",
		ETag:  `"etag-` + id + `"`,
		UID:   "uid-" + id,
		Data:  []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:uid-" + id + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"),
		Start: at(startMin),
		End:   at(endMin),
	}
}

// normCalendar and normObject are what the store gives back for a row
// written with explicit times.
func normCalendar(c store.Calendar) store.Calendar {
	c.CreatedAt, c.UpdatedAt = normalized(c.CreatedAt), normalized(c.UpdatedAt)
	return c
}

func normObject(o store.CalendarObject) store.CalendarObject {
	o.Start, o.CreatedAt, o.UpdatedAt = normalized(o.Start), normalized(o.CreatedAt), normalized(o.UpdatedAt)
	if !o.End.IsZero() {
		o.End = normalized(o.End)
	}
	if len(o.Data) == 0 {
		o.Data = nil
	}
	return o
}

func objectIDs(os []store.CalendarObject) []string {
	ids := make([]string, len(os))
	for i, o := range os {
		ids[i] = o.ID
	}
	return ids
}

func calendarIDs(cs []store.Calendar) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

func listObjects(t *testing.T, s store.Store, q store.CalendarObjectQuery) []store.CalendarObject {
	t.Helper()
	os, err := s.ListCalendarObjects(t.Context(), q)
	ok(t, err, "list calendar objects")
	if os == nil {
		t.Fatalf("list calendar objects %+v: nil slice", q)
	}
	return os
}

func listCalendars(t *testing.T, s store.Store, grantID string) []store.Calendar {
	t.Helper()
	cs, err := s.ListCalendars(t.Context(), grantID)
	ok(t, err, "list calendars")
	if cs == nil {
		t.Fatal("list calendars: nil slice")
	}
	return cs
}

func objectTags(t *testing.T, s store.Store, grantID, calendarID string) map[string]string {
	t.Helper()
	tags, err := s.CalendarObjectTags(t.Context(), grantID, calendarID)
	ok(t, err, "calendar object tags")
	if tags == nil {
		t.Fatal("calendar object tags: nil map")
	}
	return tags
}

// calendarSnapshot renders everything a grant's calendar reads return for
// the given calendar ids (stored or not), with the grant's change rows, to
// compare before and after.
func calendarSnapshot(t *testing.T, s store.Store, grantID string, calendarIDs ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "calendars %+v\n", listCalendars(t, s, grantID))
	for _, id := range calendarIDs {
		fmt.Fprintf(&b, "%s objects %+v\n", id, listObjects(t, s, store.CalendarObjectQuery{GrantID: grantID, CalendarID: id}))
		fmt.Fprintf(&b, "%s tags %v\n", id, objectTags(t, s, grantID, id))
	}
	var changes []store.Change
	for _, c := range changesOf(t, s) {
		if c.GrantID == grantID {
			changes = append(changes, c)
		}
	}
	fmt.Fprintf(&b, "changes %v", changeKeys(changes))
	return b.String()
}

// --- tests -----------------------------------------------------------------

func testCalendarRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	cal := mkCalendar(g, "cal-1", "Home")
	obj := mkObject(g, "cal-1", "obj-1", 10, 70)
	obj.UID = "Ünïcode-UID@example.com"
	obj.Data = []byte("BEGIN:VCALENDAR\r\nSUMMARY:Zoë — café\r\n\x00\xff binary-safe\r\nEND:VCALENDAR\r\n")
	obj.CreatedAt, obj.UpdatedAt = at(-30), at(-29)
	endless := mkObject("", "cal-1", "obj-endless", 5, 0) // empty GrantID: the batch's
	endless.End = time.Time{}
	endless.CreatedAt, endless.UpdatedAt = at(-20), at(-19)
	other := mkCalendar("", "cal-2", "Work")
	other.ReadOnly, other.IsOwned, other.IsPrimary = false, false, false
	other.Description, other.Timezone, other.Color, other.CTag, other.SyncToken = "", "", "", "", ""

	b := &store.CalendarBatch{GrantID: g, Calendars: []store.Calendar{cal, other},
		Objects: []store.CalendarObject{obj, endless}}
	copied := &store.CalendarBatch{GrantID: g, Calendars: slices.Clone(b.Calendars), Objects: slices.Clone(b.Objects)}
	applyCal(t, s, b)
	if !reflect.DeepEqual(b, copied) {
		t.Fatalf("ApplyCalendarBatch modified its batch:\n got  %+v\n want %+v", b, copied)
	}

	wantCal := normCalendar(cal)
	wantOther := normCalendar(other)
	wantOther.GrantID = g
	got, err := s.GetCalendar(ctx, g, "cal-1")
	ok(t, err, "get calendar")
	same(t, got, &wantCal, "get calendar")
	same(t, listCalendars(t, s, g), []store.Calendar{wantCal, wantOther}, "list calendars")

	wantObj := normObject(obj)
	wantEndless := normObject(endless)
	wantEndless.GrantID = g
	gotObj, err := s.GetCalendarObject(ctx, g, "cal-1", "obj-1")
	ok(t, err, "get object")
	same(t, gotObj, &wantObj, "get object")
	if gotObj.Start.Location() != time.UTC || gotObj.End.Location() != time.UTC {
		t.Fatalf("times not in UTC: %v %v", gotObj.Start, gotObj.End)
	}
	gotEndless, err := s.GetCalendarObject(ctx, g, "cal-1", "obj-endless")
	ok(t, err, "get endless")
	same(t, gotEndless, &wantEndless, "get endless object")
	if !gotEndless.End.IsZero() {
		t.Fatalf("endless object came back with End %v", gotEndless.End)
	}
	same(t, listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1"}),
		[]store.CalendarObject{wantEndless, wantObj}, "list objects")
	same(t, listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-2"}), []store.CalendarObject{}, "empty calendar")

	_, err = s.GetCalendar(ctx, g, "nope")
	isErr(t, err, store.ErrNotFound, "get missing calendar")
	_, err = s.GetCalendarObject(ctx, g, "cal-1", "nope")
	isErr(t, err, store.ErrNotFound, "get missing object")
	_, err = s.GetCalendarObject(ctx, g, "cal-2", "obj-1")
	isErr(t, err, store.ErrNotFound, "get object under another calendar")

	// An upsert replaces every field (but CreatedAt), booleans both ways;
	// the last entry for an id or key in a part wins.
	cal2 := store.Calendar{ID: "cal-1", Href: "https://caldav.example.com/moved/", Name: "Home (renamed)",
		Description: "new", Timezone: "America/New_York", Color: "#000000", CTag: "ctag-2", SyncToken: "tok-2",
		CreatedAt: at(500), UpdatedAt: at(501)}
	other2 := wantOther
	other2.ReadOnly, other2.IsOwned, other2.IsPrimary = true, true, true
	other2.UpdatedAt = at(502)
	obj2 := store.CalendarObject{ID: "obj-1", CalendarID: "cal-1", Href: "https://caldav.example.com/x.ics", ETag: `"v2"`,
		UID: "uid-2", Data: []byte("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"), Start: at(100), End: time.Time{},
		CreatedAt: at(600), UpdatedAt: at(601)}
	endless2 := wantEndless
	endless2.End, endless2.ETag, endless2.UpdatedAt = at(90), `"v2"`, at(602)
	applyCal(t, s, &store.CalendarBatch{GrantID: g,
		Calendars: []store.Calendar{mkCalendar(g, "cal-1", "stale"), cal2, other2},
		Objects:   []store.CalendarObject{mkObject(g, "cal-1", "obj-1", 0, 1), obj2, endless2}})
	wantCal2 := normCalendar(cal2)
	wantCal2.GrantID, wantCal2.CreatedAt = g, wantCal.CreatedAt
	same(t, listCalendars(t, s, g), []store.Calendar{wantCal2, normCalendar(other2)}, "calendars after update")
	wantObj2 := normObject(obj2)
	wantObj2.GrantID, wantObj2.CreatedAt = g, wantObj.CreatedAt
	same(t, listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1"}),
		[]store.CalendarObject{normObject(endless2), wantObj2}, "objects after update")

	// Empty data reads back as nil.
	bare := mkObject(g, "cal-2", "bare", 0, 1)
	bare.Data = nil
	applyCal(t, s, &store.CalendarBatch{GrantID: g, Objects: []store.CalendarObject{bare}})
	gotBare, err := s.GetCalendarObject(ctx, g, "cal-2", "bare")
	ok(t, err, "get bare")
	if gotBare.Data != nil {
		t.Fatalf("empty data came back as %#v", gotBare.Data)
	}
}

func testCalendarCreatedAtKept(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	cal := mkCalendar(g, "cal-1", "Home")
	cal.CreatedAt, cal.UpdatedAt = time.Time{}, time.Time{}
	obj := mkObject(g, "cal-1", "obj-1", 0, 60)
	before := time.Now().Add(-time.Second)
	applyCal(t, s, &store.CalendarBatch{GrantID: g, Calendars: []store.Calendar{cal}, Objects: []store.CalendarObject{obj}})
	after := time.Now().Add(time.Second)

	c1, err := s.GetCalendar(ctx, g, "cal-1")
	ok(t, err, "get calendar")
	o1, err := s.GetCalendarObject(ctx, g, "cal-1", "obj-1")
	ok(t, err, "get object")
	for what, ts := range map[string][2]time.Time{"calendar": {c1.CreatedAt, c1.UpdatedAt}, "object": {o1.CreatedAt, o1.UpdatedAt}} {
		if ts[0].Before(before) || ts[0].After(after) || !ts[1].Equal(ts[0]) {
			t.Fatalf("%s: zero times filled as created %v updated %v, want the batch's time", what, ts[0], ts[1])
		}
	}

	time.Sleep(2 * time.Millisecond)
	// Zero times on update: CreatedAt kept, UpdatedAt moves on.
	obj.ETag = `"v2"`
	applyCal(t, s, &store.CalendarBatch{GrantID: g, Calendars: []store.Calendar{cal}, Objects: []store.CalendarObject{obj}})
	c2, err := s.GetCalendar(ctx, g, "cal-1")
	ok(t, err, "get calendar")
	o2, err := s.GetCalendarObject(ctx, g, "cal-1", "obj-1")
	ok(t, err, "get object")
	if !c2.CreatedAt.Equal(c1.CreatedAt) || !c2.UpdatedAt.After(c1.UpdatedAt) {
		t.Fatalf("calendar update: created %v→%v updated %v→%v", c1.CreatedAt, c2.CreatedAt, c1.UpdatedAt, c2.UpdatedAt)
	}
	if !o2.CreatedAt.Equal(o1.CreatedAt) || !o2.UpdatedAt.After(o1.UpdatedAt) || o2.ETag != `"v2"` {
		t.Fatalf("object update: created %v→%v updated %v→%v etag %s", o1.CreatedAt, o2.CreatedAt, o1.UpdatedAt, o2.UpdatedAt, o2.ETag)
	}

	// A given CreatedAt on update is ignored too.
	cal.CreatedAt, obj.CreatedAt = at(-1000), at(-1000)
	applyCal(t, s, &store.CalendarBatch{GrantID: g, Calendars: []store.Calendar{cal}, Objects: []store.CalendarObject{obj}})
	c3, err := s.GetCalendar(ctx, g, "cal-1")
	ok(t, err, "get calendar")
	o3, err := s.GetCalendarObject(ctx, g, "cal-1", "obj-1")
	ok(t, err, "get object")
	if !c3.CreatedAt.Equal(c1.CreatedAt) || !o3.CreatedAt.Equal(o1.CreatedAt) {
		t.Fatalf("a given CreatedAt replaced the stored one: calendar %v, object %v, want %v, %v", c3.CreatedAt, o3.CreatedAt, c1.CreatedAt, o1.CreatedAt)
	}
}

func testCalendarObjectRange(t *testing.T, s store.Store) {
	g := mailGrant(t, s, "app", "grant-1")
	endless := mkObject(g, "cal-1", "endless", 30, 0)
	endless.End = time.Time{}
	applyCal(t, s, &store.CalendarBatch{GrantID: g,
		Calendars: []store.Calendar{mkCalendar(g, "cal-1", "One"), mkCalendar(g, "cal-2", "Two")},
		Objects: []store.CalendarObject{
			mkObject(g, "cal-1", "a", 0, 60),
			mkObject(g, "cal-1", "b", 60, 120),
			mkObject(g, "cal-1", "c", 120, 180),
			mkObject(g, "cal-1", "long", -1000, 1000),
			endless,
			// Another calendar's object overlapping everything.
			mkObject(g, "cal-2", "elsewhere", -5000, 5000),
		}})
	const us = time.Microsecond
	zero := time.Time{}
	for _, tc := range []struct {
		name       string
		start, end time.Time
		want       []string
	}{
		{"no bounds", zero, zero, []string{"long", "a", "endless", "b", "c"}},
		{"touching ends excluded", at(60), at(120), []string{"long", "endless", "b"}},
		{"one microsecond into a's end", at(60).Add(-us), at(60), []string{"long", "a", "endless"}},
		{"one microsecond into c's start", at(120), at(120).Add(us), []string{"long", "endless", "c"}},
		{"lower bound only", at(120), zero, []string{"long", "endless", "c"}},
		{"upper bound only", zero, at(60), []string{"long", "a", "endless"}},
		{"upper bound at the first start", zero, at(-1000), []string{}},
		{"before everything", at(-3000), at(-2000), []string{}},
		{"far future: only the endless series", at(100000), at(100060), []string{"endless"}},
		{"lower bound after everything finite", at(1000), zero, []string{"endless"}},
		{"inside one object", at(130), at(140), []string{"long", "endless", "c"}},
		// Start == End: by the definition, what is in progress at that
		// instant (an object starting then is not).
		{"instant", at(120), at(120), []string{"long", "endless"}},
		{"instant inside", at(130), at(130), []string{"long", "endless", "c"}},
	} {
		got := listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1", Start: tc.start, End: tc.end})
		same(t, objectIDs(got), tc.want, tc.name)
	}
}

func testCalendarOrderAndLimit(t *testing.T, s store.Store) {
	g := mailGrant(t, s, "app", "grant-1")
	// Calendars by name, then id, byte order (upper case first) in both
	// dialects.
	applyCal(t, s, &store.CalendarBatch{GrantID: g, Calendars: []store.Calendar{
		mkCalendar(g, "c-home-lower", "home"),
		mkCalendar(g, "c-work", "Work"),
		mkCalendar(g, "c-z", "Same"),
		mkCalendar(g, "c-home", "Home"),
		mkCalendar(g, "c-y", "Same"),
		mkCalendar(g, "c-empty", ""),
	}})
	same(t, calendarIDs(listCalendars(t, s, g)), []string{"c-empty", "c-home", "c-y", "c-z", "c-work", "c-home-lower"}, "calendars by name then id")

	// Objects by start, then id (byte order); several share a start.
	var objs []store.CalendarObject
	for _, id := range []string{"b", "a9", "A", "a10"} {
		objs = append(objs, mkObject(g, "c-home", id, 10, 20))
	}
	objs = append(objs, mkObject(g, "c-home", "z-first", -10, 100), mkObject(g, "c-home", "0-last", 50, 60))
	applyCal(t, s, &store.CalendarBatch{GrantID: g, Objects: objs})
	all := []string{"z-first", "A", "a10", "a9", "b", "0-last"}
	for _, tc := range []struct {
		limit int
		want  []string
	}{{0, all}, {1, all[:1]}, {3, all[:3]}, {6, all}, {100, all}} {
		got := listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "c-home", Limit: tc.limit})
		same(t, objectIDs(got), tc.want, fmt.Sprintf("limit %d", tc.limit))
	}
	// The limit applies after the filters.
	got := listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "c-home", Start: at(20), Limit: 2})
	same(t, objectIDs(got), []string{"z-first", "0-last"}, "limit after range")
}

func testCalendarUIDFilter(t *testing.T, s store.Store) {
	g := mailGrant(t, s, "app", "grant-1")
	withUID := func(o store.CalendarObject, uid string) store.CalendarObject { o.UID = uid; return o }
	applyCal(t, s, &store.CalendarBatch{GrantID: g,
		Calendars: []store.Calendar{mkCalendar(g, "cal-1", "One"), mkCalendar(g, "cal-2", "Two")},
		Objects: []store.CalendarObject{
			withUID(mkObject(g, "cal-1", "o-1", 50, 60), "u-1"),
			withUID(mkObject(g, "cal-1", "o-2", 0, 10), "u-2"),
			withUID(mkObject(g, "cal-1", "o-3", 0, 10), "u-1"),
			withUID(mkObject(g, "cal-1", "o-4", 0, 10), "U-1"), // UIDs match exactly
			withUID(mkObject(g, "cal-2", "o-5", 0, 10), "u-1"),
		}})
	q := store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1", UID: "u-1"}
	same(t, objectIDs(listObjects(t, s, q)), []string{"o-3", "o-1"}, "uid u-1")
	q.Start = at(20)
	same(t, objectIDs(listObjects(t, s, q)), []string{"o-1"}, "uid and range")
	q.Start, q.Limit = time.Time{}, 1
	same(t, objectIDs(listObjects(t, s, q)), []string{"o-3"}, "uid and limit")
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1", UID: "u-none"})), []string{}, "unknown uid")
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-2", UID: "u-1"})), []string{"o-5"}, "uid in cal-2")
}

func testCalendarUpdatedFilters(t *testing.T, s store.Store) {
	g := mailGrant(t, s, "app", "grant-1")
	var objs []store.CalendarObject
	for i, id := range []string{"o-10", "o-20", "o-30"} {
		o := mkObject(g, "cal-1", id, 0, 10)
		o.UpdatedAt = at(10 * (i + 1))
		objs = append(objs, o)
	}
	applyCal(t, s, &store.CalendarBatch{GrantID: g, Calendars: []store.Calendar{mkCalendar(g, "cal-1", "One")}, Objects: objs})
	for _, tc := range []struct {
		name          string
		after, before time.Time
		want          []string
	}{
		{"none", time.Time{}, time.Time{}, []string{"o-10", "o-20", "o-30"}},
		{"after is exclusive", at(10), time.Time{}, []string{"o-20", "o-30"}},
		{"after, a microsecond earlier", at(10).Add(-time.Microsecond), time.Time{}, []string{"o-10", "o-20", "o-30"}},
		{"before is exclusive", time.Time{}, at(30), []string{"o-10", "o-20"}},
		{"both", at(10), at(30), []string{"o-20"}},
		{"after everything", at(30), time.Time{}, []string{}},
	} {
		got := listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1", UpdatedAfter: tc.after, UpdatedBefore: tc.before})
		same(t, objectIDs(got), tc.want, tc.name)
	}
}

func testCalendarDeletes(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	applyCal(t, s, &store.CalendarBatch{GrantID: g,
		Calendars: []store.Calendar{mkCalendar(g, "cal-1", "One"), mkCalendar(g, "cal-2", "Two")},
		Objects: []store.CalendarObject{
			mkObject(g, "cal-1", "o-1", 0, 10), mkObject(g, "cal-1", "o-2", 0, 10),
			mkObject(g, "cal-2", "o-1", 0, 10), mkObject(g, "cal-2", "o-2", 0, 10),
		}})

	// DeletedObjects removes only the keyed object; unknown keys are
	// ignored.
	applyCal(t, s, &store.CalendarBatch{GrantID: g, DeletedObjects: []store.CalendarObjectKey{
		{CalendarID: "cal-2", ID: "o-1"}, {CalendarID: "cal-2", ID: "nope"}, {CalendarID: "cal-none", ID: "o-1"}, {CalendarID: "cal-2", ID: "o-1"},
	}})
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-2"})), []string{"o-2"}, "cal-2 after deleting o-1")
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1"})), []string{"o-1", "o-2"}, "cal-1 untouched")
	_, err := s.GetCalendarObject(ctx, g, "cal-2", "o-1")
	isErr(t, err, store.ErrNotFound, "deleted object")

	// DeletedCalendars removes the calendar with its objects; unknown ids
	// are ignored.
	applyCal(t, s, &store.CalendarBatch{GrantID: g, DeletedCalendars: []string{"cal-1", "nope"}})
	same(t, calendarIDs(listCalendars(t, s, g)), []string{"cal-2"}, "calendars after delete")
	_, err = s.GetCalendar(ctx, g, "cal-1")
	isErr(t, err, store.ErrNotFound, "deleted calendar")
	_, err = s.GetCalendarObject(ctx, g, "cal-1", "o-1")
	isErr(t, err, store.ErrNotFound, "object of a deleted calendar")
	same(t, objectTags(t, s, g, "cal-1"), map[string]string{}, "tags of a deleted calendar")
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-2"})), []string{"o-2"}, "cal-2 untouched")
	// The same id again starts empty: the objects are gone, not hidden.
	applyCal(t, s, &store.CalendarBatch{GrantID: g, Calendars: []store.Calendar{mkCalendar(g, "cal-1", "One again")}})
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1"})), []string{}, "recreated calendar")

	// Within one batch, a calendar deleted then upserted again exists,
	// and objects upserted then deleted do not.
	applyCal(t, s, &store.CalendarBatch{GrantID: g,
		DeletedCalendars: []string{"cal-2"},
		Objects:          []store.CalendarObject{mkObject(g, "cal-1", "o-new", 0, 10), mkObject(g, "cal-1", "o-gone", 0, 10)},
		DeletedObjects:   []store.CalendarObjectKey{{CalendarID: "cal-1", ID: "o-gone"}},
	})
	same(t, calendarIDs(listCalendars(t, s, g)), []string{"cal-1"}, "after second delete")
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1"})), []string{"o-new"}, "objects in field order")
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-2"})), []string{}, "objects of cal-2")
}

func testCalendarValidation(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	applyCal(t, s, &store.CalendarBatch{GrantID: g, Calendars: []store.Calendar{mkCalendar(g, "cal-1", "One")}})
	before := calendarSnapshot(t, s, g, "cal-1")
	for _, tc := range []struct {
		name string
		b    store.CalendarBatch
	}{
		{"no grant id", store.CalendarBatch{Calendars: []store.Calendar{mkCalendar("", "cal-x", "X")}}},
		{"calendar without id", store.CalendarBatch{GrantID: g, Calendars: []store.Calendar{mkCalendar(g, "", "X")}}},
		{"object without calendar", store.CalendarBatch{GrantID: g, Objects: []store.CalendarObject{mkObject(g, "", "o", 0, 1)}}},
		{"object without id", store.CalendarBatch{GrantID: g, Objects: []store.CalendarObject{mkObject(g, "cal-1", "", 0, 1)}}},
	} {
		b := tc.b
		b.Changes = []store.Change{{ObjectType: "calendar", ObjectID: "cal-x", Action: "created"}}
		if err := s.ApplyCalendarBatch(ctx, &b); err == nil {
			t.Fatalf("%s: accepted", tc.name)
		}
	}
	if after := calendarSnapshot(t, s, g, "cal-1"); after != before {
		t.Fatalf("refused batches left changes:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := s.ListCalendarObjects(ctx, store.CalendarObjectQuery{GrantID: g}); err == nil {
		t.Fatal("listing objects without a calendar id accepted")
	}
	// An unknown grant.
	isErr(t, s.ApplyCalendarBatch(ctx, &store.CalendarBatch{GrantID: "no-such-grant",
		Calendars: []store.Calendar{mkCalendar("", "cal-1", "One")}}), store.ErrNotFound, "unknown grant")
	isErr(t, s.ApplyCalendarBatch(ctx, &store.CalendarBatch{GrantID: "no-such-grant",
		Changes: []store.Change{{ObjectType: "calendar", ObjectID: "cal-1", Action: "created"}}}), store.ErrNotFound, "change of an unknown grant")
}

func testCalendarBatchAtomicity(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	other := mailGrant(t, s, "app", "grant-2")
	applyCal(t, s, &store.CalendarBatch{GrantID: other, Calendars: []store.Calendar{mkCalendar(other, "cal-other", "Theirs")}})
	applyCal(t, s, &store.CalendarBatch{GrantID: g,
		Calendars: []store.Calendar{mkCalendar(g, "cal-1", "One"), mkCalendar(g, "cal-old", "Old")},
		Objects:   []store.CalendarObject{mkObject(g, "cal-1", "o-keep", 0, 10), mkObject(g, "cal-1", "o-del", 0, 10), mkObject(g, "cal-old", "o-old", 0, 10)},
		Changes:   []store.Change{{ObjectType: "calendar", ObjectID: "cal-1", Action: "created"}},
	})
	ids := []string{"cal-1", "cal-old", "cal-new", "cal-missing", "cal-other"}
	before := calendarSnapshot(t, s, g, ids...)
	beforeOther := calendarSnapshot(t, s, other, "cal-other")

	// Each batch does real work in every part first, then fails.
	full := func() store.CalendarBatch {
		renamed := mkCalendar(g, "cal-1", "One renamed")
		changed := mkObject(g, "cal-1", "o-keep", 100, 200)
		changed.ETag = `"changed"`
		return store.CalendarBatch{
			GrantID:          g,
			Calendars:        []store.Calendar{mkCalendar(g, "cal-new", "New"), renamed},
			DeletedCalendars: []string{"cal-old"},
			Objects:          []store.CalendarObject{mkObject(g, "cal-new", "o-new", 0, 10), changed},
			DeletedObjects:   []store.CalendarObjectKey{{CalendarID: "cal-1", ID: "o-del"}},
			Changes: []store.Change{{ObjectType: "calendar", ObjectID: "cal-new", Action: "created"},
				{ObjectType: "event", ObjectID: "o-new", Action: "created"}},
		}
	}
	cases := []struct {
		name  string
		spoil func(b *store.CalendarBatch)
		want  error // nil: any error
	}{
		{"object in an unknown calendar", func(b *store.CalendarBatch) {
			b.Objects = append(b.Objects, mkObject(g, "cal-missing", "o-x", 0, 10))
		}, store.ErrNotFound},
		{"object in a calendar the batch deletes", func(b *store.CalendarBatch) {
			b.Objects = append(b.Objects, mkObject(g, "cal-old", "o-x", 0, 10))
		}, store.ErrNotFound},
		{"object in another grant's calendar", func(b *store.CalendarBatch) {
			b.Objects = append(b.Objects, mkObject(g, "cal-other", "o-x", 0, 10))
		}, store.ErrNotFound},
		{"calendar of another grant", func(b *store.CalendarBatch) {
			b.Calendars = append(b.Calendars, mkCalendar(other, "cal-x", "X"))
		}, nil},
		{"object of another grant", func(b *store.CalendarBatch) {
			b.Objects = append(b.Objects, mkObject(other, "cal-other", "o-x", 0, 10))
		}, nil},
		{"change of another grant", func(b *store.CalendarBatch) {
			b.Changes = append(b.Changes, store.Change{GrantID: other, ObjectType: "event", ObjectID: "o-x", Action: "created"})
		}, nil},
	}
	for _, tc := range cases {
		b := full()
		tc.spoil(&b)
		err := s.ApplyCalendarBatch(ctx, &b)
		if tc.want != nil {
			isErr(t, err, tc.want, tc.name)
		} else if err == nil {
			t.Fatalf("%s: accepted", tc.name)
		}
		if after := calendarSnapshot(t, s, g, ids...); after != before {
			t.Fatalf("%s: the failed batch left changes:\nbefore %s\nafter  %s", tc.name, before, after)
		}
		if after := calendarSnapshot(t, s, other, "cal-other"); after != beforeOther {
			t.Fatalf("%s: the failed batch changed the other grant:\nbefore %s\nafter  %s", tc.name, beforeOther, after)
		}
	}

	// The same batch without the fault applies, every part of it.
	b := full()
	applyCal(t, s, &b)
	same(t, calendarIDs(listCalendars(t, s, g)), []string{"cal-new", "cal-1"}, "calendars")
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1"})), []string{"o-keep"}, "cal-1 objects")
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-new"})), []string{"o-new"}, "cal-new objects")
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-old"})), []string{}, "cal-old objects")
	same(t, changeKeys(changesOf(t, s)), []string{g + " calendar cal-1 created", g + " calendar cal-new created", g + " event o-new created"}, "changes")
}

func testCalendarTenantIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mailGrant(t, s, "app-a", "grant-a")
	b := mailGrant(t, s, "app-b", "grant-b")
	objA := mkObject(a, "cal-1", "o-1", 0, 60)
	applyCal(t, s, &store.CalendarBatch{GrantID: a, Calendars: []store.Calendar{mkCalendar(a, "cal-1", "A's")},
		Objects: []store.CalendarObject{objA},
		Changes: []store.Change{{ObjectType: "event", ObjectID: "o-1", Action: "created"}}})
	snapshotA := func() string {
		o, err := s.GetCalendarObject(ctx, a, "cal-1", "o-1")
		ok(t, err, "A's object")
		c, err := s.GetCalendar(ctx, a, "cal-1")
		ok(t, err, "A's calendar")
		return fmt.Sprintf("%+v %+v %s", c, o, calendarSnapshot(t, s, a, "cal-1"))
	}
	before := snapshotA()
	changesBefore := changeKeys(changesOf(t, s))

	// Reads under B see nothing of A.
	same(t, listCalendars(t, s, b), []store.Calendar{}, "B lists calendars")
	_, err := s.GetCalendar(ctx, b, "cal-1")
	isErr(t, err, store.ErrNotFound, "B gets A's calendar")
	_, err = s.GetCalendarObject(ctx, b, "cal-1", "o-1")
	isErr(t, err, store.ErrNotFound, "B gets A's object")
	for _, q := range []store.CalendarObjectQuery{{}, {UID: objA.UID}, {Start: at(0), End: at(60)}, {UpdatedAfter: at(-10000)}, {Limit: 5}} {
		q.GrantID, q.CalendarID = b, "cal-1"
		same(t, listObjects(t, s, q), []store.CalendarObject{}, fmt.Sprintf("B lists A's objects with %+v", q))
	}
	same(t, objectTags(t, s, b, "cal-1"), map[string]string{}, "B reads A's tags")

	// Writes under B cannot reach A's rows.
	isErr(t, s.ApplyCalendarBatch(ctx, &store.CalendarBatch{GrantID: b, Objects: []store.CalendarObject{mkObject(b, "cal-1", "o-1", 5, 6)}}),
		store.ErrNotFound, "B writes into A's calendar")
	applyCal(t, s, &store.CalendarBatch{GrantID: b, DeletedObjects: []store.CalendarObjectKey{{CalendarID: "cal-1", ID: "o-1"}}})
	applyCal(t, s, &store.CalendarBatch{GrantID: b, DeletedCalendars: []string{"cal-1"}})
	// B's own rows may reuse A's ids without touching A's.
	calB := mkCalendar(b, "cal-1", "B's")
	calB.CTag = "b-ctag"
	objB := mkObject(b, "cal-1", "o-1", 1000, 2000)
	objB.ETag, objB.Data = `"b"`, []byte("B's data")
	applyCal(t, s, &store.CalendarBatch{GrantID: b, Calendars: []store.Calendar{calB}, Objects: []store.CalendarObject{objB},
		Changes: []store.Change{{ObjectType: "event", ObjectID: "o-1", Action: "created"}}})
	if after := snapshotA(); after != before {
		t.Fatalf("B's batches changed A's calendars:\nbefore %s\nafter  %s", before, after)
	}
	gotB, err := s.GetCalendarObject(ctx, b, "cal-1", "o-1")
	ok(t, err, "B's own object")
	same(t, gotB.Data, []byte("B's data"), "B's own object data")
	same(t, objectTags(t, s, b, "cal-1"), map[string]string{objB.Href: `"b"`}, "B's own tags")
	// B deleting its own calendar leaves A's.
	applyCal(t, s, &store.CalendarBatch{GrantID: b, DeletedCalendars: []string{"cal-1"}})
	if after := snapshotA(); after != before {
		t.Fatalf("B deleting its own cal-1 changed A's:\nbefore %s\nafter  %s", before, after)
	}
	same(t, changeKeys(changesOf(t, s)), append(changesBefore, b+" event o-1 created"), "changes")
}

func testCalendarObjectTags(t *testing.T, s store.Store) {
	g := mailGrant(t, s, "app", "grant-1")
	o1, o2, o3 := mkObject(g, "cal-1", "o-1", 0, 1), mkObject(g, "cal-1", "o-2", 0, 1), mkObject(g, "cal-2", "o-3", 0, 1)
	applyCal(t, s, &store.CalendarBatch{GrantID: g,
		Calendars: []store.Calendar{mkCalendar(g, "cal-1", "One"), mkCalendar(g, "cal-2", "Two"), mkCalendar(g, "cal-empty", "Empty")},
		Objects:   []store.CalendarObject{o1, o2, o3}})
	same(t, objectTags(t, s, g, "cal-1"), map[string]string{o1.Href: o1.ETag, o2.Href: o2.ETag}, "tags of cal-1")
	same(t, objectTags(t, s, g, "cal-2"), map[string]string{o3.Href: o3.ETag}, "tags of cal-2")
	same(t, objectTags(t, s, g, "cal-empty"), map[string]string{}, "tags of an empty calendar")
	same(t, objectTags(t, s, g, "cal-none"), map[string]string{}, "tags of an unknown calendar")

	// A new etag, a moved href and a deletion show.
	o1.ETag = `"o-1 v2"`
	o2.Href = "https://caldav.example.com/moved.ics"
	applyCal(t, s, &store.CalendarBatch{GrantID: g, Objects: []store.CalendarObject{o1, o2},
		DeletedObjects: []store.CalendarObjectKey{{CalendarID: "cal-2", ID: "o-3"}}})
	same(t, objectTags(t, s, g, "cal-1"), map[string]string{o1.Href: `"o-1 v2"`, "https://caldav.example.com/moved.ics": o2.ETag}, "tags after update")
	same(t, objectTags(t, s, g, "cal-2"), map[string]string{}, "tags after delete")
}

func testCalendarChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	g1 := mailGrant(t, s, "app", "grant-1")
	g2 := mailGrant(t, s, "app", "grant-2")
	beforeBatch := time.Now().Add(-time.Second)
	applyCal(t, s, &store.CalendarBatch{GrantID: g1, Calendars: []store.Calendar{mkCalendar(g1, "cal-1", "One")},
		Objects: []store.CalendarObject{mkObject(g1, "cal-1", "o-1", 0, 1)},
		Changes: []store.Change{
			{ObjectType: "calendar", ObjectID: "cal-1", Action: "created"},
			{GrantID: g1, ObjectType: "event", ObjectID: "o-1", Action: "created", CreatedAt: at(0)},
		}})
	// Mail and calendar changes share the table and its ids.
	apply(t, s, &store.MailBatch{GrantID: g2, Changes: []store.Change{{ObjectType: "message", ObjectID: "m-1", Action: "created"}}})
	applyCal(t, s, &store.CalendarBatch{GrantID: g1, DeletedObjects: []store.CalendarObjectKey{{CalendarID: "cal-1", ID: "o-1"}},
		Changes: []store.Change{{ObjectType: "event", ObjectID: "o-1", Action: "deleted"}}})
	// A batch with changes only.
	applyCal(t, s, &store.CalendarBatch{GrantID: g2, Changes: []store.Change{{ObjectType: "calendar", ObjectID: "cal-9", Action: "updated"}}})
	afterBatch := time.Now().Add(time.Second)

	all := changesOf(t, s)
	same(t, changeKeys(all), []string{
		g1 + " calendar cal-1 created",
		g1 + " event o-1 created",
		g2 + " message m-1 created",
		g1 + " event o-1 deleted",
		g2 + " calendar cal-9 updated",
	}, "changes, oldest first")
	for i, c := range all {
		if i > 0 && c.ID <= all[i-1].ID {
			t.Fatalf("ids not increasing: %d after %d", c.ID, all[i-1].ID)
		}
		if i == 1 {
			if !c.CreatedAt.Equal(normalized(at(0))) {
				t.Fatalf("given CreatedAt came back as %v", c.CreatedAt)
			}
		} else if c.CreatedAt.Before(beforeBatch) || c.CreatedAt.After(afterBatch) {
			t.Fatalf("change %d: zero CreatedAt filled as %v", i, c.CreatedAt)
		}
	}
	rest, err := s.ListChanges(ctx, all[2].ID, 0)
	ok(t, err, "changes after a cursor")
	same(t, rest, all[3:], "changes after a cursor")
}

func testCalendarGrantDeletion(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mailGrant(t, s, "app", "grant-a")
	b := mailGrant(t, s, "app", "grant-b")
	for _, g := range []string{a, b} {
		applyCal(t, s, &store.CalendarBatch{GrantID: g,
			Calendars: []store.Calendar{mkCalendar(g, "cal-1", "One"), mkCalendar(g, "cal-2", "Two")},
			Objects:   []store.CalendarObject{mkObject(g, "cal-1", "o-1", 0, 1), mkObject(g, "cal-2", "o-2", 0, 1)},
			Changes:   []store.Change{{ObjectType: "calendar", ObjectID: "cal-1", Action: "created"}}})
	}
	beforeB := calendarSnapshot(t, s, b, "cal-1", "cal-2")
	ok(t, s.DeleteGrant(ctx, "app", a), "delete grant")

	same(t, listCalendars(t, s, a), []store.Calendar{}, "calendars of the deleted grant")
	_, err := s.GetCalendar(ctx, a, "cal-1")
	isErr(t, err, store.ErrNotFound, "calendar of the deleted grant")
	_, err = s.GetCalendarObject(ctx, a, "cal-1", "o-1")
	isErr(t, err, store.ErrNotFound, "object of the deleted grant")
	same(t, changeKeys(changesOf(t, s)), []string{b + " calendar cal-1 created"}, "changes of the deleted grant go with it")
	// The grant and calendar ids can be used again from scratch: the
	// objects are gone, not merely hidden.
	mailGrant(t, s, "app", a)
	applyCal(t, s, &store.CalendarBatch{GrantID: a, Calendars: []store.Calendar{mkCalendar(a, "cal-1", "One"), mkCalendar(a, "cal-2", "Two")}})
	for _, cal := range []string{"cal-1", "cal-2"} {
		same(t, listObjects(t, s, store.CalendarObjectQuery{GrantID: a, CalendarID: cal}), []store.CalendarObject{}, "objects of the recreated "+cal)
		same(t, objectTags(t, s, a, cal), map[string]string{}, "tags of the recreated "+cal)
	}
	if after := calendarSnapshot(t, s, b, "cal-1", "cal-2"); after != beforeB {
		t.Fatalf("deleting grant a changed grant b:\nbefore %s\nafter  %s", beforeB, after)
	}
}

// testCalendarLargeBatch goes past the store's statement limits (rows per
// INSERT, ids per IN list) in one batch.
func testCalendarLargeBatch(t *testing.T, s store.Store) {
	g := mailGrant(t, s, "app", "grant-1")
	const n = 1234
	var objs []store.CalendarObject
	var want []string
	for i := range n {
		id := fmt.Sprintf("o-%04d", i)
		objs = append(objs, mkObject(g, "cal-1", id, i, i+30))
		want = append(want, id)
	}
	var cals []store.Calendar
	var calIDs []string
	for i := range 600 {
		id := fmt.Sprintf("cal-x%03d", i)
		cals = append(cals, mkCalendar(g, id, id))
		calIDs = append(calIDs, id)
	}
	applyCal(t, s, &store.CalendarBatch{GrantID: g, Calendars: append(cals, mkCalendar(g, "cal-1", "One")), Objects: objs})
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1"})), want, "all objects")
	if n := len(objectTags(t, s, g, "cal-1")); n != len(want) {
		t.Fatalf("%d tags, want %d", n, len(want))
	}
	var del []store.CalendarObjectKey
	for _, id := range want[:1100] {
		del = append(del, store.CalendarObjectKey{CalendarID: "cal-1", ID: id})
	}
	applyCal(t, s, &store.CalendarBatch{GrantID: g, DeletedCalendars: calIDs, DeletedObjects: del})
	same(t, objectIDs(listObjects(t, s, store.CalendarObjectQuery{GrantID: g, CalendarID: "cal-1"})), want[1100:], "objects left")
	same(t, calendarIDs(listCalendars(t, s, g)), []string{"cal-1"}, "calendars left")
}
