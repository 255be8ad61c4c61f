// Package icalconv converts one CalDAV calendar object resource — a
// VCALENDAR holding a single VEVENT, or a recurring series (the master
// VEVENT and its RECURRENCE-ID overrides), with the VTIMEZONEs they use —
// to and from Nylas v3 events (api.Event, api.EventInput).
//
// Reading is lenient, because servers and clients write what they write:
// duplicate DTSTAMPs (iCloud), unknown X- properties (kept as they are),
// VTIMEZONEs the server rewrote (IANA rules win over a VTIMEZONE whose TZID
// is a name LoadLocation knows), Windows zone names and "Customized Time
// Zone"s from Outlook invites (read through CLDR's mapping, or the
// VTIMEZONE's own rules), cancellation by METHOD:CANCEL instead of STATUS.
// Only a calendar without a usable VEVENT (one with a UID and a readable
// DTSTART) is an error.
//
// Writing changes only what a request changed: Encode writes back every
// property, parameter and component it did not touch (X-APPLE-*, VALARMs,
// ATTENDEE parameters), as CRLF lines folded at 75 octets. Edits bump
// SEQUENCE and set LAST-MODIFIED and DTSTAMP, which Apple devices need to
// notice a change.
//
// Conventions:
//   - A floating date-time (no TZID, no Z) and an all-day date are read in
//     the calendar's time zone: SetDefaultLocation, else the VCALENDAR's
//     X-WR-TIMEZONE, else UTC. Floating times are reported without a time
//     zone; UTC times (Z) with "UTC".
//   - All-day dates: Nylas end_date is inclusive, iCalendar's DTEND is
//     exclusive; a one-day event is the "date" form.
//   - Instance ids are InstanceID(master id, original start); the original
//     start of an all-day occurrence is midnight UTC of its date (in
//     OriginalStartTime too), whatever the calendar's zone.
//   - Orchard's metadata lives in X-ORCHARD-META-<KEY> properties; no other
//     X- property is exposed.
//
// An Object is not safe for concurrent use while it is being changed; its
// read methods may run concurrently with each other.
package icalconv

