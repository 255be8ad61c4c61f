package icalconv

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/orchard-mail/orchard/api"
	"github.com/teambition/rrule-go"
)

// maxInterval bounds RRULE INTERVAL: rrule-go's arithmetic overflows on
// huge ones.
const maxInterval = 10000

// errUnsupportedRule marks rules that are valid iCalendar but are not
// expanded: rrule-go can loop for minutes on sub-daily rules with BY*
// filters that rarely (or never) match, and no calendar client writes
// them.
var errUnsupportedRule = errors.New("sub-daily rules (FREQ=MINUTELY, FREQ=SECONDLY, FREQ=HOURLY with BY… parts) are not supported")

// rule is an RRULE that is safe to expand with rrule-go. rrule-go runs
// on wall times (in UTC, where no clock changes); each occurrence is then
// placed in loc by wallTime, so that a 02:30 series is at 02:30 on every
// day it exists and RFC 5545's rules apply on the others.
type rule struct {
	r     *rrule.RRule
	until time.Time
	count int
	loc   *time.Location
}

func (r *rule) endless() bool { return r.count == 0 && r.until.IsZero() }

// iterator steps through the occurrences; a panic inside rrule-go ends it.
func (r *rule) iterator() func() (time.Time, bool) {
	next := r.r.Iterator()
	dead := false
	return func() (t time.Time, ok bool) {
		if dead {
			return time.Time{}, false
		}
		defer func() {
			if recover() != nil {
				dead = true
				t, ok = time.Time{}, false
			}
		}()
		t, ok = next()
		if !ok {
			dead = true
			return t, ok
		}
		return fromWall(t, r.loc), true
	}
}

// parseRuleOptions reads an RRULE value for rrule-go: upper-cased (rrule-go
// only knows upper case), an "RRULE:" prefix and empty parts dropped, X-
// parts ignored; UNTIL without Z is read in loc. It refuses what rrule-go
// cannot parse, COUNT below 1 (rrule-go would read COUNT=0 as endless),
// INTERVAL over maxInterval and sub-daily rules with filters.
func parseRuleOptions(value string, loc *time.Location) (opt *rrule.ROption, err error) {
	defer func() {
		if r := recover(); r != nil {
			opt, err = nil, fmt.Errorf("unreadable RRULE: %v", r)
		}
	}()
	v := strings.ToUpper(strings.TrimSpace(value))
	v = strings.TrimPrefix(v, "RRULE:")
	var parts []string
	for _, p := range strings.Split(v, ";") {
		p = strings.TrimSpace(p)
		if p == "" || strings.HasPrefix(p, "X-") {
			continue
		}
		if k, val, ok := strings.Cut(p, "="); ok && k == "COUNT" {
			if n, err := strconv.Atoi(val); err != nil || n < 1 {
				return nil, errors.New("COUNT must be a number of at least 1")
			}
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return nil, errors.New("empty RRULE")
	}
	opt, err = rrule.StrToROptionInLocation(strings.Join(parts, ";"), loc)
	if err != nil {
		return nil, err
	}
	if opt.Interval > maxInterval {
		return nil, fmt.Errorf("INTERVAL over %d is not supported", maxInterval)
	}
	switch opt.Freq {
	case rrule.MINUTELY, rrule.SECONDLY:
		return nil, errUnsupportedRule
	case rrule.HOURLY:
		if len(opt.Bysetpos)+len(opt.Bymonth)+len(opt.Bymonthday)+len(opt.Byyearday)+len(opt.Byweekno)+
			len(opt.Byweekday)+len(opt.Byhour)+len(opt.Byminute)+len(opt.Bysecond)+len(opt.Byeaster) > 0 {
			return nil, errUnsupportedRule
		}
	}
	return opt, nil
}

// newRule parses an RRULE for a series starting at start.
func newRule(value string, start dtv) (*rule, error) {
	loc := start.t.Location()
	opt, err := parseRuleOptions(value, loc)
	if err != nil {
		return nil, err
	}
	return buildRule(opt, start.wallClock(), loc)
}

// buildRule makes the rule and checks that it has occurrences at all:
// rrule-go looks for the first match of an impossible rule (FREQ=DAILY;
// BYMONTH=2;BYMONTHDAY=30) until the year 9999, which takes seconds.
//
// wall is the start's local date and time as a UTC time; UNTIL is moved
// to the same footing.
func buildRule(opt *rrule.ROption, wall time.Time, loc *time.Location) (r *rule, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("unusable RRULE: %v", p)
		}
	}()
	if wall.Year() < 1 || wall.Year() > 9999 {
		return nil, errors.New("start outside the years 1 to 9999")
	}
	o := *opt
	o.Dtstart = wall
	if !o.Until.IsZero() {
		o.Until = asWall(o.Until.In(loc))
	}
	rr, err := rrule.NewRRule(o)
	if err != nil {
		return nil, err
	}
	if !productive(o) {
		return nil, errors.New("the rule has no occurrences")
	}
	return &rule{r: rr, until: o.Until, count: o.Count, loc: loc}, nil
}

