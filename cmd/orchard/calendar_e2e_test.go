package main

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/caldavx"
	"github.com/orchard-mail/orchard/internal/testenv"
)

// calServer starts Orchard with iCloud's CalDAV pointed at the test
// Radicale; the calendar sync runs only when the service pokes it (after
// its own writes) or at start, so that the tests decide when the server's
// changes are read.
func calServer(t *testing.T, env *testenv.Env, u testenv.User, extra ...string) (*server, string, string) {
	t.Helper()
	return mailServer(t, env, u, append([]string{"ORCHARD_ICLOUD_CALDAV_URL=" + env.CalDAVURL, "ORCHARD_CALENDAR_SYNC_INTERVAL=1h"}, extra...)...)
}

// dav talks to Radicale directly, as another calendar client would.
func dav(t *testing.T, env *testenv.Env, u testenv.User) (*caldavx.Client, caldavx.Account) {
	t.Helper()
	c := caldavx.New(caldavx.Options{TLSConfig: &tls.Config{RootCAs: env.CAPool(t)}})
	a := caldavx.Account{Username: u.Email, Password: u.Password}
	home, err := c.Discover(t.Context(), env.CalDAVURL, a)
	if err != nil {
		t.Fatal(err)
	}
	a.Home = home
	return c, a
}

func data(v map[string]any) map[string]any { d, _ := v["data"].(map[string]any); return d }
func list(v map[string]any) []any          { l, _ := v["data"].([]any); return l }

// wantStatus checks an API answer's status and, for errors, that the
// message says what.
func wantStatus(t *testing.T, what string, st int, v map[string]any, status int, says string) {
	t.Helper()
	e, _ := v["error"].(map[string]any)
	if st != status || (says != "" && !strings.Contains(fmt.Sprint(e["message"]), says)) {
		t.Fatalf("%s: %d %v, want %d saying %q", what, st, v, status, says)
	}
}

func TestCalendarsOnRadicale(t *testing.T) {
	env := testenv.Get(t)
	u := env.NewUser(t)
	s, key, grant := calServer(t, env, u)
	base := "/v3/grants/" + grant
	cl, acct := dav(t, env, u)

	// Create: MKCALENDAR on Radicale, with name, timezone and colour.
	st, v := s.call("POST", base+"/calendars", key, `{"name":"Work","description":"Team","timezone":"Europe/Berlin","hex_color":"#1BADF8"}`)
	wantStatus(t, "create calendar", st, v, 200, "")
	work := data(v)
	calID := work["id"].(string)
	if work["name"] != "Work" || work["timezone"] != "Europe/Berlin" || work["hex_color"] != "#1BADF8" || work["read_only"] != false {
		t.Fatalf("created calendar %v", work)
	}
	remote, err := cl.Calendars(t.Context(), acct)
	if err != nil || len(remote) != 1 || remote[0].Name != "Work" || remote[0].Timezone != "Europe/Berlin" {
		t.Fatalf("Radicale after create: %+v %v", remote, err)
	}
	// primary: the only writable calendar.
	st, v = s.call("GET", base+"/calendars/primary", key, "")
	if wantStatus(t, "primary", st, v, 200, ""); data(v)["id"] != calID || data(v)["is_primary"] != true {
		t.Fatalf("primary %v", v)
	}
	// Update: PROPPATCH.
	st, v = s.call("PUT", base+"/calendars/"+calID, key, `{"name":"Work (team)"}`)
	wantStatus(t, "rename calendar", st, v, 200, "")
	if remote, _ = cl.Calendars(t.Context(), acct); remote[0].Name != "Work (team)" {
		t.Fatalf("Radicale after rename: %+v", remote)
	}
	// Clearing the description removes it on the server.
	st, v = s.call("PUT", base+"/calendars/"+calID, key, `{"description":""}`)
	wantStatus(t, "clear description", st, v, 200, "")
	if remote, _ = cl.Calendars(t.Context(), acct); remote[0].Description != "" {
		t.Fatalf("Radicale kept the description %q", remote[0].Description)
	}
	st, v = s.call("PUT", base+"/calendars/"+calID, key, `{"timezone":"Mars/Olympus_Mons"}`)
	wantStatus(t, "unknown timezone", st, v, 400, "timezone")
	st, v = s.call("DELETE", base+"/calendars/"+calID, key, "")
	wantStatus(t, "delete primary", st, v, 400, "primary")

	// A second calendar, deleted: gone on the server.
	st, v = s.call("POST", base+"/calendars", key, `{"name":"Scratch"}`)
	wantStatus(t, "create second", st, v, 200, "")
	scratch := data(v)["id"].(string)
	st, v = s.call("DELETE", base+"/calendars/"+scratch, key, "")
	wantStatus(t, "delete second", st, v, 200, "")
	if remote, _ = cl.Calendars(t.Context(), acct); len(remote) != 1 {
		t.Fatalf("Radicale after delete: %+v", remote)
	}
	st, v = s.call("GET", base+"/calendars", key, "")
	if wantStatus(t, "list", st, v, 200, ""); len(list(v)) != 1 {
		t.Fatalf("calendars after delete: %v", v)
	}
	s.stop()
}

