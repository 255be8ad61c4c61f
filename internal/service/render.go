package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/orchard-mail/orchard/internal/icalconv"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/webhook"
)

// grantCodes are Nylas's codes of grant notifications.
var grantCodes = map[string]int{"created": 25012, "updated": 25014, "deleted": 25013, "expired": 25009}

// Render turns a change row into the notification webhooks receive: the
// full API object as the REST API returns it, or a minimal one for a
// deletion. Rows nobody subscribes to (threads, message deletions, which
// are aged-out or orphaned copies rather than news) and objects gone
// since are skipped. It is the dispatcher's webhook.Renderer.
func (s *Service) Render(ctx context.Context, ch store.Change) (webhook.Notification, bool, error) {
	g, err := s.store.GrantByID(ctx, ch.GrantID)
	if errors.Is(err, store.ErrNotFound) {
		return webhook.Notification{}, false, nil
	}
	if err != nil {
		return webhook.Notification{}, false, err
	}
	n := webhook.Notification{ApplicationID: g.ApplicationID, GrantID: g.ID, Type: ch.ObjectType + "." + ch.Action}
	var obj any
	switch ch.ObjectType {
	case "grant":
		n.Source = webhook.SourceSystem
		obj = grantObject(g, ch.Action)
	case "message":
		n.Source = webhook.SourceMail
		if ch.Action == "deleted" {
			return n, false, nil
		}
		m, err := s.store.GetMessage(ctx, g.ID, ch.ObjectID)
		if errors.Is(err, store.ErrNotFound) {
			return n, false, nil
		} else if err != nil {
			return n, false, err
		}
		obj = MessageWire(m, HeadersNone)
	case "folder":
		n.Source = webhook.SourceMail
		if ch.Action == "deleted" {
			obj = map[string]string{"id": ch.ObjectID, "grant_id": g.ID, "object": "folder"}
			break
		}
		fs, err := s.store.ListFolders(ctx, g.ID)
		if err != nil {
			return n, false, err
		}
		f, ok := findFolder(fs, ch.ObjectID)
		if !ok {
			return n, false, nil
		}
		obj = FolderWire(&f, fs)
	case "calendar":
		n.Source = webhook.SourceCalendar
		if ch.Action == "deleted" {
			obj = map[string]string{"id": ch.ObjectID, "grant_id": g.ID, "object": "calendar"}
			break
		}
		c, err := s.store.GetCalendar(ctx, g.ID, ch.ObjectID)
		if errors.Is(err, store.ErrNotFound) {
			return n, false, nil
		} else if err != nil {
			return n, false, err
		}
		obj = CalendarWire(g, c)
	case "event":
		n.Source = webhook.SourceCalendar
		if ch.Action == "deleted" {
			obj = map[string]string{"id": ch.ObjectID, "grant_id": g.ID, "object": "event"}
			break
		}
		e, ok, err := s.eventByID(ctx, g, ch.ObjectID)
		if err != nil || !ok {
			return n, false, err
		}
		obj = e
	default:
		return n, false, nil
	}
	raw, err := marshalObject(obj)
	if err != nil {
		return n, false, err
	}
	n.Object = raw
	return n, true, nil
}

// marshalObject encodes a notification's object as the REST API writes it:
// without json.Marshal's escaping of <, > and &, which would make HTML
// bodies up to six times longer (and so truncated sooner).
func marshalObject(obj any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// grantObject is the data.object of grant notifications.
func grantObject(g *store.Grant, action string) map[string]any {
	o := map[string]any{"code": grantCodes[action], "grant_id": g.ID, "integration_id": g.Provider,
		"provider": g.Provider, "email": g.Email, "grant_status": g.Status}
	if g.Name != "" {
		o["name"] = g.Name
	}
	if action == "expired" {
		o["grant_updated_at"] = g.UpdatedAt.Unix()
	}
	if action == "updated" {
		o["reauthentication_flag"] = g.Status == GrantValid
	}
	return o
}

// eventByID finds a stored event (a single event or a series) by id in
// any of the grant's calendars.
func (s *Service) eventByID(ctx context.Context, g *store.Grant, id string) (any, bool, error) {
	cals, err := s.store.ListCalendars(ctx, g.ID)
	if err != nil {
		return nil, false, err
	}
	for _, c := range cals {
		o, err := s.store.GetCalendarObject(ctx, g.ID, c.ID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, false, err
		}
		parsed, err := icalconv.Parse(o.Data)
		if err != nil {
			return nil, false, nil
		}
		e, err := parsed.Event(icalconv.IDs{GrantID: g.ID, CalendarID: c.ID, EventID: o.ID})
		if err != nil {
			return nil, false, nil
		}
		return e, true, nil
	}
	return nil, false, nil
}

// PublishGrantDeleted sends grant.deleted: it has no change row, since
// the grant's rows go with it, so it is built before the grant is
// deleted and enqueued directly.
func (s *Service) publishGrantDeleted(ctx context.Context, g *store.Grant) {
	if s.dispatcher == nil {
		return
	}
	raw, _ := marshalObject(grantObject(g, "deleted"))
	n := webhook.Notification{ApplicationID: g.ApplicationID, GrantID: g.ID, Type: "grant.deleted",
		Source: webhook.SourceSystem, Object: raw}
	if err := s.dispatcher.Publish(context.WithoutCancel(ctx), n); err != nil {
		s.log.Warn("publish grant.deleted", "grant_id", g.ID, "error", err)
	}
}
