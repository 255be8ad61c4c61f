package icalconv

import (
	"fmt"
	"time"

	"github.com/emersion/go-ical"
)

// buildVTimezone writes a VTIMEZONE for loc under tzid, correct for the
// years year-1 to year+3 and, where the zone follows yearly weekday rules
// in those years ("last Sunday of March"), as RRULEs that go on from
// there. Zones with irregular changes get one observance per change in
// that window. The time package does not expose its rules, so they are
// found by looking for changes of offset.
func buildVTimezone(tzid string, loc *time.Location, year int) *ical.Component {
	from := time.Date(year-1, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(year+4, 1, 1, 0, 0, 0, 0, time.UTC)
	base, trans := zoneTransitions(loc, from, to)
	vt := ical.NewComponent(ical.CompTimezone)
	setRaw(vt, ical.PropTimezoneID, escapeText(tzid))
	if loc.String() != tzid && loc.String() != "UTC" {
		setRaw(vt, "X-LIC-LOCATION", escapeText(loc.String()))
	}
	epoch := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	if len(trans) == 0 {
		vt.Children = append(vt.Children, observance(base.dst, epoch, base.off, base, ""))
		return vt
	}
	if rules, ok := yearlyRules(base, trans, year-1, year+3); ok {
		vt.Children = append(vt.Children, rules...)
		return vt
	}
	vt.Children = append(vt.Children, observance(base.dst, epoch, base.off, base, ""))
	prev := base.off
	for _, tr := range trans {
		wall := time.Unix(tr.at+int64(prev), 0).UTC()
		vt.Children = append(vt.Children, observance(tr.dst, wall, prev, tr.ttinfo, ""))
		prev = tr.off
	}
	return vt
}

// yearlyRules expresses the transitions of the years first..last as two
// yearly observances, if each year has one change into daylight time and
// one out of it, always in the same month, on the same weekday (the n-th
// or the last of the month), at the same local time, between the same
// offsets.
func yearlyRules(base ttinfo, trans []transition, first, last int) ([]*ical.Component, bool) {
	type change struct {
		wall     time.Time // local time before the change, as UTC
		from     int
		t        ttinfo
		nth      int
		lastWeek bool
	}
	var dst, std []change
	prev := base.off
	for _, tr := range trans {
		wall := time.Unix(tr.at+int64(prev), 0).UTC()
		if wall.Year() >= first && wall.Year() <= last {
			c := change{wall: wall, from: prev, t: tr.ttinfo, nth: (wall.Day()-1)/7 + 1,
				lastWeek: wall.Day()+7 > daysIn(wall.Year(), wall.Month())}
			if tr.dst {
				dst = append(dst, c)
			} else {
				std = append(std, c)
			}
		}
		prev = tr.off
	}
	years := last - first + 1
	if len(dst) != years || len(std) != years {
		return nil, false
	}
	var out []*ical.Component
	for _, l := range [][]change{dst, std} {
		a := l[0]
		sameNth, allLast := true, true
		for i, c := range l {
			if c.wall.Year() != first+i || c.wall.Month() != a.wall.Month() || c.wall.Weekday() != a.wall.Weekday() ||
				c.wall.Hour() != a.wall.Hour() || c.wall.Minute() != a.wall.Minute() || c.wall.Second() != a.wall.Second() ||
				c.from != a.from || c.t != a.t {
				return nil, false
			}
			sameNth = sameNth && c.nth == a.nth
			allLast = allLast && c.lastWeek
		}
		n := a.nth
		if !sameNth {
			if !allLast {
				return nil, false
			}
			n = -1
		}
		rule := fmt.Sprintf("FREQ=YEARLY;BYMONTH=%d;BYDAY=%d%s", int(a.wall.Month()), n, weekdayCodes[a.wall.Weekday()])
		out = append(out, observance(a.t.dst, a.wall, a.from, a.t, rule))
	}
	return out, true
}

var weekdayCodes = [...]string{"SU", "MO", "TU", "WE", "TH", "FR", "SA"}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func observance(dst bool, wall time.Time, from int, to ttinfo, rule string) *ical.Component {
	name := "STANDARD"
	if dst {
		name = "DAYLIGHT"
	}
	c := ical.NewComponent(name)
	setRaw(c, ical.PropDateTimeStart, wall.Format("20060102T150405"))
	setRaw(c, ical.PropTimezoneOffsetFrom, formatOffset(from))
	setRaw(c, ical.PropTimezoneOffsetTo, formatOffset(to.off))
	if to.name != "" {
		setRaw(c, ical.PropTimezoneName, escapeText(to.name))
	}
	if rule != "" {
		setRaw(c, ical.PropRecurrenceRule, rule)
	}
	return c
}

func formatOffset(off int) string {
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	if off%60 != 0 {
		return fmt.Sprintf("%c%02d%02d%02d", sign, off/3600, off%3600/60, off%60)
	}
	return fmt.Sprintf("%c%02d%02d", sign, off/3600, off%3600/60)
}

// zoneTransitions finds where loc's offset, DST flag or abbreviation
// changes in [from, to), to the second. base is the type at from.
func zoneTransitions(loc *time.Location, from, to time.Time) (base ttinfo, trans []transition) {
	info := func(u int64) ttinfo {
		t := time.Unix(u, 0).In(loc)
		name, off := t.Zone()
		return ttinfo{off: off, dst: t.IsDST(), name: name}
	}
	const step = 86400 / 2
	base = info(from.Unix())
	prev := base
	for a := from.Unix(); a < to.Unix(); a += step {
		b := a + step
		for lo := a; info(b) != prev; {
			hi := b
			for hi-lo > 1 {
				mid := lo + (hi-lo)/2
				if info(mid) == prev {
					lo = mid
				} else {
					hi = mid
				}
			}
			prev = info(hi)
			trans = append(trans, transition{at: hi, ttinfo: prev})
			lo = hi
		}
	}
	return base, trans
}
