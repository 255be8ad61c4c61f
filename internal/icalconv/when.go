package icalconv

import (
	"errors"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/orchard-mail/orchard/api"
)

// dtv is one DATE or DATE-TIME value as read.
type dtv struct {
	t        time.Time // in its zone (UTC for Z; the floating location for floating times and dates)
	date     bool
	utc      bool      // written with Z
	floating bool      // no Z and no (resolvable) TZID
	tz       string    // the zone name to report: IANA, "UTC", or "" (floating, unnamed)
	tzid     string    // the TZID parameter as written
	wall     time.Time // the local date and time as written, as a UTC time (zero: t's own)
}

// wallClock is the local date and time of v as a UTC time.
func (v dtv) wallClock() time.Time {
	if !v.wall.IsZero() {
		return v.wall
	}
	return asWall(v.t)
}

// wallTime is the instant a local date and time names in loc, read as RFC
// 5545 §3.3.5 says: a time that occurs twice (clocks going back) is the
// first one; a time that does not occur (clocks going forward) takes the
// offset from before the change, so 02:30 on the night New York springs
// forward is 03:30 EDT. time.Date promises neither, and in practice gives
// 01:30 EST there, and the second of two times in zones east of UTC.
func wallTime(y int, mo time.Month, d, h, mi, s int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, mi, s, 0, loc)
	_, before := t.Add(-12 * time.Hour).Zone()
	_, after := t.Add(12 * time.Hour).Zone()
	if before == after {
		return t // no change of offset nearby
	}
	w := time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	first := time.Unix(w.Unix()-int64(before), 0).In(loc)
	if asWall(first).Equal(w) {
		return first
	}
	if second := time.Unix(w.Unix()-int64(after), 0).In(loc); asWall(second).Equal(w) {
		return second
	}
	return first // in the gap
}

// asWall is t's local date and time as a UTC time: recurrence rules are
// computed on wall times, then placed in the zone.
func asWall(t time.Time) time.Time {
	y, m, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, m, d, h, mi, s, 0, time.UTC)
}

// fromWall places a wall time (as UTC) in loc.
func fromWall(w time.Time, loc *time.Location) time.Time {
	return wallTime(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), loc)
}

// addDays moves a date (midnight) by n days.
func addDays(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	return fromWall(time.Date(y, m, d+n, 0, 0, 0, 0, time.UTC), t.Location())
}

var errNoValue = errors.New("icalconv: missing date-time")

// readDT reads a DATE or DATE-TIME property's first value.
func (o *Object) readDT(p *ical.Prop) (dtv, error) {
	if p == nil {
		return dtv{}, errNoValue
	}
	v := p.Value
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return o.readDTValue(v, p.Params)
}

// readDTValue reads one value with its property's parameters. Lenient:
// blanks are trimmed, letters may be lower case, a Z wins over a TZID, an
// unknown TZID is read as floating.
func (o *Object) readDTValue(v string, params ical.Params) (dtv, error) {
	v = strings.ToUpper(strings.TrimSpace(v))
	isDate := strings.EqualFold(params.Get(ical.ParamValue), "DATE") || len(v) == 8
	if isDate {
		if len(v) > 8 && v[8] == 'T' {
			v = v[:8] // VALUE=DATE on a date-time: keep the date
		}
		w, err := time.Parse("20060102", v)
		if err != nil || w.Year() < 1 {
			return dtv{}, errors.New("icalconv: bad date " + v)
		}
		return dtv{t: fromWall(w, o.floatLoc), date: true, floating: true, wall: w}, nil
	}
	if strings.HasSuffix(v, "Z") {
		t, err := time.Parse("20060102T150405", v[:len(v)-1])
		if err != nil || t.Year() < 1 {
			return dtv{}, errors.New("icalconv: bad date-time " + v)
		}
		return dtv{t: t, utc: true, tz: "UTC", wall: t}, nil
	}
	loc, name, floating := o.floatLoc, "", true
	tzid := strings.TrimSpace(params.Get(ical.PropTimezoneID))
	if tzid != "" {
		if z := o.zones[tzid]; z.loc != nil {
			loc, name, floating = z.loc, z.name, false
		}
	}
	w, err := time.Parse("20060102T150405", v)
	if err != nil || w.Year() < 1 {
		return dtv{}, errors.New("icalconv: bad date-time " + v)
	}
	return dtv{t: fromWall(w, loc), floating: floating, tz: name, tzid: tzid, wall: w}, nil
}

// span reads a VEVENT's start and end. The end comes from DTEND (when it
// is of the start's kind and not before it), else DURATION, else one day
// for a date; a timed override without either keeps its master's
// duration. hasEnd is false for a date-time with no end at all.
func (o *Object) span(c, inherit *ical.Component) (start, end dtv, hasEnd bool, err error) {
	start, err = o.readDT(c.Props.Get(ical.PropDateTimeStart))
	if err != nil {
		// An override without a (readable) DTSTART stays where it was.
		if rid := c.Props.Get(ical.PropRecurrenceID); rid != nil {
			start, err = o.readDT(rid)
		}
		if err != nil {
			return dtv{}, dtv{}, false, err
		}
	}
	if p := c.Props.Get(ical.PropDateTimeEnd); p != nil {
		if e, err := o.readDT(p); err == nil && e.date == start.date &&
			(e.t.After(start.t) || !start.date && e.t.Equal(start.t)) {
			return start, e, true, nil
		}
	}
	if p := c.Props.Get(ical.PropDuration); p != nil {
		if d, ok := parseDuration(p.Value); ok && d >= 0 {
			end = start
			if start.date {
				days := int((d + 24*time.Hour - 1) / (24 * time.Hour))
				end.t = addDays(start.t, max(days, 1))
			} else {
				end.t = start.t.Add(d)
			}
			return start, end, true, nil
		}
	}
	if start.date {
		end = start
		end.t = addDays(start.t, 1)
		return start, end, true, nil
	}
	if inherit != nil {
		if ms, me, ok, err := o.span(inherit, nil); err == nil && ok && !ms.date {
			end = me
			end.t = start.t.Add(me.t.Sub(ms.t)).In(me.t.Location())
			end.wall = time.Time{}
			return start, end, true, nil
		}
	}
	return start, start, false, nil
}

