package icalconv

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-ical"
	"github.com/orchard-mail/orchard/api"
)

// New builds an object from a create request. uid "" makes a new random
// UID; now is DTSTAMP, CREATED and LAST-MODIFIED. when is required; busy
// defaults to true (TRANSP:OPAQUE); status and visibility are written only
// when given. A VTIMEZONE is written for every zone used.
func New(in api.EventInput, uid string, now time.Time) (*Object, error) {
	if in.When == nil {
		return nil, invalid("when", "is required")
	}
	uid = strings.TrimSpace(uid)
	if uid == "" {
		uid = newUID()
	} else if len(uid) > 1024 || strings.ContainsFunc(uid, unicode.IsControl) || !utf8.ValidString(uid) {
		return nil, errors.New("icalconv: unusable UID")
	}
	now = now.UTC().Truncate(time.Second)
	cal := ical.NewComponent(ical.CompCalendar)
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, prodID)
	cal.Props.SetText(ical.PropCalendarScale, "GREGORIAN")
	ev := ical.NewComponent(ical.CompEvent)
	setRaw(ev, ical.PropUID, escapeText(uid))
	setRaw(ev, ical.PropCreated, now.Format("20060102T150405Z"))
	setRaw(ev, ical.PropDateTimeStamp, now.Format("20060102T150405Z"))
	setRaw(ev, ical.PropLastModified, now.Format("20060102T150405Z"))
	setRaw(ev, ical.PropSequence, "0")
	setRaw(ev, ical.PropTransparency, "OPAQUE")
	cal.Children = []*ical.Component{ev}
	o := &Object{cal: cal, master: ev, uid: uid, zones: map[string]zone{}, floatLoc: time.UTC}
	if err := o.apply(ev, in, modeNew); err != nil {
		return nil, err
	}
	if err := o.finish(); err != nil {
		return nil, err
	}
	return o, nil
}

// Update applies a partial update to the master (or single event): nil
// fields are kept. Overrides are kept, unless the recurrence is removed
// (an empty recurrence list), which leaves a single event. SEQUENCE goes
// up by one; LAST-MODIFIED and DTSTAMP become now. If the series' start
// moves, EXDATEs and overrides keep naming the original starts. A changed
// description drops Outlook's X-ALT-DESC, a changed location Apple's
// X-APPLE-STRUCTURED-LOCATION, since both would contradict the new text.
// On error the object is unchanged.
func (o *Object) Update(in api.EventInput, now time.Time) error {
	if o.master == nil {
		return ErrNoMaster
	}
	n := o.clone()
	oldStart, startErr := n.readDT(n.master.Props.Get(ical.PropDateTimeStart))
	if err := n.apply(n.master, in, modeMaster); err != nil {
		return err
	}
	if in.Recurrence != nil && len(*in.Recurrence) == 0 {
		n.removeOverrides(func(*ical.Component) bool { return true })
	} else if startErr == nil && o.series != nil {
		if err := n.moveExceptions(oldStart); err != nil {
			return err
		}
	}
	bump(n.master, now)
	if err := n.finish(); err != nil {
		return err
	}
	*o = *n
	return nil
}

// UpdateInstance edits one occurrence, named by its original start (for an
// all-day series, midnight UTC of its date, as ParseInstanceID returns
// it), by writing its RECURRENCE-ID override: a copy of the master at that
// occurrence when there is none yet. recurrence cannot be set on an
// occurrence. The override's SEQUENCE goes up; its LAST-MODIFIED and
// DTSTAMP become now. ErrNoInstance when the series has no such
// occurrence. On error the object is unchanged.
func (o *Object) UpdateInstance(originalStart time.Time, in api.EventInput, now time.Time) error {
	if o.series == nil {
		return fmt.Errorf("%w: the event is not recurring", ErrNoInstance)
	}
	if in.Recurrence != nil {
		return invalid("recurrence", "cannot be set on one occurrence")
	}
	n := o.clone()
	s := n.series
	key, t := s.keyOf(originalStart)
	if s.excluded(t) {
		return ErrNoInstance
	}
	ov := s.overrides[key]
	if ov == nil {
		if n.master == nil {
			return ErrNoInstance
		}
		ok, err := s.hasOccurrence(t)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNoInstance
		}
		ov = n.newOverride(t)
	}
	if err := n.apply(ov, in, modeInstance); err != nil {
		return err
	}
	bump(ov, now)
	if err := n.finish(); err != nil {
		return err
	}
	*o = *n
	return nil
}

