package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"time"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
)

// maxRawMIME bounds a raw_mime answer, which is held in memory to be
// base64-encoded into JSON; larger messages are refused with a clear error.
const maxRawMIME = 32 << 20

func (s *server) listMessages(w http.ResponseWriter, r *http.Request) error {
	return s.listMail(w, r, "message", s.svc.Messages)
}

// listMail serves message and draft listings, which take the same
// filters.
func (s *server) listMail(w http.ResponseWriter, r *http.Request, object string,
	list func(ctx context.Context, appID, grantRef string, f service.MessageFilter) (*store.Grant, []store.Message, error)) error {
	p, err := parseCursorPage(r, 50)
	if err != nil {
		return err
	}
	f := service.MessageFilter{Native: r.URL.Query().Get("search_query_native")}
	q := &f.MessageQuery
	q.Limit = p.limit + 1
	q.AfterDate, q.AfterID = p.afterTime, p.afterID
	q.Subject = r.URL.Query().Get("subject")
	if err := queryFilterLists(r, map[string]*[]string{"in": &f.In, "any_email": &q.AnyEmail, "from": &q.From, "to": &q.To, "cc": &q.Cc, "bcc": &q.Bcc}); err != nil {
		return err
	}
	q.ThreadID = r.URL.Query().Get("thread_id")
	if q.Unread, err = queryBool(r, "unread"); err != nil {
		return err
	}
	if q.Starred, err = queryBool(r, "starred"); err != nil {
		return err
	}
	if q.HasAttachment, err = queryBool(r, "has_attachment"); err != nil {
		return err
	}
	if q.ReceivedBefore, err = queryUnix(r, "received_before"); err != nil {
		return err
	}
	if q.ReceivedAfter, err = queryUnix(r, "received_after"); err != nil {
		return err
	}
	fields, err := parseFields(r)
	if err != nil {
		return err
	}
	g, msgs, err := list(r.Context(), appID(r), r.PathValue("grant"), f)
	if err != nil {
		return err
	}
	msgs, next := keysetPage(msgs, p.limit, func(m store.Message) (time.Time, string) { return m.Date, m.ID })
	if fields == fieldsRawMIME {
		out := make([]api.RawMessage, 0, len(msgs))
		for _, m := range msgs {
			raw, err := s.rawMessage(r, g, m.ID)
			if err != nil {
				return err
			}
			raw.Object = object
			out = append(out, raw)
		}
		return writeCursorPage(w, r, selectFields(r, out...), next)
	}
	out := make([]api.Message, len(msgs))
	for i := range msgs {
		out[i] = service.MessageWire(&msgs[i], fields.headers())
		out[i].Object = object
	}
	return writeCursorPage(w, r, selectFields(r, out...), next)
}

func (s *server) getMessage(w http.ResponseWriter, r *http.Request) error {
	fields, err := parseFields(r)
	if err != nil {
		return err
	}
	g, m, err := s.svc.Message(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id"))
	if err != nil {
		return err
	}
	if fields == fieldsRawMIME {
		raw, err := s.rawMessage(r, g, m.ID)
		if err != nil {
			return err
		}
		return writeData(w, r, http.StatusOK, selectFields(r, raw)[0])
	}
	return writeData(w, r, http.StatusOK, selectFields(r, service.MessageWire(m, fields.headers()))[0])
}

func (s *server) rawMessage(r *http.Request, g *store.Grant, id string) (api.RawMessage, error) {
	var buf bytes.Buffer
	err := s.svc.RawMessage(r.Context(), g, id, func(body io.Reader) error {
		n, err := io.Copy(&buf, io.LimitReader(body, maxRawMIME+1))
		if n > maxRawMIME {
			return errorf(http.StatusRequestEntityTooLarge, api.ErrTooLarge, "message %s is larger than %d bytes; download its attachments separately", id, maxRawMIME)
		}
		return err
	})
	if err != nil {
		return api.RawMessage{}, err
	}
	return api.RawMessage{Object: "message", ID: id, GrantID: g.ID, RawMIME: base64.URLEncoding.EncodeToString(buf.Bytes())}, nil
}

// fieldsMode is the fields= parameter of message reads.
type fieldsMode int

const (
	fieldsStandard fieldsMode = iota
	fieldsBasicHeaders
	fieldsAllHeaders
	fieldsRawMIME
)

func parseFields(r *http.Request) (fieldsMode, error) {
	switch v := r.URL.Query().Get("fields"); v {
	case "", "standard", "include_tracking_options":
		return fieldsStandard, nil
	case "include_headers":
		return fieldsAllHeaders, nil
	case "include_basic_headers":
		return fieldsBasicHeaders, nil
	case "raw_mime":
		return fieldsRawMIME, nil
	default:
		return 0, badRequest("fields must be one of standard, include_headers, include_basic_headers, raw_mime")
	}
}

func (f fieldsMode) headers() service.HeaderMode {
	switch f {
	case fieldsAllHeaders:
		return service.HeadersAll
	case fieldsBasicHeaders:
		return service.HeadersBasic
	}
	return service.HeadersNone
}

func (s *server) updateMessage(w http.ResponseWriter, r *http.Request) error {
	var p service.MessagePatch
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	_, m, err := s.svc.UpdateMessage(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id"), p)
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, selectFields(r, service.MessageWire(m, service.HeadersNone))[0])
}

func (s *server) deleteMessage(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteMessage(r.Context(), appID(r), r.PathValue("grant"), r.PathValue("id")); err != nil {
		return err
	}
	return writeDeleted(w, r)
}
