package icalconv

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/api"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// roundTrip encodes o, parses the bytes and checks that the event and
// the encoding are the same.
func roundTrip(t *testing.T, o *Object) *Object {
	t.Helper()
	out, err := o.Encode()
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, out)
	back := mustParse(t, out)
	a, b := mustEvent(t, o), mustEvent(t, back)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("event changed by Encode→Parse:\n%+v\n%+v\n%s", a, b, out)
	}
	return back
}

func TestNewRoundTrip(t *testing.T) {
	rec := []string{"RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20240630T215959Z", "EXDATE:20240513T091500", "RDATE;TZID=America/New_York:20240516T031500"}
	in := api.EventInput{
		Title:       ptr("Planning, round 2; \"final\""),
		Description: ptr("Line one\r\nLine two\\ with backslash\nüñíçødé " + strings.Repeat("long ", 40)),
		Location:    ptr("Room 4.12"),
		When: &api.When{StartTime: unix(2024, 5, 6, 9, 15, "Europe/Berlin"), EndTime: unix(2024, 5, 6, 10, 0, "Europe/Berlin"),
			StartTimezone: "W. Europe Standard Time"},
		Participants: &[]api.EventParticipant{
			{Email: "ann@example.com", Name: "Ann O'Neil; \"Boss\"", Status: "yes"},
			{Email: "bob@example.org", Status: "maybe", Comment: "may be late"},
			{Email: "cy@example.net"},
		},
		Busy:         ptr(false),
		Recurrence:   &rec,
		Reminders:    &api.Reminders{Overrides: []api.ReminderOverride{{ReminderMinutes: 10, ReminderMethod: "popup"}, {ReminderMinutes: 1440, ReminderMethod: "email"}, {ReminderMinutes: 0, ReminderMethod: "sound"}}},
		Conferencing: &api.Conferencing{Provider: "Zoom Meeting", Details: &api.ConferencingDetail{URL: "https://example.zoom.us/j/98765432101"}},
		Metadata:     map[string]string{"project": "atlas", "Customer ID": "C-1, \"x\"", "k": ""},
		Visibility:   ptr("private"),
		Status:       ptr("maybe"),
	}
	o, err := New(in, "", t0)
	if err != nil {
		t.Fatal(err)
	}
	back := roundTrip(t, o)
	ev := mustEvent(t, back)
	if ev.ICalUID == "" || ev.ICalUID != o.UID() || len(ev.ICalUID) != 36 {
		t.Errorf("uid %q", ev.ICalUID)
	}
	if ev.Title != *in.Title || ev.Description != strings.ReplaceAll(*in.Description, "\r\n", "\n") || ev.Location != "Room 4.12" {
		t.Errorf("texts %q %q %q", ev.Title, ev.Description, ev.Location)
	}
	// A Windows zone name is written as its IANA name.
	wantWhen := api.When{Object: "timespan", StartTime: in.When.StartTime, EndTime: in.When.EndTime, StartTimezone: "Europe/Berlin", EndTimezone: "Europe/Berlin"}
	if ev.When != wantWhen {
		t.Errorf("when %+v", ev.When)
	}
	wantP := []api.EventParticipant{
		{Email: "ann@example.com", Name: "Ann O'Neil; \"Boss\"", Status: "yes"},
		{Email: "bob@example.org", Status: "maybe", Comment: "may be late"},
		{Email: "cy@example.net", Status: "noreply"},
	}
	if !reflect.DeepEqual(ev.Participants, wantP) {
		t.Errorf("participants %+v", ev.Participants)
	}
	// EXDATE without a zone is read in the event's zone ("tz from when");
	// RDATE in another zone is written in the event's.
	wantR := []string{"RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20240630T215959Z", "EXDATE;TZID=Europe/Berlin:20240513T091500", "RDATE;TZID=Europe/Berlin:20240516T091500"}
	if !reflect.DeepEqual(ev.Recurrence, wantR) {
		t.Errorf("recurrence %q", ev.Recurrence)
	}
	wantRem := []api.ReminderOverride{{ReminderMinutes: 10, ReminderMethod: "display"}, {ReminderMinutes: 1440, ReminderMethod: "email"}, {ReminderMinutes: 0, ReminderMethod: "sound"}}
	if !reflect.DeepEqual(ev.Reminders.Overrides, wantRem) {
		t.Errorf("reminders %+v", ev.Reminders.Overrides)
	}
	if c := ev.Conferencing; c == nil || c.Provider != "Zoom Meeting" || c.Details.URL != "https://example.zoom.us/j/98765432101" || c.Details.MeetingCode != "98765432101" {
		t.Errorf("conferencing %+v", c)
	}
	if !reflect.DeepEqual(ev.Metadata, in.Metadata) {
		t.Errorf("metadata %v", ev.Metadata)
	}
	if ev.Busy || ev.Visibility != "private" || ev.Status != "maybe" || ev.CreatedAt != t0.Unix() || ev.UpdatedAt != t0.Unix() {
		t.Errorf("busy %v visibility %q status %q created %d updated %d", ev.Busy, ev.Visibility, ev.Status, ev.CreatedAt, ev.UpdatedAt)
	}
	out, _ := back.Encode()
	text := unfoldedText(out)
	for _, want := range []string{"BEGIN:VTIMEZONE", "TZID:Europe/Berlin", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "SEQUENCE:0",
		"DTSTART;TZID=Europe/Berlin:20240506T091500", "DTEND;TZID=Europe/Berlin:20240506T100000", "TRANSP:TRANSPARENT",
		"CONFERENCE;FEATURE=\"AUDIO,VIDEO\";LABEL=\"Zoom Meeting\";VALUE=URI:https://example.zoom.us/j/98765432101",
		"X-ORCHARD-META-PROJECT:atlas", "X-ORCHARD-META-CUSTOMER-ID;X-KEY=\"Customer ID\":C-1\\, \"x\""} {
		if !strings.Contains(text, want) {
			t.Errorf("encoding lacks %q:\n%s", want, text)
		}
	}
	// The series expands in Berlin time: 9:15 local in May.
	insts, err := back.Instances(IDs{EventID: "n"}, day(2024, 5, 1), day(2024, 5, 20), 20)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range insts {
		ids = append(ids, i.ID)
	}
	want := "n_20240506T071500Z n_20240508T071500Z n_20240515T071500Z n_20240516T071500Z"
	if strings.Join(ids, " ") != want {
		t.Errorf("instances %v, want %s", ids, want)
	}
}

