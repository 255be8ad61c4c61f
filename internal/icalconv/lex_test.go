package icalconv

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-ical"
)

func TestFolding(t *testing.T) {
	long := "DESCRIPTION:" + strings.Repeat("äöü€𝄞x", 40) // 2-, 3- and 4-byte runes
	var b bytes.Buffer
	writeFolded(&b, long)
	checkLines(t, append([]byte("BEGIN:VCALENDAR\r\n"), b.Bytes()...))
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\r\n"), "\r\n") {
		if !bytes.Equal([]byte(l), bytes.ToValidUTF8([]byte(l), nil)) {
			t.Errorf("fold split a rune: %q", l)
		}
	}
	if got := strings.Join(unfold(b.String()), ""); got != long {
		t.Errorf("unfolds to %q", got)
	}
}

func TestParamEscaping(t *testing.T) {
	for _, v := range []string{`plain`, `with space`, `a,b`, `x;y`, `mailto:a@b`, `say "hi"`, "two\nlines", `^caret^`, `^'`, `back\slash`} {
		line, err := propLine("ATTENDEE", &ical.Prop{Params: ical.Params{"CN": {v}}, Value: "mailto:a@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		_, params, value, ok := parseContentLine(line)
		if !ok || params.Get("CN") != v || value != "mailto:a@example.com" {
			t.Errorf("%q written as %q read as %q", v, line, params.Get("CN"))
		}
	}
}

// TestLenientLines: lines go-ical's decoder fails the whole object on (or
// panics on) are skipped, and the rest is read.
func TestLenientLines(t *testing.T) {
	bad := []string{
		`X-A;P="quoted"junk:v`,     // go-ical panics: unexpected character after a quoted value
		`X-B;P=v`,                  // go-ical panics: parameter at the end of the line
		`X-C;P="unterminated:v`,    // unterminated quote
		`X-D;=v:x`,                 // empty parameter name
		`X D:v`,                    // blank in a name
		`:no name`,                 // empty name
		` continuation of nothing`, // a fold before any line
	}
	data := ics("", "UID:l\nDTSTAMP:20240101T000000Z\nDTSTART:20240101T100000Z\n"+strings.Join(bad, "\n")+"\nSUMMARY:kept")
	o := mustParse(t, data)
	if ev := mustEvent(t, o); ev.Title != "kept" {
		t.Errorf("title %q", ev.Title)
	}
	out := string(mustEncode(t, o))
	for _, b := range []string{"X-A", "X-B", "X-C", "X-D", "X D"} {
		if strings.Contains(out, b) {
			t.Errorf("unreadable line %q written back", b)
		}
	}
	// The quirk this works around, while go-ical has it.
	for _, line := range bad[:2] {
		func() {
			defer func() {
				if recover() == nil {
					t.Logf("go-ical no longer panics on %q", line)
				}
			}()
			_, _ = ical.NewDecoder(bytes.NewReader(ics("", "UID:l\nDTSTART:20240101T100000Z\n"+line))).Decode()
		}()
	}
}

func TestParseErrors(t *testing.T) {
	for name, data := range map[string]string{
		"empty":           "",
		"no calendar":     "BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n",
		"no event":        "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:x\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
		"no uid":          string(ics("", "DTSTART:20240101T100000Z")),
		"no dtstart":      string(ics("", "UID:x\nSUMMARY:s")),
		"bad dtstart":     string(ics("", "UID:x\nDTSTART:2024-01-01")),
		"blank uid":       string(ics("", "UID:   \nDTSTART:20240101T100000Z")),
		"binary":          "\x00\x01\x02",
		"only a timezone": "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:UTC\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n",
	} {
		if o, err := Parse([]byte(data)); err == nil {
			t.Errorf("%s: parsed as %+v", name, o)
		}
	}
	// Lenient: no END lines, bare CR line ends, lower case.
	for name, data := range map[string]string{
		"unterminated": "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20240101T100000Z\r\n",
		"bare CR":      "BEGIN:VCALENDAR\rBEGIN:VEVENT\rUID:x\rDTSTART:20240101T100000Z\rEND:VEVENT\rEND:VCALENDAR\r",
		"lower case":   "begin:vcalendar\nbegin:vevent\nuid:x\ndtstart:20240101t100000z\nend:vevent\nend:vcalendar\n",
	} {
		o, err := Parse([]byte(data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if ev := mustEvent(t, o); ev.When.Time != day(2024, 1, 1).Add(10*60*60*1e9).Unix() || ev.ICalUID != "x" {
			t.Errorf("%s: %+v", name, ev)
		}
	}
}

func TestTextEscaping(t *testing.T) {
	for _, s := range []string{"", "plain", "a,b;c\\d", "line1\nline2", "trailing\\", "üñí"} {
		if got := unescapeText(escapeText(s)); got != s {
			t.Errorf("%q → %q → %q", s, escapeText(s), got)
		}
	}
	for in, want := range map[string]string{`a\,b`: "a,b", `a\Nb`: "a\nb", `a\:b`: "a:b", `a,b`: "a,b", `end\`: `end\`} {
		if got := unescapeText(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]string{"-PT15M": "-PT15M", "P1D": "P1D", "P2W": "P2W", "-P0DT0H10M0S": "-PT10M", "PT1H30M": "PT1H30M", "P1DT2H": "P1DT2H", "+PT45S": "PT45S"} {
		d, ok := parseDuration(in)
		if !ok || formatDuration(d) != want {
			t.Errorf("%q → %v %v → %q", in, d, ok, formatDuration(d))
		}
	}
	for _, bad := range []string{"", "P", "PT", "15M", "PT15", "P1H", "PT1D", "P99999999999D", "P1DT", "-"} {
		if d, ok := parseDuration(bad); ok {
			t.Errorf("%q parsed as %v", bad, d)
		}
	}
}
