package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
)

func (s *server) connectCustom(w http.ResponseWriter, r *http.Request) error {
	var in service.CustomAuthInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	g, err := s.svc.ConnectCustom(r.Context(), appID(r), in, service.ClientInfoOf(r))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusCreated, g)
}

func (s *server) listGrants(w http.ResponseWriter, r *http.Request) error {
	p, err := parseOffsetPage(r, 10)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.GrantFilter{
		Provider: q.Get("provider"), Email: q.Get("email"), Status: q.Get("grant_status"), IP: q.Get("ip"),
		SortBy: q.Get("sort_by"), Desc: true, Limit: p.limit, Offset: p.offset,
	}
	switch q.Get("order_by") {
	case "", "desc":
	case "asc":
		f.Desc = false
	default:
		return badRequest("order_by must be asc or desc")
	}
	if f.Since, err = queryUnix(r, "since"); err != nil {
		return err
	}
	if f.Before, err = queryUnix(r, "before"); err != nil {
		return err
	}
	gs, err := s.svc.Grants(r.Context(), appID(r), f)
	if err != nil {
		return err
	}
	return writeOffsetPage(w, r, gs, p)
}

func (s *server) getGrant(w http.ResponseWriter, r *http.Request) error {
	g, err := s.svc.Grant(r.Context(), appID(r), r.PathValue("grant"))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, service.GrantWire(g))
}

func (s *server) patchGrant(w http.ResponseWriter, r *http.Request) error {
	var p service.GrantPatch
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	g, err := s.svc.UpdateGrant(r.Context(), appID(r), r.PathValue("grant"), p)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, g)
}

func (s *server) deleteGrant(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteGrant(r.Context(), appID(r), r.PathValue("grant")); err != nil {
		return err
	}
	return writeDeleted(w, r)
}

// queryUnix reads a Unix-seconds query parameter; zero time when absent.
func queryUnix(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, badRequest("%s must be a Unix timestamp in seconds", name)
	}
	return time.Unix(n, 0), nil
}

func (s *server) getSyncStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.svc.SyncStatus(r.Context(), appID(r), r.PathValue("grant"))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, st)
}
