package caldavx

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// tzidOf reads the TZID out of a calendar-timezone value, a VCALENDAR with
// one VTIMEZONE (RFC 4791 §5.2.2). A value without BEGIN: is taken as a bare
// TZID, as RFC 7809 servers may give it. iCloud's VTIMEZONEs are long and
// sometimes odd; when go-ical cannot decode one, the TZID line is looked for
// directly.
func tzidOf(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if !strings.Contains(s, "BEGIN:") {
		if strings.ContainsAny(s, "\r\n") {
			return ""
		}
		return s
	}
	if cal, err := ical.NewDecoder(strings.NewReader(s)).Decode(); err == nil {
		for _, ch := range cal.Children {
			if ch.Name != ical.CompTimezone {
				continue
			}
			if id, err := ch.Props.Text(ical.PropTimezoneID); err == nil && id != "" {
				return id
			}
		}
	}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if len(line) > 5 && strings.EqualFold(line[:5], "TZID:") {
			return strings.TrimSpace(line[5:])
		}
	}
	return ""
}

// vtimezone renders the calendar-timezone value for an IANA zone: a
// VCALENDAR with one VTIMEZONE whose observances are the zone's transitions
// in the current year (from Go's zone database), starting with the one in
// force on 1 January. Clients key on the TZID; the observances only need
// to be right for the floating times a client might resolve with them, and
// a year's worth needs no RRULE that Go's database cannot express anyway.
func vtimezone(tzid string) ([]byte, error) {
	if tzid == "Local" || tzid == "" {
		return nil, fmt.Errorf("caldavx: time zone %q is not an IANA name", tzid)
	}
	loc, err := time.LoadLocation(tzid)
	if err != nil {
		return nil, fmt.Errorf("caldavx: unknown time zone %q: %w", tzid, err)
	}
	year := time.Now().In(loc).Year()
	start := time.Date(year, 1, 1, 0, 0, 0, 0, loc)
	end := time.Date(year+1, 1, 1, 0, 0, 0, 0, loc)

	tz := ical.NewComponent(ical.CompTimezone)
	tz.Props.SetText(ical.PropTimezoneID, tzid)
	began, _ := start.ZoneBounds()
	_, off := start.Zone()
	from := off
	if !began.IsZero() {
		_, from = began.Add(-time.Second).Zone()
	}
	tz.Children = append(tz.Children, observance(start, began, from))
	for t := start; ; {
		_, next := t.ZoneBounds()
		if next.IsZero() || !next.Before(end) {
			break
		}
		_, from := t.Zone()
		tz.Children = append(tz.Children, observance(next, next, from))
		t = next
	}

	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, "-//Orchard//caldavx//EN")
	cal.Children = append(cal.Children, tz)
	var b bytes.Buffer
	if err := ical.NewEncoder(&b).Encode(cal); err != nil {
		return nil, fmt.Errorf("caldavx: encoding VTIMEZONE for %q: %w", tzid, err)
	}
	return b.Bytes(), nil
}

// observance is the STANDARD or DAYLIGHT component of the zone in force at
// t, which began at onset (zero: since the start of records) coming from the
// UTC offset from (seconds).
func observance(t, onset time.Time, from int) *ical.Component {
	name, to := t.Zone()
	kind := ical.CompTimezoneStandard
	if t.IsDST() {
		kind = ical.CompTimezoneDaylight
	}
	comp := ical.NewComponent(kind)
	// DTSTART of an observance is the local time of the onset as the clock
	// showed it before the change (RFC 5545 §3.6.5).
	dtstart := "19700101T000000"
	if !onset.IsZero() {
		dtstart = onset.In(time.FixedZone("", from)).Format("20060102T150405")
	}
	comp.Props.Set(&ical.Prop{Name: ical.PropDateTimeStart, Params: ical.Params{}, Value: dtstart})
	comp.Props.Set(&ical.Prop{Name: ical.PropTimezoneOffsetFrom, Params: ical.Params{}, Value: utcOffset(from)})
	comp.Props.Set(&ical.Prop{Name: ical.PropTimezoneOffsetTo, Params: ical.Params{}, Value: utcOffset(to)})
	if name != "" {
		comp.Props.SetText(ical.PropTimezoneName, name)
	}
	return comp
}

// utcOffset renders seconds east of UTC as iCalendar's UTC-OFFSET: +HHMM, or
// +HHMMSS when there are seconds (historical zones).
func utcOffset(sec int) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "-", -sec
	}
	s := fmt.Sprintf("%s%02d%02d", sign, sec/3600, sec/60%60)
	if sec%60 != 0 {
		s += fmt.Sprintf("%02d", sec%60)
	}
	return s
}
