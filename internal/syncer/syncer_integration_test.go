package syncer_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
	"github.com/orchard-mail/orchard/internal/store/storetest"
	"github.com/orchard-mail/orchard/internal/syncer"
	"github.com/orchard-mail/orchard/internal/testenv"
)

// rig is one grant synced from a mailbox of its own on the real Dovecot.
type rig struct {
	t     *testing.T
	env   *testenv.Env
	user  testenv.User
	imap  *imapclient.Client // "another mail client" changing the mailbox
	st    *sqlite.Store
	grant *store.Grant
	sup   *syncer.Supervisor
	stop  func()
	opts  syncer.Options
}

func newRig(t *testing.T, batch int) *rig {
	env := testenv.Get(t)
	r := &rig{t: t, env: env, user: env.NewUser(t)}
	r.imap = env.IMAP(t, r.user)
	ctx := context.Background()
	st := storetest.SQLite(t, filepath.Join(t.TempDir(), "o.db"))
	r.st = st
	app := &store.Application{ID: "app-" + r.user.Email, Name: "t"}
	if err := st.CreateApplication(ctx, app); err != nil {
		t.Fatal(err)
	}
	r.grant = &store.Grant{ApplicationID: app.ID, Provider: "imap", Email: r.user.Email, Status: "valid", Credentials: []byte("x")}
	if err := st.CreateGrant(ctx, r.grant); err != nil {
		t.Fatal(err)
	}
	creds := provider.Credentials{IMAPAddr: env.IMAPAddr, IMAPUsername: r.user.Email, IMAPPassword: r.user.Password}
	r.opts = syncer.Options{
		Store: st, Dialer: &imapx.Dialer{TLSConfig: &tls.Config{RootCAs: env.CAPool(t)}, Timeout: 10 * time.Second},
		Credentials: func(*store.Grant) (provider.Credentials, error) { return creds, nil },
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		WindowDays:  90, PollInterval: 500 * time.Millisecond, BatchSize: batch, ReconcileInterval: time.Second,
	}
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (r *rig) start() {
	r.sup = syncer.New(r.opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.sup.Run(ctx) }()
	r.stop = func() { cancel(); <-done }
	r.t.Cleanup(r.stop)
}

// eventually polls cond until it holds or 60 s pass (-race on two busy
// cores is slow; a passing test returns as soon as cond holds).
func (r *rig) eventually(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *rig) messages() []store.Message {
	r.t.Helper()
	ms, err := r.st.ListMessages(context.Background(), store.MessageQuery{GrantID: r.grant.ID})
	if err != nil {
		r.t.Fatal(err)
	}
	return ms
}

func (r *rig) bySubject(subject string) *store.Message {
	for _, m := range r.messages() {
		if m.Subject == subject {
			return &m
		}
	}
	return nil
}

func (r *rig) synced() bool {
	fs, err := r.st.ListFolders(context.Background(), r.grant.ID)
	if err != nil || len(fs) == 0 {
		return false
	}
	for _, f := range fs {
		if !f.InitialDone {
			return false
		}
	}
	return true
}

func (r *rig) folderID(name string) string {
	fs, _ := r.st.ListFolders(context.Background(), r.grant.ID)
	for _, f := range fs {
		if f.Name == name {
			return f.ID
		}
	}
	r.t.Fatalf("no folder %s", name)
	return ""
}

func (r *rig) changes(action, id string) int {
	cs, err := r.st.ListChanges(context.Background(), 0, 100000)
	if err != nil {
		r.t.Fatal(err)
	}
	n := 0
	for _, c := range cs {
		if c.GrantID == r.grant.ID && c.Action == action && c.ObjectID == id {
			n++
		}
	}
	return n
}

func mail(subject, msgID string) []byte {
	return []byte("From: Sender <sender@example.org>\r\nTo: someone@example.test\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + msgID + ">\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nbody of " + subject + "\r\n")
}

// TestCorpus syncs the mimeconv corpus: every in-window message arrives,
// the old ones do not, a message in two folders is one message, and the
// reply chain is one thread.
func TestCorpus(t *testing.T) {
	t.Parallel()
	r := newRig(t, 4)
	files, err := filepath.Glob("../mimeconv/testdata/corpus/*.eml")
	if err != nil || len(files) < 10 {
		t.Fatalf("corpus: %v (%d files)", err, len(files))
	}
	now := time.Now()
	inWindow := 0
	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		received := now.Add(-time.Duration(i+1) * time.Hour)
		if strings.HasPrefix(filepath.Base(f), "old-") {
			received = now.AddDate(0, 0, -200)
		} else {
			inWindow++
		}
		r.env.Append(t, r.imap, "INBOX", raw, received)
		if filepath.Base(f) == "alternative.eml" {
			r.env.Append(t, r.imap, "Archive", raw, received) // the same message in a second folder
		}
	}
	r.start()
	r.eventually("initial sync", r.synced)
	ms := r.messages()
	if len(ms) != inWindow {
		subjects := []string{}
		for _, m := range ms {
			subjects = append(subjects, m.Subject)
		}
		t.Fatalf("%d messages stored, want %d (in window): %q", len(ms), inWindow, subjects)
	}
	var twoFolders int
	threads := map[string]int{}
	for _, m := range ms {
		if len(m.Folders) == 2 {
			twoFolders++
		}
		threads[m.ThreadID]++
		if m.Date.Before(now.AddDate(0, 0, -90)) {
			t.Errorf("message %q from %v is outside the window", m.Subject, m.Date)
		}
	}
	if twoFolders != 1 {
		t.Errorf("%d messages in two folders, want 1", twoFolders)
	}
	// The reply chain is one thread by its references; the subject-only
	// reply joins the thread of the message it answers by subject.
	thread := func(subject string) string {
		m := r.bySubject(subject)
		if m == nil {
			t.Fatalf("no message %q", subject)
		}
		return m.ThreadID
	}
	if a, b, c := thread("Budget review for Q1"), thread("Re: Budget review for Q1"), thread("RE: Re: Budget review for Q1"); a != b || b != c {
		t.Errorf("reply chain split over threads %s %s %s", a, b, c)
	}
	if thread("Re: Team lunch on Friday") != thread("Team lunch on Friday") {
		t.Error("subject-only reply did not join its thread")
	}
	if thread("Team lunch on Friday") == thread("Budget review for Q1") {
		t.Error("unrelated messages share a thread")
	}
	if len(threads) != inWindow-3 {
		t.Errorf("%d threads for %d messages, want %d (three replies joined)", len(threads), inWindow, inWindow-3)
	}
	// Every change so far is history: no "created" rows for the initial sync.
	cs, _ := r.st.ListChanges(context.Background(), 0, 100000)
	for _, c := range cs {
		if c.ObjectType == "message" && c.Action == "created" {
			t.Fatalf("initial sync recorded a created change: %+v", c)
		}
	}
}

// TestChanges: new mail during IDLE, a flag change, a move and an expunge
// by another client, then a UIDVALIDITY change.
func TestChanges(t *testing.T) {
	t.Parallel()
	r := newRig(t, 10)
	now := time.Now()
	r.env.Append(t, r.imap, "INBOX", mail("first", "first@x"), now.Add(-time.Hour))
	r.env.Append(t, r.imap, "INBOX", mail("second", "second@x"), now.Add(-time.Hour))
	r.env.Append(t, r.imap, "Archive", mail("archived", "archived@x"), now.Add(-time.Hour))
	r.start()
	r.eventually("initial sync", r.synced)
	first := r.bySubject("first")
	if first == nil || !first.Unread {
		t.Fatalf("first: %+v", first)
	}

	// New mail while IDLE.
	r.env.Append(t, r.imap, "INBOX", mail("new while idle", "new@x"), now)
	r.eventually("new mail", func() bool { return r.bySubject("new while idle") != nil })
	if n := r.changes("created", r.bySubject("new while idle").ID); n != 1 {
		t.Errorf("new mail: %d created changes, want 1", n)
	}

	// Flag change by another client.
	if _, err := r.imap.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	uids := searchUID(t, r.imap, "first@x")
	if err := r.imap.Store(imap.UIDSetNum(uids...), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen, imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	r.eventually("flag change", func() bool { m := r.bySubject("first"); return m != nil && !m.Unread && m.Starred })
	if r.changes("updated", first.ID) == 0 {
		t.Error("flag change recorded no updated change")
	}

	// Move to Archive: the same message id, now in Archive only.
	if _, err := r.imap.Move(imap.UIDSetNum(uids...), "Archive").Wait(); err != nil {
		t.Fatal(err)
	}
	archive := r.folderID("Archive")
	r.eventually("move", func() bool {
		m := r.bySubject("first")
		return m != nil && slices.Equal(m.Folders, []string{archive})
	})
	if m := r.bySubject("first"); m.ID != first.ID {
		t.Fatalf("move changed the id: %s → %s", first.ID, m.ID)
	}
	if n := r.changes("deleted", first.ID); n != 0 {
		t.Errorf("move recorded %d deletions", n)
	}

	// Expunge by another client.
	second := r.bySubject("second")
	u2 := searchUID(t, r.imap, "second@x")
	if err := r.imap.Store(imap.UIDSetNum(u2...), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.imap.UIDExpunge(imap.UIDSetNum(u2...)).Close(); err != nil {
		t.Fatal(err)
	}
	r.eventually("expunge", func() bool { return r.bySubject("second") == nil })
	if r.changes("deleted", second.ID) != 1 {
		t.Error("expunge recorded no deleted change")
	}

	// UIDVALIDITY change: Archive deleted and recreated with the same mail.
	before := map[string]string{}
	for _, m := range r.messages() {
		before[m.Subject] = m.ID
	}
	if _, err := r.imap.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := r.imap.Delete("Archive").Wait(); err != nil {
		t.Fatal(err)
	}
	r.env.Append(t, r.imap, "Archive", mail("archived", "archived@x"), now.Add(-time.Hour))
	r.env.Append(t, r.imap, "Archive", mail("first", "first@x"), now.Add(-time.Hour))
	r.eventually("refetch after UIDVALIDITY change", func() bool {
		ms := r.messages()
		if len(ms) != len(before) {
			return false
		}
		for _, m := range ms {
			if before[m.Subject] != m.ID || len(m.Folders) != 1 {
				return false
			}
		}
		return true
	})
}

// TestRestartResumes stops the supervisor in the middle of an initial sync
// and checks that a new one completes it without duplicates.
func TestRestartResumes(t *testing.T) {
	t.Parallel()
	const total = 1000
	r := newRig(t, 5)
	var seed []testenv.SeedMessage
	now := time.Now()
	for i := 0; i < total; i++ {
		seed = append(seed, testenv.SeedMessage{Raw: mail("bulk "+strconv.Itoa(i), "bulk"+strconv.Itoa(i)+"@x"), Received: now.Add(-time.Duration(i) * time.Minute)})
	}
	r.env.SeedMaildir(t, r.user, "INBOX", seed)
	r.start()
	r.eventually("some progress", func() bool { return len(r.messages()) >= 20 })
	r.stop()
	partial := len(r.messages())
	fs, _ := r.st.ListFolders(context.Background(), r.grant.ID)
	var inbox store.Folder
	for _, f := range fs {
		if f.Role == store.RoleInbox {
			inbox = f
		}
	}
	if inbox.InitialDone || inbox.InitialLowUID == 0 {
		t.Fatalf("stop came too late: the sync had finished (%d messages)", partial)
	}
	r.start()
	r.eventually("completion", func() bool { return len(r.messages()) == total })
	ids := map[string]bool{}
	for _, m := range r.messages() {
		if ids[m.ID] {
			t.Fatalf("duplicate message %s", m.ID)
		}
		ids[m.ID] = true
	}
	t.Logf("stopped after %d of %d messages (initial low UID %d); resumed to all", partial, total, inbox.InitialLowUID)
}

func searchUID(t *testing.T, c *imapclient.Client, msgID string) []imap.UID {
	t.Helper()
	data, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: msgID}}}, nil).Wait()
	if err != nil || len(data.AllUIDs()) == 0 {
		t.Fatalf("search %s: %v %v", msgID, err, data)
	}
	return data.AllUIDs()
}