// DeleteInstance removes one occurrence, named as for UpdateInstance: an
// EXDATE on the master (in the form of its DTSTART) and its override, if
// any, dropped. The master's SEQUENCE goes up; LAST-MODIFIED and DTSTAMP
// become now. In an object of overrides only, the override is dropped;
// removing the last one is refused (delete the resource instead). On
// error the object is unchanged.
func (o *Object) DeleteInstance(originalStart time.Time, now time.Time) error {
	if o.series == nil {
		return fmt.Errorf("%w: the event is not recurring", ErrNoInstance)
	}
	n := o.clone()
	s := n.series
	key, t := s.keyOf(originalStart)
	if s.excluded(t) {
		return ErrNoInstance
	}
	if _, ok := s.overrides[key]; !ok {
		ok, err := s.hasOccurrence(t)
		if err != nil {
			return err
		}
		if !ok || n.master == nil {
			return ErrNoInstance
		}
	}
	n.removeOverrides(func(c *ical.Component) bool {
		rid, err := n.readDT(c.Props.Get(ical.PropRecurrenceID))
		return err == nil && s.canon(rid).Unix() == key
	})
	if n.master == nil {
		if len(events(n.cal)) == 0 {
			return errors.New("icalconv: that is the only occurrence: delete the object instead")
		}
	} else {
		n.master.Props.Add(dtProp(ical.PropExceptionDates, likeStart(s.start, t)))
		bump(n.master, now)
	}
	if err := n.finish(); err != nil {
		return err
	}
	*o = *n
	return nil
}

// hasOccurrence reports whether the series generates an occurrence
// starting at t.
func (s *series) hasOccurrence(t time.Time) (bool, error) {
	found := false
	err := s.each(func(oc occurrence) bool {
		if oc.start.Equal(t) {
			found = true
		}
		return oc.start.Before(t)
	})
	return found, err
}

// newOverride adds a copy of the master at the occurrence starting at t.
func (o *Object) newOverride(t time.Time) *ical.Component {
	s := o.series
	ov := cloneComponent(o.master)
	for _, n := range []string{ical.PropRecurrenceRule, ical.PropRecurrenceDates, ical.PropExceptionDates} {
		ov.Props.Del(n)
	}
	start, end, hasEnd := s.occurrenceSpan(occurrence{start: t})
	setDT(ov, ical.PropRecurrenceID, start)
	setDT(ov, ical.PropDateTimeStart, start)
	if o.master.Props.Get(ical.PropDateTimeEnd) != nil && hasEnd {
		setDT(ov, ical.PropDateTimeEnd, end)
	}
	o.cal.Children = append(o.cal.Children, ov)
	o.overrides = append(o.overrides, ov)
	return ov
}

