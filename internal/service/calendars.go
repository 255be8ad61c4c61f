package service

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/caldavx"
	"github.com/orchard-mail/orchard/internal/icalconv"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/syncer"
)

// CalDAV reaches a grant's calendar server for Orchard's own writes; the
// syncer does the reading.
type CalDAV interface {
	Discover(ctx context.Context, baseURL string, a caldavx.Account) (string, error)
	CreateCalendar(ctx context.Context, a caldavx.Account, cal caldavx.Calendar) (string, error)
	UpdateCalendar(ctx context.Context, a caldavx.Account, cal caldavx.Calendar) error
	DeleteCalendar(ctx context.Context, a caldavx.Account, url string) error
	PutObject(ctx context.Context, a caldavx.Account, href string, data []byte, ifMatch string) (string, error)
	DeleteObject(ctx context.Context, a caldavx.Account, href, ifMatch string) error
}

// calendarGrant resolves a grant that has calendars: only the iCloud
// connector reaches CalDAV.
func (s *Service) calendarGrant(ctx context.Context, appID, grantRef string) (*store.Grant, error) {
	g, err := s.Grant(ctx, appID, grantRef)
	if err != nil {
		return nil, err
	}
	if g.Provider != ProviderICloud {
		return nil, invalid("calendars need the iCloud connector: grant %s is an %s grant, which serves mail only", g.ID, g.Provider)
	}
	return g, nil
}