// TestWindowRolls: mail that leaves the sync window while stored is
// removed at the next pass; mail inside it stays.
func TestWindowRolls(t *testing.T) {
	t.Parallel()
	r := newRig(t, 10)
	now := time.Now()
	r.env.Append(t, r.imap, "INBOX", mail("recent", "recent@x"), now.Add(-time.Hour))
	r.env.Append(t, r.imap, "INBOX", mail("month old", "month@x"), now.AddDate(0, 0, -30))
	r.env.Append(t, r.imap, "Archive", mail("archived month old", "archived-month@x"), now.AddDate(0, 0, -30))
	r.start()
	r.eventually("initial sync", func() bool { return r.synced() && len(r.messages()) == 3 })
	r.stop()

	// 70 days later, the month-old mail is 100 days old: outside 90 days.
	r.opts.Now = func() time.Time { return time.Now().AddDate(0, 0, 70) }
	r.start()
	r.eventually("aged-out mail removed", func() bool { return len(r.messages()) == 1 })
	if r.bySubject("recent") == nil {
		t.Fatal("in-window mail was removed")
	}
	fs, _ := r.st.ListFolders(context.Background(), r.grant.ID)
	for _, f := range fs {
		if f.TotalCount != map[bool]int{true: 1, false: 0}[f.Role == store.RoleInbox] {
			t.Errorf("folder %s counts %d messages after pruning", f.Name, f.TotalCount)
		}
	}
}
