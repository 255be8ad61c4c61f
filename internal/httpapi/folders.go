package httpapi

import (
	"net/http"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
)

func (s *server) listFolders(w http.ResponseWriter, r *http.Request) error {
	_, fs, err := s.svc.Folders(r.Context(), appID(r), r.PathValue("grant"))
	if err != nil {
		return err
	}
	out := make([]api.Folder, len(fs))
	for i := range fs {
		out[i] = service.FolderWire(&fs[i], fs)
	}
	return writeCursorPage(w, r, selectFields(r, out...), "")
}

func (s *server) getFolder(w http.ResponseWriter, r *http.Request) error {
	f, fs, err := s.svc.Folder(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, selectFields(r, service.FolderWire(f, fs))[0])
}

func (s *server) createFolder(w http.ResponseWriter, r *http.Request) error {
	var in service.FolderInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	f, fs, err := s.svc.CreateFolder(r.Context(), appID(r), r.PathValue("grant"), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, service.FolderWire(f, fs))
}

func (s *server) updateFolder(w http.ResponseWriter, r *http.Request) error {
	var in service.FolderInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	f, fs, err := s.svc.UpdateFolder(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, selectFields(r, service.FolderWire(f, fs))[0])
}

func (s *server) deleteFolder(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteFolder(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id")); err != nil {
		return err
	}
	return writeDeleted(w, r)
}
