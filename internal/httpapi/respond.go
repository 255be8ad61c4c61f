package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/orchard-mail/orchard/api"
)

// writeJSON writes v as the whole answer. Encoding into a buffer first
// means an encoding failure can still become a proper 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"type":"internal_error","message":"response encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeData answers {request_id, data}.
func writeData(w http.ResponseWriter, r *http.Request, status int, data any) error {
	writeJSON(w, status, api.Response{RequestID: requestID(r.Context()), Data: data})
	return nil
}

// writeDeleted answers a DELETE: a JSON object, never an empty body (the
// Node SDK fails to parse one).
func writeDeleted(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, api.Response{RequestID: requestID(r.Context())})
	return nil
}

// writeOffsetPage answers an offset-paginated list.
func writeOffsetPage(w http.ResponseWriter, r *http.Request, data any, p offsetPage) error {
	writeJSON(w, http.StatusOK, api.OffsetResponse{RequestID: requestID(r.Context()), Data: data, Limit: p.limit, Offset: p.offset})
	return nil
}

// writeCursorPage answers a cursor-paginated list: next_cursor only when
// more items exist.
func writeCursorPage(w http.ResponseWriter, r *http.Request, data any, next string) error {
	writeJSON(w, http.StatusOK, api.Response{RequestID: requestID(r.Context()), Data: data, NextCursor: next})
	return nil
}

// selectFields keeps only the top-level fields that select= names (all
// when it is absent), for GETs and PUTs as Nylas does.
func selectFields[T any](r *http.Request, items ...T) []any {
	fields := queryList(r, "select")
	out := make([]any, len(items))
	for i, it := range items {
		if len(fields) == 0 {
			out[i] = it
			continue
		}
		raw, _ := json.Marshal(it)
		var all map[string]json.RawMessage
		_ = json.Unmarshal(raw, &all)
		kept := make(map[string]json.RawMessage, len(fields))
		for _, f := range fields {
			if v, ok := all[f]; ok {
				kept[f] = v
			}
		}
		out[i] = kept
	}
	return out
}
