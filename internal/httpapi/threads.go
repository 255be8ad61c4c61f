package httpapi

import (
	"net/http"
	"time"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
)

func (s *server) listThreads(w http.ResponseWriter, r *http.Request) error {
	p, err := parseCursorPage(r, 20)
	if err != nil {
		return err
	}
	q := store.ThreadQuery{Limit: p.limit + 1, AfterDate: p.afterTime, AfterID: p.afterID,
		Subject: r.URL.Query().Get("subject")}
	if err := queryFilterLists(r, map[string]*[]string{"any_email": &q.AnyEmail, "from": &q.From, "to": &q.To, "cc": &q.Cc, "bcc": &q.Bcc}); err != nil {
		return err
	}
	if q.HasAttachment, err = queryBool(r, "has_attachment"); err != nil {
		return err
	}
	in, err := queryFilterList(r, "in")
	if err != nil {
		return err
	}
	if q.Unread, err = queryBool(r, "unread"); err != nil {
		return err
	}
	if q.Starred, err = queryBool(r, "starred"); err != nil {
		return err
	}
	if q.LatestBefore, err = queryUnix(r, "latest_message_before"); err != nil {
		return err
	}
	if q.LatestAfter, err = queryUnix(r, "latest_message_after"); err != nil {
		return err
	}
	g, ts, err := s.svc.Threads(r.Context(), appID(r), r.PathValue("grant"), q, in)
	if err != nil {
		return err
	}
	ts, next := keysetPage(ts, p.limit, func(t store.Thread) (time.Time, string) { return t.LatestMessageAt, t.ID })
	latest, err := s.svc.LatestMessages(r.Context(), g.ID, ts)
	if err != nil {
		return err
	}
	drafts, err := s.svc.ThreadDrafts(r.Context(), g.ID, ts...)
	if err != nil {
		return err
	}
	out := make([]api.Thread, len(ts))
	for i := range ts {
		var m *store.Message
		if lm, ok := latest[ts[i].LatestMessageID]; ok {
			m = &lm
		}
		out[i] = service.ThreadWire(&ts[i], m, drafts[ts[i].ID])
	}
	return writeCursorPage(w, r, selectFields(r, out...), next)
}

func (s *server) getThread(w http.ResponseWriter, r *http.Request) error {
	g, t, latest, err := s.svc.Thread(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.writeThread(w, r, g, t, latest)
}

func (s *server) updateThread(w http.ResponseWriter, r *http.Request) error {
	var p service.MessagePatch
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	g, t, latest, err := s.svc.UpdateThread(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id"), p)
	if err != nil {
		return err
	}
	return s.writeThread(w, r, g, t, latest)
}

func (s *server) deleteThread(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteThread(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id")); err != nil {
		return err
	}
	return writeDeleted(w, r)
}

func (s *server) writeThread(w http.ResponseWriter, r *http.Request, g *store.Grant, t *store.Thread, latest *store.Message) error {
	drafts, err := s.svc.ThreadDrafts(r.Context(), g.ID, *t)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, selectFields(r, service.ThreadWire(t, latest, drafts[t.ID]))[0])
}
