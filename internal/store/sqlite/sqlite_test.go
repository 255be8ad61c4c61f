package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
	"github.com/orchard-mail/orchard/internal/store/storetest"
)

func openAt(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

func openMigrated(tb testing.TB) *sqlite.Store {
	tb.Helper()
	// A missing parent directory is part of what Open must handle.
	s := openAt(tb, filepath.Join(tb.TempDir(), "data", "orchard.db"))
	if err := s.Migrate(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openMigrated(t) })
}

// Pragmas come from the DSN, so every pooled connection must have them, not
// only the first one.
func TestPragmasOnEveryConnection(t *testing.T) {
	s := openMigrated(t)
	ctx := t.Context()
	want := map[string]string{"journal_mode": "wal", "foreign_keys": "1", "synchronous": "1", "busy_timeout": "5000"}
	check := func(pool string, db *sql.DB, n int) {
		// Hold n connections at once so that the pool has to open them.
		for i := range n {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for pragma, v := range want {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != v {
					t.Errorf("%s conn %d: %s = %s, want %s", pool, i, pragma, got, v)
				}
			}
		}
	}
	check("write", s.WriteDB(), 1) // its only connection
	check("read", s.ReadDB(), 3)
	if _, err := s.ReadDB().ExecContext(ctx, `CREATE TABLE nope (x INTEGER)`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestMigrationsRecorded(t *testing.T) {
	s := openMigrated(t)
	ctx := t.Context()
	for range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := s.ReadDB().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if n != len(entries) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(entries))
	}
}