// mustEvent creates an event and returns it.
func mustEvent(t *testing.T, s *server, key, base, calID, body string) map[string]any {
	t.Helper()
	st, v := s.call("POST", base+"/events?calendar_id="+calID, key, body)
	wantStatus(t, "create event "+body, st, v, 200, "")
	return data(v)
}

func eventsIn(t *testing.T, s *server, key, base, calID string, start, end time.Time, extra string) []map[string]any {
	t.Helper()
	st, v := s.call("GET", fmt.Sprintf("%s/events?calendar_id=%s&start=%d&end=%d&limit=200%s", base, calID, start.Unix(), end.Unix(), extra), key, "")
	wantStatus(t, "list events", st, v, 200, "")
	var out []map[string]any
	for _, e := range list(v) {
		out = append(out, e.(map[string]any))
	}
	return out
}

func TestEventsOnRadicale(t *testing.T) {
	env := testenv.Get(t)
	u := env.NewUser(t)
	s, key, grant := calServer(t, env, u)
	base := "/v3/grants/" + grant
	cl, acct := dav(t, env, u)
	st, v := s.call("POST", base+"/calendars", key, `{"name":"Home","timezone":"Europe/Berlin"}`)
	wantStatus(t, "create calendar", st, v, 200, "")
	calID := data(v)["id"].(string)

	// A weekly series at 09:00 Berlin over the DST change of 2026-10-25,
	// one Monday excluded.
	berlin, _ := time.LoadLocation("Europe/Berlin")
	first := time.Date(2026, 10, 12, 9, 0, 0, 0, berlin) // a Monday
	series := mustEvent(t, s, key, base, calID, fmt.Sprintf(`{"title":"Standup","when":{"start_time":%d,"end_time":%d,"start_timezone":"Europe/Berlin","end_timezone":"Europe/Berlin"},
		"recurrence":["RRULE:FREQ=WEEKLY;COUNT=5","EXDATE;TZID=Europe/Berlin:20261019T090000"],"participants":[{"email":"bob@example.test","status":"yes"}],
		"reminders":{"use_default":false,"overrides":[{"reminder_minutes":10,"reminder_method":"display"}]}}`, first.Unix(), first.Add(30*time.Minute).Unix()))
	seriesID := series["id"].(string)
	if series["ical_uid"] == "" || len(series["recurrence"].([]any)) != 2 {
		t.Fatalf("series %v", series)
	}
	objs, err := cl.ListObjects(t.Context(), acct, onlyCalendar(t, cl, acct).URL)
	if err != nil || len(objs) != 1 {
		t.Fatalf("Radicale holds %d objects (%v), want the series as one", len(objs), err)
	}
	window := func(extra string) []map[string]any {
		return eventsIn(t, s, key, base, calID, first.AddDate(0, 0, -1), first.AddDate(0, 0, 40), extra)
	}
	inst := window("&expand_recurring=true")
	var starts []string
	for _, e := range inst {
		w := e["when"].(map[string]any)
		starts = append(starts, time.Unix(int64(w["start_time"].(float64)), 0).In(berlin).Format("01-02 15:04"))
		if e["master_event_id"] != seriesID || e["original_start_time"] == nil {
			t.Fatalf("instance %v", e)
		}
	}
	// Wall time stays 09:00 across the DST change; 10-19 is excluded.
	if got := strings.Join(starts, " "); got != "10-12 09:00 10-26 09:00 11-02 09:00 11-09 09:00" {
		obj := onlySeries(t, cl, acct, "Standup")
		t.Fatalf("occurrences: %s; the series on Radicale:\n%s", got, obj.Data)
	}
	if n := len(window("")); n != 1 {
		t.Fatalf("unexpanded listing: %d events, want the series once", n)
	}

	// Move one occurrence by its instance id: an override in the same
	// resource; the others stay.
	moved := inst[1]
	movedID := moved["id"].(string)
	newStart := time.Date(2026, 10, 27, 14, 0, 0, 0, berlin)
	st, v = s.call("PUT", base+"/events/"+movedID+"?calendar_id="+calID, key,
		fmt.Sprintf(`{"when":{"start_time":%d,"end_time":%d,"start_timezone":"Europe/Berlin","end_timezone":"Europe/Berlin"},"title":"Standup (moved)"}`, newStart.Unix(), newStart.Add(time.Hour).Unix()))
	wantStatus(t, "move occurrence", st, v, 200, "")
	if data(v)["id"] != movedID || data(v)["title"] != "Standup (moved)" {
		t.Fatalf("moved occurrence %v", v)
	}
	// Update the master: the override stays.
	st, v = s.call("PUT", base+"/events/"+seriesID+"?calendar_id="+calID, key, `{"title":"Daily standup"}`)
	wantStatus(t, "update series", st, v, 200, "")
	inst = window("&expand_recurring=true")
	var titles []string
	for _, e := range inst {
		titles = append(titles, fmt.Sprint(e["title"]))
	}
	if got := strings.Join(titles, ","); got != "Daily standup,Standup (moved),Daily standup,Daily standup" {
		t.Fatalf("after override and master update: %s", got)
	}
	// Delete one occurrence: EXDATE.
	st, v = s.call("DELETE", base+"/events/"+inst[3]["id"].(string)+"?calendar_id="+calID, key, "")
	wantStatus(t, "delete occurrence", st, v, 200, "")
	if n := len(window("&expand_recurring=true")); n != 3 {
		t.Fatalf("after deleting one occurrence: %d", n)
	}
	objs, _ = cl.ListObjects(t.Context(), acct, onlyCalendar(t, cl, acct).URL)
	got, _ := cl.GetObjects(t.Context(), acct, onlyCalendar(t, cl, acct).URL, []string{objs[0].Href})
	if len(got) != 1 || !strings.Contains(string(got[0].Data), "RECURRENCE-ID") || strings.Count(string(got[0].Data), "EXDATE") < 2 {
		t.Fatalf("the series on Radicale:\n%s", got[0].Data)
	}

	// All-day, two days: end_date inclusive on the wire, exclusive in
	// iCalendar.
	allDay := mustEvent(t, s, key, base, calID, `{"title":"Trip","when":{"start_date":"2026-10-14","end_date":"2026-10-15"}}`)
	if w := allDay["when"].(map[string]any); w["object"] != "datespan" || w["end_date"] != "2026-10-15" {
		t.Fatalf("all-day %v", allDay)
	}
	objs, _ = cl.ListObjects(t.Context(), acct, onlyCalendar(t, cl, acct).URL)
	var trip string
	for _, o := range objs {
		g, _ := cl.GetObjects(t.Context(), acct, onlyCalendar(t, cl, acct).URL, []string{o.Href})
		if len(g) == 1 && strings.Contains(string(g[0].Data), "SUMMARY:Trip") {
			trip = string(g[0].Data)
		}
	}
	if !strings.Contains(trip, "DTEND;VALUE=DATE:20261016") {
		t.Fatalf("all-day event on Radicale:\n%s", trip)
	}

	// Three time zones and a Windows name, across the DST change.
	for tz, iana := range map[string]string{"America/New_York": "America/New_York", "Australia/Sydney": "Australia/Sydney", "W. Europe Standard Time": "Europe/Berlin"} {
		loc, err := time.LoadLocation(iana)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 10, 20, 8, 0, 0, 0, loc)
		e := mustEvent(t, s, key, base, calID, fmt.Sprintf(`{"title":"tz %s","when":{"start_time":%d,"end_time":%d,"start_timezone":%q,"end_timezone":%q},"recurrence":["RRULE:FREQ=WEEKLY;COUNT=3"]}`,
			tz, start.Unix(), start.Add(time.Hour).Unix(), tz, tz))
		var walls []string
		for _, in := range eventsIn(t, s, key, base, calID, start.Add(-time.Hour), start.AddDate(0, 0, 21), "&expand_recurring=true&master_event_id="+e["id"].(string)) {
			walls = append(walls, time.Unix(int64(in["when"].(map[string]any)["start_time"].(float64)), 0).In(loc).Format("15:04"))
		}
		if strings.Join(walls, " ") != "08:00 08:00 08:00" {
			t.Fatalf("%s: wall times %v", tz, walls)
		}
	}

	// Someone else changes the series on the server: Orchard's next write
	// with the old ETag is a 409, not an overwrite.
	obj := onlySeries(t, cl, acct, "Daily standup")
	if _, err := cl.PutObject(t.Context(), acct, obj.Href, []byte(strings.Replace(string(obj.Data), "SUMMARY:Daily standup", "SUMMARY:Changed elsewhere", 1)), obj.ETag); err != nil {
		t.Fatal(err)
	}
	st, v = s.call("PUT", base+"/events/"+seriesID+"?calendar_id="+calID, key, `{"title":"Mine"}`)
	wantStatus(t, "stale write", st, v, 409, "changed on the server")

	// An event created directly on the server shows up after the next
	// sync (poked by Orchard's own write, or the interval).
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:external-1\r\nDTSTAMP:20261001T000000Z\r\nDTSTART:20261021T100000Z\r\nDTEND:20261021T110000Z\r\nSUMMARY:From elsewhere\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	if _, err := cl.PutObject(t.Context(), acct, onlyCalendar(t, cl, acct).URL+"external-1.ics", []byte(ics), ""); err != nil {
		t.Fatal(err)
	}
	mustEvent(t, s, key, base, calID, fmt.Sprintf(`{"title":"poke","when":{"time":%d,"timezone":"UTC"}}`, first.Unix()))
	deadline := time.Now().Add(15 * time.Second)
	for {
		evs := eventsIn(t, s, key, base, calID, first.AddDate(0, 0, -1), first.AddDate(0, 0, 40), "")
		if slices.ContainsFunc(evs, func(e map[string]any) bool { return e["title"] == "From elsewhere" }) &&
			slices.ContainsFunc(evs, func(e map[string]any) bool { return e["title"] == "Changed elsewhere" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("external changes never synced: %v", evs)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Free/busy from the grant's own events; another address is an error
	// entry.
	st, v = s.call("POST", base+"/calendars/free-busy", key, fmt.Sprintf(`{"start_time":%d,"end_time":%d,"emails":[%q,"stranger@example.test"]}`,
		first.Unix(), first.AddDate(0, 0, 1).Unix(), u.Email))
	wantStatus(t, "free/busy", st, v, 200, "")
	fb := list(v)
	slots, _ := fb[0].(map[string]any)["time_slots"].([]any)
	if len(fb) != 2 || fb[0].(map[string]any)["object"] != "free_busy" || fb[1].(map[string]any)["object"] != "error" || len(slots) == 0 {
		t.Fatalf("free/busy %v", v)
	}
	if sl := slots[0].(map[string]any); int64(sl["start_time"].(float64)) != first.Unix() {
		t.Fatalf("first busy slot %v, want the standup at %v", sl, first)
	}

	// A free window still answers time_slots, empty.
	st, v = s.call("POST", base+"/calendars/free-busy", key, fmt.Sprintf(`{"start_time":%d,"end_time":%d,"emails":[%q]}`,
		first.AddDate(1, 0, 0).Unix(), first.AddDate(1, 0, 1).Unix(), u.Email))
	if slots, ok := list(v)[0].(map[string]any)["time_slots"].([]any); st != 200 || !ok || len(slots) != 0 {
		t.Fatalf("free/busy of a free day: %d %v", st, v)
	}

	// Bad input: each a clear 4xx.
	for what, c := range map[string]struct {
		method, path, body string
		status             int
		says               string
	}{
		"end before start":      {"POST", "/events?calendar_id=" + calID, fmt.Sprintf(`{"when":{"start_time":%d,"end_time":%d}}`, first.Unix(), first.Add(-time.Hour).Unix()), 400, "end"},
		"unknown zone":          {"POST", "/events?calendar_id=" + calID, fmt.Sprintf(`{"when":{"time":%d,"timezone":"Nowhere/Town"}}`, first.Unix()), 400, "timezone"},
		"bad rrule":             {"POST", "/events?calendar_id=" + calID, fmt.Sprintf(`{"when":{"time":%d},"recurrence":["RRULE:FREQ=SOMETIMES"]}`, first.Unix()), 400, "recurrence"},
		"no when":               {"POST", "/events?calendar_id=" + calID, `{"title":"x"}`, 400, "when"},
		"no calendar":           {"GET", "/events", "", 400, "calendar_id"},
		"unknown calendar":      {"GET", "/events?calendar_id=nope", "", 404, "calendar"},
		"range too long":        {"GET", fmt.Sprintf("/events?calendar_id=%s&start=%d&end=%d&expand_recurring=true", calID, first.Unix(), first.AddDate(2, 0, 0).Unix()), "", 400, "366 days"},
		"end before start list": {"GET", fmt.Sprintf("/events?calendar_id=%s&start=%d&end=%d", calID, first.Unix(), first.Add(-time.Hour).Unix()), "", 400, "end"},
		"huge description":      {"POST", "/events?calendar_id=" + calID, fmt.Sprintf(`{"when":{"time":%d},"description":%q}`, first.Unix(), strings.Repeat("x", 200<<10)), 400, "description"},
		"unknown event":         {"GET", "/events/nope?calendar_id=" + calID, "", 404, "event"},
	} {
		st, v := s.call(c.method, base+c.path, key, c.body)
		wantStatus(t, what, st, v, c.status, c.says)
	}
	s.stop()
}

// IMAP grants have no calendars: a clear 400.
func TestCalendarsNeedICloud(t *testing.T) {
	env := testenv.Get(t)
	u := env.NewUser(t)
	s := startServer(t, "ORCHARD_DATA_DIR="+t.TempDir(), "ORCHARD_CA_FILE="+env.CAFile)
	key := connectUser(t, s, u)
	if st, _ := s.call("POST", "/v3/connectors", key, `{"provider":"imap"}`); st != 201 {
		t.Fatal("imap connector")
	}
	host, port, _ := strings.Cut(env.IMAPAddr, ":")
	shost, sport, _ := strings.Cut(env.SMTPAddr, ":")
	st, v := s.call("POST", "/v3/connect/custom", key, fmt.Sprintf(`{"provider":"imap","settings":{"imap_username":%q,"imap_password":%q,"imap_host":%q,"imap_port":%s,"smtp_host":%q,"smtp_port":%s}}`,
		u.Email, u.Password, host, port, shost, sport))
	wantStatus(t, "imap grant", st, v, 201, "")
	grant := data(v)["id"].(string)
	for _, p := range []string{"/calendars", "/calendars/primary", "/events?calendar_id=primary"} {
		st, v := s.call("GET", "/v3/grants/"+grant+p, key, "")
		wantStatus(t, p, st, v, 400, "iCloud connector")
	}
	s.stop()
}

func onlyCalendar(t *testing.T, cl *caldavx.Client, a caldavx.Account) caldavx.Calendar {
	t.Helper()
	cals, err := cl.Calendars(t.Context(), a)
	if err != nil || len(cals) != 1 {
		t.Fatalf("calendars on Radicale: %+v %v", cals, err)
	}
	return cals[0]
}

func onlySeries(t *testing.T, cl *caldavx.Client, a caldavx.Account, summary string) caldavx.Object {
	t.Helper()
	cal := onlyCalendar(t, cl, a)
	refs, err := cl.ListObjects(t.Context(), a, cal.URL)
	if err != nil {
		t.Fatal(err)
	}
	var hrefs []string
	for _, r := range refs {
		hrefs = append(hrefs, r.Href)
	}
	objs, err := cl.GetObjects(t.Context(), a, cal.URL, hrefs)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if strings.Contains(string(o.Data), "SUMMARY:"+summary) {
			return o
		}
	}
	t.Fatalf("no object with SUMMARY %q", summary)
	return caldavx.Object{}
}