// TestDatespanInclusive: Nylas end_date is inclusive, DTEND exclusive,
// in both directions; a one-day span is the "date" form.
func TestDatespanInclusive(t *testing.T) {
	o, err := New(api.EventInput{When: &api.When{StartDate: "2024-12-30", EndDate: "2025-01-02"}}, "ds", t0)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := o.Encode()
	if !strings.Contains(string(out), "DTSTART;VALUE=DATE:20241230\r\n") || !strings.Contains(string(out), "DTEND;VALUE=DATE:20250103\r\n") {
		t.Fatalf("written as\n%s", out)
	}
	ev := mustEvent(t, roundTrip(t, o))
	if ev.When != (api.When{Object: "datespan", StartDate: "2024-12-30", EndDate: "2025-01-02"}) {
		t.Errorf("read back %+v", ev.When)
	}
	s, e, _ := o.Bounds()
	if !s.Equal(day(2024, 12, 30)) || !e.Equal(day(2025, 1, 3)) {
		t.Errorf("bounds %v %v", s, e)
	}
	for _, w := range []api.When{{Object: "datespan", StartDate: "2024-02-29", EndDate: "2024-02-29"}, {Date: "2024-02-29"}} {
		o, err := New(api.EventInput{When: &w}, "d1", t0)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := o.Encode()
		if !strings.Contains(string(out), "DTEND;VALUE=DATE:20240301\r\n") {
			t.Errorf("%+v written as\n%s", w, out)
		}
		if ev := mustEvent(t, o); ev.When != (api.When{Object: "date", Date: "2024-02-29"}) {
			t.Errorf("%+v read back as %+v", w, ev.When)
		}
	}
	// A date without DTEND is one day.
	o = mustParse(t, ics("", "UID:x\nDTSTAMP:20240101T000000Z\nDTSTART;VALUE=DATE:20240301"))
	if ev := mustEvent(t, o); ev.When != (api.When{Object: "date", Date: "2024-03-01"}) {
		t.Errorf("%+v", ev.When)
	}
}