import (
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

type icalComponent = ical.Component

// Limits of what New and Update accept.
const (
	MaxTitleBytes       = 4 << 10  // title (SUMMARY)
	MaxLocationBytes    = 4 << 10  // location (LOCATION)
	MaxDescriptionBytes = 64 << 10 // description (DESCRIPTION): a 64 KiB text keeps an object far below the size servers refuse
	MaxParticipants     = 1000     // participants (ATTENDEE)
	MaxRecurrence       = 1000     // recurrence lines
	MaxReminders        = 20       // reminders.overrides (VALARM)
	MaxMetadata         = 50       // metadata pairs, as Nylas allows
	MaxMetadataKey      = 40       // bytes of a metadata key
	MaxMetadataValue    = 500      // bytes of a metadata value
)

// DefaultMaxInstances caps Instances when it is given maxInstances <= 0,
// and BusyPeriods.
const DefaultMaxInstances = 5000

// maxScan bounds the occurrences one expansion may step through, whether
// or not they fall in the asked range: a dense series that starts long
// before the range cannot run away either.
const maxScan = 400_000

// ErrTooManyInstances is returned when an expansion would yield more than
// maxInstances occurrences, or step through more than maxScan.
var ErrTooManyInstances = errors.New("icalconv: too many instances")

// ErrNoInstance is returned by UpdateInstance and DeleteInstance when the
// series has no occurrence at the given original start.
var ErrNoInstance = errors.New("icalconv: no such instance")

// ErrNoMaster is returned by Update when the object has only overrides (an
// invitation to single occurrences), no master VEVENT.
var ErrNoMaster = errors.New("icalconv: the object has no master event")

// InvalidError is a request the conversion refuses, naming the JSON field
// at fault ("when.end_time", "recurrence[0]", "participants[2].email",
// "when.timezone").
type InvalidError struct {
	Field, Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) *InvalidError {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// IDs are the identifiers an Event carries. EventID is the id of the
// event, or of the series for a recurring one; the caller chooses it.
type IDs struct {
	GrantID, CalendarID, EventID string
}

// Object is one parsed calendar object resource.
type Object struct {
	cal       *ical.Component
	uid       string
	master    *ical.Component   // nil when the object holds only overrides
	overrides []*ical.Component // same UID with a readable RECURRENCE-ID, file order
	defLoc    *time.Location    // SetDefaultLocation

	// Derived by reindex after every change; read-only otherwise.
	zones    map[string]zone
	floatLoc *time.Location
	series   *series // nil unless Recurring
}

// Parse reads one calendar object resource. See the package comment for
// what it tolerates.
func Parse(data []byte) (o *Object, err error) {
	defer func() {
		if r := recover(); r != nil {
			o, err = nil, fmt.Errorf("icalconv: unreadable calendar object: %v", r)
		}
	}()
	cal, err := decode(data)
	if err != nil {
		return nil, err
	}
	return fromComponent(cal)
}

// FromCalendar wraps a calendar go-ical (or go-webdav's caldav package)
// decoded. The Object uses cal from then on.
func FromCalendar(cal *ical.Calendar) (*Object, error) {
	if cal == nil || cal.Component == nil || cal.Name != ical.CompCalendar {
		return nil, errors.New("icalconv: not a VCALENDAR")
	}
	return fromComponent(cal.Component)
}

func fromComponent(cal *ical.Component) (*Object, error) {
	o := &Object{cal: cal}
	normalize(cal)
	if err := o.reindex(); err != nil {
		return nil, err
	}
	return o, nil
}

// Calendar returns a copy of the VCALENDAR as go-ical's type, for
// go-webdav. Prefer Encode for bytes: go-ical's Encoder does not fold long
// lines and refuses objects servers do send (no DTSTAMP, for one).
func (o *Object) Calendar() *ical.Calendar {
	return &ical.Calendar{Component: cloneComponent(o.root())}
}

// Encode writes the object as iCalendar: CRLF line ends, lines folded at
// 75 octets, VERSION and PRODID added when missing.
func (o *Object) Encode() ([]byte, error) {
	return encode(o.root())
}

// root is the VCALENDAR with VERSION and PRODID, which RFC 5545 requires;
// the object itself is left as it is.
func (o *Object) root() *ical.Component {
	root := *o.cal
	root.Props = make(ical.Props, len(o.cal.Props)+2)
	for k, v := range o.cal.Props {
		root.Props[k] = v
	}
	if root.Props.Get(ical.PropVersion) == nil {
		root.Props.SetText(ical.PropVersion, "2.0")
	}
	if root.Props.Get(ical.PropProductID) == nil {
		root.Props.SetText(ical.PropProductID, prodID)
	}
	return &root
}

const prodID = "-//Orchard//icalconv//EN"

// UID is the iCalendar UID of the event or series.
func (o *Object) UID() string { return o.uid }

// Recurring reports whether the object is a series: an RRULE or RDATE on
// the master, or RECURRENCE-ID overrides.
func (o *Object) Recurring() bool { return o.series != nil }

// SetDefaultLocation sets the time zone floating times and all-day dates
// are read in: the calendar's own (CalDAV calendar-timezone), when the
// caller knows it. nil restores the default (X-WR-TIMEZONE, else UTC).
func (o *Object) SetDefaultLocation(loc *time.Location) {
	o.defLoc = loc
	_ = o.reindex() // cannot fail: it succeeded before with the same components
}

// singleProps may appear once in a VEVENT; servers send some twice (iCloud
// duplicates DTSTAMP). The first is kept.
var singleProps = []string{
	"DTSTAMP", "UID", "DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "SUMMARY", "DESCRIPTION",
	"LOCATION", "STATUS", "TRANSP", "CLASS", "SEQUENCE", "CREATED", "LAST-MODIFIED", "ORGANIZER",
	"URL", "PRIORITY", "GEO",
}

func normalize(cal *ical.Component) {
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		for _, n := range singleProps {
			if ps := c.Props[n]; len(ps) > 1 {
				c.Props[n] = ps[:1]
			}
		}
	}
}

// reindex finds the UID, master and overrides, resolves time zones and
// prepares the recurrence set.
func (o *Object) reindex() error {
	o.uid, o.master, o.overrides, o.series = "", nil, nil, nil
	for _, c := range o.cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		if p := c.Props.Get(ical.PropUID); p != nil && strings.TrimSpace(p.Value) != "" {
			o.uid = unescapeText(strings.TrimSpace(p.Value))
			break
		}
	}
	if o.uid == "" {
		if len(events(o.cal)) == 0 {
			return errors.New("icalconv: no VEVENT")
		}
		return errors.New("icalconv: VEVENT without UID")
	}

	o.floatLoc = time.UTC
	if o.defLoc != nil {
		o.floatLoc = o.defLoc
	} else if p := o.cal.Props.Get("X-WR-TIMEZONE"); p != nil {
		if loc, err := LoadLocation(unescapeText(p.Value)); err == nil {
			o.floatLoc = loc
		}
	}
	o.zones = map[string]zone{}
	vtz := map[string]*ical.Component{}
	for _, c := range o.cal.Children {
		if c.Name == ical.CompTimezone {
			if id := strings.TrimSpace(unescapeText(propValue(c, ical.PropTimezoneID))); id != "" && vtz[id] == nil {
				vtz[id] = c
			}
		}
	}
	for _, c := range events(o.cal) {
		for _, ps := range c.Props {
			for _, p := range ps {
				id := strings.TrimSpace(p.Params.Get(ical.PropTimezoneID))
				if id == "" {
					continue
				}
				if _, done := o.zones[id]; done {
					continue
				}
				if z, ok := resolveZone(id, vtz[id]); ok {
					o.zones[id] = z
				} else {
					o.zones[id] = zone{} // unresolved: read as floating
				}
			}
		}
	}

	type keyed struct {
		c   *ical.Component
		seq int
	}
	var ovs []keyed
	for _, c := range events(o.cal) {
		if p := c.Props.Get(ical.PropUID); p == nil || unescapeText(strings.TrimSpace(p.Value)) != o.uid {
			continue
		}
		if rid := c.Props.Get(ical.PropRecurrenceID); rid != nil {
			if _, err := o.readDT(rid); err == nil {
				ovs = append(ovs, keyed{c, sequence(c)})
			}
			continue
		}
		if o.master == nil {
			if _, err := o.readDT(c.Props.Get(ical.PropDateTimeStart)); err == nil {
				o.master = c
			}
		}
	}
	if o.master == nil && len(ovs) == 0 {
		return errors.New("icalconv: VEVENT without a readable DTSTART")
	}
	for _, k := range ovs {
		o.overrides = append(o.overrides, k.c)
	}
	if o.master == nil || o.master.Props.Get(ical.PropRecurrenceRule) != nil ||
		o.master.Props.Get(ical.PropRecurrenceDates) != nil || len(o.overrides) > 0 {
		o.series = o.buildSeries()
	}
	return nil
}

