package icalconv

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/api"
)

// ics wraps VEVENT lines (and optional VCALENDAR lines before them) into
// a calendar object.
func ics(calLines string, events ...string) []byte {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n")
	for _, l := range strings.Split(strings.TrimSpace(calLines), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			b.WriteString(l + "\r\n")
		}
	}
	for _, ev := range events {
		b.WriteString("BEGIN:VEVENT\r\n")
		for _, l := range strings.Split(strings.TrimSpace(ev), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				b.WriteString(l + "\r\n")
			}
		}
		b.WriteString("END:VEVENT\r\n")
	}
	b.WriteString("END:VCALENDAR\r\n")
	return []byte(b.String())
}

func mustParse(t testing.TB, data []byte) *Object {
	t.Helper()
	o, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, data)
	}
	return o
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// TestInstancesAcrossDST: a daily 09:00 series keeps its local wall time
// through the change to and from daylight time, so its UTC time moves by
// the offset change, in three zones with different rules (Sydney's summer
// is in January).
func TestInstancesAcrossDST(t *testing.T) {
	cases := []struct {
		zone       string
		start      string    // DTSTART local
		before     time.Time // an occurrence before the change (UTC)
		after      time.Time // the same wall time after it (UTC)
		from, till time.Time
	}{
		{"America/New_York", "20240308T090000", time.Date(2024, 3, 9, 14, 0, 0, 0, time.UTC), time.Date(2024, 3, 11, 13, 0, 0, 0, time.UTC), day(2024, 3, 8), day(2024, 3, 13)},
		{"America/New_York", "20241101T090000", time.Date(2024, 11, 2, 13, 0, 0, 0, time.UTC), time.Date(2024, 11, 4, 14, 0, 0, 0, time.UTC), day(2024, 11, 1), day(2024, 11, 6)},
		{"Europe/Berlin", "20240329T090000", time.Date(2024, 3, 30, 8, 0, 0, 0, time.UTC), time.Date(2024, 4, 1, 7, 0, 0, 0, time.UTC), day(2024, 3, 29), day(2024, 4, 3)},
		{"Europe/Berlin", "20241025T090000", time.Date(2024, 10, 26, 7, 0, 0, 0, time.UTC), time.Date(2024, 10, 28, 8, 0, 0, 0, time.UTC), day(2024, 10, 25), day(2024, 10, 30)},
		// Sydney: 09:00 AEDT (+11) on 6 April, 09:00 AEST (+10) on the 7th.
		{"Australia/Sydney", "20240405T090000", time.Date(2024, 4, 5, 22, 0, 0, 0, time.UTC), time.Date(2024, 4, 6, 23, 0, 0, 0, time.UTC), day(2024, 4, 4), day(2024, 4, 10)},
		{"Australia/Sydney", "20241004T090000", time.Date(2024, 10, 4, 23, 0, 0, 0, time.UTC), time.Date(2024, 10, 5, 22, 0, 0, 0, time.UTC), day(2024, 10, 3), day(2024, 10, 9)},
	}
	for _, c := range cases {
		t.Run(c.zone+" "+c.start[:8], func(t *testing.T) {
			loc, _ := time.LoadLocation(c.zone)
			end := strings.Replace(c.start, "T09", "T10", 1)
			o := mustParse(t, ics("", fmt.Sprintf(`UID:dst
DTSTAMP:20240101T000000Z
DTSTART;TZID=%[1]s:%[2]s
DTEND;TZID=%[1]s:%[3]s
RRULE:FREQ=DAILY;COUNT=6`, c.zone, c.start, end)))
			insts, err := o.Instances(IDs{EventID: "d"}, c.from, c.till, 50)
			if err != nil {
				t.Fatal(err)
			}
			if len(insts) < 4 {
				t.Fatalf("%d instances", len(insts))
			}
			seen := map[int64]bool{}
			for _, in := range insts {
				st := time.Unix(in.When.StartTime, 0).In(loc)
				if st.Hour() != 9 || st.Minute() != 0 {
					t.Errorf("%s starts at %s local", in.ID, st)
				}
				if in.When.EndTime-in.When.StartTime != 3600 {
					t.Errorf("%s lasts %ds", in.ID, in.When.EndTime-in.When.StartTime)
				}
				if in.When.StartTimezone != c.zone || in.OriginalStartTime != in.When.StartTime {
					t.Errorf("%+v", in.When)
				}
				if in.ID != InstanceID("d", time.Unix(in.When.StartTime, 0), false) {
					t.Errorf("id %s", in.ID)
				}
				seen[in.When.StartTime] = true
			}
			if !seen[c.before.Unix()] || !seen[c.after.Unix()] {
				t.Errorf("want occurrences at %s and %s (UTC shifted by the change), got %v", c.before, c.after, insts)
			}
		})
	}
}