func TestNewWhenForms(t *testing.T) {
	at := unix(2024, 7, 1, 15, 0, "America/New_York")
	for _, c := range []struct {
		in      api.When
		want    api.When
		written string
	}{
		{api.When{Time: at, Timezone: "America/New_York"}, api.When{Object: "time", Time: at, Timezone: "America/New_York"}, "DTSTART;TZID=America/New_York:20240701T150000"},
		{api.When{Object: "time", Time: at}, api.When{Object: "time", Time: at, Timezone: "UTC"}, "DTSTART:20240701T190000Z"},
		{api.When{StartTime: at, EndTime: at + 1800, StartTimezone: "Etc/UTC"}, api.When{Object: "timespan", StartTime: at, EndTime: at + 1800, StartTimezone: "UTC", EndTimezone: "UTC"}, "DTEND:20240701T193000Z"},
		{api.When{StartTime: at, EndTime: at + 3600, StartTimezone: "America/New_York", EndTimezone: "Europe/London"},
			api.When{Object: "timespan", StartTime: at, EndTime: at + 3600, StartTimezone: "America/New_York", EndTimezone: "Europe/London"}, "DTEND;TZID=Europe/London:20240701T210000"},
		{api.When{StartTime: at, EndTime: at, StartTimezone: "Asia/Tokyo"}, api.When{Object: "time", Time: at, Timezone: "Asia/Tokyo"}, "DTSTART;TZID=Asia/Tokyo:20240702T040000"},
	} {
		w := c.in
		o, err := New(api.EventInput{When: &w}, "f", t0)
		if err != nil {
			t.Fatalf("%+v: %v", c.in, err)
		}
		ev := mustEvent(t, roundTrip(t, o))
		if ev.When != c.want {
			t.Errorf("%+v read back as %+v", c.in, ev.When)
		}
		if out, _ := o.Encode(); !strings.Contains(string(out), c.written+"\r\n") {
			t.Errorf("%+v written as\n%s", c.in, out)
		}
	}
}