// productive reports whether the rule's pattern matches at all. It moves
// the start by whole 400-year cycles (the Gregorian calendar repeats
// exactly, weekdays included) to the last decades before 9999, where
// rrule-go gives up within a few thousand steps, and asks for one
// occurrence.
func productive(o rrule.ROption) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	o.Count, o.Until = 0, time.Time{}
	s := o.Dtstart
	y := s.Year()
	if y < 9960 {
		y += (9960 - y) / 400 * 400
	}
	o.Dtstart = time.Date(y, s.Month(), s.Day(), s.Hour(), s.Minute(), s.Second(), 0, time.UTC)
	r, err := rrule.NewRRule(o)
	if err != nil {
		return false
	}
	_, ok = r.Iterator()()
	return ok
}

// occurrence is one generated start, with its own end for an RDATE
// PERIOD.
type occurrence struct {
	start, end time.Time
}

// series is the recurrence set of an object, prepared by reindex.
type series struct {
	start, end dtv // the master's span; zero without a master
	hasEnd     bool
	allDay     bool
	loc        *time.Location // where occurrences are computed
	dur        time.Duration  // timed: the exact duration
	days       int            // all-day: the length in days
	rule       *rule          // nil without a usable RRULE
	ruleErr    error          // why an RRULE present is not used
	rdates     []occurrence   // DTSTART and RDATEs, in order
	exTimes    map[int64]bool // EXDATE date-times (Unix)
	exDays     map[int]bool   // EXDATE dates (yyyymmdd)
	overrides  map[int64]*ical.Component
	ovStarts   map[int64]time.Time // the canonical original start of each override
}

func (o *Object) buildSeries() *series {
	s := &series{exTimes: map[int64]bool{}, exDays: map[int]bool{}, overrides: map[int64]*ical.Component{},
		ovStarts: map[int64]time.Time{}, loc: o.floatLoc}
	if m := o.master; m != nil {
		start, end, hasEnd, _ := o.span(m, nil)
		s.start, s.end, s.hasEnd = start, end, hasEnd
		s.allDay, s.loc = start.date, start.t.Location()
		if start.date {
			s.days = dayDiff(start.t, end.t)
		} else {
			s.dur = end.t.Sub(start.t)
		}
		s.rdates = []occurrence{{start: start.t}}
		if rr := m.Props.Get(ical.PropRecurrenceRule); rr != nil {
			s.rule, s.ruleErr = newRule(rr.Value, start)
		}
		for _, p := range m.Props.Values(ical.PropRecurrenceDates) {
			period := strings.EqualFold(p.Params.Get(ical.ParamValue), "PERIOD")
			for _, v := range strings.Split(p.Value, ",") {
				oc, ok := o.rdate(s, v, p.Params, period)
				if ok {
					s.rdates = append(s.rdates, oc)
				}
			}
		}
		sort.SliceStable(s.rdates, func(i, j int) bool { return s.rdates[i].start.Before(s.rdates[j].start) })
		for _, p := range m.Props.Values(ical.PropExceptionDates) {
			for _, v := range strings.Split(p.Value, ",") {
				d, err := o.readDTValue(v, p.Params)
				switch {
				case err != nil:
				case d.date || s.allDay:
					s.exDays[dayNum(d.t)] = true
				default:
					s.exTimes[d.t.Unix()] = true
				}
			}
		}
	}
	seqs := map[int64]int{}
	for _, ov := range o.overrides {
		rid, err := o.readDT(ov.Props.Get(ical.PropRecurrenceID))
		if err != nil {
			continue
		}
		if o.master == nil && len(s.overrides) == 0 {
			s.allDay = rid.date
		}
		t := s.canon(rid)
		k := t.Unix()
		if _, dup := s.overrides[k]; dup && sequence(ov) < seqs[k] {
			continue
		}
		s.overrides[k], s.ovStarts[k], seqs[k] = ov, t, sequence(ov)
	}
	return s
}