// Calendars lists a grant's calendars.
func (s *Service) Calendars(ctx context.Context, appID, grantRef string) (*store.Grant, []store.Calendar, error) {
	g, err := s.calendarGrant(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	cals, err := s.store.ListCalendars(ctx, g.ID)
	if err != nil {
		return nil, nil, err
	}
	syncer.MarkPrimary(cals)
	return g, cals, nil
}

// Calendar returns one calendar; "primary" is the account's default
// calendar (Nylas refuses primary for iCloud; Orchard knows it).
func (s *Service) Calendar(ctx context.Context, appID, grantRef, id string) (*store.Grant, *store.Calendar, error) {
	g, cals, err := s.Calendars(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	c, err := findCalendar(cals, id)
	return g, c, err
}

func findCalendar(cals []store.Calendar, id string) (*store.Calendar, error) {
	if id == "" {
		return nil, invalid("calendar_id is required")
	}
	for i := range cals {
		if cals[i].ID == id || (id == "primary" && cals[i].IsPrimary) {
			return &cals[i], nil
		}
	}
	if id == "primary" {
		return nil, notFound("this account has no primary calendar yet (no calendar found; the calendar sync may still be running)")
	}
	return nil, notFound("calendar %s not found", id)
}

// CalendarWire is the API form of a calendar.
func CalendarWire(g *store.Grant, c *store.Calendar) api.Calendar {
	tz := c.Timezone
	return api.Calendar{Object: "calendar", ID: c.ID, GrantID: g.ID, Name: c.Name, Description: c.Description,
		Timezone: tz, HexColor: hexColor(c.Color), IsPrimary: c.IsPrimary, IsOwnedByUser: c.IsOwned, ReadOnly: c.ReadOnly,
		OwnerEmail: ownerEmail(g, c), Metadata: map[string]string{}}
}

func ownerEmail(g *store.Grant, c *store.Calendar) string {
	if c.IsOwned {
		return g.Email
	}
	return ""
}

var appleColor = regexp.MustCompile(`^#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$`)

// hexColor maps Apple's #RRGGBBAA to the #RRGGBB Nylas uses.
func hexColor(c string) string {
	if !appleColor.MatchString(c) {
		return ""
	}
	return strings.ToUpper(c[:7])
}

// calendarAccount is the CalDAV account of an iCloud grant: the Apple ID
// and its app-specific password, as for mail. The calendar home is
// derived from a stored calendar when there is one (its parent
// collection), else discovered.
func (s *Service) calendarAccount(ctx context.Context, g *store.Grant, cals []store.Calendar) (caldavx.Account, error) {
	creds, err := s.Credentials(g)
	if err != nil {
		return caldavx.Account{}, err
	}
	a := caldavx.Account{Username: creds.IMAPUsername, Password: creds.IMAPPassword}
	for _, c := range cals {
		if c.IsOwned && c.Href != "" {
			if u, err := url.Parse(c.Href); err == nil {
				u.Path = strings.TrimSuffix(u.Path, "/")
				u.Path = u.Path[:strings.LastIndexByte(u.Path, '/')+1]
				a.Home = u.String()
				return a, nil
			}
		}
	}
	if s.caldav == nil {
		return a, errors.New("service: no CalDAV client configured")
	}
	a.Home, err = s.caldav.Discover(ctx, s.icloudCalDAVURL, a)
	return a, err
}

// CreateCalendar makes a calendar on the server (MKCALENDAR) and records it.
func (s *Service) CreateCalendar(ctx context.Context, appID, grantRef string, in api.CalendarInput) (*store.Grant, *store.Calendar, error) {
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return nil, nil, invalid("name is required")
	}
	g, cals, err := s.Calendars(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	cal, err := calendarInput(in, caldavx.Calendar{})
	if err != nil {
		return nil, nil, err
	}
	defer s.beginCalendarWrite(g.ID)()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	a, err := s.calendarAccount(ctx, g, cals)
	if err != nil {
		return nil, nil, err
	}
	if cal.URL, err = s.caldav.CreateCalendar(ctx, a, cal); err != nil {
		return nil, nil, err
	}
	c := store.Calendar{ID: syncer.CalendarID(g.ID, cal.URL), GrantID: g.ID, Href: cal.URL, Name: cal.Name,
		Description: cal.Description, Timezone: cal.Timezone, Color: cal.Color, IsOwned: true}
	err = s.store.ApplyCalendarBatch(ctx, &store.CalendarBatch{GrantID: g.ID, Calendars: []store.Calendar{c},
		Changes: []store.Change{{GrantID: g.ID, ObjectType: "calendar", ObjectID: c.ID, Action: "created"}}})
	if err != nil {
		return nil, nil, err
	}
	return s.Calendar(ctx, appID, grantRef, c.ID)
}

// calendarInput validates a calendar body on top of base.
func calendarInput(in api.CalendarInput, base caldavx.Calendar) (caldavx.Calendar, error) {
	c := base
	if in.Name != nil {
		if strings.TrimSpace(*in.Name) == "" {
			return c, invalid("name must not be empty")
		}
		c.Name = *in.Name
	}
	if in.Description != nil {
		c.Description = *in.Description
		c.ClearDescription = *in.Description == "" && base.URL != ""
	}
	if in.Timezone != nil && *in.Timezone != "" {
		if _, err := icalconv.LoadLocation(*in.Timezone); err != nil {
			return c, invalid("timezone: %q is not a known time zone (use an IANA name such as Europe/Berlin)", *in.Timezone)
		}
		c.Timezone = *in.Timezone
	}
	if in.HexColor != nil && *in.HexColor != "" {
		if !appleColor.MatchString(*in.HexColor) {
			return c, invalid("hex_color: %q is not a color like #1BADF8", *in.HexColor)
		}
		c.Color = strings.ToUpper((*in.HexColor)[:7]) + "FF"
	}
	if len(c.Name) > 1024 || len(c.Description) > 64<<10 {
		return c, invalid("name or description is too long")
	}
	return c, nil
}

// UpdateCalendar changes a calendar's properties (PROPPATCH).
func (s *Service) UpdateCalendar(ctx context.Context, appID, grantRef, id string, in api.CalendarInput) (*store.Grant, *store.Calendar, error) {
	g, cals, err := s.Calendars(ctx, appID, grantRef)
	if err != nil {
		return nil, nil, err
	}
	c, err := findCalendar(cals, id)
	if err != nil {
		return nil, nil, err
	}
	if !c.IsOwned {
		return nil, nil, invalid("calendar %s is shared with this account and cannot be changed by it", c.ID)
	}
	cal, err := calendarInput(in, caldavx.Calendar{URL: c.Href})
	if err != nil {
		return nil, nil, err
	}
	defer s.beginCalendarWrite(g.ID)()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	a, err := s.calendarAccount(ctx, g, cals)
	if err != nil {
		return nil, nil, err
	}
	if err := s.caldav.UpdateCalendar(ctx, a, cal); err != nil {
		return nil, nil, err
	}
	up := *c
	if cal.Name != "" {
		up.Name = cal.Name
	}
	if in.Description != nil {
		up.Description = cal.Description
	}
	if cal.Timezone != "" {
		up.Timezone = cal.Timezone
	}
	if cal.Color != "" {
		up.Color = cal.Color
	}
	err = s.store.ApplyCalendarBatch(ctx, &store.CalendarBatch{GrantID: g.ID, Calendars: []store.Calendar{up},
		Changes: []store.Change{{GrantID: g.ID, ObjectType: "calendar", ObjectID: c.ID, Action: "updated"}}})
	if err != nil {
		return nil, nil, err
	}
	return s.Calendar(ctx, appID, grantRef, c.ID)
}

// DeleteCalendar deletes a calendar and its events; the primary calendar
// stays, as on Nylas.
func (s *Service) DeleteCalendar(ctx context.Context, appID, grantRef, id string) error {
	g, cals, err := s.Calendars(ctx, appID, grantRef)
	if err != nil {
		return err
	}
	c, err := findCalendar(cals, id)
	if err != nil {
		return err
	}
	if c.IsPrimary {
		return invalid("calendar %s is the account's primary calendar and cannot be deleted", c.ID)
	}
	if !c.IsOwned {
		return invalid("calendar %s is shared with this account and cannot be deleted by it", c.ID)
	}
	defer s.beginCalendarWrite(g.ID)()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	a, err := s.calendarAccount(ctx, g, cals)
	if err != nil {
		return err
	}
	if err := s.caldav.DeleteCalendar(ctx, a, c.Href); err != nil && !errors.Is(err, caldavx.ErrNotFound) {
		return err
	}
	err = s.store.ApplyCalendarBatch(ctx, &store.CalendarBatch{GrantID: g.ID, DeletedCalendars: []string{c.ID},
		Changes: []store.Change{{GrantID: g.ID, ObjectType: "calendar", ObjectID: c.ID, Action: "deleted"}}})
	return err
}

// ownedCalendars are the calendars whose events are the grant's own time.
func ownedCalendars(cals []store.Calendar) []store.Calendar {
	return slices.DeleteFunc(slices.Clone(cals), func(c store.Calendar) bool { return !c.IsOwned })
}