func TestValidation(t *testing.T) {
	at := unix(2024, 7, 1, 15, 0, "UTC")
	good := func() api.EventInput {
		return api.EventInput{When: &api.When{StartTime: at, EndTime: at + 60}}
	}
	cases := []struct {
		field string
		edit  func(*api.EventInput)
	}{
		{"when", func(in *api.EventInput) { in.When = nil }},
		{"when", func(in *api.EventInput) { in.When = &api.When{} }},
		{"when", func(in *api.EventInput) { in.When = &api.When{Time: at, Date: "2024-01-01"} }},
		{"when.object", func(in *api.EventInput) { in.When.Object = "interval" }},
		{"when.end_time", func(in *api.EventInput) { in.When.EndTime = at - 1 }},
		{"when.end_time", func(in *api.EventInput) { in.When.EndTime = 0 }},
		{"when.start_time", func(in *api.EventInput) { in.When.StartTime = 1 << 40; in.When.EndTime = 1<<40 + 1 }},
		{"when.start_timezone", func(in *api.EventInput) { in.When.StartTimezone = "Mars/Olympus_Mons" }},
		{"when.end_timezone", func(in *api.EventInput) { in.When.StartTimezone = "UTC"; in.When.EndTimezone = "Local" }},
		{"when.timezone", func(in *api.EventInput) { in.When = &api.When{Time: at, Timezone: "Nowhere"} }},
		{"when.time", func(in *api.EventInput) { in.When = &api.When{Object: "time"} }},
		{"when.date", func(in *api.EventInput) { in.When = &api.When{Date: "2024-13-01"} }},
		{"when.end_date", func(in *api.EventInput) { in.When = &api.When{StartDate: "2024-05-02", EndDate: "2024-05-01"} }},
		{"when.start_date", func(in *api.EventInput) { in.When = &api.When{Object: "datespan", EndDate: "2024-05-01"} }},
		{"title", func(in *api.EventInput) { in.Title = ptr(strings.Repeat("t", MaxTitleBytes+1)) }},
		{"description", func(in *api.EventInput) { in.Description = ptr(strings.Repeat("d", MaxDescriptionBytes+1)) }},
		{"location", func(in *api.EventInput) { in.Location = ptr(strings.Repeat("l", MaxLocationBytes+1)) }},
		{"participants[1].email", func(in *api.EventInput) {
			in.Participants = &[]api.EventParticipant{{Email: "ok@example.com"}, {Email: "Ann <ann@example.com>"}}
		}},
		{"participants[0].email", func(in *api.EventInput) { in.Participants = &[]api.EventParticipant{{Email: "not-an-address"}} }},
		{"participants[2].email", func(in *api.EventInput) {
			in.Participants = &[]api.EventParticipant{{Email: "a@example.com"}, {Email: "b@example.com"}, {Email: ""}}
		}},
		{"participants[0].status", func(in *api.EventInput) {
			in.Participants = &[]api.EventParticipant{{Email: "a@example.com", Status: "accepted"}}
		}},
		{"recurrence[0]", func(in *api.EventInput) { in.Recurrence = &[]string{"RRULE:FREQ=SOMETIMES"} }},
		{"recurrence[1]", func(in *api.EventInput) { in.Recurrence = &[]string{"RRULE:FREQ=DAILY", "RRULE:FREQ=WEEKLY"} }},
		{"recurrence[0]", func(in *api.EventInput) { in.Recurrence = &[]string{"RRULE:FREQ=MINUTELY"} }},
		{"recurrence[0]", func(in *api.EventInput) { in.Recurrence = &[]string{"RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31"} }},
		{"recurrence[0]", func(in *api.EventInput) { in.Recurrence = &[]string{"RRULE:FREQ=DAILY;COUNT=0"} }},
		{"recurrence[1]", func(in *api.EventInput) { in.Recurrence = &[]string{"FREQ=DAILY", "EXDATE:tomorrow"} }},
		{"recurrence[0]", func(in *api.EventInput) { in.Recurrence = &[]string{"EXDATE;TZID=Nowhere:20240101T100000"} }},
		{"recurrence[0]", func(in *api.EventInput) { in.Recurrence = &[]string{"EXRULE:FREQ=DAILY"} }},
		{"recurrence[0]", func(in *api.EventInput) { in.Recurrence = &[]string{"RRULE:FREQ=DAILY\nEXDATE:20240101"} }},
		{"reminders.overrides[0].reminder_minutes", func(in *api.EventInput) {
			in.Reminders = &api.Reminders{Overrides: []api.ReminderOverride{{ReminderMinutes: -5}}}
		}},
		{"reminders.overrides[1].reminder_method", func(in *api.EventInput) {
			in.Reminders = &api.Reminders{Overrides: []api.ReminderOverride{{ReminderMinutes: 5}, {ReminderMinutes: 5, ReminderMethod: "sms"}}}
		}},
		{"conferencing.details.url", func(in *api.EventInput) { in.Conferencing = &api.Conferencing{Provider: "Zoom Meeting"} }},
		{"conferencing.details.url", func(in *api.EventInput) {
			in.Conferencing = &api.Conferencing{Provider: "Zoom Meeting", Details: &api.ConferencingDetail{URL: "javascript:alert(1)"}}
		}},
		{"conferencing.provider", func(in *api.EventInput) {
			in.Conferencing = &api.Conferencing{Details: &api.ConferencingDetail{URL: "https://jitsi.example.org/room"}}
		}},
		{"metadata", func(in *api.EventInput) { in.Metadata = map[string]string{"": "v"} }},
		{"metadata.k", func(in *api.EventInput) {
			in.Metadata = map[string]string{"k": strings.Repeat("v", MaxMetadataValue+1)}
		}},
		{"visibility", func(in *api.EventInput) { in.Visibility = ptr("secret") }},
		{"status", func(in *api.EventInput) { in.Status = ptr("tentative") }},
	}
	for _, c := range cases {
		in := good()
		c.edit(&in)
		_, err := New(in, "", t0)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("want an InvalidError on %s, got %v", c.field, err)
		}
	}
	if _, err := New(good(), "", t0); err != nil {
		t.Errorf("good input: %v", err)
	}
}