func TestEndlessSeries(t *testing.T) {
	o := mustParse(t, ics("", `UID:endless
DTSTAMP:20240101T000000Z
DTSTART;TZID=Europe/Berlin:20200106T080000
DTEND;TZID=Europe/Berlin:20200106T081500
RRULE:FREQ=DAILY`))
	// A decade of dailies is more than 100: refused, with the first 100.
	insts, err := o.Instances(IDs{EventID: "e"}, day(2020, 1, 1), day(2030, 1, 1), 100)
	if !errors.Is(err, ErrTooManyInstances) || len(insts) != 100 {
		t.Fatalf("%v, %d instances", err, len(insts))
	}
	if insts[0].ID != "e_20200106T070000Z" || insts[99].ID != "e_20200414T060000Z" {
		t.Errorf("first %s last %s", insts[0].ID, insts[99].ID)
	}
	// A week, years later, is fine.
	insts, err = o.Instances(IDs{EventID: "e"}, day(2029, 6, 3), day(2029, 6, 10), 100)
	if err != nil || len(insts) != 7 {
		t.Fatalf("%v, %d instances", err, len(insts))
	}
	s, e, err := o.Bounds()
	if err != nil || !s.Equal(time.Date(2020, 1, 6, 7, 0, 0, 0, time.UTC)) || !e.IsZero() {
		t.Errorf("bounds %v %v %v: want the first start and no end", s, e, err)
	}
	// maxInstances <= 0 is the default cap.
	if _, err := o.Instances(IDs{EventID: "e"}, day(2020, 1, 1), day(2100, 1, 1), 0); !errors.Is(err, ErrTooManyInstances) {
		t.Errorf("80 years of dailies: %v", err)
	}
}

// TestRuleGuards: rules rrule-go would spin on for seconds or minutes are
// not expanded; the series then has its DTSTART (and RDATEs) only.
func TestRuleGuards(t *testing.T) {
	for _, rule := range []string{
		"FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", // never happens
		"FREQ=MONTHLY;BYDAY=MO;BYSETPOS=10",  // never happens
		"FREQ=SECONDLY;INTERVAL=7;BYSECOND=3;BYMINUTE=2;BYHOUR=1;BYMONTH=2;BYMONTHDAY=30",
		"FREQ=HOURLY;INTERVAL=24;BYHOUR=3", // rrule-go loops forever on this one
		"FREQ=WEEKLY;INTERVAL=9223372036854775807",
		"FREQ=DAILY;COUNT=0",
		"FREQ=FORTNIGHTLY",
	} {
		t.Run(rule, func(t *testing.T) {
			start := time.Now()
			o := mustParse(t, ics("", "UID:g\nDTSTAMP:20240101T000000Z\nDTSTART:20240105T100000Z\nRRULE:"+rule))
			insts, err := o.Instances(IDs{EventID: "g"}, day(2024, 1, 1), day(2030, 1, 1), 10)
			if err != nil || len(insts) != 1 || insts[0].ID != "g_20240105T100000Z" {
				t.Errorf("%v %+v", err, insts)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s", d)
			}
			ev, _ := o.Event(IDs{EventID: "g"})
			if len(ev.Recurrence) != 1 || ev.Recurrence[0] != "RRULE:"+rule {
				t.Errorf("recurrence %v: an unusable rule is still reported", ev.Recurrence)
			}
		})
	}
}

