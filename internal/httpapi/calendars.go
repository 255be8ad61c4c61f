package httpapi

import (
	"net/http"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
)

func (s *server) listCalendars(w http.ResponseWriter, r *http.Request) error {
	p, err := parseCursorPage(r, 50)
	if err != nil {
		return err
	}
	g, cals, err := s.svc.Calendars(r.Context(), appID(r), r.PathValue("grant"))
	if err != nil {
		return err
	}
	out := make([]api.Calendar, len(cals))
	for i := range cals {
		out[i] = service.CalendarWire(g, &cals[i])
	}
	page, next := pageOf(out, p)
	return writeCursorPage(w, r, selectFields(r, page...), next)
}

func (s *server) getCalendar(w http.ResponseWriter, r *http.Request) error {
	g, c, err := s.svc.Calendar(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, selectFields(r, service.CalendarWire(g, c))[0])
}

func (s *server) createCalendar(w http.ResponseWriter, r *http.Request) error {
	var in api.CalendarInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	g, c, err := s.svc.CreateCalendar(r.Context(), appID(r), r.PathValue("grant"), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, service.CalendarWire(g, c))
}

func (s *server) updateCalendar(w http.ResponseWriter, r *http.Request) error {
	var in api.CalendarInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	g, c, err := s.svc.UpdateCalendar(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, selectFields(r, service.CalendarWire(g, c))[0])
}

func (s *server) deleteCalendar(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteCalendar(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id")); err != nil {
		return err
	}
	return writeDeleted(w, r)
}

func (s *server) freeBusy(w http.ResponseWriter, r *http.Request) error {
	var in api.FreeBusyRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	out, err := s.svc.FreeBusy(r.Context(), appID(r), r.PathValue("grant"), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, out)
}