// when is the Nylas form of a span.
func when(start, end dtv, hasEnd bool) api.When {
	if start.date {
		days := dayDiff(start.t, end.t)
		if days <= 1 {
			return api.When{Object: "date", Date: start.t.Format(time.DateOnly)}
		}
		return api.When{Object: "datespan", StartDate: start.t.Format(time.DateOnly),
			EndDate: asWall(start.t).AddDate(0, 0, days-1).Format(time.DateOnly)}
	}
	if !hasEnd || end.t.Equal(start.t) {
		return api.When{Object: "time", Time: start.t.Unix(), Timezone: start.tz}
	}
	return api.When{Object: "timespan", StartTime: start.t.Unix(), EndTime: end.t.Unix(),
		StartTimezone: start.tz, EndTimezone: end.tz}
}

// dayDiff counts calendar days from a to b, each read in its own location.
func dayDiff(a, b time.Time) int {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	da := time.Date(ay, am, ad, 0, 0, 0, 0, time.UTC)
	db := time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC)
	return int(db.Sub(da).Hours()+0.5) / 24
}

// parseDuration reads an RFC 5545 duration (±P…W, ±P…DT…H…M…S), refusing
// values beyond 100 years.
func parseDuration(v string) (time.Duration, bool) {
	s := strings.ToUpper(strings.TrimSpace(v))
	neg := false
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		neg = s[0] == '-'
		s = s[1:]
	}
	if !strings.HasPrefix(s, "P") || len(s) < 3 {
		return 0, false
	}
	s = s[1:]
	const limit = 100 * 366 * 24 * time.Hour
	var d time.Duration
	inTime, seen := false, false
	for len(s) > 0 {
		if s[0] == 'T' {
			if inTime {
				return 0, false
			}
			inTime = true
			s = s[1:]
			if s == "" {
				return 0, false
			}
			continue
		}
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 || i == len(s) {
			return 0, false
		}
		n := time.Duration(0)
		for _, c := range s[:i] {
			n = n*10 + time.Duration(c-'0')
		}
		var unit time.Duration
		switch {
		case !inTime && s[i] == 'W':
			unit = 7 * 24 * time.Hour
		case !inTime && s[i] == 'D':
			unit = 24 * time.Hour
		case inTime && s[i] == 'H':
			unit = time.Hour
		case inTime && s[i] == 'M':
			unit = time.Minute
		case inTime && s[i] == 'S':
			unit = time.Second
		default:
			return 0, false
		}
		if n > limit/unit {
			return 0, false
		}
		d += n * unit
		if d > limit {
			return 0, false
		}
		seen = true
		s = s[i+1:]
	}
	if !seen {
		return 0, false
	}
	if neg {
		d = -d
	}
	return d, true
}

// formatDuration writes d as -PT15M, P1D, PT1H30M and so on.
func formatDuration(d time.Duration) string {
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	b.WriteByte('P')
	if d == 0 {
		return b.String() + "T0S"
	}
	if days := d / (24 * time.Hour); days > 0 && d%(24*time.Hour) == 0 {
		if days%7 == 0 {
			return b.String() + itoa(int64(days/7)) + "W"
		}
		return b.String() + itoa(int64(days)) + "D"
	}
	if days := d / (24 * time.Hour); days > 0 {
		b.WriteString(itoa(int64(days)) + "D")
		d -= days * 24 * time.Hour
	}
	b.WriteByte('T')
	if h := d / time.Hour; h > 0 {
		b.WriteString(itoa(int64(h)) + "H")
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		b.WriteString(itoa(int64(m)) + "M")
		d -= m * time.Minute
	}
	if s := d / time.Second; s > 0 {
		b.WriteString(itoa(int64(s)) + "S")
	}
	return b.String()
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return string(buf[i:])
}

// setDT writes v into a property of c, replacing it.
func setDT(c *ical.Component, name string, v dtv) {
	c.Props.Set(dtProp(name, v))
}

// dtProp is a property holding v: VALUE=DATE, a UTC value, a TZID, or
// floating.
func dtProp(name string, v dtv) *ical.Prop {
	p := ical.NewProp(name)
	switch {
	case v.date:
		p.Params.Set(ical.ParamValue, "DATE")
		p.Value = v.t.Format("20060102")
	case v.utc:
		p.Value = v.t.UTC().Format("20060102T150405Z")
	case v.tzid != "":
		p.Params.Set(ical.PropTimezoneID, v.tzid)
		p.Value = v.t.Format("20060102T150405")
	default:
		p.Value = v.t.Format("20060102T150405")
	}
	return p
}

// likeStart is t written in the form of start: a date, UTC, the same TZID,
// or floating.
func likeStart(start dtv, t time.Time) dtv {
	v := start
	if start.date {
		y, m, d := t.Date()
		v.t = wallTime(y, m, d, 0, 0, 0, start.t.Location())
	} else {
		v.t = t.In(start.t.Location())
	}
	v.wall = asWall(v.t)
	return v
}
