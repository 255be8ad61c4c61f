package icalconv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/api"
)

// reading is everything an object reads as, for comparing two readings.
type reading struct {
	Event     api.Event
	Recurring bool
	Start     time.Time
	End       time.Time
	BoundsErr string
	Instances []api.Event
	InstErr   string
}

func read(t *testing.T, o *Object) reading {
	t.Helper()
	ids := IDs{GrantID: "g", CalendarID: "c", EventID: "e"}
	ev, err := o.Event(ids)
	if err != nil {
		t.Fatalf("Event of a parsed object: %v", err)
	}
	r := reading{Event: ev, Recurring: o.Recurring()}
	s, e, err := o.Bounds()
	r.Start, r.End = s.UTC(), e.UTC()
	if err != nil {
		r.BoundsErr = err.Error()
	}
	from := s.Add(-24 * time.Hour)
	insts, err := o.Instances(ids, from, from.AddDate(0, 0, 40), 30)
	r.Instances = insts
	if err != nil {
		r.InstErr = err.Error()
	}
	return r
}

// FuzzParse: Parse never panics; whatever it accepts encodes (as lines
// of at most 75 octets) into something it accepts again, which reads as
// the same event, bounds and instances, and encodes to the same bytes.
func FuzzParse(f *testing.F) {
	files, _ := os.ReadDir("testdata/corpus")
	for _, e := range files {
		if data, err := os.ReadFile("testdata/corpus/" + e.Name()); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		string(ics("", "UID:a\nDTSTART;VALUE=DATE:20240101\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3\nEXDATE;VALUE=DATE:20240131")),
		string(ics("", "UID:a\nDTSTART:20240101T100000\nDURATION:PT1H\nRDATE;VALUE=PERIOD:20240102T100000Z/PT2H", "UID:a\nRECURRENCE-ID:20240101T100000\nDTSTART:20240101T120000")),
		string(ics("METHOD:CANCEL\nX-WR-TIMEZONE:Asia/Tokyo", "UID:a\nDTSTART;TZID=\"W. Europe Standard Time\":20240101T100000\nATTENDEE;CN=\"a^'b\";X=1,2:mailto:a@b.c")),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		// No input may take seconds (rrule-go can, on rules it is not
		// given); a hang would otherwise only stall the fuzzer.
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("input takes over 10s: %q", data)) })
		defer watchdog.Stop()
		o, err := Parse(data)
		if err != nil {
			return
		}
		first := read(t, o)
		out, err := o.Encode()
		if err != nil {
			t.Fatalf("Encode of a parsed object: %v", err)
		}
		for _, l := range bytes.Split(out, []byte("\r\n")) {
			if len(l) > 75 {
				t.Fatalf("line of %d octets", len(l))
			}
		}
		o2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-Parse: %v\n%s", err, out)
		}
		second := read(t, o2)
		if !reflect.DeepEqual(first, second) {
			a, _ := json.Marshal(first)
			b, _ := json.Marshal(second)
			t.Fatalf("reading changed by Encode→Parse:\n%s\n%s\n%s", a, b, out)
		}
		out2, err := o2.Encode()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Encode not stable (%v):\n%s\n---\n%s", err, out, out2)
		}
	})
}

// FuzzNew: New either refuses with an InvalidError or builds an object
// that encodes, parses back to the same event, and takes the same input
// again as an Update.
func FuzzNew(f *testing.F) {
	f.Add("Team sync", "Agenda:\n1. a, b; c", "Room 1", int64(1717228800), int64(3600), "Europe/Berlin", "FREQ=WEEKLY;BYDAY=MO;COUNT=5", "EXDATE:20240610T100000", "a@example.com", "Ann", "project", "atlas", false)
	f.Add("", "", "", int64(1717228800), int64(0), "", "", "", "", "", "", "", true)
	f.Add("All day", "", "", int64(1735000000), int64(3*86400), "W. Europe Standard Time", "FREQ=YEARLY", "RDATE;VALUE=DATE:20250101", "b@example.org", "B \"q\"", "Key With Space", "v,;\\", true)
	f.Fuzz(func(t *testing.T, title, desc, loc string, start, dur int64, tz, rrule, extra, email, name, mk, mv string, allDay bool) {
		in := api.EventInput{Title: &title, Description: &desc, Location: &loc}
		if allDay {
			d := time.Unix(start, 0).UTC()
			in.When = &api.When{StartDate: d.Format(time.DateOnly), EndDate: d.Add(time.Duration(dur) * time.Second).Format(time.DateOnly)}
		} else {
			in.When = &api.When{StartTime: start, EndTime: start + dur, StartTimezone: tz}
		}
		var rec []string
		if rrule != "" {
			rec = append(rec, rrule)
		}
		if extra != "" {
			rec = append(rec, extra)
		}
		in.Recurrence = &rec
		if email != "" {
			in.Participants = &[]api.EventParticipant{{Email: email, Name: name, Status: "maybe"}}
		}
		if mk != "" {
			in.Metadata = map[string]string{mk: mv}
		}
		in.Reminders = &api.Reminders{Overrides: []api.ReminderOverride{{ReminderMinutes: int(dur % 1000), ReminderMethod: "email"}}}
		o, err := New(in, "", time.Unix(1700000000, 0))
		if err != nil {
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Field == "" {
				t.Fatalf("New refused without an InvalidError: %v", err)
			}
			return
		}
		first := read(t, o)
		out, err := o.Encode()
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		o2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse of New's output: %v\n%s", err, out)
		}
		if second := read(t, o2); !reflect.DeepEqual(first, second) {
			a, _ := json.Marshal(first)
			b, _ := json.Marshal(second)
			t.Fatalf("reading changed by Encode→Parse:\n%s\n%s\n%s", a, b, out)
		}
		ev := first.Event
		if ev.Title != strings.TrimSpace(ev.Title) && ev.Title != cleanText(title) {
			t.Fatalf("title %q from %q", ev.Title, title)
		}
		if ev.Title != cleanText(title) || ev.Description != cleanText(desc) || ev.Location != cleanText(loc) {
			t.Fatalf("texts changed: %q %q %q", ev.Title, ev.Description, ev.Location)
		}
		if mk != "" && ev.Metadata[mk] != cleanText(mv) {
			t.Fatalf("metadata %v", ev.Metadata)
		}
		if !allDay && (ev.When.StartTime != start && ev.When.Time != start) {
			t.Fatalf("start %+v, want %d", ev.When, start)
		}
		if err := o2.Update(in, time.Unix(1700000100, 0)); err != nil {
			t.Fatalf("the same input as an update: %v", err)
		}
		if third := read(t, o2); !reflect.DeepEqual(third.Event.When, ev.When) || !reflect.DeepEqual(third.Event.Recurrence, ev.Recurrence) {
			t.Fatalf("update with the same input changed when/recurrence: %+v %v", third.Event.When, third.Event.Recurrence)
		}
	})
}