func TestAllDaySeries(t *testing.T) {
	o := mustParse(t, ics("", `UID:ad
DTSTAMP:20240101T000000Z
DTSTART;VALUE=DATE:20240101
DTEND;VALUE=DATE:20240103
RRULE:FREQ=WEEKLY;COUNT=4
EXDATE;VALUE=DATE:20240108
RDATE;VALUE=DATE:20240120`,
		`UID:ad
DTSTAMP:20240101T000000Z
RECURRENCE-ID;VALUE=DATE:20240115
DTSTART;VALUE=DATE:20240116
DTEND;VALUE=DATE:20240117
SUMMARY:moved`))
	insts, err := o.Instances(IDs{EventID: "ad"}, day(2024, 1, 1), day(2024, 3, 1), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range insts {
		got = append(got, fmt.Sprintf("%s %s %s-%s %s %d", in.ID, in.When.Object, in.When.StartDate+in.When.Date, in.When.EndDate, in.Title, in.OriginalStartTime))
	}
	want := []string{
		"ad_20240101 datespan 2024-01-01-2024-01-02  1704067200",
		"ad_20240115 date 2024-01-16- moved 1705276800",
		"ad_20240120 datespan 2024-01-20-2024-01-21  1705708800",
		"ad_20240122 datespan 2024-01-22-2024-01-23  1705881600",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	s, e, _ := o.Bounds()
	if !s.Equal(day(2024, 1, 1)) || !e.Equal(day(2024, 1, 24)) {
		t.Errorf("bounds %v %v", s, e)
	}
	// Dates are read in the calendar's zone when the caller knows it.
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	o.SetDefaultLocation(tokyo)
	s, _, _ = o.Bounds()
	if !s.Equal(time.Date(2023, 12, 31, 15, 0, 0, 0, time.UTC)) {
		t.Errorf("bounds in Tokyo start %v", s)
	}
	insts, _ = o.Instances(IDs{EventID: "ad"}, day(2024, 1, 1), day(2024, 1, 2), 10)
	if len(insts) != 1 || insts[0].ID != "ad_20240101" || insts[0].OriginalStartTime != day(2024, 1, 1).Unix() {
		t.Errorf("%+v", insts)
	}
}

func TestInstanceWindowAndOverrides(t *testing.T) {
	o := mustParse(t, ics("", `UID:w
DTSTAMP:20240101T000000Z
DTSTART:20240101T100000Z
DTEND:20240101T110000Z
RRULE:FREQ=DAILY;COUNT=10
EXDATE:20240103T100000Z,20240104T100000Z
RDATE:20240120T100000Z`,
		// Moved from the 5th to before the window's start: outside.
		`UID:w
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240105T100000Z
DTSTART:20231231T100000Z
DTEND:20231231T110000Z`,
		// Moved from the 1st (outside) into the window.
		`UID:w
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240101T100000Z
DTSTART:20240108T150000Z
SUMMARY:moved in`,
		// Cancelled occurrence: reported, cancelled.
		`UID:w
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240107T100000Z
DTSTART:20240107T100000Z
DTEND:20240107T110000Z
STATUS:CANCELLED`))
	insts, err := o.Instances(IDs{EventID: "w"}, time.Date(2024, 1, 2, 10, 30, 0, 0, time.UTC), day(2024, 2, 1), 20)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range insts {
		got = append(got, fmt.Sprintf("%s %s %s %d", in.ID, time.Unix(in.When.StartTime, 0).UTC().Format("0102T1504"), in.Status, in.When.EndTime-in.When.StartTime))
	}
	want := []string{
		"w_20240102T100000Z 0102T1000 confirmed 3600", // overlaps the window's start
		"w_20240106T100000Z 0106T1000 confirmed 3600",
		"w_20240107T100000Z 0107T1000 cancelled 3600",
		"w_20240108T100000Z 0108T1000 confirmed 3600",
		"w_20240101T100000Z 0108T1500 confirmed 3600", // the override keeps the master's length
		"w_20240109T100000Z 0109T1000 confirmed 3600",
		"w_20240110T100000Z 0110T1000 confirmed 3600",
		"w_20240120T100000Z 0120T1000 confirmed 3600",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if insts[4].Title != "moved in" || insts[4].MasterEventID != "w" {
		t.Errorf("%+v", insts[4])
	}
	s, e, _ := o.Bounds()
	if !s.Equal(time.Date(2023, 12, 31, 10, 0, 0, 0, time.UTC)) || !e.Equal(time.Date(2024, 1, 20, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("bounds %v %v: the moved occurrence is earliest, the RDATE latest", s, e)
	}
}

func TestSingleEventInstances(t *testing.T) {
	o := mustParse(t, ics("", "UID:s\nDTSTAMP:20240101T000000Z\nDTSTART:20240105T100000Z\nDTEND:20240105T110000Z"))
	if o.Recurring() {
		t.Fatal("single event is recurring")
	}
	for _, c := range []struct {
		from, to time.Time
		n        int
	}{
		{day(2024, 1, 5), day(2024, 1, 6), 1},
		{time.Date(2024, 1, 5, 10, 59, 0, 0, time.UTC), day(2024, 1, 6), 1},
		{time.Date(2024, 1, 5, 11, 0, 0, 0, time.UTC), day(2024, 1, 6), 0}, // ends as the window starts
		{day(2024, 1, 4), time.Date(2024, 1, 5, 10, 0, 0, 0, time.UTC), 0}, // starts as it ends
	} {
		insts, err := o.Instances(IDs{EventID: "s"}, c.from, c.to, 5)
		if err != nil || len(insts) != c.n || (c.n == 1 && (insts[0].ID != "s" || insts[0].MasterEventID != "")) {
			t.Errorf("[%v, %v): %v %+v", c.from, c.to, err, insts)
		}
	}
}

func TestBusyPeriods(t *testing.T) {
	o := mustParse(t, ics("", `UID:b
DTSTAMP:20240101T000000Z
DTSTART:20240101T090000Z
DTEND:20240101T100000Z
RRULE:FREQ=DAILY;COUNT=5`,
		`UID:b
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240102T090000Z
DTSTART:20240102T093000Z
DTEND:20240102T103000Z
STATUS:TENTATIVE`,
		`UID:b
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240103T090000Z
DTSTART:20240103T090000Z
DTEND:20240103T100000Z
TRANSP:TRANSPARENT`,
		`UID:b
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240104T090000Z
DTSTART:20240104T090000Z
DTEND:20240104T100000Z
STATUS:CANCELLED`,
		`UID:b
DTSTAMP:20240101T000000Z
RECURRENCE-ID:20240105T090000Z
DTSTART:20240101T093000Z
DTEND:20240101T120000Z`))
	fmtP := func(ps [][2]time.Time) string {
		var l []string
		for _, p := range ps {
			l = append(l, p[0].Format("02T1504")+"-"+p[1].Format("02T1504"))
		}
		return strings.Join(l, " ")
	}
	got, err := o.BusyPeriods(day(2024, 1, 1), day(2024, 1, 10), false)
	// The 5th moved onto the 1st and merges with it; tentative, free and
	// cancelled occurrences are not busy.
	if err != nil || fmtP(got) != "01T0900-01T1200" {
		t.Errorf("%v %s", err, fmtP(got))
	}
	got, _ = o.BusyPeriods(day(2024, 1, 1), day(2024, 1, 10), true)
	if fmtP(got) != "01T0900-01T1200 02T0930-02T1030" {
		t.Errorf("tentative as busy: %s", fmtP(got))
	}
}

func TestInstanceIDs(t *testing.T) {
	ts := time.Date(2024, 3, 10, 7, 30, 0, 0, time.FixedZone("", -5*3600))
	id := InstanceID("abc_def", ts, false)
	if id != "abc_def_20240310T123000Z" {
		t.Fatalf("id %s", id)
	}
	m, st, allDay, ok := ParseInstanceID(id)
	if !ok || m != "abc_def" || !st.Equal(ts) || allDay {
		t.Errorf("%q %v %v %v", m, st, allDay, ok)
	}
	id = InstanceID("x", time.Date(2024, 12, 24, 0, 0, 0, 0, time.UTC), true)
	m, st, allDay, ok = ParseInstanceID(id)
	if id != "x_20241224" || !ok || m != "x" || !st.Equal(day(2024, 12, 24)) || !allDay {
		t.Errorf("%s: %q %v %v %v", id, m, st, allDay, ok)
	}
	for _, bad := range []string{"plain", "_20240101", "x_2024010", "x_20241301", "x_20240101T250000Z", "x_20240101T120000"} {
		if _, _, _, ok := ParseInstanceID(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestRDatePeriodAndDuration(t *testing.T) {
	o := mustParse(t, ics("", `UID:p
DTSTAMP:20240101T000000Z
DTSTART;TZID=Europe/Berlin:20240101T100000
DURATION:PT90M
RDATE;VALUE=PERIOD:20240110T090000Z/PT2H,20240111T090000Z/20240111T093000Z`))
	insts, err := o.Instances(IDs{EventID: "p"}, day(2024, 1, 1), day(2024, 2, 1), 10)
	if err != nil || len(insts) != 3 {
		t.Fatalf("%v %d", err, len(insts))
	}
	for i, want := range []int64{5400, 7200, 1800} {
		if d := insts[i].When.EndTime - insts[i].When.StartTime; d != want {
			t.Errorf("instance %d lasts %d, want %d", i, d, want)
		}
	}
}

func TestInstancesNotSharedSlices(t *testing.T) {
	o := mustParse(t, ics("", `UID:s
DTSTAMP:20240101T000000Z
DTSTART:20240101T100000Z
RRULE:FREQ=DAILY;COUNT=2
ATTENDEE;CN=A:mailto:a@example.com
X-ORCHARD-META-K:v`))
	insts, _ := o.Instances(IDs{}, day(2024, 1, 1), day(2024, 1, 5), 5)
	insts[0].Participants[0].Name = "changed"
	insts[0].Metadata["k"] = "changed"
	if insts[1].Participants[0].Name != "A" || insts[1].Metadata["k"] != "v" {
		t.Error("instances share participants or metadata")
	}
	if insts[0].When != (api.When{Object: "time", Time: day(2024, 1, 1).Add(10 * time.Hour).Unix(), Timezone: "UTC"}) {
		t.Errorf("no DTEND: %+v", insts[0].When)
	}
}

// TestDSTGapAndOverlap: a wall time that does not exist (clocks going
// forward) takes the offset from before the change, one that exists twice
// (clocks going back) is the first, as RFC 5545 §3.3.5 says; the other
// days keep the written wall time, even when DTSTART itself is in a gap.
func TestDSTGapAndOverlap(t *testing.T) {
	utc := func(mo time.Month, d, h, mi int) string {
		return time.Date(2024, mo, d, h, mi, 0, 0, time.UTC).Format("01-02T15:04Z")
	}
	for _, c := range []struct {
		zone, start string
		from        time.Time
		want        []string
	}{
		// New York springs forward at 02:00 EST on 10 March.
		{"America/New_York", "20240309T023000", day(2024, 3, 9), []string{utc(3, 9, 7, 30), utc(3, 10, 7, 30), utc(3, 11, 6, 30)}},
		{"America/New_York", "20240310T023000", day(2024, 3, 9), []string{utc(3, 10, 7, 30), utc(3, 11, 6, 30), utc(3, 12, 6, 30)}},
		// ... and falls back at 02:00 EDT on 3 November: 01:30 is EDT.
		{"America/New_York", "20241102T013000", day(2024, 11, 2), []string{utc(11, 2, 5, 30), utc(11, 3, 5, 30), utc(11, 4, 6, 30)}},
		// Berlin: 02:30 does not exist on 31 March, exists twice on 27 October.
		{"Europe/Berlin", "20240330T023000", day(2024, 3, 30), []string{utc(3, 30, 1, 30), utc(3, 31, 1, 30), utc(4, 1, 0, 30)}},
		{"Europe/Berlin", "20241026T023000", day(2024, 10, 26), []string{utc(10, 26, 0, 30), utc(10, 27, 0, 30), utc(10, 28, 1, 30)}},
	} {
		o := mustParse(t, ics("", fmt.Sprintf("UID:g\nDTSTAMP:20240101T000000Z\nDTSTART;TZID=%s:%s\nRRULE:FREQ=DAILY;COUNT=3", c.zone, c.start)))
		insts, err := o.Instances(IDs{EventID: "g"}, c.from, c.from.AddDate(0, 0, 5), 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, in := range insts {
			got = append(got, time.Unix(in.When.Time, 0).UTC().Format("01-02T15:04Z"))
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s %s: got %v, want %v", c.zone, c.start, got, c.want)
		}
		// The EXDATE of the odd occurrence, written as the wall time,
		// removes it.
		second := c.start[:6] + fmt.Sprintf("%02d", atoi(c.start[6:8])+1) + c.start[8:]
		o = mustParse(t, ics("", fmt.Sprintf("UID:g\nDTSTAMP:20240101T000000Z\nDTSTART;TZID=%[1]s:%[2]s\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE;TZID=%[1]s:%[3]s", c.zone, c.start, second)))
		if insts, _ := o.Instances(IDs{EventID: "g"}, c.from, c.from.AddDate(0, 0, 5), 10); len(insts) != 2 {
			t.Errorf("%s %s: EXDATE %s left %d", c.zone, c.start, second, len(insts))
		}
	}
	// A date whose midnight does not exist (Santiago springs forward at
	// 24:00 on 7 September 2024) keeps its date.
	santiago, _ := time.LoadLocation("America/Santiago")
	o := mustParse(t, ics("", "UID:d\nDTSTAMP:20240101T000000Z\nDTSTART;VALUE=DATE:20240907\nRRULE:FREQ=DAILY;COUNT=3"))
	o.SetDefaultLocation(santiago)
	insts, err := o.Instances(IDs{EventID: "d"}, day(2024, 9, 1), day(2024, 9, 20), 10)
	if err != nil || len(insts) != 3 {
		t.Fatalf("%v %d", err, len(insts))
	}
	for i, want := range []string{"2024-09-07", "2024-09-08", "2024-09-09"} {
		if insts[i].When.Date != want || insts[i].ID != "d_"+strings.ReplaceAll(want, "-", "") {
			t.Errorf("%d: %s %+v", i, insts[i].ID, insts[i].When)
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
