package icalconv

import (
	"strings"
	"testing"
	"time"
)

func TestWindowsZones(t *testing.T) {
	if len(windowsZones) < 139 {
		t.Fatalf("%d Windows zones", len(windowsZones))
	}
	for w, iana := range windowsZones {
		loc, err := LoadLocation(w)
		if err != nil || loc.String() != iana && !(iana == "Etc/UTC" && loc == time.UTC) {
			t.Errorf("%q: %v %v, want %s", w, loc, err, iana)
		}
	}
	for w, want := range map[string]string{
		"W. Europe Standard Time":   "Europe/Berlin",
		"Eastern Standard Time":     "America/New_York",
		"Pacific Standard Time":     "America/Los_Angeles",
		"Central Standard Time":     "America/Chicago",
		"GMT Standard Time":         "Europe/London",
		"Romance Standard Time":     "Europe/Paris",
		"Tokyo Standard Time":       "Asia/Tokyo",
		"India Standard Time":       "Asia/Kolkata",
		"China Standard Time":       "Asia/Shanghai",
		"AUS Eastern Standard Time": "Australia/Sydney",
		"FLE Standard Time":         "Europe/Kyiv",
		"UTC":                       "UTC",
		"w. europe standard time":   "Europe/Berlin", // letter case differs
		`"Eastern Standard Time"`:   "America/New_York",
	} {
		loc, err := LoadLocation(w)
		if err != nil || loc.String() != want {
			t.Errorf("%q: %v %v, want %s", w, loc, err, want)
		}
	}
}

func TestLoadLocationForms(t *testing.T) {
	for in, want := range map[string]string{
		"Europe/Berlin":                         "Europe/Berlin",
		"europe/berlin":                         "Europe/Berlin",
		"america/port-au-prince":                "America/Port-au-Prince",
		"/mozilla.org/20050126_1/Europe/Berlin": "Europe/Berlin",
		"/mozilla.org/20070129_1/America/Argentina/Buenos_Aires":       "America/Argentina/Buenos_Aires",
		"/softwarestudio.org/Olson_20011030_5/America/New_York":        "America/New_York",
		"/freeassociation.sourceforge.net/Tzfile/Europe/Amsterdam":     "Europe/Amsterdam",
		"/citadel.org/20190914_1/Asia/Tokyo":                           "Asia/Tokyo",
		"(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna": "Europe/Amsterdam",
		"(UTC+10:00) Canberra, Melbourne, Sydney":                      "Australia/Canberra",
		"(UTC) Coordinated Universal Time":                             "UTC",
		"Etc/GMT-3":                                                    "Etc/GMT-3",
		"Z":                                                            "UTC",
	} {
		loc, err := LoadLocation(in)
		if err != nil || loc.String() != want {
			t.Errorf("%q: %v %v, want %s", in, loc, err, want)
		}
	}
	for _, bad := range []string{"", "Local", "local", "Mars/Base", "../../etc/passwd", "/etc/passwd",
		"(UTC-05:00) Eastern Time (US & Canada)", "(UTC+02:00) Amsterdam", "Customized Time Zone"} {
		if loc, err := LoadLocation(bad); err == nil {
			t.Errorf("%q resolved to %v", bad, loc)
		}
	}
}

// TestVTimezoneRoundTrip: the VTIMEZONE written for a zone, read back by
// this package's own VTIMEZONE reader, gives the zone's offsets at every
// hour of the years it is written for. Zones with yearly rules get RRULEs.
func TestVTimezoneRoundTrip(t *testing.T) {
	for _, c := range []struct {
		zone  string
		rules bool
	}{
		{"America/New_York", true}, {"Europe/Berlin", true}, {"Australia/Sydney", true}, {"Europe/London", true},
		{"Australia/Lord_Howe", true}, {"Pacific/Chatham", true}, {"America/St_Johns", true},
		{"Asia/Tokyo", false}, {"Asia/Kolkata", false}, {"UTC", false},
		{"Africa/Casablanca", false}, {"Asia/Tehran", false}, {"America/Sao_Paulo", false}, {"Europe/Dublin", false},
		{"Asia/Jerusalem", false}, {"America/Santiago", false},
	} {
		for _, year := range []int{2019, 2024, 2031} {
			loc, err := time.LoadLocation(c.zone)
			if err != nil {
				t.Fatal(err)
			}
			vt := buildVTimezone(c.zone, loc, year)
			hasRule := false
			for _, obs := range vt.Children {
				hasRule = hasRule || obs.Props.Get("RRULE") != nil
			}
			if c.rules && !hasRule {
				t.Errorf("%s %d: no RRULE", c.zone, year)
			}
			base, trans, ok := vtimezoneTransitions(vt)
			if !ok {
				t.Fatalf("%s %d: unreadable VTIMEZONE", c.zone, year)
			}
			back, err := tzifLocation(c.zone, base, trans)
			if err != nil {
				t.Fatal(err)
			}
			from := time.Date(year-1, 1, 1, 0, 0, 0, 0, time.UTC)
			to := time.Date(year+4, 1, 1, 0, 0, 0, 0, time.UTC)
			bad := 0
			for at := from; at.Before(to); at = at.Add(time.Hour) {
				_, want := at.In(loc).Zone()
				_, got := at.In(back).Zone()
				if got != want && bad < 3 {
					bad++
					t.Errorf("%s %d: at %s offset %d, want %d", c.zone, year, at, got, want)
				}
			}
		}
	}
}

// A "Customized Time Zone" that matches no IANA zone: its own rules
// place the times, and no zone name is reported.
func TestCustomZoneWithoutIANAMatch(t *testing.T) {
	o := mustParse(t, []byte(strings.ReplaceAll(`BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VTIMEZONE
TZID:Customized Time Zone 1
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0230
TZOFFSETTO:+0130
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0130
TZOFFSETTO:+0230
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:c1
DTSTAMP:20240101T000000Z
DTSTART;TZID=Customized Time Zone 1:20240115T100000
DTEND;TZID=Customized Time Zone 1:20240115T110000
RRULE:FREQ=MONTHLY;COUNT=7
END:VEVENT
END:VCALENDAR
`, "\n", "\r\n")))
	insts, err := o.Instances(IDs{EventID: "c"}, day(2024, 1, 1), day(2024, 12, 1), 10)
	if err != nil || len(insts) != 7 {
		t.Fatalf("%v %d", err, len(insts))
	}
	// 10:00 at +01:30 in January, at +02:30 in July.
	if got := time.Unix(insts[0].When.StartTime, 0).UTC(); !got.Equal(time.Date(2024, 1, 15, 8, 30, 0, 0, time.UTC)) {
		t.Errorf("January at %s", got)
	}
	if got := time.Unix(insts[6].When.StartTime, 0).UTC(); !got.Equal(time.Date(2024, 7, 15, 7, 30, 0, 0, time.UTC)) {
		t.Errorf("July at %s", got)
	}
	if insts[0].When.StartTimezone != "" {
		t.Errorf("reported zone %q", insts[0].When.StartTimezone)
	}
	// The Windows name with its own VTIMEZONE still maps to IANA; an
	// unknown TZID without a VTIMEZONE is read as floating.
	o = mustParse(t, ics("", "UID:u\nDTSTAMP:20240101T000000Z\nDTSTART;TZID=Somewhere Else:20240115T100000"))
	if ev := mustEvent(t, o); ev.When.Time != day(2024, 1, 15).Add(10*time.Hour).Unix() || ev.When.Timezone != "" {
		t.Errorf("%+v", ev.When)
	}
}
