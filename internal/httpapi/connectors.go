package httpapi

import (
	"net/http"

	"github.com/orchard-mail/orchard/internal/service"
)

func (s *server) listConnectors(w http.ResponseWriter, r *http.Request) error {
	p, err := parseOffsetPage(r, 10)
	if err != nil {
		return err
	}
	cs, err := s.svc.Connectors(r.Context(), appID(r), p.limit, p.offset)
	if err != nil {
		return err
	}
	return writeOffsetPage(w, r, cs, p)
}

func (s *server) createConnector(w http.ResponseWriter, r *http.Request) error {
	var in service.ConnectorInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	c, err := s.svc.CreateConnector(r.Context(), appID(r), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusCreated, c)
}

func (s *server) getConnector(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.Connector(r.Context(), appID(r), r.PathValue("provider"))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, c)
}

func (s *server) updateConnector(w http.ResponseWriter, r *http.Request) error {
	var in service.ConnectorInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	c, err := s.svc.UpdateConnector(r.Context(), appID(r), r.PathValue("provider"), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, c)
}

func (s *server) deleteConnector(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteConnector(r.Context(), appID(r), r.PathValue("provider")); err != nil {
		return err
	}
	return writeDeleted(w, r)
}