// rdate reads one RDATE value, a PERIOD's start/end or start/duration too.
func (o *Object) rdate(s *series, v string, params ical.Params, period bool) (occurrence, bool) {
	startV, endV, hasPeriod := strings.Cut(strings.TrimSpace(v), "/")
	p := params
	if period {
		p = ical.Params{}
		for k, vs := range params {
			if k != ical.ParamValue {
				p[k] = vs
			}
		}
	}
	d, err := o.readDTValue(startV, p)
	if err != nil {
		return occurrence{}, false
	}
	oc := occurrence{start: s.canon(d)}
	if hasPeriod && !s.allDay {
		if dur, ok := parseDuration(endV); ok && dur >= 0 {
			oc.end = oc.start.Add(dur)
		} else if e, err := o.readDTValue(endV, p); err == nil && !e.date && !e.t.Before(oc.start) {
			oc.end = e.t
		}
	}
	return oc, true
}

// canon is the start of the occurrence a RECURRENCE-ID or RDATE value
// names, in the series' kind: midnight of its date in the series'
// location for an all-day series; for a timed one the value itself, or
// for a bare date the series' clock time on that date.
func (s *series) canon(v dtv) time.Time {
	y, m, d := v.wallClock().Date()
	if s.allDay {
		return wallTime(y, m, d, 0, 0, 0, s.loc)
	}
	if v.date {
		hh, mm, ss := s.start.wallClock().Clock()
		return wallTime(y, m, d, hh, mm, ss, s.loc)
	}
	return v.t
}

// keyOf is the key of the occurrence an original start names: for an
// all-day series its UTC date (see InstanceID), else the instant.
func (s *series) keyOf(originalStart time.Time) (int64, time.Time) {
	if s.allDay {
		y, m, d := originalStart.UTC().Date()
		t := wallTime(y, m, d, 0, 0, 0, s.loc)
		return t.Unix(), t
	}
	t := originalStart.Truncate(time.Second).In(s.loc)
	return t.Unix(), t
}