func events(cal *ical.Component) []*ical.Component {
	var l []*ical.Component
	for _, c := range cal.Children {
		if c.Name == ical.CompEvent {
			l = append(l, c)
		}
	}
	return l
}

func sequence(c *ical.Component) int {
	n, _ := strconv.Atoi(strings.TrimSpace(propValue(c, ical.PropSequence)))
	return n
}

// clone copies the object deeply, so that a change can be made on the
// copy and dropped if it fails.
func (o *Object) clone() *Object {
	n := &Object{cal: cloneComponent(o.cal), defLoc: o.defLoc}
	if err := n.reindex(); err != nil {
		panic("icalconv: clone of a valid object is invalid: " + err.Error())
	}
	return n
}

func cloneComponent(c *ical.Component) *ical.Component {
	n := &ical.Component{Name: c.Name, Props: make(ical.Props, len(c.Props))}
	for k, ps := range c.Props {
		l := make([]ical.Prop, len(ps))
		for i, p := range ps {
			l[i] = ical.Prop{Name: p.Name, Value: p.Value, Params: make(ical.Params, len(p.Params))}
			for pk, pv := range p.Params {
				l[i].Params[pk] = append([]string(nil), pv...)
			}
		}
		n.Props[k] = l
	}
	for _, ch := range c.Children {
		n.Children = append(n.Children, cloneComponent(ch))
	}
	return n
}

// InstanceID is the id of one occurrence of a series: the master's id,
// "_", and the original start as 20060102T150405Z (UTC), or 20060102 for
// an all-day occurrence (the date of originalStart in its own location).
func InstanceID(masterID string, originalStart time.Time, allDay bool) string {
	if allDay {
		return masterID + "_" + originalStart.Format("20060102")
	}
	return masterID + "_" + originalStart.UTC().Format("20060102T150405Z")
}

var instanceSuffix = regexp.MustCompile(`_(\d{8}(?:T\d{6}Z)?)$`)

// ParseInstanceID splits an id made by InstanceID. For an all-day
// occurrence originalStart is midnight UTC of its date.
func ParseInstanceID(id string) (masterID string, originalStart time.Time, allDay bool, ok bool) {
	m := instanceSuffix.FindStringSubmatchIndex(id)
	if m == nil || m[0] == 0 {
		return "", time.Time{}, false, false
	}
	suffix := id[m[2]:m[3]]
	if len(suffix) == 8 {
		t, err := time.Parse("20060102", suffix)
		if err != nil {
			return "", time.Time{}, false, false
		}
		return id[:m[0]], t, true, true
	}
	t, err := time.Parse("20060102T150405Z", suffix)
	if err != nil {
		return "", time.Time{}, false, false
	}
	return id[:m[0]], t, false, true
}

// newUID makes a random UID in the form Apple's clients use (an upper-case
// UUID).
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	l := make([]string, 0, len(m))
	for k := range m {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}
