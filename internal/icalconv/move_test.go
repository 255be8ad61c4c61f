package icalconv

import (
	"slices"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/api"
)

// Moving a whole series keeps its exceptions on their occurrences: the
// deleted one stays deleted, the moved one appears once.
func TestUpdateMovesExceptions(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	start := time.Date(2026, 10, 12, 9, 0, 0, 0, berlin)
	when := func(s time.Time) *api.When {
		return &api.When{StartTime: s.Unix(), EndTime: s.Add(30 * time.Minute).Unix(), StartTimezone: "Europe/Berlin", EndTimezone: "Europe/Berlin"}
	}
	now := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	o, err := New(api.EventInput{Title: ptr("Standup"), When: when(start),
		Recurrence: &[]string{"RRULE:FREQ=WEEKLY;COUNT=5", "EXDATE;TZID=Europe/Berlin:20261019T090000"}}, "uid-1", now)
	if err != nil {
		t.Fatal(err)
	}
	moved := time.Date(2026, 10, 27, 14, 0, 0, 0, berlin)
	if err := o.UpdateInstance(time.Date(2026, 10, 26, 9, 0, 0, 0, berlin), api.EventInput{When: when(moved)}, now); err != nil {
		t.Fatal(err)
	}
	if err := o.Update(api.EventInput{When: when(start.Add(time.Hour))}, now); err != nil {
		t.Fatal(err)
	}
	evs, err := o.Instances(IDs{EventID: "s"}, start.AddDate(0, 0, -1), start.AddDate(0, 0, 40), 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, time.Unix(e.When.StartTime, 0).In(berlin).Format("01-02 15:04"))
	}
	want := []string{"10-12 10:00", "10-27 14:00", "11-02 10:00", "11-09 10:00"}
	if !slices.Equal(got, want) {
		t.Fatalf("after moving the series: %v, want %v", got, want)
	}
	// The moved occurrence keeps its instance id under the new start.
	if id := evs[1].ID; id != InstanceID("s", time.Date(2026, 10, 26, 10, 0, 0, 0, berlin), false) {
		t.Fatalf("moved occurrence id %s", id)
	}
}