func dayNum(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

func (s *series) excluded(t time.Time) bool {
	if s.exTimes[t.Unix()] {
		return true
	}
	return len(s.exDays) > 0 && s.exDays[dayNum(t.In(s.loc))]
}

// each calls fn with the generated occurrences (DTSTART, RRULE and RDATEs,
// EXDATEs removed) in start order until fn returns false.
func (s *series) each(fn func(occurrence) bool) error {
	var next func() (time.Time, bool)
	if s.rule != nil {
		next = s.rule.iterator()
	}
	var pending time.Time
	have := false
	ri := 0
	var last time.Time
	first := true
	for scanned := 0; ; {
		if next != nil && !have {
			if t, ok := next(); ok {
				pending, have = t, true
			} else {
				next = nil
			}
		}
		var oc occurrence
		switch {
		case ri < len(s.rdates) && (!have || !s.rdates[ri].start.After(pending)):
			oc = s.rdates[ri]
			ri++
		case have:
			oc = occurrence{start: pending}
			have = false
		default:
			return nil
		}
		if !first && oc.start.Equal(last) {
			continue
		}
		first, last = false, oc.start
		if scanned++; scanned > maxScan {
			return fmt.Errorf("%w: the series has more than %d occurrences before the end of the range", ErrTooManyInstances, maxScan)
		}
		if s.excluded(oc.start) {
			continue
		}
		if !fn(oc) {
			return nil
		}
	}
}

// instance is one expanded occurrence with its absolute span.
type instance struct {
	ev         api.Event
	start, end time.Time
}

// occurrenceSpan is the span of a generated occurrence.
func (s *series) occurrenceSpan(oc occurrence) (start, end dtv, hasEnd bool) {
	start = likeStart(s.start, oc.start)
	end, hasEnd = start, s.hasEnd
	switch {
	case s.allDay:
		end.t = addDays(start.t, max(s.days, 1))
		hasEnd = true
	case !oc.end.IsZero():
		end = s.end
		end.t = oc.end.In(s.end.t.Location())
		hasEnd = true
	case s.hasEnd:
		end = s.end
		end.t = oc.start.Add(s.dur).In(s.end.t.Location())
	}
	end.wall = time.Time{}
	return start, end, hasEnd
}

func overlaps(s, e, from, to time.Time) bool {
	if e.After(s) {
		return s.Before(to) && e.After(from)
	}
	return !s.Before(from) && s.Before(to)
}

// originalStartUnix is OriginalStartTime: the instant, or for an all-day
// occurrence midnight UTC of its date.
func (s *series) originalStartUnix(t time.Time) int64 {
	if s.allDay {
		y, m, d := t.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()
	}
	return t.Unix()
}

// Instances returns the occurrences that overlap [start, end), in start
// order: overrides replace their occurrence, EXDATEs are removed,
// cancelled occurrences (STATUS:CANCELLED, or METHOD:CANCEL) are included
// with status "cancelled" for the caller to filter. Each has ID
// InstanceID(ids.EventID, original start), MasterEventID ids.EventID and
// OriginalStartTime. A single event yields itself (its own id) when it
// overlaps. More than maxInstances occurrences (DefaultMaxInstances when
// maxInstances <= 0) is ErrTooManyInstances, returned with the first
// maxInstances.
func (o *Object) Instances(ids IDs, start, end time.Time, maxInstances int) ([]api.Event, error) {
	insts, err := o.expand(ids, start, end, maxInstances)
	out := make([]api.Event, len(insts))
	for i := range insts {
		out[i] = insts[i].ev
	}
	return out, err
}

func (o *Object) expand(ids IDs, from, to time.Time, maxInstances int) ([]instance, error) {
	if maxInstances <= 0 {
		maxInstances = DefaultMaxInstances
	}
	if o.series == nil {
		start, end, hasEnd, err := o.span(o.master, nil)
		if err != nil {
			return nil, err
		}
		if !hasEnd {
			end = start
		}
		if !overlaps(start.t, end.t, from, to) {
			return nil, nil
		}
		ev, err := o.Event(ids)
		if err != nil {
			return nil, err
		}
		return []instance{{ev: ev, start: start.t, end: end.t}}, nil
	}
	s := o.series
	var out []instance
	for k, ov := range s.overrides {
		orig := s.ovStarts[k]
		if s.excluded(orig) {
			continue
		}
		start, end, hasEnd, err := o.span(ov, o.master)
		if err != nil {
			continue
		}
		e := end.t
		if !hasEnd {
			e = start.t
		}
		if !overlaps(start.t, e, from, to) {
			continue
		}
		ev := o.eventOf(ov, o.master, ids)
		ev.When = when(start, end, hasEnd)
		o.setInstanceIDs(&ev, ids, orig)
		out = append(out, instance{ev: ev, start: start.t, end: e})
	}
	if o.master != nil {
		base := o.eventOf(o.master, nil, ids)
		gen := 0
		err := s.each(func(oc occurrence) bool {
			if !oc.start.Before(to) {
				return false
			}
			if _, ok := s.overrides[oc.start.Unix()]; ok {
				return true
			}
			start, end, hasEnd := s.occurrenceSpan(oc)
			e := end.t
			if !hasEnd {
				e = start.t
			}
			if !overlaps(start.t, e, from, to) {
				return true
			}
			ev := cloneEvent(base)
			ev.When = when(start, end, hasEnd)
			o.setInstanceIDs(&ev, ids, oc.start)
			out = append(out, instance{ev: ev, start: start.t, end: e})
			gen++
			return gen <= maxInstances
		})
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].start.Equal(out[j].start) {
			return out[i].start.Before(out[j].start)
		}
		return out[i].ev.OriginalStartTime < out[j].ev.OriginalStartTime
	})
	if len(out) > maxInstances {
		return out[:maxInstances], fmt.Errorf("%w: more than %d in the range", ErrTooManyInstances, maxInstances)
	}
	return out, nil
}