// Two processes (here: two Stores) may migrate the same file at once, e.g.
// `orchard migrate` racing `orchard serve`.
func TestConcurrentMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orchard.db")
	stores := []*sqlite.Store{openAt(t, path), openAt(t, path), openAt(t, path)}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := stores[0].CreateApplication(t.Context(), &store.Application{ID: "a", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[1].GetApplication(t.Context(), "a"); err != nil {
		t.Fatalf("second store does not see the first one's write: %v", err)
	}
}

func TestOpenRejectsNonPaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "x.db?mode=ro")} {
		if s, err := sqlite.Open(t.Context(), p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func BenchmarkGetGrant(b *testing.B) {
	s := openMigrated(b)
	ctx := b.Context()
	app := &store.Application{ID: "app", Name: "bench"}
	if err := s.CreateApplication(ctx, app); err != nil {
		b.Fatal(err)
	}
	const n = 1000
	for i := range n {
		g := &store.Grant{ID: fmt.Sprintf("g-%d", i), ApplicationID: app.ID, Provider: "icloud",
			Email: fmt.Sprintf("u%d@example.com", i), Status: "valid", Scope: []string{"mail"},
			Settings: []byte(`{"imap_host":"imap.example.com"}`), Credentials: make([]byte, 64)}
		if err := s.CreateGrant(ctx, g); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.GetGrant(ctx, app.ID, fmt.Sprintf("g-%d", i%n)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkAPIKeysByPrefix(b *testing.B) {
	s := openMigrated(b)
	ctx := b.Context()
	if err := s.CreateApplication(ctx, &store.Application{ID: "app", Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	const n = 1000
	for i := range n {
		k := &store.APIKey{ApplicationID: "app", Prefix: fmt.Sprintf("ork_%04d", i), Hash: make([]byte, 32)}
		if err := s.CreateAPIKey(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			keys, err := s.APIKeysByPrefix(ctx, fmt.Sprintf("ork_%04d", i%n))
			if err != nil || len(keys) != 1 {
				b.Errorf("got %d keys, err %v", len(keys), err)
				return
			}
			i++
		}
	})
}

func BenchmarkCreateGrant(b *testing.B) {
	s := openMigrated(b)
	ctx := b.Context()
	if err := s.CreateApplication(ctx, &store.Application{ID: "app", Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		g := &store.Grant{ApplicationID: "app", Provider: "icloud", Email: fmt.Sprintf("u%d@example.com", i), Status: "valid"}
		if err := s.CreateGrant(ctx, g); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// benchMessages is the size of the mailbox BenchmarkListMessages lists.
const benchMessages = 100_000

// seedMailbox stores n messages of one grant through ApplyMailBatch, in
// batches as big as an initial sync's, with a realistic spread: most mail
// in INBOX and Archive, 10% unread, a few hundred correspondents of very
// different frequency, two messages per thread, bodies of a few KB.
func seedMailbox(b testing.TB, s *sqlite.Store, grantID string, n int) {
	ctx := b.Context()
	if err := s.CreateApplication(ctx, &store.Application{ID: "app", Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateGrant(ctx, &store.Grant{ID: grantID, ApplicationID: "app", Provider: "icloud", Email: "me@example.com", Status: "valid"}); err != nil {
		b.Fatal(err)
	}
	folders := []store.Folder{
		{ID: "f-inbox", Name: "INBOX", Role: store.RoleInbox},
		{ID: "f-archive", Name: "Archive", Role: store.RoleArchive},
		{ID: "f-sent", Name: "Sent Messages", Role: store.RoleSent},
		{ID: "f-receipts", Name: "Receipts"},
	}
	if err := s.ApplyMailBatch(ctx, &store.MailBatch{GrantID: grantID, Folders: folders}); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 11))
	words := strings.Fields("meeting report invoice lunch update project review question holiday plans " +
		"budget launch notes draft schedule photos travel contract offer welcome")
	body := "<html><body>" + strings.Repeat("<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>", 30) + "</body></html>"
	headers := []byte(strings.Repeat("Received: from mx.example.com by mail.example.com; Mon, 1 Jan 2024 00:00:00 +0000\r\n", 8))
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 2000
	uid := uint32(0)
	for start := 0; start < n; start += batch {
		mb := &store.MailBatch{GrantID: grantID}
		for i := start; i < min(n, start+batch); i++ {
			id := fmt.Sprintf("msg-%06d", i)
			// Correspondents: c0 writes often, c499 rarely.
			sender := fmt.Sprintf("c%d@example.com", int(r.ExpFloat64()*60)%500)
			subject := words[r.IntN(len(words))] + " " + words[r.IntN(len(words))] + fmt.Sprintf(" #%d", i%977)
			m := store.Message{
				ID: id, ThreadID: fmt.Sprintf("thr-%06d", i/2), IdentityKey: "mid:<" + id + "@example.com>",
				MessageIDHeader: "<" + id + "@example.com>", Subject: subject, SubjectKey: strings.ToLower(subject),
				From:    []store.Participant{{Name: "Correspondent", Email: sender}},
				To:      []store.Participant{{Name: "Me", Email: "me@example.com"}},
				Date:    base.Add(time.Duration(i) * 17 * time.Minute),
				Snippet: "Lorem ipsum dolor sit amet, consectetur adipiscing elit.", Body: body, Headers: headers, Size: 6000,
			}
			if i%2 == 1 {
				m.InReplyTo = fmt.Sprintf("<msg-%06d@example.com>", i-1)
				m.References = []string{m.InReplyTo}
			}
			if i%1000 == 0 {
				m.Cc = []store.Participant{{Email: "rare@example.com"}}
			}
			if r.IntN(100) < 15 {
				m.Attachments = []store.Attachment{{ID: "a-" + id, Filename: "file.pdf", ContentType: "application/pdf", Size: 50000, Part: "2"}}
			}
			var flags []string
			if r.IntN(100) >= 10 {
				flags = append(flags, `\Seen`)
			}
			if r.IntN(100) < 2 {
				flags = append(flags, `\Flagged`)
			}
			folder := "f-inbox"
			switch p := r.IntN(100); {
			case p < 25:
				folder = "f-archive"
			case p < 35:
				folder = "f-sent"
			case p < 36:
				folder = "f-receipts"
			}
			uid++
			mb.Messages = append(mb.Messages, m)
			mb.Locations = append(mb.Locations, store.Location{MessageID: id, FolderID: folder, UID: uid, Flags: flags})
			if i%10 == 0 { // a second copy, as with Gmail-style labels
				uid++
				mb.Locations = append(mb.Locations, store.Location{MessageID: id, FolderID: "f-archive", UID: uid, Flags: flags})
			}
		}
		if err := s.ApplyMailBatch(ctx, mb); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListMessages lists pages of 51 (the API's 50 and one to know
// whether there is a next page) of a 100,000-message mailbox, with no
// filter and each filter alone. The mailbox is seeded once per run, in the
// parent benchmark's temporary directory (the parent runs once; each
// sub-benchmark ramps up on its own). subject_rare matches nothing and so
// scans every subject: the worst case of a substring search.
func BenchmarkListMessages(b *testing.B) {
	s := openMigrated(b)
	const g = "grant-bench"
	start := time.Now()
	seedMailbox(b, s, g, benchMessages)
	b.Logf("seeded %d messages in %v", benchMessages, time.Since(start).Round(time.Millisecond))
	ctx := b.Context()

	deep, err := s.ListMessages(ctx, store.MessageQuery{GrantID: g, Limit: 1, ReceivedBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(20_000 * 17 * time.Minute)})
	if err != nil || len(deep) != 1 {
		b.Fatalf("deep cursor: %v %v", deep, err)
	}
	yes := true
	for _, bc := range []struct {
		name string
		q    store.MessageQuery
	}{
		{"no_filter", store.MessageQuery{}},
		{"in_archive", store.MessageQuery{FolderIDs: []string{"f-archive"}}},
		{"in_small_folder", store.MessageQuery{FolderIDs: []string{"f-receipts"}}},
		{"unread", store.MessageQuery{Unread: &yes}},
		{"starred", store.MessageQuery{Starred: &yes}},
		{"from_address", store.MessageQuery{From: []string{"c100@example.com"}}},
		{"any_email", store.MessageQuery{AnyEmail: []string{"rare@example.com"}}},
		{"subject_common", store.MessageQuery{Subject: "invoice"}},
		{"subject_rare", store.MessageQuery{Subject: "invoice report #976"}},
		{"deep_page", store.MessageQuery{AfterDate: deep[0].Date, AfterID: deep[0].ID}},
		{"in_archive_unread", store.MessageQuery{FolderIDs: []string{"f-archive"}, Unread: &yes}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			q := bc.q
			q.GrantID, q.Limit = g, 51
			n := 0
			for b.Loop() {
				ms, err := s.ListMessages(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				n = len(ms)
			}
			b.ReportMetric(float64(n), "msgs/op")
		})
	}
	// The other listings of the mail API, on the same mailbox.
	b.Run("ListFolders", func(b *testing.B) {
		for b.Loop() {
			fs, err := s.ListFolders(ctx, g)
			if err != nil || len(fs) != 4 {
				b.Fatalf("%d folders, %v", len(fs), err)
			}
		}
	})
	b.Run("ListThreads", func(b *testing.B) {
		for b.Loop() {
			ts, err := s.ListThreads(ctx, store.ThreadQuery{GrantID: g, Limit: 51})
			if err != nil || len(ts) != 51 {
				b.Fatalf("%d threads, %v", len(ts), err)
			}
		}
	})
}
