package caldavx

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/orchard-mail/orchard/internal/provider"
)

// calendarProps are asked for when listing calendars. getctag has to be
// asked for by name: iCloud leaves it out of generic listings.
var calendarProps = []xml.Name{
	propResourceType, propDisplayName, propCalendarDesc, propCalendarTimezone, propCalendarColor,
	propSupportedCompSet, propCurrentUserPrivSet, propGetCTag, propSyncToken,
}

var (
	rtCalendar       = xml.Name{Space: nsCalDAV, Local: "calendar"}
	rtScheduleInbox  = xml.Name{Space: nsCalDAV, Local: "schedule-inbox"}
	rtScheduleOutbox = xml.Name{Space: nsCalDAV, Local: "schedule-outbox"}
	rtNotification   = xml.Name{Space: nsCS, Local: "notification"}
	rtCollection     = xml.Name{Space: nsDAV, Local: "collection"}
)

// Calendars lists the event calendars under a.Home (Depth-1 PROPFIND). Left
// out: the home itself (servers list it first), the scheduling inbox and
// outbox, notification collections, anything that is not a calendar, and
// calendars that cannot hold events (iCloud's VTODO-only task lists).
func (c *Client) Calendars(ctx context.Context, a Account) ([]Calendar, error) {
	home, err := homeURL(a)
	if err != nil {
		return nil, err
	}
	ms, at, err := c.propfind(ctx, a, home, "1", calendarProps...)
	if err != nil {
		return nil, err
	}
	var cals []Calendar
	for _, r := range ms.responses {
		if r.status != 0 && (r.status < 200 || r.status > 299) {
			continue
		}
		u, err := resolve(a, at, r.href)
		if err != nil {
			return nil, err
		}
		rt := r.prop(propResourceType)
		if sameResource(u, home) || sameResource(u, at) || !rt.has(rtCalendar) ||
			rt.has(rtScheduleInbox) || rt.has(rtScheduleOutbox) || rt.has(rtNotification) {
			continue
		}
		cal := Calendar{
			URL:         withSlash(u).String(),
			Name:        r.prop(propDisplayName).text(),
			Description: r.prop(propCalendarDesc).text(),
			Timezone:    tzidOf(r.prop(propCalendarTimezone).text()),
			Color:       r.prop(propCalendarColor).text(),
			ReadOnly:    readOnly(r.prop(propCurrentUserPrivSet)),
			Components:  components(r.prop(propSupportedCompSet)),
			CTag:        r.prop(propGetCTag).text(),
			SyncToken:   r.prop(propSyncToken).text(),
		}
		if cal.Components != nil && !contains(cal.Components, "VEVENT") {
			continue
		}
		cals = append(cals, cal)
	}
	return cals, nil
}

// readOnly reads a current-user-privilege-set: read-only unless it grants
// DAV:write, DAV:write-content or DAV:all. Without the property nothing is
// known, and the calendar is taken as writable (a refused write says 403).
func readOnly(set *node) bool {
	if set == nil {
		return false
	}
	for _, p := range set.all(xml.Name{Space: nsDAV, Local: "privilege"}) {
		for _, ch := range p.Children {
			switch ch.XMLName.Local {
			case "all", "write", "write-content":
				return false
			}
		}
	}
	return true
}

