package storetest

import (
	"testing"

	"github.com/orchard-mail/orchard/internal/store/sqlite"
)

// SQLite opens (creating) a migrated SQLite store at path for tests of
// other packages, closed when the test ends.
func SQLite(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}
