package icalconv

import (
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/orchard-mail/orchard/api"
)

// metaPrefix names the properties that hold Orchard's metadata: one
// X-ORCHARD-META-<KEY> per key, upper-cased; the key's exact spelling is in
// an X-KEY parameter when upper-casing would lose it.
const metaPrefix = "X-ORCHARD-META-"

// Event returns the event, or the master of a series with its recurrence
// lines ("RRULE:…", "EXDATE…", "RDATE…", in that order; EXDATE and RDATE
// keep their VALUE=DATE and TZID, the TZID as an IANA name when it
// resolves). An object with only overrides returns its earliest override,
// without recurrence.
func (o *Object) Event(ids IDs) (api.Event, error) {
	c, inherit := o.master, (*ical.Component)(nil)
	if c == nil {
		c, inherit = o.earliestOverride(), nil
	}
	start, end, hasEnd, err := o.span(c, inherit)
	if err != nil {
		return api.Event{}, err
	}
	ev := o.eventOf(c, inherit, ids)
	ev.When = when(start, end, hasEnd)
	if c == o.master {
		ev.Recurrence = o.recurrenceLines(c)
	}
	return ev, nil
}

func (o *Object) earliestOverride() *ical.Component {
	var best *ical.Component
	var bestT time.Time
	for _, ov := range o.overrides {
		s, _, _, err := o.span(ov, nil)
		if err != nil {
			continue
		}
		if best == nil || s.t.Before(bestT) {
			best, bestT = ov, s.t
		}
	}
	if best == nil {
		return o.overrides[0]
	}
	return best
}

// eventOf maps everything but When and Recurrence. An override reads the
// master (inherit) for the text, people, transparency, status, class,
// conferencing and metadata it does not carry itself; alarms are never
// inherited (an override without VALARM had its alarms removed).
func (o *Object) eventOf(c, inherit *ical.Component, ids IDs) api.Event {
	get := func(name string) *ical.Prop {
		if p := c.Props.Get(name); p != nil {
			return p
		}
		if inherit != nil {
			return inherit.Props.Get(name)
		}
		return nil
	}
	text := func(name string) string {
		if p := get(name); p != nil {
			return unescapeText(p.Value)
		}
		return ""
	}
	ev := api.Event{
		Object:       "event",
		ID:           ids.EventID,
		GrantID:      ids.GrantID,
		CalendarID:   ids.CalendarID,
		Title:        text(ical.PropSummary),
		Description:  text(ical.PropDescription),
		Location:     text(ical.PropLocation),
		Participants: []api.EventParticipant{},
		Busy:         !strings.EqualFold(strings.TrimSpace(text(ical.PropTransparency)), "TRANSPARENT"),
		Status:       "confirmed",
		ICalUID:      o.uid,
		Metadata:     map[string]string{},
	}

	attendees := c.Props.Values(ical.PropAttendee)
	if len(attendees) == 0 && inherit != nil {
		attendees = inherit.Props.Values(ical.PropAttendee)
	}
	for _, a := range attendees {
		email := calAddress(a)
		if email == "" {
			continue
		}
		ev.Participants = append(ev.Participants, api.EventParticipant{
			Email:   email,
			Name:    commonName(a),
			Status:  partstatToStatus(a.Params.Get(ical.ParamParticipationStatus)),
			Comment: a.Params.Get("X-RESPONSE-COMMENT"),
		})
	}
	if p := get(ical.PropOrganizer); p != nil {
		if email := calAddress(*p); email != "" {
			ev.Organizer = &api.EventPerson{Email: email, Name: commonName(*p)}
		}
	}

	switch strings.ToUpper(strings.TrimSpace(text(ical.PropStatus))) {
	case "TENTATIVE":
		ev.Status = "maybe"
	case "CANCELLED":
		ev.Status = "cancelled"
	}
	if strings.EqualFold(strings.TrimSpace(propValue(o.cal, ical.PropMethod)), "CANCEL") {
		ev.Status = "cancelled"
	}
	switch strings.ToUpper(strings.TrimSpace(text(ical.PropClass))) {
	case "PUBLIC":
		ev.Visibility = "public"
	case "PRIVATE", "CONFIDENTIAL":
		ev.Visibility = "private"
	}

	ev.Reminders = o.reminders(c)
	ev.Conferencing = conferencing(c, inherit)

	meta := metadata(c)
	if len(meta) == 0 && inherit != nil {
		meta = metadata(inherit)
	}
	for k, v := range meta {
		ev.Metadata[k] = v
	}

	stamp := func(cc *ical.Component, names ...string) int64 {
		if cc == nil {
			return 0
		}
		for _, n := range names {
			if p := cc.Props.Get(n); p != nil {
				if d, err := o.readDT(p); err == nil {
					return d.t.Unix()
				}
			}
		}
		return 0
	}
	ev.CreatedAt = stamp(c, ical.PropCreated)
	if ev.CreatedAt == 0 {
		ev.CreatedAt = stamp(inherit, ical.PropCreated)
	}
	if ev.CreatedAt == 0 {
		ev.CreatedAt = stamp(c, ical.PropDateTimeStamp)
	}
	ev.UpdatedAt = stamp(c, ical.PropLastModified, ical.PropDateTimeStamp)
	if ev.UpdatedAt == 0 {
		ev.UpdatedAt = ev.CreatedAt
	}
	return ev
}

