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