// moveExceptions keeps a series' exceptions on their occurrences when the
// master's start moves (from oldStart): EXDATEs and the overrides'
// RECURRENCE-IDs name occurrences by their original start, so they move
// by the same wall-clock shift, as RFC 5545 clients do; otherwise a
// deleted occurrence would come back and a moved one appear twice.
func (o *Object) moveExceptions(oldStart dtv) error {
	newStart, err := o.readDT(o.master.Props.Get(ical.PropDateTimeStart))
	if err != nil {
		return err
	}
	shift := newStart.wallClock().Sub(oldStart.wallClock())
	if shift == 0 {
		return nil
	}
	oldLoc, newLoc := oldStart.t.Location(), newStart.t.Location()
	move := func(p *ical.Prop) error {
		vals := strings.Split(p.Value, ",")
		for i, v := range vals {
			d, err := o.readDTValue(v, p.Params)
			if err != nil {
				return err
			}
			wall := asWall(d.t.In(oldLoc)).Add(shift)
			switch {
			case d.date:
				vals[i] = wall.Format("20060102")
			case d.utc:
				vals[i] = fromWall(wall, newLoc).UTC().Format("20060102T150405Z")
			case d.floating:
				vals[i] = wall.Format("20060102T150405")
			default:
				vals[i] = fromWall(wall, newLoc).In(d.t.Location()).Format("20060102T150405")
			}
		}
		p.Value = strings.Join(vals, ",")
		return nil
	}
	for i := range o.master.Props[ical.PropExceptionDates] {
		if err := move(&o.master.Props[ical.PropExceptionDates][i]); err != nil {
			return err
		}
	}
	for _, ov := range o.overrides {
		if p := ov.Props.Get(ical.PropRecurrenceID); p != nil {
			if err := move(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (o *Object) removeOverrides(match func(*ical.Component) bool) {
	kept := o.cal.Children[:0]
	for _, c := range o.cal.Children {
		if c.Name == ical.CompEvent && c.Props.Get(ical.PropRecurrenceID) != nil {
			if p := c.Props.Get(ical.PropUID); p != nil && unescapeText(strings.TrimSpace(p.Value)) == o.uid && match(c) {
				continue
			}
		}
		kept = append(kept, c)
	}
	o.cal.Children = kept
}

// bump records a change: SEQUENCE+1, LAST-MODIFIED and DTSTAMP now.
func bump(c *ical.Component, now time.Time) {
	stamp := now.UTC().Format("20060102T150405Z")
	setRaw(c, ical.PropSequence, strconv.Itoa(sequence(c)+1))
	setRaw(c, ical.PropLastModified, stamp)
	setRaw(c, ical.PropDateTimeStamp, stamp)
}

func setRaw(c *ical.Component, name, value string) {
	p := ical.NewProp(name)
	p.Value = value
	c.Props.Set(p)
}

// finish ends every change: a METHOD (which RFC 4791 forbids in a stored
// resource; iCloud keeps METHOD:CANCEL) is dropped, a cancellation turned
// into STATUS:CANCELLED; VTIMEZONEs are written for the zones used and
// dropped for zones no longer used; the index is rebuilt.
func (o *Object) finish() error {
	if m := o.cal.Props.Get(ical.PropMethod); m != nil {
		if strings.EqualFold(strings.TrimSpace(m.Value), "CANCEL") {
			for _, c := range events(o.cal) {
				if c.Props.Get(ical.PropStatus) == nil && (c == o.master || o.master == nil) {
					setRaw(c, ical.PropStatus, "CANCELLED")
				}
			}
		}
		o.cal.Props.Del(ical.PropMethod)
	}
	o.syncTimezones()
	return o.reindex()
}

// syncTimezones makes the VTIMEZONEs match the TZIDs in use.
func (o *Object) syncTimezones() {
	used := map[string]int{} // TZID → the earliest year it is used in
	var walk func(c *ical.Component)
	walk = func(c *ical.Component) {
		if c.Name == ical.CompTimezone {
			return
		}
		for _, ps := range c.Props {
			for _, p := range ps {
				id := strings.TrimSpace(p.Params.Get(ical.PropTimezoneID))
				if id == "" {
					continue
				}
				y := 0
				if len(p.Value) >= 4 {
					y, _ = strconv.Atoi(p.Value[:4])
				}
				if old, ok := used[id]; !ok || (y > 0 && y < old) || old == 0 {
					used[id] = y
				}
			}
		}
		for _, ch := range c.Children {
			walk(ch)
		}
	}
	walk(o.cal)
	have := map[string]bool{}
	var zones, rest []*ical.Component
	for _, c := range o.cal.Children {
		if c.Name != ical.CompTimezone {
			rest = append(rest, c)
			continue
		}
		id := strings.TrimSpace(unescapeText(propValue(c, ical.PropTimezoneID)))
		if _, ok := used[id]; ok && !have[id] {
			zones = append(zones, c)
			have[id] = true
		}
	}
	for _, id := range sortedKeys(used) {
		if have[id] {
			continue
		}
		if loc, err := LoadLocation(id); err == nil {
			y := used[id]
			if y < 1 || y > 9999 {
				y = 2000
			}
			zones = append(zones, buildVTimezone(id, loc, y))
		}
	}
	o.cal.Children = append(zones, rest...)
}

type applyMode int

const (
	modeNew applyMode = iota
	modeMaster
	modeInstance
)

// apply validates a request and writes it into c.
func (o *Object) apply(c *ical.Component, in api.EventInput, mode applyMode) error {
	if err := setTextField(c, ical.PropSummary, in.Title, "title", MaxTitleBytes, ""); err != nil {
		return err
	}
	if err := setTextField(c, ical.PropDescription, in.Description, "description", MaxDescriptionBytes, "X-ALT-DESC"); err != nil {
		return err
	}
	if err := setTextField(c, ical.PropLocation, in.Location, "location", MaxLocationBytes, "X-APPLE-STRUCTURED-LOCATION"); err != nil {
		return err
	}

	var start dtv
	if in.When != nil {
		s, e, hasEnd, err := o.parseWhen(*in.When)
		if err != nil {
			return err
		}
		setDT(c, ical.PropDateTimeStart, s)
		c.Props.Del(ical.PropDuration)
		c.Props.Del(ical.PropDateTimeEnd)
		if hasEnd {
			setDT(c, ical.PropDateTimeEnd, e)
		}
		start = s
	} else {
		s, err := o.readDT(c.Props.Get(ical.PropDateTimeStart))
		if err != nil {
			return invalid("when", "is required")
		}
		start = s
	}

	if in.Recurrence != nil {
		if mode == modeInstance {
			return invalid("recurrence", "cannot be set on one occurrence")
		}
		props, err := o.recurrenceProps(*in.Recurrence, start)
		if err != nil {
			return err
		}
		for _, n := range []string{ical.PropRecurrenceRule, ical.PropRecurrenceDates, ical.PropExceptionDates} {
			c.Props.Del(n)
		}
		for i := range props {
			c.Props.Add(&props[i])
		}
	}
	if in.Participants != nil {
		if err := setParticipants(c, *in.Participants); err != nil {
			return err
		}
	}
	if in.Busy != nil {
		v := "OPAQUE"
		if !*in.Busy {
			v = "TRANSPARENT"
		}
		setRaw(c, ical.PropTransparency, v)
	}
	if in.Reminders != nil {
		if err := o.setReminders(c, *in.Reminders); err != nil {
			return err
		}
	}
	if in.Conferencing != nil {
		if err := setConferencing(c, *in.Conferencing); err != nil {
			return err
		}
	}
	if in.Metadata != nil {
		if err := setMetadata(c, in.Metadata); err != nil {
			return err
		}
	}
	if in.Visibility != nil {
		switch *in.Visibility {
		case "", "default":
			c.Props.Del(ical.PropClass)
		case "public":
			setRaw(c, ical.PropClass, "PUBLIC")
		case "private":
			setRaw(c, ical.PropClass, "PRIVATE")
		default:
			return invalid("visibility", "must be default, public or private")
		}
	}
	if in.Status != nil {
		switch *in.Status {
		case "confirmed":
			setRaw(c, ical.PropStatus, "CONFIRMED")
		case "maybe":
			setRaw(c, ical.PropStatus, "TENTATIVE")
		case "cancelled":
			setRaw(c, ical.PropStatus, "CANCELLED")
		default:
			return invalid("status", "must be confirmed, maybe or cancelled")
		}
	}
	return nil
}

// setTextField writes SUMMARY, DESCRIPTION or LOCATION ("" removes it);
// stale drops a property that shadows the text when it changes.
func setTextField(c *ical.Component, name string, v *string, field string, limit int, stale string) error {
	if v == nil {
		return nil
	}
	s := cleanText(*v)
	if len(s) > limit {
		return invalid(field, "is longer than %d bytes", limit)
	}
	old := ""
	if p := c.Props.Get(name); p != nil {
		old = unescapeText(p.Value)
	}
	if s == old {
		return nil
	}
	if stale != "" {
		c.Props.Del(stale)
	}
	if s == "" {
		c.Props.Del(name)
		return nil
	}
	setRaw(c, name, escapeText(s))
	return nil
}

// parseWhen checks a request's when and returns the span to write.
func (o *Object) parseWhen(w api.When) (start, end dtv, hasEnd bool, err error) {
	form := w.Object
	if form == "" {
		var forms []string
		if w.Time != 0 || w.Timezone != "" {
			forms = append(forms, "time")
		}
		if w.StartTime != 0 || w.EndTime != 0 || w.StartTimezone != "" || w.EndTimezone != "" {
			forms = append(forms, "timespan")
		}
		if w.Date != "" {
			forms = append(forms, "date")
		}
		if w.StartDate != "" || w.EndDate != "" {
			forms = append(forms, "datespan")
		}
		switch len(forms) {
		case 0:
			return dtv{}, dtv{}, false, invalid("when", "needs time, start_time and end_time, date, or start_date and end_date")
		case 1:
			form = forms[0]
		default:
			return dtv{}, dtv{}, false, invalid("when", "mixes the fields of %s", strings.Join(forms, " and "))
		}
	}
	switch form {
	case "time":
		if w.Time == 0 {
			return dtv{}, dtv{}, false, invalid("when.time", "is required")
		}
		start, err = instantIn(w.Time, w.Timezone, "when.time", "when.timezone")
		return start, start, false, err
	case "timespan":
		if w.StartTime == 0 {
			return dtv{}, dtv{}, false, invalid("when.start_time", "is required")
		}
		if w.EndTime == 0 {
			return dtv{}, dtv{}, false, invalid("when.end_time", "is required")
		}
		sz, ez := w.StartTimezone, w.EndTimezone
		if sz == "" {
			sz = ez
		}
		if ez == "" {
			ez = sz
		}
		if start, err = instantIn(w.StartTime, sz, "when.start_time", "when.start_timezone"); err != nil {
			return dtv{}, dtv{}, false, err
		}
		if end, err = instantIn(w.EndTime, ez, "when.end_time", "when.end_timezone"); err != nil {
			return dtv{}, dtv{}, false, err
		}
		if w.EndTime < w.StartTime {
			return dtv{}, dtv{}, false, invalid("when.end_time", "is before when.start_time")
		}
		return start, end, w.EndTime != w.StartTime, nil
	case "date":
		if start, err = o.dateValue(w.Date, "when.date"); err != nil {
			return dtv{}, dtv{}, false, err
		}
		end = start
		end.t, end.wall = addDays(start.t, 1), time.Time{}
		return start, end, true, nil
	case "datespan":
		if start, err = o.dateValue(w.StartDate, "when.start_date"); err != nil {
			return dtv{}, dtv{}, false, err
		}
		last, err := o.dateValue(w.EndDate, "when.end_date")
		if err != nil {
			return dtv{}, dtv{}, false, err
		}
		if last.t.Before(start.t) {
			return dtv{}, dtv{}, false, invalid("when.end_date", "is before when.start_date")
		}
		end = last
		end.t, end.wall = addDays(last.t, 1), time.Time{} // Nylas end_date is inclusive, DTEND exclusive
		return start, end, true, nil
	}
	return dtv{}, dtv{}, false, invalid("when.object", "must be time, timespan, date or datespan")
}

// instantIn is a Unix time in a zone ("" or UTC: written with Z).
func instantIn(unix int64, tz, field, tzField string) (dtv, error) {
	if unix < -62135596800 || unix > 253402300799 { // years 1 to 9999
		return dtv{}, invalid(field, "is out of range")
	}
	t := time.Unix(unix, 0)
	if tz == "" {
		return dtv{t: t.UTC(), utc: true, tz: "UTC"}, nil
	}
	loc, err := LoadLocation(tz)
	if err != nil {
		return dtv{}, invalid(tzField, "%q is not a known time zone", tz)
	}
	if loc == time.UTC {
		return dtv{t: t.UTC(), utc: true, tz: "UTC"}, nil
	}
	t = t.In(loc)
	if t.Year() < 1 || t.Year() > 9999 {
		return dtv{}, invalid(field, "is out of range")
	}
	return dtv{t: t, tz: loc.String(), tzid: loc.String(), wall: asWall(t)}, nil
}

func (o *Object) dateValue(s, field string) (dtv, error) {
	if s == "" {
		return dtv{}, invalid(field, "is required")
	}
	w, err := time.Parse(time.DateOnly, s)
	if err != nil || w.Year() < 1 {
		return dtv{}, invalid(field, "must be a date like 2024-12-31")
	}
	return dtv{t: fromWall(w, o.floatLoc), date: true, floating: true, wall: w}, nil
}

// recurrenceProps checks recurrence lines and writes them in the form of
// the event's start: EXDATE and RDATE values in its zone ("tz from when":
// a value without TZID or Z is read in it), as dates for an all-day event.
func (o *Object) recurrenceProps(lines []string, start dtv) ([]ical.Prop, error) {
	if len(lines) > MaxRecurrence {
		return nil, invalid("recurrence", "has more than %d lines", MaxRecurrence)
	}
	var props []ical.Prop
	rrules := 0
	for i, s := range lines {
		field := fmt.Sprintf("recurrence[%d]", i)
		line := strings.TrimSpace(s)
		if line == "" || strings.ContainsAny(line, "\r\n") {
			return nil, invalid(field, "must be one RRULE, EXDATE or RDATE line")
		}
		if strings.HasPrefix(strings.ToUpper(line), "FREQ=") {
			line = "RRULE:" + line
		}
		name, params, value, ok := parseContentLine(line)
		if !ok {
			return nil, invalid(field, "must be one RRULE, EXDATE or RDATE line")
		}
		switch name {
		case "RRULE":
			if rrules++; rrules > 1 {
				return nil, invalid(field, "only one RRULE is supported")
			}
			if _, err := newRule(value, start); err != nil {
				return nil, invalid(field, "%v", err)
			}
			props = append(props, ical.Prop{Name: name, Params: ical.Params{}, Value: strings.TrimSpace(value)})
		case "EXDATE", "RDATE":
			p, err := o.dateListProp(name, params, value, start)
			if err != nil {
				return nil, invalid(field, "%v", err)
			}
			props = append(props, p)
		default:
			return nil, invalid(field, "must be an RRULE, EXDATE or RDATE line")
		}
	}
	return props, nil
}

func (o *Object) dateListProp(name string, params ical.Params, value string, start dtv) (ical.Prop, error) {
	if vt := strings.ToUpper(params.Get(ical.ParamValue)); vt != "" && vt != "DATE" && vt != "DATE-TIME" {
		return ical.Prop{}, fmt.Errorf("VALUE=%s is not supported", vt)
	}
	loc := start.t.Location()
	if tzid := params.Get(ical.PropTimezoneID); tzid != "" {
		l, err := LoadLocation(tzid)
		if err != nil {
			return ical.Prop{}, fmt.Errorf("unknown time zone %q", tzid)
		}
		loc = l
	}
	var vals []string
	for _, v := range strings.Split(value, ",") {
		v = strings.ToUpper(strings.TrimSpace(v))
		var t, w time.Time // the instant, and the date and time as written
		var err error
		switch {
		case len(v) == 8:
			w, err = time.Parse("20060102", v)
			if err == nil && !start.date {
				hh, mm, ss := start.wallClock().Clock()
				t = wallTime(w.Year(), w.Month(), w.Day(), hh, mm, ss, start.t.Location())
			}
		case strings.HasSuffix(v, "Z"):
			w, err = time.Parse("20060102T150405", v[:len(v)-1])
			t = w
		default:
			w, err = time.Parse("20060102T150405", v)
			t = fromWall(w, loc)
		}
		if err != nil || w.Year() < 1 || w.Year() > 9999 {
			return ical.Prop{}, fmt.Errorf("%q is not a date or date-time", v)
		}
		if start.date {
			// The date as written, not as seen from another zone.
			t = wallTime(w.Year(), w.Month(), w.Day(), 0, 0, 0, start.t.Location())
		}
		vals = append(vals, dtProp(name, likeStart(start, t)).Value)
	}
	p := dtProp(name, start) // the parameters of start's form
	p.Value = strings.Join(vals, ",")
	return *p, nil
}

// validEmail accepts a bare addr-spec.
func validEmail(s string) bool {
	if s == "" || len(s) > 254 || strings.ContainsAny(s, " <>\"\r\n\t") || !strings.Contains(s, "@") {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// setParticipants rewrites the ATTENDEEs; an attendee already there keeps
// its parameters (ROLE, CUTYPE, SCHEDULE-STATUS, X-…), with CN, PARTSTAT
// and comment taken from the request when it gives them.
func setParticipants(c *ical.Component, ps []api.EventParticipant) error {
	if len(ps) > MaxParticipants {
		return invalid("participants", "has more than %d entries", MaxParticipants)
	}
	existing := map[string]ical.Prop{}
	for _, a := range c.Props.Values(ical.PropAttendee) {
		if e := strings.ToLower(calAddress(a)); e != "" {
			if _, dup := existing[e]; !dup {
				existing[e] = a
			}
		}
	}
	var out []ical.Prop
	for i, p := range ps {
		email := strings.TrimSpace(p.Email)
		if !validEmail(email) {
			return invalid(fmt.Sprintf("participants[%d].email", i), "%q is not an email address", p.Email)
		}
		switch p.Status {
		case "", "yes", "no", "maybe", "noreply":
		default:
			return invalid(fmt.Sprintf("participants[%d].status", i), "must be yes, no, maybe or noreply")
		}
		var a ical.Prop
		if old, ok := existing[strings.ToLower(email)]; ok {
			a = ical.Prop{Name: ical.PropAttendee, Value: old.Value, Params: ical.Params{}}
			for k, v := range old.Params {
				a.Params[k] = append([]string(nil), v...)
			}
		} else {
			a = ical.Prop{Name: ical.PropAttendee, Value: "mailto:" + email, Params: ical.Params{}}
			a.Params.Set(ical.ParamCalendarUserType, "INDIVIDUAL")
			a.Params.Set(ical.ParamRole, "REQ-PARTICIPANT")
			a.Params.Set(ical.ParamRSVP, "TRUE")
			a.Params.Set(ical.ParamParticipationStatus, "NEEDS-ACTION")
		}
		if name := oneLine(p.Name); name != "" {
			a.Params.Set(ical.ParamCommonName, name)
		}
		if p.Status != "" {
			a.Params.Set(ical.ParamParticipationStatus, statusToPartstat(p.Status))
		}
		if cm := oneLine(p.Comment); cm != "" {
			a.Params.Set("X-RESPONSE-COMMENT", cm)
		}
		out = append(out, a)
	}
	c.Props.Del(ical.PropAttendee)
	if len(out) > 0 {
		c.Props[ical.PropAttendee] = out
	}
	return nil
}

func oneLine(s string) string {
	s = cleanText(s)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

var methodToAction = map[string]string{"": "DISPLAY", "display": "DISPLAY", "popup": "DISPLAY", "email": "EMAIL", "sound": "AUDIO"}

// setReminders replaces the alarms reminders can express (the ones it
// reports) with the request's; other alarms stay.
func (o *Object) setReminders(c *ical.Component, r api.Reminders) error {
	if len(r.Overrides) > MaxReminders {
		return invalid("reminders.overrides", "has more than %d entries", MaxReminders)
	}
	var add []*ical.Component
	for i, ov := range r.Overrides {
		action, ok := methodToAction[ov.ReminderMethod]
		if !ok {
			return invalid(fmt.Sprintf("reminders.overrides[%d].reminder_method", i), "must be display, popup, email or sound")
		}
		if ov.ReminderMinutes < 0 || ov.ReminderMinutes > 366*24*60 {
			return invalid(fmt.Sprintf("reminders.overrides[%d].reminder_minutes", i), "must be 0 to %d", 366*24*60)
		}
		a := ical.NewComponent(ical.CompAlarm)
		uid := newUID()
		setRaw(a, ical.PropUID, uid)
		setRaw(a, "X-WR-ALARMUID", uid)
		setRaw(a, ical.PropAction, action)
		setRaw(a, ical.PropTrigger, formatDuration(-time.Duration(ov.ReminderMinutes)*time.Minute))
		if action != "AUDIO" {
			setRaw(a, ical.PropDescription, "Reminder")
		}
		if action == "EMAIL" {
			setRaw(a, ical.PropSummary, "Reminder")
			if org := c.Props.Get(ical.PropOrganizer); org != nil {
				a.Props.Add(&ical.Prop{Name: ical.PropAttendee, Params: ical.Params{}, Value: org.Value})
			}
		}
		add = append(add, a)
	}
	kept := c.Children[:0]
	for _, a := range c.Children {
		if _, _, ok := o.alarm(c, a); ok {
			continue
		}
		kept = append(kept, a)
	}
	c.Children = append(kept, add...)
	return nil
}

// setConferencing writes the meeting as an RFC 7986 CONFERENCE (LABEL the
// provider) and as URL, which Apple Calendar shows; an empty conferencing
// ({}) removes it. Only the URL is stored: a meeting code is read back
// from it, passwords and phone numbers are not kept. Meeting links inside
// the location or description text are left alone.
func setConferencing(c *ical.Component, cf api.Conferencing) error {
	remove := func() {
		c.Props.Del("CONFERENCE")
		c.Props.Del("X-GOOGLE-CONFERENCE")
		c.Props.Del("X-MICROSOFT-SKYPETEAMSMEETINGURL")
		if p := c.Props.Get(ical.PropURL); p != nil && providerOf(p.Value) != "" {
			c.Props.Del(ical.PropURL)
		}
	}
	if cf.Provider == "" && cf.Details == nil {
		remove()
		return nil
	}
	if cf.Details == nil || cf.Details.URL == "" {
		return invalid("conferencing.details.url", "is required (creating meetings is not supported)")
	}
	raw := strings.TrimSpace(cf.Details.URL)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(raw, " \t\r\n") || len(raw) > 2048 {
		return invalid("conferencing.details.url", "must be an http or https URL")
	}
	prov := oneLine(cf.Provider)
	if prov == "" {
		prov = providerOf(raw)
	}
	if prov == "" {
		return invalid("conferencing.provider", "is required")
	}
	if len(prov) > 100 {
		return invalid("conferencing.provider", "is longer than 100 bytes")
	}
	remove()
	p := ical.NewProp("CONFERENCE")
	p.Params.Set(ical.ParamValue, "URI")
	p.Params.Set("FEATURE", "AUDIO,VIDEO")
	p.Params.Set("LABEL", prov)
	p.Value = raw
	c.Props.Set(p)
	setRaw(c, ical.PropURL, raw)
	return nil
}

// setMetadata replaces the X-ORCHARD-META-* properties.
func setMetadata(c *ical.Component, m map[string]string) error {
	if len(m) > MaxMetadata {
		return invalid("metadata", "has more than %d keys", MaxMetadata)
	}
	for _, k := range metaKeys(m) {
		if k == "" || len(k) > MaxMetadataKey || !utf8.ValidString(k) || strings.ContainsFunc(k, unicode.IsControl) {
			return invalid("metadata", "key %q must be 1 to %d bytes of text", k, MaxMetadataKey)
		}
		if v := m[k]; len(v) > MaxMetadataValue {
			return invalid("metadata."+k, "is longer than %d bytes", MaxMetadataValue)
		}
	}
	for name := range c.Props {
		if strings.HasPrefix(name, metaPrefix) {
			delete(c.Props, name)
		}
	}
	for _, k := range metaKeys(m) {
		var b strings.Builder
		for _, r := range strings.ToUpper(k) {
			if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
				b.WriteRune(r)
			} else {
				b.WriteByte('-')
			}
		}
		p := ical.NewProp(metaPrefix + b.String())
		p.Value = escapeText(m[k])
		if strings.ToLower(b.String()) != k {
			p.Params.Set("X-KEY", k)
		}
		c.Props.Add(p)
	}
	return nil
}
