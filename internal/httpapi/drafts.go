package httpapi

import (
	"net/http"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
)

func draftWire(m *store.Message) api.Message {
	w := service.MessageWire(m, service.HeadersNone)
	w.Object = "draft"
	return w
}

func (s *server) listDrafts(w http.ResponseWriter, r *http.Request) error {
	return s.listMail(w, r, "draft", s.svc.Drafts)
}

func (s *server) getDraft(w http.ResponseWriter, r *http.Request) error {
	_, m, err := s.svc.Draft(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, selectFields(r, draftWire(m))[0])
}

func (s *server) createDraft(w http.ResponseWriter, r *http.Request) error {
	out, err := decodeOutgoing(r, s.svc.Now())
	if err != nil {
		return err
	}
	_, m, err := s.svc.CreateDraft(r.Context(), appID(r), r.PathValue("grant"), out.Outgoing)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, draftWire(m))
}

func (s *server) updateDraft(w http.ResponseWriter, r *http.Request) error {
	out, err := decodeOutgoing(r, s.svc.Now())
	if err != nil {
		return err
	}
	_, m, err := s.svc.UpdateDraft(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id"), out.Outgoing)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, selectFields(r, draftWire(m))[0])
}

func (s *server) deleteDraft(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteDraft(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id")); err != nil {
		return err
	}
	return writeDeleted(w, r)
}
