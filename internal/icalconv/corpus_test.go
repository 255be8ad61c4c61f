package icalconv

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/api"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// golden is what one corpus file reads as: the event (the master for a
// series), its bounds, and its instances in a window (the first two months
// from its start unless corpusWindows says otherwise).
type golden struct {
	Recurring bool        `json:"recurring"`
	Event     api.Event   `json:"event"`
	Bounds    [2]string   `json:"bounds"`
	Window    [2]string   `json:"window"`
	Instances []api.Event `json:"instances"`
}

func corpusIDs(name string) IDs {
	return IDs{GrantID: "grant-1", CalendarID: "cal-1", EventID: "evt-" + strings.TrimSuffix(name, ".ics")}
}

func rfc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func readGolden(t *testing.T, name string, data []byte) golden {
	t.Helper()
	o, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	ids := corpusIDs(name)
	ev, err := o.Event(ids)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	s, e, err := o.Bounds()
	if err != nil {
		t.Fatalf("Bounds: %v", err)
	}
	from, to := s.Add(-time.Hour), s.AddDate(0, 2, 0)
	insts, err := o.Instances(ids, from, to, 100)
	if err != nil {
		t.Fatalf("Instances: %v", err)
	}
	if insts == nil {
		insts = []api.Event{}
	}
	return golden{Recurring: o.Recurring(), Event: ev, Bounds: [2]string{rfc(s), rfc(e)},
		Window: [2]string{rfc(from), rfc(to)}, Instances: insts}
}

func corpusFiles(t testing.TB) []string {
	files, err := filepath.Glob("testdata/corpus/*.ics")
	if err != nil || len(files) < 10 {
		t.Fatalf("corpus: %v files, %v", len(files), err)
	}
	return files
}

// TestCorpusGolden compares each corpus file's reading with its golden
// JSON (reviewed by hand; -update rewrites them).
func TestCorpusGolden(t *testing.T) {
	for _, f := range corpusFiles(t) {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := readGolden(t, name, data)
			gj, _ := json.MarshalIndent(got, "", "  ")
			gj = append(gj, '\n')
			path := filepath.Join("testdata", "golden", strings.TrimSuffix(name, ".ics")+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, gj, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("golden missing (go test -update): %v", err)
			}
			if !bytes.Equal(gj, want) {
				t.Errorf("reading differs from %s:\n%s", path, lineDiff(string(want), string(gj)))
			}
		})
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + itoa(int64(i+1)) + ":\n  want " + wl + "\n  got  " + gl + "\n")
			if b.Len() > 2000 {
				break
			}
		}
	}
	return b.String()
}

// TestCorpusRoundTrip: every corpus file encodes to valid folded CRLF
// lines that read back as the same event, bounds and instances, and keeps
// the properties Orchard does not use.
func TestCorpusRoundTrip(t *testing.T) {
	for _, f := range corpusFiles(t) {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, _ := os.ReadFile(f)
			o, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			out, err := o.Encode()
			if err != nil {
				t.Fatal(err)
			}
			checkLines(t, out)
			first := readGolden(t, name, data)
			second := readGolden(t, name, out)
			if !reflect.DeepEqual(first, second) {
				a, _ := json.MarshalIndent(first, "", " ")
				b, _ := json.MarshalIndent(second, "", " ")
				t.Fatalf("re-read differs:\n%s", lineDiff(string(a), string(b)))
			}
			// Whatever Orchard does not map survives: every X- property
			// name and every ATTENDEE parameter name of the input.
			for _, line := range unfold(string(data)) {
				name := strings.ToUpper(line[:max(0, strings.IndexAny(line, ";:"))])
				if strings.HasPrefix(name, "X-") && name != "X-BROKEN" && !strings.Contains(string(out), name) {
					t.Errorf("%s lost", name)
				}
			}
			again, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			out2, _ := again.Encode()
			if !bytes.Equal(out, out2) {
				t.Errorf("Encode is not stable:\n%s\n---\n%s", out, out2)
			}
		})
	}
}

func unfold(s string) []string {
	s = strings.TrimPrefix(strings.ReplaceAll(s, "\r\n", "\n"), "\ufeff")
	s = strings.ReplaceAll(s, "\n ", "")
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// checkLines: CRLF only, no physical line over 75 octets, no UTF-8
// sequence split by a fold.
func checkLines(t *testing.T, out []byte) {
	t.Helper()
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		t.Fatalf("output does not end in CRLF")
	}
	for i, l := range bytes.Split(bytes.TrimSuffix(out, []byte("\r\n")), []byte("\r\n")) {
		if len(l) > 75 {
			t.Errorf("line %d has %d octets: %q", i+1, len(l), l)
		}
		if bytes.ContainsAny(l, "\r\n") {
			t.Errorf("line %d has a bare CR or LF", i+1)
		}
	}
	if u := unfold(string(out)); len(u) > 0 && !strings.HasPrefix(u[0], "BEGIN:VCALENDAR") {
		t.Errorf("first line %q", u[0])
	}
}