// components reads a supported-calendar-component-set; nil when absent.
func components(set *node) []string {
	if set == nil {
		return nil
	}
	out := []string{}
	for _, comp := range set.all(xml.Name{Space: nsCalDAV, Local: "comp"}) {
		for _, at := range comp.Attrs {
			if at.Name.Local == "name" && at.Value != "" {
				out = append(out, strings.ToUpper(at.Value))
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// CreateCalendar makes a new event calendar (MKCALENDAR) at a.Home plus a
// random id and returns its absolute URL. Name, Description, Timezone (an
// IANA name, turned into a VTIMEZONE) and Color are set when not empty; the
// calendar accepts VEVENT only. cal.URL and the other fields are ignored.
func (c *Client) CreateCalendar(ctx context.Context, a Account, cal Calendar) (string, error) {
	home, err := homeURL(a)
	if err != nil {
		return "", err
	}
	props, err := calendarSetProps(cal)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n<c:mkcalendar")
	writeNamespaces(&b)
	b.WriteString("><d:set><d:prop>")
	b.Write(props)
	b.WriteString(`<c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set>`)
	b.WriteString("</d:prop></d:set></c:mkcalendar>")

	u := home.ResolveReference(&url.URL{Path: newID() + "/"})
	resp, err := c.do(ctx, a, request{method: "MKCALENDAR", url: u, body: b.Bytes(), ctype: xmlType, write: true})
	if err != nil {
		return "", err
	}
	if resp.status/100 != 2 {
		return "", statusError(a, "MKCALENDAR", resp)
	}
	return canonical(resp.url).String(), nil
}

// UpdateCalendar sets the calendar's name, description, timezone and color
// (PROPPATCH); empty fields are left alone, and nothing is sent when all are
// empty. A property the server refuses fails the whole update (RFC 4918
// PROPPATCH is atomic) with KindRejected.
func (c *Client) UpdateCalendar(ctx context.Context, a Account, cal Calendar) error {
	u, err := parseURL(cal.URL)
	if err != nil {
		return err
	}
	props, err := calendarSetProps(cal)
	if err != nil || (len(props) == 0 && !cal.ClearDescription) {
		return err
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n<d:propertyupdate")
	writeNamespaces(&b)
	b.WriteString(">")
	if len(props) > 0 {
		b.WriteString("<d:set><d:prop>")
		b.Write(props)
		b.WriteString("</d:prop></d:set>")
	}
	if cal.ClearDescription {
		// An empty value would leave the old one on some servers: remove
		// the property (RFC 4918 §14.23).
		fmt.Fprintf(&b, "<d:remove><d:prop><%s:%s/></d:prop></d:remove>", prefixOf(propCalendarDesc.Space), propCalendarDesc.Local)
	}
	b.WriteString("</d:propertyupdate>")

	resp, err := c.do(ctx, a, request{method: "PROPPATCH", url: u, body: b.Bytes(), ctype: xmlType, write: true})
	if err != nil {
		return err
	}
	switch {
	case resp.status == http.StatusMultiStatus:
	case resp.status/100 == 2:
		return nil
	default:
		return statusError(a, "PROPPATCH", resp)
	}
	// 207 says per property how it went.
	root, err := parseXML(resp.body)
	if err != nil {
		return redact(&provider.Error{Kind: provider.KindProtocol, Service: service, Addr: hostPort(resp.url),
			Text: fmt.Sprintf("PROPPATCH %s: unreadable multistatus: %v", resp.url.EscapedPath(), err)}, a)
	}
	var failed []string
	for _, rn := range root.all(elemResponse) {
		if st := parseStatus(rn.child(elemStatus).text()); st != 0 && st/100 != 2 {
			failed = append(failed, fmt.Sprintf("%d", st))
		}
		for _, ps := range rn.all(elemPropstat) {
			st := parseStatus(ps.child(elemStatus).text())
			if st == 0 || st/100 == 2 {
				continue
			}
			for _, pr := range ps.all(elemProp) {
				for _, p := range pr.Children {
					failed = append(failed, fmt.Sprintf("%s %d", p.XMLName.Local, st))
				}
			}
		}
	}
	if len(failed) > 0 {
		return redact(&provider.Error{Kind: provider.KindRejected, Service: service, Addr: hostPort(resp.url),
			Text: fmt.Sprintf("PROPPATCH %s: refused: %s", resp.url.EscapedPath(), strings.Join(failed, ", "))}, a)
	}
	return nil
}

// calendarSetProps renders the non-empty settable properties of cal.
func calendarSetProps(cal Calendar) ([]byte, error) {
	var b bytes.Buffer
	if cal.Name != "" {
		writeText(&b, propDisplayName, cal.Name)
	}
	if cal.Description != "" {
		writeText(&b, propCalendarDesc, cal.Description)
	}
	if cal.Timezone != "" {
		vtz, err := vtimezone(cal.Timezone)
		if err != nil {
			return nil, err
		}
		writeText(&b, propCalendarTimezone, string(vtz))
	}
	if cal.Color != "" {
		writeText(&b, propCalendarColor, cal.Color)
	}
	return b.Bytes(), nil
}

// DeleteCalendar deletes the calendar at calURL with everything in it. A
// missing calendar is ErrNotFound. The home itself is never deleted: that
// would take every calendar of the account with it.
func (c *Client) DeleteCalendar(ctx context.Context, a Account, calURL string) error {
	u, err := parseURL(calURL)
	if err != nil {
		return err
	}
	if home, err := homeURL(a); err == nil && sameResource(u, home) {
		return errors.New("caldavx: refusing to delete the calendar home")
	}
	resp, err := c.do(ctx, a, request{method: http.MethodDelete, url: u, write: true})
	if err != nil {
		return err
	}
	if resp.status/100 != 2 {
		return statusError(a, "DELETE", resp)
	}
	return nil
}

// newID is a random UUID (version 4) in upper case, the shape iCloud gives
// its own calendars and events.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}
