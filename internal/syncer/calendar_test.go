package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/orchard-mail/orchard/internal/caldavx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/storetest"
)

// fakeCalDAV is a CalDAV server in memory, without sync-collection (the
// ETag comparison path; sync-collection is exercised against Radicale by
// the end-to-end tests).
type fakeCalDAV struct {
	mu      sync.Mutex
	cals    map[string]caldavx.Calendar
	objects map[string]map[string]caldavx.Object // calendar URL → href → object
	// listing, when set, runs at the start of Calendars (a test blocks in
	// it to interleave a write).
	listing func()
}

func newFakeCalDAV() *fakeCalDAV {
	return &fakeCalDAV{cals: map[string]caldavx.Calendar{}, objects: map[string]map[string]caldavx.Object{}}
}

func (f *fakeCalDAV) Discover(context.Context, string, caldavx.Account) (string, error) {
	return "https://dav.test/cals/", nil
}

func (f *fakeCalDAV) Calendars(context.Context, caldavx.Account) ([]caldavx.Calendar, error) {
	if f.listing != nil {
		f.listing()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []caldavx.Calendar
	for _, c := range f.cals {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b caldavx.Calendar) int { return strings.Compare(a.URL, b.URL) })
	return out, nil
}

func (f *fakeCalDAV) DefaultCalendarURL(context.Context, caldavx.Account) (string, error) {
	return "", nil
}

func (f *fakeCalDAV) SyncCollection(context.Context, caldavx.Account, string, string) ([]caldavx.ObjectRef, []string, string, error) {
	return nil, nil, "", errors.New("not supported")
}

func (f *fakeCalDAV) ListObjects(_ context.Context, _ caldavx.Account, calURL string) ([]caldavx.ObjectRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []caldavx.ObjectRef
	for _, o := range f.objects[calURL] {
		out = append(out, caldavx.ObjectRef{Href: o.Href, ETag: o.ETag})
	}
	return out, nil
}

func (f *fakeCalDAV) GetObjects(_ context.Context, _ caldavx.Account, calURL string, hrefs []string) ([]caldavx.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []caldavx.Object
	for _, h := range hrefs {
		if o, ok := f.objects[calURL][h]; ok {
			out = append(out, o)
		}
	}
	return out, nil
}

// setCalendar creates or renames a calendar and moves its ctag.
func (f *fakeCalDAV) setCalendar(url, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cals[url]
	c.URL, c.Name, c.Components = url, name, []string{"VEVENT"}
	c.CTag += "+"
	f.cals[url] = c
	if f.objects[url] == nil {
		f.objects[url] = map[string]caldavx.Object{}
	}
}

// putEvent stores an event (new ETag each time) and moves the ctag.
func (f *fakeCalDAV) putEvent(calURL, uid, summary string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	href := calURL + uid + ".ics"
	data := fmt.Sprintf("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20261101T000000Z\r\n"+
		"DTSTART:20261110T090000Z\r\nDTEND:20261110T100000Z\r\nSUMMARY:%s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", uid, summary)
	f.objects[calURL][href] = caldavx.Object{Href: href, ETag: fmt.Sprintf("%q", summary), Data: []byte(data)}
	c := f.cals[calURL]
	c.CTag += "+"
	f.cals[calURL] = c
	return href
}

func (f *fakeCalDAV) deleteEvent(calURL, href string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objects[calURL], href)
	c := f.cals[calURL]
	c.CTag += "+"
	f.cals[calURL] = c
}

func (f *fakeCalDAV) deleteCalendar(url string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cals, url)
	delete(f.objects, url)
}

// calRig is a calendar sync of one iCloud grant over fakeCalDAV and a real
// SQLite store.
type calRig struct {
	t     *testing.T
	st    store.Store
	dav   *fakeCalDAV
	grant *store.Grant
	sup   *Supervisor
	cs    *calendarSync
}

func newCalRig(t *testing.T) *calRig {
	t.Helper()
	ctx := context.Background()
	st := storetest.SQLite(t, filepath.Join(t.TempDir(), "o.db"))
	app := &store.Application{ID: "app", Name: "t"}
	if err := st.CreateApplication(ctx, app); err != nil {
		t.Fatal(err)
	}
	g := &store.Grant{ApplicationID: app.ID, Provider: "icloud", Email: "u@example.test", Status: "valid", Credentials: []byte("x")}
	if err := st.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	dav := newFakeCalDAV()
	sup := New(Options{Store: st, CalDAV: dav, CalDAVURL: "https://dav.test/",
		Credentials: func(*store.Grant) (provider.Credentials, error) {
			return provider.Credentials{IMAPUsername: "u@example.test", IMAPPassword: "pw"}, nil
		}})
	w := &worker{sup: sup, grant: *g, calWake: make(chan struct{}, 1), log: slog.New(slog.DiscardHandler)}
	return &calRig{t: t, st: st, dav: dav, grant: g, sup: sup, cs: &calendarSync{w: w, guard: sup.calendarGuard(g.ID)}}
}

func (r *calRig) pass() error { return r.cs.pass(context.Background()) }

func (r *calRig) mustPass() {
	r.t.Helper()
	if err := r.pass(); err != nil {
		r.t.Fatal(err)
	}
}

