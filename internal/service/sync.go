package service

import (
	"context"
	"time"

	"github.com/orchard-mail/orchard/api"
)

// SyncStatus reports a grant's mail sync: the worker's state on this node
// and each folder's progress from the store (which every node shares).
func (s *Service) SyncStatus(ctx context.Context, appID, grantRef string) (*api.SyncStatus, error) {
	g, err := s.Grant(ctx, appID, grantRef)
	if err != nil {
		return nil, err
	}
	folders, err := s.store.ListFolders(ctx, g.ID)
	if err != nil {
		return nil, err
	}
	out := &api.SyncStatus{GrantID: g.ID, State: "not_running", Folders: []api.FolderSync{}}
	if s.syncer != nil {
		if st, ok := s.syncer.Status(g.ID); ok {
			out.State, out.LastError, out.Retries = st.State, st.LastError, st.Retries
			out.LastErrorAt = unixOrZero(st.LastErrorAt)
		}
	}
	done := 0
	for _, f := range folders {
		out.Messages += f.TotalCount
		if f.InitialDone {
			done++
		}
		out.Folders = append(out.Folders, api.FolderSync{ID: f.ID, Name: f.Name, InitialSyncDone: f.InitialDone,
			Messages: f.TotalCount, LastSyncAt: unixOrZero(f.LastSyncAt)})
	}
	out.InitialSyncDone = len(folders) > 0 && done == len(folders)
	return out, nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