func TestUpdateKeepsOverridesAndBumpsSequence(t *testing.T) {
	o := mustParseFile(t, "weekly-series.ics")
	now := time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)
	if err := o.Update(api.EventInput{Title: ptr("Daily standup"), Busy: ptr(false)}, now); err != nil {
		t.Fatal(err)
	}
	back := roundTrip(t, o)
	out, _ := back.Encode()
	text := unfoldedText(out)
	if !strings.Contains(text, "SUMMARY:Daily standup") || strings.Count(text, "SEQUENCE:1") != 2 {
		t.Errorf("master and override should both be at SEQUENCE:1:\n%s", text)
	}
	master := back.master
	if propValue(master, "SEQUENCE") != "1" || propValue(master, "LAST-MODIFIED") != "20240301T080000Z" || propValue(master, "DTSTAMP") != "20240301T080000Z" {
		t.Errorf("master SEQUENCE %s LAST-MODIFIED %s DTSTAMP %s", propValue(master, "SEQUENCE"), propValue(master, "LAST-MODIFIED"), propValue(master, "DTSTAMP"))
	}
	if len(back.overrides) != 1 || propValue(back.overrides[0], "SUMMARY") != "Team standup (moved: offsite Tuesday)" || propValue(back.overrides[0], "SEQUENCE") != "1" {
		t.Fatalf("override not kept as it was")
	}
	ev := mustEvent(t, back)
	if ev.Title != "Daily standup" || ev.Busy || ev.UpdatedAt != now.Unix() || ev.Reminders.Overrides[0].ReminderMinutes != 5 {
		t.Errorf("%+v", ev)
	}
	insts, _ := back.Instances(IDs{EventID: "w"}, day(2024, 2, 1), day(2024, 5, 1), 20)
	titles := map[string]string{}
	for _, i := range insts {
		titles[i.ID] = i.Title
	}
	if len(insts) != 5 || titles["w_20240319T133000Z"] != "Team standup (moved: offsite Tuesday)" || titles["w_20240326T133000Z"] != "Daily standup" {
		t.Errorf("instances %v", titles)
	}
	// An empty recurrence makes a single event and drops the overrides.
	if err := back.Update(api.EventInput{Recurrence: &[]string{}}, now); err != nil {
		t.Fatal(err)
	}
	if back.Recurring() || len(back.overrides) != 0 || propValue(back.master, "SEQUENCE") != "2" {
		t.Errorf("recurring %v overrides %d", back.Recurring(), len(back.overrides))
	}
}

func TestUpdateIsAtomic(t *testing.T) {
	o := mustParseFile(t, "icloud-single.ics")
	before, _ := o.Encode()
	err := o.Update(api.EventInput{Title: ptr("new title"), Participants: &[]api.EventParticipant{{Email: "bad"}}}, t0)
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Field != "participants[0].email" {
		t.Fatalf("err %v", err)
	}
	after, _ := o.Encode()
	if string(before) != string(after) {
		t.Errorf("a refused update changed the object")
	}
}