// changes returns the change rows recorded so far as "type action" lines.
func (r *calRig) changes() []string {
	r.t.Helper()
	cs, err := r.st.ListChanges(context.Background(), 0, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.ObjectType+" "+c.Action)
	}
	return out
}

func (r *calRig) objects(calURL string) []store.CalendarObject {
	r.t.Helper()
	objs, err := r.st.ListCalendarObjects(context.Background(), store.CalendarObjectQuery{GrantID: r.grant.ID, CalendarID: CalendarID(r.grant.ID, calURL)})
	if err != nil {
		r.t.Fatal(err)
	}
	return objs
}

func TestCalendarSyncChanges(t *testing.T) {
	t.Parallel()
	r := newCalRig(t)
	work := "https://dav.test/cals/office/"
	r.dav.setCalendar(work, "Work")
	first := r.dav.putEvent(work, "e1", "Kickoff")
	r.mustPass()
	// The first pass is history: stored, no change rows.
	if objs := r.objects(work); len(objs) != 1 || objs[0].UID != "e1" {
		t.Fatalf("after the first pass: %+v", objs)
	}
	if ch := r.changes(); len(ch) != 0 {
		t.Fatalf("first pass recorded %v", ch)
	}
	cals, _ := r.st.ListCalendars(context.Background(), r.grant.ID)
	if len(cals) != 1 || !cals[0].IsPrimary || cals[0].CTag == "" {
		t.Fatalf("calendars %+v", cals)
	}

	// Nothing moved: nothing fetched, nothing recorded.
	r.mustPass()
	if ch := r.changes(); len(ch) != 0 {
		t.Fatalf("an idle pass recorded %v", ch)
	}

	// Another client adds, changes and deletes; a calendar is renamed and
	// a second one appears.
	r.dav.putEvent(work, "e2", "Review")
	r.mustPass()
	r.dav.putEvent(work, "e2", "Review (moved)")
	r.dav.deleteEvent(work, first)
	r.dav.setCalendar(work, "Work stuff")
	home := "https://dav.test/cals/home/"
	r.dav.setCalendar(home, "Home")
	r.dav.putEvent(home, "h1", "Dentist")
	r.mustPass()
	// Calendars in URL order (cals/home before cals/office), then each one's events.
	want := []string{"event created", "calendar created", "calendar updated", "event created", "event updated", "event deleted"}
	if got := r.changes(); !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	if objs := r.objects(work); len(objs) != 1 || !slices.Contains([]string{"e2"}, objs[0].UID) {
		t.Fatalf("work after the changes: %+v", objs)
	}
	// The primary does not move to the new calendar.
	cals, _ = r.st.ListCalendars(context.Background(), r.grant.ID)
	for _, c := range cals {
		if c.IsPrimary != (c.Href == work) {
			t.Fatalf("primary moved: %+v", cals)
		}
	}

	// A calendar deleted on the server goes, with its events.
	r.dav.deleteCalendar(home)
	r.mustPass()
	if got := r.changes(); got[len(got)-1] != "calendar deleted" || len(r.objects(home)) != 0 {
		t.Fatalf("after deleting a calendar: %v", got)
	}
}

// A pass that read the server before one of Orchard's own writes must not
// write its stale view back (the race the end-to-end tests once hit: a
// calendar deleted through the API came back).
func TestCalendarSyncYieldsToWrites(t *testing.T) {
	t.Parallel()
	r := newCalRig(t)
	work, scratch := "https://dav.test/cals/office/", "https://dav.test/cals/scratch/"
	r.dav.setCalendar(work, "Work")
	r.dav.setCalendar(scratch, "Scratch")
	r.mustPass()

	// Scratch is renamed elsewhere, so the next pass has it to write; the
	// pass lists the server, then Orchard deletes Scratch (server and
	// store) before the pass applies what it read.
	r.dav.setCalendar(scratch, "Scratch renamed")
	listed := make(chan struct{})
	release := make(chan struct{})
	r.dav.listing = func() { close(listed); <-release }
	done := make(chan error, 1)
	go func() { done <- r.pass() }()
	<-listed
	r.dav.listing = nil
	end := r.sup.BeginCalendarWrite(r.grant.ID)
	r.dav.deleteCalendar(scratch)
	err := r.st.ApplyCalendarBatch(context.Background(), &store.CalendarBatch{GrantID: r.grant.ID,
		DeletedCalendars: []string{CalendarID(r.grant.ID, scratch)}})
	if err != nil {
		t.Fatal(err)
	}
	end()
	close(release)
	if err := <-done; !errors.Is(err, errCalendarRaced) {
		t.Fatalf("the raced pass returned %v", err)
	}
	// Without the guard the rename would have brought Scratch back.
	if _, err := r.st.GetCalendar(context.Background(), r.grant.ID, CalendarID(r.grant.ID, scratch)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the deleted calendar came back: %v", err)
	}
	// The next pass agrees with the server.
	r.mustPass()
	cals, _ := r.st.ListCalendars(context.Background(), r.grant.ID)
	if len(cals) != 1 || cals[0].Href != work {
		t.Fatalf("after the next pass: %+v", cals)
	}
}