// calAddress is the email of an ATTENDEE or ORGANIZER: its mailto: value,
// else its EMAIL parameter (Apple writes urn:uuid: values with EMAIL).
func calAddress(p ical.Prop) string {
	v := strings.TrimSpace(p.Value)
	if len(v) >= 7 && strings.EqualFold(v[:7], "mailto:") {
		v = strings.TrimSpace(v[7:])
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
		if v != "" {
			return v
		}
	} else if !strings.Contains(v, ":") && strings.Contains(v, "@") {
		return v
	}
	if e := strings.TrimSpace(p.Params.Get("EMAIL")); e != "" {
		return e
	}
	return ""
}

// commonName is the CN parameter; an unquoted comma (Google writes
// CN=Weber, Jonas) split it into values, which are joined again.
func commonName(p ical.Prop) string {
	return strings.TrimSpace(strings.Join(p.Params.Values(ical.ParamCommonName), ","))
}

func partstatToStatus(s string) string {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "ACCEPTED":
		return "yes"
	case "DECLINED":
		return "no"
	case "TENTATIVE":
		return "maybe"
	}
	return "noreply"
}

func statusToPartstat(s string) string {
	switch s {
	case "yes":
		return "ACCEPTED"
	case "no":
		return "DECLINED"
	case "maybe":
		return "TENTATIVE"
	}
	return "NEEDS-ACTION"
}

var alarmMethods = map[string]string{"DISPLAY": "display", "EMAIL": "email", "AUDIO": "sound"}

// reminders reads VALARMs that fire before the start (or, with
// RELATED=END, before the end of an event whose length is known); other
// alarms (absolute triggers Apple uses as placeholders, ACTION:NONE,
// alarms after the start) are kept in the object but not reported.
func (o *Object) reminders(c *ical.Component) *api.Reminders {
	r := &api.Reminders{Overrides: []api.ReminderOverride{}}
	for _, a := range c.Children {
		if minutes, method, ok := o.alarm(c, a); ok {
			r.Overrides = append(r.Overrides, api.ReminderOverride{ReminderMinutes: minutes, ReminderMethod: method})
		}
	}
	return r
}