func mustParseFile(t *testing.T, name string) *Object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	o, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func mustEvent(t *testing.T, o *Object) api.Event {
	t.Helper()
	ev, err := o.Event(IDs{EventID: "e1"})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func unix(y int, mo time.Month, d, h, mi int, loc string) int64 {
	l, err := time.LoadLocation(loc)
	if err != nil {
		panic(err)
	}
	return time.Date(y, mo, d, h, mi, 0, 0, l).Unix()
}

// TestCorpusFacts states the points of each corpus file outright, so that
// a golden file rewritten by mistake cannot hide them.
func TestCorpusFacts(t *testing.T) {
	t.Run("icloud", func(t *testing.T) {
		o := mustParseFile(t, "icloud-single.ics")
		ev := mustEvent(t, o)
		if ev.When.Object != "timespan" || ev.When.StartTime != unix(2024, 4, 18, 10, 0, "Europe/Berlin") ||
			ev.When.EndTime != unix(2024, 4, 18, 11, 30, "Europe/Berlin") || ev.When.StartTimezone != "Europe/Berlin" {
			t.Errorf("when %+v", ev.When)
		}
		want := []api.EventParticipant{
			{Email: "jonas.weber@icloud.com", Name: "Jonas Weber", Status: "yes"}, // urn:uuid value, EMAIL parameter
			{Email: "mara@example.org", Name: "Mara Schulz", Status: "maybe"},
			{Email: "theo@example.net", Name: "Theo", Status: "noreply"},
		}
		if !reflect.DeepEqual(ev.Participants, want) {
			t.Errorf("participants %+v", ev.Participants)
		}
		if ev.Location != "Café Einstein\nUnter den Linden 42, 10117 Berlin" || ev.Status != "confirmed" || !ev.Busy {
			t.Errorf("location %q status %q busy %v", ev.Location, ev.Status, ev.Busy)
		}
		// ACTION:NONE placeholder alarm is not a reminder.
		if r := ev.Reminders; len(r.Overrides) != 1 || r.Overrides[0] != (api.ReminderOverride{ReminderMinutes: 30, ReminderMethod: "display"}) {
			t.Errorf("reminders %+v", r)
		}
		if ev.Conferencing != nil {
			t.Errorf("conferencing from an empty URL: %+v", ev.Conferencing)
		}
		out, _ := o.Encode()
		if n := strings.Count(string(out), "DTSTAMP"); n != 1 {
			t.Errorf("%d DTSTAMPs written", n)
		}
		if !strings.Contains(string(unfoldedText(out)), `X-ADDRESS="Unter den Linden 42\\n10117 Berlin\\nDeutschland"`) {
			t.Errorf("X-APPLE-STRUCTURED-LOCATION parameters changed:\n%s", out)
		}
		if !strings.Contains(string(out), "ACTION:NONE") {
			t.Errorf("placeholder alarm dropped")
		}
	})
	t.Run("outlook", func(t *testing.T) {
		ev := mustEvent(t, mustParseFile(t, "outlook-invite.ics"))
		if ev.When.StartTimezone != "Europe/Berlin" || ev.When.StartTime != unix(2024, 6, 24, 14, 0, "Europe/Berlin") {
			t.Errorf("W. Europe Standard Time read as %+v", ev.When)
		}
		if ev.Organizer == nil || ev.Organizer.Name != "Schmidt, Katrin" {
			t.Errorf("organizer %+v", ev.Organizer)
		}
		if ev.Conferencing == nil || ev.Conferencing.Provider != "Microsoft Teams" ||
			!strings.HasPrefix(ev.Conferencing.Details.URL, "https://teams.microsoft.com/l/meetup-join/") {
			t.Errorf("conferencing %+v", ev.Conferencing)
		}
		if ev.Visibility != "public" || ev.Status != "confirmed" || ev.Reminders.Overrides[0].ReminderMinutes != 15 {
			t.Errorf("visibility %q status %q reminders %+v", ev.Visibility, ev.Status, ev.Reminders)
		}
	})
	t.Run("google", func(t *testing.T) {
		ev := mustEvent(t, mustParseFile(t, "google-meet.ics"))
		if c := ev.Conferencing; c == nil || c.Provider != "Google Meet" || c.Details.MeetingCode != "xfr-jqbd-kmu" {
			t.Errorf("conferencing %+v", c)
		}
		if ev.Participants[1].Name != "Weber, Jonas" || ev.Participants[1].Status != "no" {
			t.Errorf("unquoted CN with a comma: %+v", ev.Participants[1])
		}
		want := []api.ReminderOverride{{ReminderMinutes: 10, ReminderMethod: "email"}, {ReminderMinutes: 1440, ReminderMethod: "display"}}
		if !reflect.DeepEqual(ev.Reminders.Overrides, want) {
			t.Errorf("reminders %+v", ev.Reminders.Overrides)
		}
		if ev.When.StartTimezone != "America/Los_Angeles" || ev.When.StartTime != unix(2024, 9, 5, 9, 30, "America/Los_Angeles") {
			t.Errorf("when %+v", ev.When)
		}
	})
	t.Run("allday", func(t *testing.T) {
		ev := mustEvent(t, mustParseFile(t, "allday-multiday.ics"))
		// DTEND;VALUE=DATE:20241228 is exclusive; end_date is inclusive.
		if ev.When != (api.When{Object: "datespan", StartDate: "2024-12-23", EndDate: "2024-12-27"}) {
			t.Errorf("when %+v", ev.When)
		}
		if ev.Busy || ev.Reminders.Overrides[0].ReminderMinutes != 900 {
			t.Errorf("busy %v reminders %+v", ev.Busy, ev.Reminders)
		}
	})
	t.Run("floating", func(t *testing.T) {
		ev := mustEvent(t, mustParseFile(t, "floating.ics"))
		want := api.When{Object: "timespan", StartTime: unix(2024, 6, 10, 9, 0, "UTC"), EndTime: unix(2024, 6, 10, 10, 30, "UTC")}
		if ev.When != want {
			t.Errorf("floating read as %+v, want UTC without a zone", ev.When)
		}
		if ev.Conferencing != nil {
			t.Errorf("a schedule URL is no meeting: %+v", ev.Conferencing)
		}
	})
	t.Run("thunderbird", func(t *testing.T) {
		ev := mustEvent(t, mustParseFile(t, "thunderbird-duration-zoom.ics"))
		if ev.When.StartTimezone != "America/Chicago" || ev.When.EndTime-ev.When.StartTime != 45*60 {
			t.Errorf("mozilla TZID and DURATION: %+v", ev.When)
		}
		if c := ev.Conferencing; c == nil || c.Provider != "Zoom Meeting" || c.Details.MeetingCode != "81234567890" {
			t.Errorf("conferencing %+v", c)
		}
		if ev.Status != "maybe" || ev.Visibility != "private" {
			t.Errorf("status %q visibility %q", ev.Status, ev.Visibility)
		}
		if !reflect.DeepEqual(ev.Metadata, map[string]string{"project": "atlas", "Team": "Platform, Infra"}) {
			t.Errorf("metadata %v", ev.Metadata)
		}
		if ev.Reminders.Overrides[0] != (api.ReminderOverride{ReminderMinutes: 60, ReminderMethod: "sound"}) {
			t.Errorf("reminders %+v", ev.Reminders)
		}
	})
	t.Run("custom zone", func(t *testing.T) {
		ev := mustEvent(t, mustParseFile(t, "outlook-custom-zone.ics"))
		if ev.When.StartTimezone != "America/New_York" || ev.When.StartTime != unix(2024, 11, 5, 11, 0, "America/New_York") {
			t.Errorf("Customized Time Zone read as %+v", ev.When)
		}
	})
	t.Run("messy", func(t *testing.T) {
		ev := mustEvent(t, mustParseFile(t, "messy.ics"))
		if ev.Title != "Valentine's dinner, table for two" || ev.Description != "Bring flowers\nand, maybe, chocolate; or not" ||
			ev.When != (api.When{Object: "date", Date: "2024-02-14"}) {
			t.Errorf("%q %q %+v", ev.Title, ev.Description, ev.When)
		}
	})
	t.Run("orphan override", func(t *testing.T) {
		o := mustParseFile(t, "orphan-override.ics")
		if !o.Recurring() {
			t.Fatal("overrides without a master are a series")
		}
		ev := mustEvent(t, o)
		if ev.Title != "Monthly partner sync" || ev.Recurrence != nil {
			t.Errorf("%+v", ev)
		}
		insts, err := o.Instances(IDs{EventID: "m"}, time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC), 10)
		if err != nil || len(insts) != 1 || insts[0].ID != "m_20240710T080000Z" || insts[0].MasterEventID != "m" {
			t.Fatalf("%v %+v", err, insts)
		}
		if err := o.Update(api.EventInput{Title: ptr("x")}, time.Now()); err != ErrNoMaster {
			t.Errorf("Update without master: %v", err)
		}
	})
	t.Run("cancelled series", func(t *testing.T) {
		o := mustParseFile(t, "cancelled-series.ics")
		insts, err := o.Instances(IDs{EventID: "b"}, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), 10)
		if err != nil || len(insts) != 5 {
			t.Fatalf("%v %d", err, len(insts))
		}
		for _, in := range insts {
			if in.Status != "cancelled" {
				t.Errorf("%s status %q under METHOD:CANCEL", in.ID, in.Status)
			}
		}
		if insts[4].ID != "b_20240112T080000Z" {
			t.Errorf("last %s", insts[4].ID)
		}
		// A change drops METHOD (RFC 4791 forbids it in stored resources)
		// and keeps the cancellation as STATUS.
		if err := o.Update(api.EventInput{Title: ptr("Book club")}, time.Date(2024, 1, 6, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		out, _ := o.Encode()
		if strings.Contains(string(out), "METHOD") || !strings.Contains(string(out), "STATUS:CANCELLED") || mustEvent(t, o).Status != "cancelled" {
			t.Errorf("after update:\n%s", out)
		}
	})
}

func unfoldedText(b []byte) string { return strings.Join(unfold(string(b)), "\n") }

func ptr[T any](v T) *T { return &v }
