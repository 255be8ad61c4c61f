package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// Statement size limits. SQLite accepts at most 32766 bound parameters and
// PostgreSQL 65535; staying well below both keeps one code path. Rows per
// multi-row INSERT are capped too, because a longer statement costs more to
// parse than it saves in round trips.
const (
	maxParams     = 30000
	maxInsertRows = 500
	// inChunk is the length of the IN lists ApplyMailBatch builds from
	// its (possibly huge) sets of ids.
	inChunk = 500
	// maxFilterValues bounds each list of a query (ids, emails, folders):
	// a query is one statement and cannot be split into chunks.
	maxFilterValues = 1000
)

// placeholders returns "$first, $first+1, ..." for n parameters.
func placeholders(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i))
	}
	return b.String()
}

// chunks calls fn with consecutive slices of at most n elements of s.
func chunks[T any](s []T, n int, fn func([]T) error) error {
	for len(s) > 0 {
		k := min(n, len(s))
		if err := fn(s[:k]); err != nil {
			return err
		}
		s = s[k:]
	}
	return nil
}

// anys turns a slice into query arguments, after the leading ones.
func anys[T any](lead []any, s []T) []any {
	out := make([]any, 0, len(lead)+len(s))
	out = append(out, lead...)
	for _, v := range s {
		out = append(out, v)
	}
	return out
}

// insertRows runs head + " VALUES (...), (...) " + tail over rows (flat,
// ncol values per row) in as few statements as the limits allow. tail is
// typically an ON CONFLICT clause; rows must not repeat a conflict key
// within one call, which PostgreSQL refuses.
func insertRows(ctx context.Context, s *Store, tx *sql.Tx, head, tail string, ncol int, rows []any) error {
	perStmt := min(maxInsertRows, maxParams/ncol)
	for len(rows) > 0 {
		n := min(perStmt, len(rows)/ncol)
		var q strings.Builder
		q.WriteString(head)
		q.WriteString(" VALUES ")
		for r := range n {
			if r > 0 {
				q.WriteString(", ")
			}
			q.WriteByte('(')
			q.WriteString(placeholders(r*ncol+1, ncol))
			q.WriteByte(')')
		}
		q.WriteByte(' ')
		q.WriteString(tail)
		if _, err := s.execOn(ctx, tx, q.String(), rows[:n*ncol]...); err != nil {
			return err
		}
		rows = rows[n*ncol:]
	}
	return nil
}

// idSet is a set of strings that remembers insertion order, so that the
// statements built from it are deterministic.
type idSet struct {
	m    map[string]bool
	list []string
}

func newIDSet() *idSet { return &idSet{m: map[string]bool{}} }

func (s *idSet) add(id string) {
	if id == "" || s.m[id] {
		return
	}
	s.m[id] = true
	s.list = append(s.list, id)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
