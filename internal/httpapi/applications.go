package httpapi

import (
	"net/http"

	"github.com/orchard-mail/orchard/internal/service"
)

func (s *server) getApplication(w http.ResponseWriter, r *http.Request) error {
	app, err := s.svc.Application(r.Context(), appID(r))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, app)
}

func (s *server) patchApplication(w http.ResponseWriter, r *http.Request) error {
	var p service.ApplicationPatch
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	app, err := s.svc.UpdateApplication(r.Context(), appID(r), p)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, app)
}

func (s *server) listRedirectURIs(w http.ResponseWriter, r *http.Request) error {
	p, err := parseCursorPage(r, 50)
	if err != nil {
		return err
	}
	all, err := s.svc.RedirectURIs(r.Context(), appID(r))
	if err != nil {
		return err
	}
	page, next := pageOf(all, p)
	return writeCursorPage(w, r, page, next)
}

func (s *server) createRedirectURI(w http.ResponseWriter, r *http.Request) error {
	var in service.RedirectURIInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	in.ID = ""
	u, err := s.svc.CreateRedirectURI(r.Context(), appID(r), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusCreated, u)
}

func (s *server) getRedirectURI(w http.ResponseWriter, r *http.Request) error {
	u, err := s.svc.RedirectURI(r.Context(), appID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, u)
}

func (s *server) updateRedirectURI(w http.ResponseWriter, r *http.Request) error {
	var in service.RedirectURIInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	u, err := s.svc.UpdateRedirectURI(r.Context(), appID(r), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, u)
}

func (s *server) deleteRedirectURI(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteRedirectURI(r.Context(), appID(r), r.PathValue("id")); err != nil {
		return err
	}
	return writeDeleted(w, r)
}