func (o *Object) setInstanceIDs(ev *api.Event, ids IDs, orig time.Time) {
	ev.ID = InstanceID(ids.EventID, orig, o.series.allDay)
	ev.MasterEventID = ids.EventID
	ev.OriginalStartTime = o.series.originalStartUnix(orig)
	ev.Recurrence = nil
}

// Bounds returns the earliest start and the latest end of all occurrences,
// overrides included, for a range index; end is zero for an endless
// series (and for a finite one too long to step through).
func (o *Object) Bounds() (start, end time.Time, err error) {
	if o.series == nil {
		s, e, hasEnd, err := o.span(o.master, nil)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		if !hasEnd {
			e = s
		}
		return s.t, e.t, nil
	}
	s := o.series
	var first, last time.Time
	seen := false
	note := func(a, b time.Time) {
		if !seen || a.Before(first) {
			first = a
		}
		if !seen || b.After(last) {
			last = b
		}
		seen = true
	}
	for k, ov := range s.overrides {
		if s.excluded(s.ovStarts[k]) {
			continue
		}
		if a, b, hasEnd, err := o.span(ov, o.master); err == nil {
			if !hasEnd {
				b = a
			}
			note(a.t, b.t)
		}
	}
	endless := s.rule != nil && s.rule.endless()
	if o.master != nil {
		err := s.each(func(oc occurrence) bool {
			if _, ok := s.overrides[oc.start.Unix()]; ok {
				return true
			}
			a, b, hasEnd := s.occurrenceSpan(oc)
			if !hasEnd {
				b = a
			}
			note(a.t, b.t)
			return !endless
		})
		if err != nil {
			endless = true // too long to walk: say "no end", which is safe for an index
		}
	}
	if !seen {
		c := o.master
		if c == nil {
			c = o.earliestOverride()
		}
		a, b, hasEnd, err := o.span(c, nil)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		if !hasEnd {
			b = a
		}
		first, last = a.t, b.t
	}
	if endless {
		last = time.Time{}
	}
	return first, last, nil
}

// BusyPeriods returns the busy time in [start, end): the occurrences that
// are not transparent (TRANSP:TRANSPARENT, busy false) and not cancelled,
// tentative ones only when tentativeAsBusy; overlapping and adjacent
// periods merged, in order. Periods keep the events' own times (they are
// not clipped to the range).
func (o *Object) BusyPeriods(start, end time.Time, tentativeAsBusy bool) ([][2]time.Time, error) {
	insts, err := o.expand(IDs{}, start, end, DefaultMaxInstances)
	if err != nil {
		return nil, err
	}
	var out [][2]time.Time
	for _, in := range insts {
		if !in.ev.Busy || in.ev.Status == "cancelled" || in.ev.Status == "maybe" && !tentativeAsBusy || !in.end.After(in.start) {
			continue
		}
		a, b := in.start.UTC(), in.end.UTC()
		if n := len(out); n > 0 && !a.After(out[n-1][1]) {
			if b.After(out[n-1][1]) {
				out[n-1][1] = b
			}
			continue
		}
		out = append(out, [2]time.Time{a, b})
	}
	return out, nil
}