func (o *Object) alarm(c, a *ical.Component) (minutes int, method string, ok bool) {
	if a.Name != ical.CompAlarm {
		return 0, "", false
	}
	method, ok = alarmMethods[strings.ToUpper(strings.TrimSpace(propValue(a, ical.PropAction)))]
	trig := a.Props.Get(ical.PropTrigger)
	if !ok || trig == nil {
		return 0, "", false
	}
	var before time.Duration
	if strings.EqualFold(trig.Params.Get(ical.ParamValue), "DATE-TIME") {
		at, err := o.readDT(trig)
		start, _, _, err2 := o.span(c, o.master)
		if err != nil || err2 != nil {
			return 0, "", false
		}
		before = start.t.Sub(at.t)
	} else {
		d, ok := parseDuration(trig.Value)
		if !ok {
			return 0, "", false
		}
		before = -d
		if strings.EqualFold(trig.Params.Get(ical.ParamRelated), "END") {
			start, end, hasEnd, err := o.span(c, o.master)
			if err != nil || !hasEnd {
				return 0, "", false
			}
			before -= end.t.Sub(start.t)
		}
	}
	if before < 0 || before > 366*24*time.Hour {
		return 0, "", false
	}
	return int(before / time.Minute), method, true
}

// metadata reads the X-ORCHARD-META-* properties.
func metadata(c *ical.Component) map[string]string {
	var m map[string]string
	for _, name := range sortedKeys(c.Props) {
		if !strings.HasPrefix(name, metaPrefix) || len(name) == len(metaPrefix) {
			continue
		}
		for _, p := range c.Props[name] {
			key := p.Params.Get("X-KEY")
			if key == "" {
				key = strings.ToLower(name[len(metaPrefix):])
			}
			if m == nil {
				m = map[string]string{}
			}
			m[key] = unescapeText(p.Value)
		}
	}
	return m
}

// recurrenceLines are the master's RRULE, EXDATE and RDATE properties as
// Nylas recurrence strings.
func (o *Object) recurrenceLines(c *ical.Component) []string {
	var out []string
	for _, p := range c.Props.Values(ical.PropRecurrenceRule) {
		out = append(out, "RRULE:"+strings.TrimSpace(p.Value))
	}
	for _, name := range []string{ical.PropExceptionDates, ical.PropRecurrenceDates} {
		for _, p := range c.Props.Values(name) {
			out = append(out, o.dateListLine(name, p))
		}
	}
	return out
}

func (o *Object) dateListLine(name string, p ical.Prop) string {
	var b strings.Builder
	b.WriteString(name)
	value := strings.TrimSpace(p.Value)
	switch vt := strings.ToUpper(p.Params.Get(ical.ParamValue)); {
	case vt == "DATE" || vt == "PERIOD":
		b.WriteString(";VALUE=" + vt)
	case vt == "" && len(value) == 8:
		b.WriteString(";VALUE=DATE")
	}
	if tzid := strings.TrimSpace(p.Params.Get(ical.PropTimezoneID)); tzid != "" && !strings.HasSuffix(strings.ToUpper(value), "Z") {
		if z := o.zones[tzid]; z.name != "" {
			tzid = z.name
		}
		b.WriteString(";TZID=" + escapeParam(tzid))
	}
	b.WriteString(":" + value)
	return b.String()
}

// cloneEvent copies ev with its own slices and maps.
func cloneEvent(ev api.Event) api.Event {
	n := ev
	n.Participants = append([]api.EventParticipant{}, ev.Participants...)
	n.Metadata = make(map[string]string, len(ev.Metadata))
	for k, v := range ev.Metadata {
		n.Metadata[k] = v
	}
	if ev.Organizer != nil {
		org := *ev.Organizer
		n.Organizer = &org
	}
	if ev.Reminders != nil {
		r := *ev.Reminders
		r.Overrides = append([]api.ReminderOverride{}, ev.Reminders.Overrides...)
		n.Reminders = &r
	}
	if ev.Conferencing != nil {
		cf := *ev.Conferencing
		if cf.Details != nil {
			d := *cf.Details
			d.Phone = append([]string(nil), d.Phone...)
			cf.Details = &d
		}
		n.Conferencing = &cf
	}
	n.Recurrence = append([]string(nil), ev.Recurrence...)
	return n
}

// metaKeys returns the keys of m in order (for deterministic writes).
func metaKeys(m map[string]string) []string {
	l := make([]string, 0, len(m))
	for k := range m {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}
