package caldavx

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
)

// The VTIMEZONE written for a calendar names the zone, decodes with go-ical,
// and its observances carry the zone's real offsets.
func TestVTimezone(t *testing.T) {
	for _, tc := range []struct {
		tzid  string
		comps []string // observance kinds, in order
		offs  []string // TZOFFSETTO of each
	}{
		{"Europe/Paris", []string{"STANDARD", "DAYLIGHT", "STANDARD"}, []string{"+0100", "+0200", "+0100"}},
		{"America/New_York", []string{"STANDARD", "DAYLIGHT", "STANDARD"}, []string{"-0500", "-0400", "-0500"}},
		{"Asia/Kolkata", []string{"STANDARD"}, []string{"+0530"}},
		{"UTC", []string{"STANDARD"}, []string{"+0000"}},
	} {
		t.Run(tc.tzid, func(t *testing.T) {
			b, err := vtimezone(tc.tzid)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "\r\nTZID:"+tc.tzid+"\r\n") {
				t.Errorf("no TZID line in\n%s", b)
			}
			if got := tzidOf(string(b)); got != tc.tzid {
				t.Errorf("tzidOf = %q, want %q", got, tc.tzid)
			}
			cal, err := ical.NewDecoder(strings.NewReader(string(b))).Decode()
			if err != nil {
				t.Fatal(err)
			}
			if len(cal.Children) != 1 || cal.Children[0].Name != "VTIMEZONE" {
				t.Fatalf("want one VTIMEZONE:\n%s", b)
			}
			var comps, offs []string
			for _, o := range cal.Children[0].Children {
				comps = append(comps, o.Name)
				offs = append(offs, o.Props.Get("TZOFFSETTO").Value)
			}
			if strings.Join(comps, " ") != strings.Join(tc.comps, " ") || strings.Join(offs, " ") != strings.Join(tc.offs, " ") {
				t.Errorf("observances %v %v, want %v %v\n%s", comps, offs, tc.comps, tc.offs, b)
			}
		})
	}
	// Onsets are local times before the change: Paris goes to summer time
	// at 02:00 CET on the last Sunday of March.
	b, _ := vtimezone("Europe/Paris")
	year := time.Now().Year()
	d := time.Date(year, 3, 31, 0, 0, 0, 0, time.UTC)
	for d.Weekday() != time.Sunday {
		d = d.AddDate(0, 0, -1)
	}
	if want := "DTSTART:" + d.Format("20060102") + "T020000\r\n"; !strings.Contains(string(b), want) {
		t.Errorf("no %q in\n%s", want, b)
	}
	for _, bad := range []string{"Mars/Olympus_Mons", "Local", ""} {
		if _, err := vtimezone(bad); err == nil {
			t.Errorf("vtimezone(%q): no error", bad)
		}
	}
}

func TestTZIDOf(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"Europe/Berlin": "Europe/Berlin", // RFC 7809 style
		"BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:Europe/Rome\nEND:VTIMEZONE\nEND:VCALENDAR\n": "Europe/Rome",
		// Not decodable by go-ical (no END): the TZID line is still found.
		"BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Asia/Tokyo\r\n": "Asia/Tokyo",
	} {
		if got := tzidOf(in); got != want {
			t.Errorf("tzidOf(%q) = %q, want %q", in, got, want)
		}
	}
}
