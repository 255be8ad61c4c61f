package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Limits of list endpoints (nylas-v3-api.md §1.6).
const maxLimit = 200

func queryInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s must be a whole number between %d and %d", name, lo, hi)
	}
	return n, nil
}

// offsetPage is the limit/offset of offset-paginated lists.
type offsetPage struct{ limit, offset int }

func parseOffsetPage(r *http.Request, defLimit int) (offsetPage, error) {
	limit, err := queryInt(r, "limit", defLimit, 1, maxLimit)
	if err != nil {
		return offsetPage{}, err
	}
	offset, err := queryInt(r, "offset", 0, 0, 1<<31-1)
	return offsetPage{limit: limit, offset: offset}, err
}

// cursorPage is the limit and decoded page_token of cursor-paginated lists.
// Cursors are opaque to clients: base64url of a small JSON value that only
// this package reads.
type cursorPage struct {
	limit  int
	offset int
	// afterTime/afterID: keyset position of lists ordered by a time and an
	// id (messages, threads): the page starts after that item.
	afterTime time.Time
	afterID   string
}

type cursorToken struct {
	Offset int    `json:"o,omitempty"`
	Time   int64  `json:"t,omitempty"` // Unix microseconds
	ID     string `json:"i,omitempty"`
}

func parseCursorPage(r *http.Request, defLimit int) (cursorPage, error) {
	limit, err := queryInt(r, "limit", defLimit, 1, maxLimit)
	if err != nil {
		return cursorPage{}, err
	}
	p := cursorPage{limit: limit}
	if tok := r.URL.Query().Get("page_token"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		var c cursorToken
		if err != nil || json.Unmarshal(raw, &c) != nil || c.Offset < 0 {
			return cursorPage{}, badRequest("page_token is not a cursor this server issued")
		}
		p.offset = c.Offset
		if c.ID != "" {
			p.afterTime, p.afterID = time.UnixMicro(c.Time).UTC(), c.ID
		}
	}
	return p, nil
}

// keysetPage trims a list fetched with limit+1 items to one page and
// returns the cursor after its last item, or "" when nothing follows.
func keysetPage[T any](items []T, limit int, key func(T) (time.Time, string)) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	t, id := key(items[limit-1])
	raw, _ := json.Marshal(cursorToken{Time: t.UnixMicro(), ID: id})
	return items, base64.RawURLEncoding.EncodeToString(raw)
}

// pageOf cuts one page out of a complete list and returns the cursor of
// the next page, or "" on the last page.
func pageOf[T any](all []T, p cursorPage) ([]T, string) {
	if p.offset >= len(all) {
		return []T{}, ""
	}
	end := min(p.offset+p.limit, len(all))
	next := ""
	if end < len(all) {
		raw, _ := json.Marshal(cursorToken{Offset: end})
		next = base64.RawURLEncoding.EncodeToString(raw)
	}
	return all[p.offset:end], next
}