func TestUpdatePreservesUnmapped(t *testing.T) {
	o := mustParseFile(t, "icloud-single.ics")
	err := o.Update(api.EventInput{
		Location: ptr("Café Einstein, Kurfürstenstraße"),
		Participants: &[]api.EventParticipant{
			{Email: "Mara@Example.org", Status: "yes"}, // same attendee, other case
			{Email: "new@example.com", Name: "New Person"},
		},
		Reminders: &api.Reminders{Overrides: []api.ReminderOverride{{ReminderMinutes: 60}}},
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	text := unfoldedText(mustEncode(t, o))
	for _, want := range []string{
		`ATTENDEE;CN="Mara Schulz";CUTYPE=INDIVIDUAL;EMAIL=mara@example.org;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT;RSVP=TRUE;SCHEDULE-STATUS=2.0:mailto:mara@example.org`,
		`ATTENDEE;CN="New Person";CUTYPE=INDIVIDUAL;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:new@example.com`,
		"ACTION:NONE", "X-APPLE-DEFAULT-ALARM:TRUE", "TRIGGER:-PT1H", "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
		"SEQUENCE:2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("lacks %q:\n%s", want, text)
		}
	}
	for _, gone := range []string{"TRIGGER:-PT30M", "X-APPLE-STRUCTURED-LOCATION", "theo@example.net"} {
		if strings.Contains(text, gone) {
			t.Errorf("still has %q", gone)
		}
	}
	ev := mustEvent(t, o)
	if len(ev.Reminders.Overrides) != 1 || ev.Reminders.Overrides[0].ReminderMinutes != 60 || len(ev.Participants) != 2 {
		t.Errorf("%+v %+v", ev.Reminders, ev.Participants)
	}
}

func mustEncode(t *testing.T, o *Object) []byte {
	t.Helper()
	out, err := o.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUpdateInstance(t *testing.T) {
	o := mustParseFile(t, "weekly-series.ics")
	ids := IDs{EventID: "w"}
	now := time.Date(2024, 3, 20, 9, 0, 0, 0, time.UTC)
	_, orig, _, _ := ParseInstanceID("w_20240326T133000Z")
	at := unix(2024, 3, 26, 16, 0, "America/New_York")
	err := o.UpdateInstance(orig, api.EventInput{Title: ptr("Retro instead"), When: &api.When{StartTime: at, EndTime: at + 3600, StartTimezone: "America/New_York"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	back := roundTrip(t, o)
	insts, _ := back.Instances(ids, day(2024, 2, 1), day(2024, 5, 1), 20)
	byID := map[string]api.Event{}
	for _, i := range insts {
		byID[i.ID] = i
	}
	got := byID["w_20240326T133000Z"]
	if len(insts) != 5 || got.Title != "Retro instead" || got.When.StartTime != at || got.When.EndTime != at+3600 || got.OriginalStartTime != orig.Unix() {
		t.Fatalf("%d instances, edited %+v", len(insts), got)
	}
	if byID["w_20240402T133000Z"].Title != "Team standup" || byID["w_20240319T133000Z"].Title != "Team standup (moved: offsite Tuesday)" {
		t.Errorf("other instances changed")
	}
	// The new override is a full VEVENT: the master's alarm is copied.
	if len(got.Reminders.Overrides) != 1 {
		t.Errorf("reminders %+v", got.Reminders)
	}
	var ov *icalComponent
	for _, c := range back.overrides {
		if strings.HasPrefix(propValue(c, "RECURRENCE-ID"), "20240326") {
			ov = c
		}
	}
	if ov == nil || ov.Props.Get("RECURRENCE-ID").Params.Get("TZID") != "America/New_York" || propValue(ov, "RECURRENCE-ID") != "20240326T093000" ||
		propValue(ov, "SEQUENCE") != "1" || propValue(ov, "DTSTAMP") != "20240320T090000Z" || ov.Props.Get("RRULE") != nil || ov.Props.Get("EXDATE") != nil {
		t.Fatalf("override written as %+v", ov)
	}
	// Editing the existing override again bumps its SEQUENCE.
	if err := back.UpdateInstance(orig, api.EventInput{Location: ptr("Room 9")}, now); err != nil {
		t.Fatal(err)
	}
	if len(back.overrides) != 2 {
		t.Fatalf("%d overrides", len(back.overrides))
	}
	ev, _ := back.Instances(ids, time.Unix(at, 0), time.Unix(at+1, 0), 5)
	if len(ev) != 1 || ev[0].Location != "Room 9" || ev[0].Title != "Retro instead" {
		t.Errorf("%+v", ev)
	}
	// Occurrences that do not exist.
	for _, bad := range []time.Time{
		time.Date(2024, 3, 12, 13, 30, 0, 0, time.UTC), // EXDATE
		time.Date(2024, 3, 27, 13, 30, 0, 0, time.UTC), // a Wednesday
		time.Date(2024, 4, 9, 13, 30, 0, 0, time.UTC),  // after UNTIL
	} {
		if err := back.UpdateInstance(bad, api.EventInput{Title: ptr("x")}, now); !errors.Is(err, ErrNoInstance) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	var ie *InvalidError
	if err := back.UpdateInstance(orig, api.EventInput{Recurrence: &[]string{"RRULE:FREQ=DAILY"}}, now); !errors.As(err, &ie) || ie.Field != "recurrence" {
		t.Errorf("recurrence on an instance: %v", err)
	}
	single := mustParseFile(t, "icloud-single.ics")
	if err := single.UpdateInstance(time.Now(), api.EventInput{}, now); !errors.Is(err, ErrNoInstance) {
		t.Errorf("single event: %v", err)
	}
}

func TestDeleteInstance(t *testing.T) {
	o := mustParseFile(t, "weekly-series.ics")
	ids := IDs{EventID: "w"}
	now := time.Date(2024, 3, 20, 9, 0, 0, 0, time.UTC)
	count := func(o *Object) []string {
		insts, err := o.Instances(ids, day(2024, 2, 1), day(2024, 5, 1), 20)
		if err != nil {
			t.Fatal(err)
		}
		var l []string
		for _, i := range insts {
			l = append(l, i.ID)
		}
		return l
	}
	_, plain, _, _ := ParseInstanceID("w_20240326T133000Z")
	_, moved, _, _ := ParseInstanceID("w_20240319T133000Z")
	if err := o.DeleteInstance(plain, now); err != nil {
		t.Fatal(err)
	}
	if err := o.DeleteInstance(moved, now); err != nil {
		t.Fatal(err)
	}
	back := roundTrip(t, o)
	if got := strings.Join(count(back), " "); got != "w_20240227T143000Z w_20240305T143000Z w_20240402T133000Z" {
		t.Errorf("after deletes: %s", got)
	}
	text := unfoldedText(mustEncode(t, back))
	for _, want := range []string{"EXDATE;TZID=America/New_York:20240326T093000", "EXDATE;TZID=America/New_York:20240319T093000",
		"EXDATE;TZID=America/New_York:20240312T093000", "SEQUENCE:2"} {
		if !strings.Contains(text, want) {
			t.Errorf("lacks %q:\n%s", want, text)
		}
	}
	if len(back.overrides) != 0 || strings.Contains(text, "RECURRENCE-ID") {
		t.Errorf("the moved occurrence's override was kept")
	}
	if err := back.DeleteInstance(plain, now); !errors.Is(err, ErrNoInstance) {
		t.Errorf("deleting twice: %v", err)
	}
	// All-day series, named as ParseInstanceID names it.
	ad := mustParse(t, ics("", "UID:ad\nDTSTAMP:20240101T000000Z\nDTSTART;VALUE=DATE:20240101\nRRULE:FREQ=DAILY;COUNT=3"))
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	ad.SetDefaultLocation(tokyo)
	_, d, allDay, ok := ParseInstanceID("ad_20240102")
	if !ok || !allDay {
		t.Fatal("ParseInstanceID")
	}
	if err := ad.DeleteInstance(d, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mustEncode(t, ad)), "EXDATE;VALUE=DATE:20240102\r\n") {
		t.Errorf("%s", mustEncode(t, ad))
	}
	if err := ad.UpdateInstance(day(2024, 1, 3), api.EventInput{Title: ptr("last")}, now); err != nil {
		t.Fatal(err)
	}
	insts, _ := ad.Instances(IDs{EventID: "ad"}, day(2023, 12, 30), day(2024, 1, 10), 10)
	if len(insts) != 2 || insts[0].ID != "ad_20240101" || insts[1].ID != "ad_20240103" || insts[1].Title != "last" || insts[1].When.Date != "2024-01-03" {
		t.Errorf("%+v", insts)
	}
	// Overrides only: the last one cannot be deleted.
	orphan := mustParseFile(t, "orphan-override.ics")
	_, first, _, _ := ParseInstanceID("x_20240710T080000Z")
	if err := orphan.DeleteInstance(first, now); err == nil {
		t.Error("deleted the only occurrence")
	}
}

func TestConferencingAndMetadataUpdates(t *testing.T) {
	o := mustParseFile(t, "google-meet.ics")
	if err := o.Update(api.EventInput{Conferencing: &api.Conferencing{}}, t0); err != nil {
		t.Fatal(err)
	}
	// Removing the meeting removes Google's property; the link inside the
	// description text stays, and is found again.
	if c := mustEvent(t, o).Conferencing; c == nil || c.Details.URL != "https://meet.google.com/xfr-jqbd-kmu" {
		t.Errorf("%+v", c)
	}
	if strings.Contains(string(mustEncode(t, o)), "X-GOOGLE-CONFERENCE") {
		t.Error("X-GOOGLE-CONFERENCE kept")
	}
	if err := o.Update(api.EventInput{Description: ptr("no link"), Conferencing: &api.Conferencing{Provider: "Jitsi", Details: &api.ConferencingDetail{URL: "https://meet.jit.si/orchard-weekly"}},
		Metadata: map[string]string{"a": "1"}}, t0); err != nil {
		t.Fatal(err)
	}
	ev := mustEvent(t, roundTrip(t, o))
	if ev.Conferencing == nil || ev.Conferencing.Provider != "Jitsi" || ev.Conferencing.Details.URL != "https://meet.jit.si/orchard-weekly" {
		t.Errorf("%+v", ev.Conferencing)
	}
	if err := o.Update(api.EventInput{Metadata: map[string]string{}}, t0); err != nil {
		t.Fatal(err)
	}
	if ev := mustEvent(t, o); len(ev.Metadata) != 0 || ev.Metadata == nil {
		t.Errorf("metadata %v", ev.Metadata)
	}
}
