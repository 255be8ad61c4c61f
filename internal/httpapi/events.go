package httpapi

import (
	"net/http"
	"time"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
)

func (s *server) listEvents(w http.ResponseWriter, r *http.Request) error {
	p, err := parseCursorPage(r, 50)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := service.EventFilter{CalendarID: q.Get("calendar_id"), Title: q.Get("title"), Description: q.Get("description"),
		Location: q.Get("location"), ICalUID: q.Get("ical_uid"), MasterEventID: q.Get("master_event_id")}
	if f.CalendarID == "" {
		return badRequest("calendar_id is required (a calendar id, or primary)")
	}
	// Nylas's defaults: from now, for a month.
	if f.Start, err = queryUnix(r, "start"); err != nil {
		return err
	}
	if f.Start.IsZero() {
		f.Start = s.svc.Now().Truncate(time.Second)
	}
	if f.End, err = queryUnix(r, "end"); err != nil {
		return err
	}
	if f.End.IsZero() {
		f.End = f.Start.AddDate(0, 1, 0)
	}
	for name, dst := range map[string]*bool{"expand_recurring": &f.Expand, "show_cancelled": &f.ShowCancelled} {
		v, err := queryBool(r, name)
		if err != nil {
			return err
		}
		*dst = v != nil && *v
	}
	if f.Busy, err = queryBool(r, "busy"); err != nil {
		return err
	}
	if f.UpdatedAfter, err = queryUnix(r, "updated_after"); err != nil {
		return err
	}
	if f.UpdatedBefore, err = queryUnix(r, "updated_before"); err != nil {
		return err
	}
	_, evs, err := s.svc.Events(r.Context(), appID(r), r.PathValue("grant"), f)
	if err != nil {
		return err
	}
	page, next := pageOf(evs, p)
	return writeCursorPage(w, r, selectFields(r, page...), next)
}

// calendarParam is the calendar_id every single-event call needs.
func calendarParam(r *http.Request) (string, error) {
	id := r.URL.Query().Get("calendar_id")
	if id == "" {
		return "", badRequest("calendar_id is required (a calendar id, or primary)")
	}
	return id, nil
}

func (s *server) getEvent(w http.ResponseWriter, r *http.Request) error {
	cal, err := calendarParam(r)
	if err != nil {
		return err
	}
	_, e, err := s.svc.Event(r.Context(), appID(r), r.PathValue("grant"), cal, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, selectFields(r, e)[0])
}

// eventRequest reads the calendar_id and the body of an event write.
func eventRequest(r *http.Request) (string, api.EventInput, error) {
	var in api.EventInput
	cal, err := calendarParam(r)
	if err != nil {
		return "", in, err
	}
	err = decodeJSON(r, &in)
	return cal, in, err
}

func (s *server) createEvent(w http.ResponseWriter, r *http.Request) error {
	cal, in, err := eventRequest(r)
	if err != nil {
		return err
	}
	_, e, err := s.svc.CreateEvent(r.Context(), appID(r), r.PathValue("grant"), cal, in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, e)
}

func (s *server) updateEvent(w http.ResponseWriter, r *http.Request) error {
	cal, in, err := eventRequest(r)
	if err != nil {
		return err
	}
	_, e, err := s.svc.UpdateEvent(r.Context(), appID(r), r.PathValue("grant"), cal, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, selectFields(r, e)[0])
}

func (s *server) deleteEvent(w http.ResponseWriter, r *http.Request) error {
	cal, err := calendarParam(r)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteEvent(r.Context(), appID(r), r.PathValue("grant"), cal, r.PathValue("id")); err != nil {
		return err
	}
	return writeDeleted(w, r)
}
