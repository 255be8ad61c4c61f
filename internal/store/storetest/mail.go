package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// mailTests are the MailStore part of the suite.
var mailTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"MailMessageRoundTrip", testMailMessageRoundTrip},
	{"MailFolders", testMailFolders},
	{"MailCopies", testMailCopies},
	{"MailFlags", testMailFlags},
	{"MailRemoveAndOrphans", testMailRemoveAndOrphans},
	{"MailClearFolders", testMailClearFolders},
	{"MailDeleteFolder", testMailDeleteFolder},
	{"MailValidation", testMailValidation},
	{"MailBatchAtomicity", testMailBatchAtomicity},
	{"ListMessagesFilters", testListMessagesFilters},
	{"ListThreadsFilters", testListThreadsFilters},
	{"ThreadAggregates", testThreadAggregates},
	{"ThreadLookups", testThreadLookups},
	{"ListChanges", testListChanges},
	{"MailTenantIsolation", testMailTenantIsolation},
	{"MailGrantDeletion", testMailGrantDeletion},
	{"MailRandomBatches", testMailRandomBatches},
	{"MailConcurrentBatches", testMailConcurrentBatches},
}

// --- helpers ---------------------------------------------------------------

// mailGrant creates an application and a grant with these ids.
func mailGrant(t *testing.T, s store.Store, appID, grantID string) string {
	t.Helper()
	if _, err := s.GetApplication(t.Context(), appID); err != nil {
		newApp(t, s, appID)
	}
	ok(t, s.CreateGrant(t.Context(), newGrant(grantID, appID, grantID+"@example.com")), "create grant "+grantID)
	return grantID
}

func apply(t *testing.T, s store.Store, b *store.MailBatch) {
	t.Helper()
	ok(t, s.ApplyMailBatch(t.Context(), b), "apply batch")
}

func mkFolder(grantID, id, name string) store.Folder {
	return store.Folder{ID: id, GrantID: grantID, Name: name, Delimiter: "/", Attributes: []string{`\HasNoChildren`}}
}

// mkMessage returns a message with every field set, received minutes
// after the suite's reference time.
func mkMessage(grantID, id, threadID string, minutes int) store.Message {
	return store.Message{
		ID: id, GrantID: grantID, ThreadID: threadID,
		IdentityKey:     "mid:<" + id + "@example.com>",
		MessageIDHeader: "<" + id + "@example.com>",
		Subject:         "Subject of " + id,
		SubjectKey:      "subject of " + id,
		From:            []store.Participant{{Name: "Sender", Email: "sender@example.com"}},
		To:              []store.Participant{{Email: "me@example.com"}},
		Date:            at(minutes),
		Snippet:         "snippet " + id,
		Body:            "<p>body of " + id + "</p>",
		Headers:         []byte("Message-ID: <" + id + "@example.com>\r\n"),
		Size:            1000,
	}
}

func loc(messageID, folderID string, uid uint32, flags ...string) store.Location {
	return store.Location{MessageID: messageID, FolderID: folderID, UID: uid, Flags: flags}
}

func messageIDs(ms []store.Message) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

func threadIDs(ts []store.Thread) []string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return ids
}

func getMessage(t *testing.T, s store.Store, grantID, id string) *store.Message {
	t.Helper()
	m, err := s.GetMessage(t.Context(), grantID, id)
	ok(t, err, "get message "+id)
	return m
}

func listMessages(t *testing.T, s store.Store, q store.MessageQuery) []store.Message {
	t.Helper()
	ms, err := s.ListMessages(t.Context(), q)
	ok(t, err, "list messages")
	return ms
}

func folderCounts(t *testing.T, s store.Store, grantID string) map[string][2]int {
	t.Helper()
	fs, err := s.ListFolders(t.Context(), grantID)
	ok(t, err, "list folders")
	out := map[string][2]int{}
	for _, f := range fs {
		out[f.ID] = [2]int{f.TotalCount, f.UnreadCount}
	}
	return out
}

func changesOf(t *testing.T, s store.Store) []store.Change {
	t.Helper()
	cs, err := s.ListChanges(t.Context(), 0, 0)
	ok(t, err, "list changes")
	return cs
}

// changeKeys drops ids and times, which the store assigns.
func changeKeys(cs []store.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.GrantID + " " + c.ObjectType + " " + c.ObjectID + " " + c.Action
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// --- tests -----------------------------------------------------------------

func testMailMessageRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	in := store.Message{
		ID: "msg-1", GrantID: g, ThreadID: "thr-1",
		IdentityKey:     "mid:<abc@example.com>",
		MessageIDHeader: "<abc@example.com>",
		InReplyTo:       "<parent@example.com>",
		References:      []string{"<root@example.com>", "<parent@example.com>"},
		Subject:         "Re: Ünïcode — subject",
		SubjectKey:      "ünïcode — subject",
		From:            []store.Participant{{Name: "Zoë Sender", Email: "Zoe@Example.com"}},
		To:              []store.Participant{{Name: "Me", Email: "me@example.com"}, {Email: "other@example.com"}},
		Cc:              []store.Participant{{Email: "cc@example.com"}},
		Bcc:             []store.Participant{{Name: "Hidden", Email: "bcc@example.com"}},
		ReplyTo:         []store.Participant{{Email: "reply@example.com"}},
		Date:            at(10),
		SentAt:          at(9),
		Snippet:         "Hello there…",
		Body:            "<html><body><p>Hello <b>there</b></p></body></html>",
		Attachments: []store.Attachment{
			{ID: "att-1", Filename: "report.pdf", ContentType: "application/pdf", Size: 12345, Part: "2", Encoding: "base64"},
			{ID: "att-2", Filename: "logo.png", ContentType: "image/png", Size: 99, ContentID: "<logo@x>", IsInline: true, Part: "1.2"},
		},
		Headers:   []byte("Subject: =?utf-8?q?x?=\r\nX-Bin: \x00\xff\r\n"),
		Size:      54321,
		CreatedAt: at(20),
		UpdatedAt: at(21),
	}
	apply(t, s, &store.MailBatch{
		GrantID:   g,
		Folders:   []store.Folder{mkFolder(g, "f-inbox", "INBOX"), mkFolder(g, "f-arch", "Archive")},
		Messages:  []store.Message{in},
		Locations: []store.Location{loc("msg-1", "f-inbox", 7, `\Flagged`), loc("msg-1", "f-arch", 3)},
	})

	want := in
	want.Date, want.SentAt = normalized(in.Date), normalized(in.SentAt)
	want.CreatedAt, want.UpdatedAt = normalized(in.CreatedAt), normalized(in.UpdatedAt)
	want.Unread, want.Starred = true, true
	want.Folders = []string{"f-arch", "f-inbox"}
	got := getMessage(t, s, g, "msg-1")
	same(t, got, &want, "get message")
	same(t, listMessages(t, s, store.MessageQuery{GrantID: g}), []store.Message{want}, "list messages")
	byKey, err := s.GetMessagesByIdentity(ctx, g, []string{"mid:<abc@example.com>", "mid:<unknown>"})
	ok(t, err, "by identity")
	same(t, byKey, []store.Message{want}, "by identity")

	locs, err := s.MessageLocations(ctx, g, "msg-1")
	ok(t, err, "locations")
	same(t, locs, []store.Location{
		{MessageID: "msg-1", FolderID: "f-arch", UID: 3, Flags: []string{}},
		{MessageID: "msg-1", FolderID: "f-inbox", UID: 7, Flags: []string{`\Flagged`}},
	}, "locations")

	// Zero and empty values come back as zero times and empty, non-nil
	// slices.
	bare := store.Message{ID: "msg-2", ThreadID: "thr-2", IdentityKey: "hdr:1234"}
	apply(t, s, &store.MailBatch{GrantID: g, Messages: []store.Message{bare},
		Locations: []store.Location{loc("msg-2", "f-inbox", 8, `\Seen`)}})
	got = getMessage(t, s, g, "msg-2")
	if !got.Date.IsZero() || !got.SentAt.IsZero() || got.Headers != nil || got.Unread || got.Starred {
		t.Fatalf("bare message: %+v", got)
	}
	for name, l := range map[string]int{"references": len(got.References), "from": len(got.From), "to": len(got.To),
		"cc": len(got.Cc), "bcc": len(got.Bcc), "reply-to": len(got.ReplyTo), "attachments": len(got.Attachments)} {
		if l != 0 {
			t.Fatalf("bare message %s: %d elements", name, l)
		}
	}
	if got.References == nil || got.From == nil || got.Attachments == nil || got.Folders == nil {
		t.Fatalf("bare message has nil slices: %#v", got)
	}
	if got.CreatedAt.IsZero() || got.CreatedAt.Location() != time.UTC || got.UpdatedAt.IsZero() {
		t.Fatalf("bare message times not filled: %v %v", got.CreatedAt, got.UpdatedAt)
	}

	// An upsert keeps CreatedAt and replaces the content.
	in.Subject, in.Body, in.Attachments, in.References = "Changed", "<p>new</p>", nil, nil
	in.CreatedAt, in.UpdatedAt = at(100), at(101)
	apply(t, s, &store.MailBatch{GrantID: g, Messages: []store.Message{in}})
	got = getMessage(t, s, g, "msg-1")
	if got.Subject != "Changed" || got.Body != "<p>new</p>" || len(got.Attachments) != 0 || len(got.References) != 0 {
		t.Fatalf("upsert did not replace content: %+v", got)
	}
	if !got.CreatedAt.Equal(normalized(at(20))) || !got.UpdatedAt.Equal(normalized(at(101))) {
		t.Fatalf("after upsert: created %v updated %v", got.CreatedAt, got.UpdatedAt)
	}
	if !got.Unread || !got.Starred || len(got.Folders) != 2 {
		t.Fatalf("upsert lost derived state or locations: %+v", got)
	}
	// Unread/Starred given by the caller are ignored.
	in.Unread, in.Starred = false, false
	apply(t, s, &store.MailBatch{GrantID: g, Messages: []store.Message{in}})
	if got := getMessage(t, s, g, "msg-1"); !got.Unread || !got.Starred {
		t.Fatalf("caller's Unread/Starred were stored: %+v", got)
	}

	_, err = s.GetMessage(ctx, g, "nope")
	isErr(t, err, store.ErrNotFound, "get missing message")
	got2, err := s.GetMessagesByIdentity(ctx, g, []string{"mid:<nope>"})
	ok(t, err, "by unknown identity")
	if got2 == nil || len(got2) != 0 {
		t.Fatalf("unknown identity: %#v", got2)
	}
	locs, err = s.MessageLocations(ctx, g, "nope")
	ok(t, err, "locations of missing")
	if locs == nil || len(locs) != 0 {
		t.Fatalf("locations of a missing message: %#v", locs)
	}

	// A second message with a stored identity key conflicts.
	dup := mkMessage(g, "msg-3", "thr-3", 0)
	dup.IdentityKey = "hdr:1234"
	isErr(t, s.ApplyMailBatch(ctx, &store.MailBatch{GrantID: g, Messages: []store.Message{dup}}), store.ErrConflict, "duplicate identity key")
}

func testMailFolders(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	f := store.Folder{
		ID: "f-1", GrantID: g, Name: "Archive/2024", Delimiter: "/", Attributes: []string{`\HasNoChildren`, `\Archive`},
		Role: store.RoleArchive, TotalCount: 99, UnreadCount: 42,
		UIDValidity: 4000000000, UIDNext: 4000000001, HighestModSeq: 1 << 62, InitialLowUID: 17, InitialDone: true,
		LastSyncAt: at(1), CreatedAt: at(2), UpdatedAt: at(3),
	}
	bare := store.Folder{ID: "f-0", Name: "INBOX"}
	apply(t, s, &store.MailBatch{GrantID: g, Folders: []store.Folder{f, bare}})

	want := f
	want.TotalCount, want.UnreadCount = 0, 0 // maintained by the store, not taken from the caller
	want.LastSyncAt, want.CreatedAt, want.UpdatedAt = normalized(f.LastSyncAt), normalized(f.CreatedAt), normalized(f.UpdatedAt)
	got, err := s.GetFolder(ctx, g, "f-1")
	ok(t, err, "get folder")
	same(t, got, &want, "folder round trip")

	gotBare, err := s.GetFolder(ctx, g, "f-0")
	ok(t, err, "get bare folder")
	if gotBare.GrantID != g || gotBare.Attributes == nil || !gotBare.LastSyncAt.IsZero() || gotBare.CreatedAt.IsZero() {
		t.Fatalf("bare folder: %+v", gotBare)
	}

	list, err := s.ListFolders(ctx, g)
	ok(t, err, "list folders")
	if len(list) != 2 || list[0].ID != "f-1" || list[1].ID != "f-0" {
		t.Fatalf("folders not ordered by name: %+v", list)
	}

	// An update keeps CreatedAt and the counts.
	apply(t, s, &store.MailBatch{GrantID: g, Messages: []store.Message{mkMessage(g, "m", "t", 0)},
		Locations: []store.Location{loc("m", "f-1", 1)}})
	f.Name, f.UIDNext, f.InitialDone, f.CreatedAt, f.UpdatedAt = "Archive/2025", 5, false, at(50), at(51)
	f.TotalCount = 0
	apply(t, s, &store.MailBatch{GrantID: g, Folders: []store.Folder{f}})
	got, err = s.GetFolder(ctx, g, "f-1")
	ok(t, err, "get updated folder")
	if got.Name != "Archive/2025" || got.UIDNext != 5 || got.InitialDone || !got.CreatedAt.Equal(normalized(at(2))) ||
		!got.UpdatedAt.Equal(normalized(at(51))) || got.TotalCount != 1 || got.UnreadCount != 1 {
		t.Fatalf("after update: %+v", got)
	}

	// Names are unique per grant.
	clash := mkFolder(g, "f-2", "INBOX")
	isErr(t, s.ApplyMailBatch(ctx, &store.MailBatch{GrantID: g, Folders: []store.Folder{clash}}), store.ErrConflict, "duplicate name")

	_, err = s.GetFolder(ctx, g, "nope")
	isErr(t, err, store.ErrNotFound, "get missing folder")
	uids, err := s.FolderUIDs(ctx, g, "nope")
	ok(t, err, "uids of missing folder")
	if uids == nil || len(uids) != 0 {
		t.Fatalf("uids of a missing folder: %#v", uids)
	}
	empty, err := s.ListFolders(ctx, "no-such-grant")
	ok(t, err, "list folders of unknown grant")
	if empty == nil || len(empty) != 0 {
		t.Fatalf("folders of unknown grant: %#v", empty)
	}
}

func testMailCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	apply(t, s, &store.MailBatch{
		GrantID:  g,
		Folders:  []store.Folder{mkFolder(g, "f-a", "A"), mkFolder(g, "f-b", "B")},
		Messages: []store.Message{mkMessage(g, "m-1", "t-1", 1), mkMessage(g, "m-2", "t-2", 2)},
		Locations: []store.Location{
			loc("m-1", "f-a", 10), loc("m-1", "f-b", 20, `\Seen`),
			loc("m-2", "f-a", 11), loc("m-2", "f-a", 12), // two copies in one folder
		},
	})
	m1 := getMessage(t, s, g, "m-1")
	same(t, m1.Folders, []string{"f-a", "f-b"}, "folders of a message with two copies")
	if m1.Unread {
		t.Fatal("m-1 unread although one copy is \\Seen")
	}
	same(t, getMessage(t, s, g, "m-2").Folders, []string{"f-a"}, "folders of a message with two copies in one folder")

	all := listMessages(t, s, store.MessageQuery{GrantID: g})
	same(t, messageIDs(all), []string{"m-2", "m-1"}, "one row per message")
	same(t, messageIDs(listMessages(t, s, store.MessageQuery{GrantID: g, FolderIDs: []string{"f-a"}})), []string{"m-2", "m-1"}, "in f-a")
	same(t, messageIDs(listMessages(t, s, store.MessageQuery{GrantID: g, FolderIDs: []string{"f-a", "f-b"}})), []string{"m-2", "m-1"}, "in f-a or f-b")
	same(t, folderCounts(t, s, g), map[string][2]int{"f-a": {2, 1}, "f-b": {1, 0}}, "counts")

	uids, err := s.FolderUIDs(ctx, g, "f-a")
	ok(t, err, "uids")
	same(t, uids, []uint32{10, 11, 12}, "uids of f-a")
	ids, err := s.MessageIDsAt(ctx, g, "f-a", []uint32{12, 99, 10, 11})
	ok(t, err, "ids at")
	same(t, ids, []string{"m-2", "m-1"}, "ids at uids (input order, each once, unknown left out)")

	// A re-upsert of a location may move its key to another message.
	apply(t, s, &store.MailBatch{GrantID: g, Locations: []store.Location{loc("m-1", "f-a", 12, `\Seen`)}})
	ids, err = s.MessageIDsAt(ctx, g, "f-a", []uint32{10, 11, 12})
	ok(t, err, "ids at after move")
	same(t, ids, []string{"m-1", "m-2"}, "ids at after move")
	same(t, folderCounts(t, s, g), map[string][2]int{"f-a": {2, 1}, "f-b": {1, 0}}, "counts after move")
	locs, err := s.MessageLocations(ctx, g, "m-2")
	ok(t, err, "locations of m-2")
	if len(locs) != 1 || locs[0].UID != 11 {
		t.Fatalf("m-2 locations after move: %+v", locs)
	}
}

func testMailFlags(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	apply(t, s, &store.MailBatch{
		GrantID:   g,
		Folders:   []store.Folder{mkFolder(g, "f-a", "A"), mkFolder(g, "f-b", "B")},
		Messages:  []store.Message{mkMessage(g, "m-1", "t-1", 1), mkMessage(g, "m-2", "t-1", 2)},
		Locations: []store.Location{loc("m-1", "f-a", 1), loc("m-1", "f-b", 1), loc("m-2", "f-a", 2, `\Seen`)},
	})
	check := func(what string, m1Unread, m1Starred bool, counts map[string][2]int, threadUnread, threadStarred bool) {
		t.Helper()
		m := getMessage(t, s, g, "m-1")
		if m.Unread != m1Unread || m.Starred != m1Starred {
			t.Fatalf("%s: m-1 unread %v starred %v, want %v %v", what, m.Unread, m.Starred, m1Unread, m1Starred)
		}
		same(t, folderCounts(t, s, g), counts, what+": counts")
		th, err := s.GetThread(ctx, g, "t-1")
		ok(t, err, "get thread")
		if th.Unread != threadUnread || th.Starred != threadStarred {
			t.Fatalf("%s: thread unread %v starred %v, want %v %v", what, th.Unread, th.Starred, threadUnread, threadStarred)
		}
	}
	check("initial", true, false, map[string][2]int{"f-a": {2, 1}, "f-b": {1, 1}}, true, false)

	// \Seen on one copy reads the message everywhere; flags compare
	// case-insensitively.
	apply(t, s, &store.MailBatch{GrantID: g, FlagUpdates: []store.FlagUpdate{{FolderID: "f-b", UID: 1, Flags: []string{`\seen`}, ModSeq: 5}}})
	check("seen in f-b", false, false, map[string][2]int{"f-a": {2, 0}, "f-b": {1, 0}}, false, false)

	apply(t, s, &store.MailBatch{GrantID: g, FlagUpdates: []store.FlagUpdate{{FolderID: "f-a", UID: 1, Flags: []string{`\Flagged`, `$Label1`}, ModSeq: 6}}})
	check("flagged in f-a", false, true, map[string][2]int{"f-a": {2, 0}, "f-b": {1, 0}}, false, true)

	// Unknown keys are ignored.
	apply(t, s, &store.MailBatch{GrantID: g, FlagUpdates: []store.FlagUpdate{
		{FolderID: "f-b", UID: 1, Flags: nil, ModSeq: 7},
		{FolderID: "f-b", UID: 999, Flags: []string{`\Seen`}},
		{FolderID: "nope", UID: 1, Flags: []string{`\Seen`}},
	}})
	check("unseen in f-b", true, true, map[string][2]int{"f-a": {2, 1}, "f-b": {1, 1}}, true, true)

	locs, err := s.MessageLocations(ctx, g, "m-1")
	ok(t, err, "locations")
	same(t, locs, []store.Location{
		{MessageID: "m-1", FolderID: "f-a", UID: 1, Flags: []string{`\Flagged`, `$Label1`}, ModSeq: 6},
		{MessageID: "m-1", FolderID: "f-b", UID: 1, Flags: []string{}, ModSeq: 7},
	}, "locations after flag updates")

	// Within one batch the last update of a key wins, and a location
	// written earlier in the batch is updated by its flag updates.
	apply(t, s, &store.MailBatch{GrantID: g,
		Locations: []store.Location{loc("m-2", "f-b", 5)},
		FlagUpdates: []store.FlagUpdate{
			{FolderID: "f-b", UID: 5, Flags: []string{`\Flagged`}},
			{FolderID: "f-a", UID: 1, Flags: []string{`\Seen`}},
			{FolderID: "f-a", UID: 1, Flags: []string{`\Seen`, `\Flagged`}},
		}})
	check("one batch", false, true, map[string][2]int{"f-a": {2, 0}, "f-b": {2, 0}}, false, true)
	if m2 := getMessage(t, s, g, "m-2"); m2.Unread || !m2.Starred {
		t.Fatalf("m-2: %+v", m2)
	}
}

func testMailRemoveAndOrphans(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	apply(t, s, &store.MailBatch{
		GrantID:   g,
		Folders:   []store.Folder{mkFolder(g, "f-a", "A"), mkFolder(g, "f-b", "B")},
		Messages:  []store.Message{mkMessage(g, "m-1", "t-1", 1), mkMessage(g, "m-2", "t-1", 2), mkMessage(g, "m-3", "t-3", 3)},
		Locations: []store.Location{loc("m-1", "f-a", 1), loc("m-2", "f-a", 2), loc("m-2", "f-b", 2), loc("m-3", "f-b", 3)},
	})
	// Removing a copy without DeleteOrphans keeps the message.
	apply(t, s, &store.MailBatch{GrantID: g, RemovedLocations: []store.LocationKey{{FolderID: "f-a", UID: 1}, {FolderID: "f-a", UID: 77}}})
	m1 := getMessage(t, s, g, "m-1")
	if len(m1.Folders) != 0 {
		t.Fatalf("m-1 still in %v", m1.Folders)
	}
	same(t, folderCounts(t, s, g), map[string][2]int{"f-a": {1, 1}, "f-b": {2, 2}}, "counts after removal")
	th, err := s.GetThread(ctx, g, "t-1")
	ok(t, err, "thread t-1")
	same(t, th.MessageIDs, []string{"m-1", "m-2"}, "thread keeps the message until it is deleted")

	// DeleteOrphans deletes it (and only it) and records the change
	// before the batch's own changes.
	apply(t, s, &store.MailBatch{GrantID: g,
		RemovedLocations: []store.LocationKey{{FolderID: "f-b", UID: 3}},
		DeleteOrphans:    true,
		Changes:          []store.Change{{ObjectType: "folder", ObjectID: "f-b", Action: "updated"}},
	})
	_, err = s.GetMessage(ctx, g, "m-1")
	isErr(t, err, store.ErrNotFound, "orphan m-1")
	_, err = s.GetMessage(ctx, g, "m-3")
	isErr(t, err, store.ErrNotFound, "orphan m-3")
	getMessage(t, s, g, "m-2")
	same(t, changeKeys(changesOf(t, s)), []string{
		g + " message m-1 deleted", g + " message m-3 deleted", g + " folder f-b updated",
	}, "changes")
	th, err = s.GetThread(ctx, g, "t-1")
	ok(t, err, "thread t-1 after")
	same(t, th.MessageIDs, []string{"m-2"}, "thread after orphan deletion")
	_, err = s.GetThread(ctx, g, "t-3")
	isErr(t, err, store.ErrNotFound, "thread of the deleted message")
	same(t, folderCounts(t, s, g), map[string][2]int{"f-a": {1, 1}, "f-b": {1, 1}}, "counts after orphans")
	if got, _ := s.GetMessagesByIdentity(ctx, g, []string{"mid:<m-1@example.com>"}); len(got) != 0 {
		t.Fatal("deleted message found by identity")
	}
	// Its references went too.
	if id, err := s.ThreadIDByMessageIDs(ctx, g, []string{"<m-1@example.com>"}); err != nil || id != "" {
		t.Fatalf("references of a deleted message: %q %v", id, err)
	}

	// Nothing left to delete: no change rows.
	apply(t, s, &store.MailBatch{GrantID: g, DeleteOrphans: true})
	if n := len(changesOf(t, s)); n != 3 {
		t.Fatalf("%d changes after an idle DeleteOrphans", n)
	}
}

func testMailClearFolders(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	m1, m2 := mkMessage(g, "m-1", "t-1", 1), mkMessage(g, "m-2", "t-2", 2)
	m1.CreatedAt, m2.CreatedAt = at(-50), at(-40)
	apply(t, s, &store.MailBatch{
		GrantID:   g,
		Folders:   []store.Folder{mkFolder(g, "f-a", "A"), mkFolder(g, "f-b", "B")},
		Messages:  []store.Message{m1, m2},
		Locations: []store.Location{loc("m-1", "f-a", 1), loc("m-2", "f-a", 2), loc("m-2", "f-b", 9, `\Seen`)},
	})
	// UIDVALIDITY changed: the folder loses its locations, the messages
	// stay.
	fa := mkFolder(g, "f-a", "A")
	fa.UIDValidity = 2
	apply(t, s, &store.MailBatch{GrantID: g, Folders: []store.Folder{fa}, ClearFolders: []string{"f-a"}})
	uids, err := s.FolderUIDs(ctx, g, "f-a")
	ok(t, err, "uids after clear")
	if len(uids) != 0 {
		t.Fatalf("cleared folder has uids %v", uids)
	}
	same(t, folderCounts(t, s, g), map[string][2]int{"f-a": {0, 0}, "f-b": {1, 0}}, "counts after clear")
	same(t, getMessage(t, s, g, "m-1").Folders, []string{}, "m-1 folders after clear")
	if f, _ := s.GetFolder(ctx, g, "f-a"); f.UIDValidity != 2 {
		t.Fatalf("folder upsert of the clearing batch lost: %+v", f)
	}

	// The refetch links the same messages again under new UIDs.
	m1.CreatedAt, m2.CreatedAt = time.Time{}, time.Time{}
	apply(t, s, &store.MailBatch{GrantID: g, Messages: []store.Message{m1, m2},
		Locations: []store.Location{loc("m-1", "f-a", 101), loc("m-2", "f-a", 102)}})
	apply(t, s, &store.MailBatch{GrantID: g, DeleteOrphans: true})
	for id, created := range map[string]time.Time{"m-1": at(-50), "m-2": at(-40)} {
		m := getMessage(t, s, g, id)
		if !m.CreatedAt.Equal(normalized(created)) {
			t.Fatalf("%s CreatedAt %v after refetch, want %v", id, m.CreatedAt, normalized(created))
		}
	}
	same(t, getMessage(t, s, g, "m-2").Folders, []string{"f-a", "f-b"}, "m-2 folders after refetch")
	same(t, folderCounts(t, s, g), map[string][2]int{"f-a": {2, 1}, "f-b": {1, 0}}, "counts after refetch")
	if n := len(changesOf(t, s)); n != 0 {
		t.Fatalf("%d changes: nothing was deleted", n)
	}

	// A message the refetch did not find again is an orphan.
	apply(t, s, &store.MailBatch{GrantID: g, ClearFolders: []string{"f-a"}})
	apply(t, s, &store.MailBatch{GrantID: g, Locations: []store.Location{loc("m-2", "f-a", 201)}, DeleteOrphans: true})
	_, err = s.GetMessage(ctx, g, "m-1")
	isErr(t, err, store.ErrNotFound, "m-1 not refetched")
	same(t, changeKeys(changesOf(t, s)), []string{g + " message m-1 deleted"}, "changes")
}

func testMailDeleteFolder(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	apply(t, s, &store.MailBatch{
		GrantID:   g,
		Folders:   []store.Folder{mkFolder(g, "f-a", "A"), mkFolder(g, "f-b", "B")},
		Messages:  []store.Message{mkMessage(g, "m-1", "t-1", 1), mkMessage(g, "m-2", "t-1", 2)},
		Locations: []store.Location{loc("m-1", "f-a", 1, `\Seen`), loc("m-1", "f-b", 1), loc("m-2", "f-a", 2)},
	})
	th, err := s.GetThread(ctx, g, "t-1")
	ok(t, err, "thread")
	same(t, th.Folders, []string{"f-a", "f-b"}, "thread folders")

	apply(t, s, &store.MailBatch{GrantID: g, DeletedFolders: []string{"f-a", "nope"}, DeleteOrphans: true})
	_, err = s.GetFolder(ctx, g, "f-a")
	isErr(t, err, store.ErrNotFound, "deleted folder")
	m1 := getMessage(t, s, g, "m-1")
	same(t, m1.Folders, []string{"f-b"}, "m-1 folders")
	if !m1.Unread {
		t.Fatal("m-1 still read: its \\Seen copy was in the deleted folder")
	}
	_, err = s.GetMessage(ctx, g, "m-2")
	isErr(t, err, store.ErrNotFound, "m-2 (only in the deleted folder)")
	same(t, folderCounts(t, s, g), map[string][2]int{"f-b": {1, 1}}, "counts")
	th, err = s.GetThread(ctx, g, "t-1")
	ok(t, err, "thread after")
	same(t, th.Folders, []string{"f-b"}, "thread folders after")
	same(t, th.MessageIDs, []string{"m-1"}, "thread messages after")
	if !th.Unread {
		t.Fatal("thread not unread")
	}
	same(t, messageIDs(listMessages(t, s, store.MessageQuery{GrantID: g, FolderIDs: []string{"f-a"}})), []string{}, "in deleted folder")
}

func testMailValidation(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	mailGrant(t, s, "app", "grant-2")
	bad := []struct {
		name string
		b    store.MailBatch
	}{
		{"no grant", store.MailBatch{Folders: []store.Folder{mkFolder("", "f", "F")}}},
		{"folder of another grant", store.MailBatch{GrantID: g, Folders: []store.Folder{mkFolder("grant-2", "f", "F")}}},
		{"message of another grant", store.MailBatch{GrantID: g, Messages: []store.Message{mkMessage("grant-2", "m", "t", 0)}}},
		{"change of another grant", store.MailBatch{GrantID: g, Changes: []store.Change{{GrantID: "grant-2", ObjectType: "message", ObjectID: "m", Action: "created"}}}},
		{"folder without id", store.MailBatch{GrantID: g, Folders: []store.Folder{mkFolder(g, "", "F")}}},
		{"folder without name", store.MailBatch{GrantID: g, Folders: []store.Folder{mkFolder(g, "f", "")}}},
		{"message without id", store.MailBatch{GrantID: g, Messages: []store.Message{mkMessage(g, "", "t", 0)}}},
		{"message without identity", store.MailBatch{GrantID: g, Messages: []store.Message{{ID: "m", ThreadID: "t"}}}},
		{"location without message", store.MailBatch{GrantID: g, Locations: []store.Location{{FolderID: "f", UID: 1}}}},
	}
	for _, tc := range bad {
		if err := s.ApplyMailBatch(ctx, &tc.b); err == nil {
			t.Fatalf("%s: batch accepted", tc.name)
		}
	}
	// A batch for a grant that does not exist.
	isErr(t, s.ApplyMailBatch(ctx, &store.MailBatch{GrantID: "no-such-grant", Folders: []store.Folder{mkFolder("", "f", "F")}}), store.ErrNotFound, "unknown grant")
	isErr(t, s.ApplyMailBatch(ctx, &store.MailBatch{GrantID: "no-such-grant", Changes: []store.Change{{ObjectType: "folder", ObjectID: "f", Action: "created"}}}), store.ErrNotFound, "change of unknown grant")

	// The caller's batch is not modified.
	b := &store.MailBatch{GrantID: g, Folders: []store.Folder{{ID: "f", Name: "F"}}, Messages: []store.Message{{ID: "m", ThreadID: "t", IdentityKey: "k"}},
		Locations: []store.Location{loc("m", "f", 1)}, Changes: []store.Change{{ObjectType: "message", ObjectID: "m", Action: "created"}}}
	apply(t, s, b)
	if b.Folders[0].GrantID != "" || !b.Folders[0].CreatedAt.IsZero() || b.Messages[0].GrantID != "" || !b.Messages[0].CreatedAt.IsZero() ||
		b.Changes[0].GrantID != "" || !b.Changes[0].CreatedAt.IsZero() || b.Changes[0].ID != 0 {
		t.Fatalf("batch modified: %+v", b)
	}
	cs := changesOf(t, s)
	if len(cs) != 1 || cs[0].GrantID != g || cs[0].CreatedAt.IsZero() || cs[0].CreatedAt.Location() != time.UTC ||
		time.Since(cs[0].CreatedAt) > time.Minute {
		t.Fatalf("change not stamped: %+v", cs)
	}
}

func testMailBatchAtomicity(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	apply(t, s, &store.MailBatch{GrantID: g, Folders: []store.Folder{mkFolder(g, "f-a", "A")},
		Messages: []store.Message{mkMessage(g, "m-0", "t-0", 0)}, Locations: []store.Location{loc("m-0", "f-a", 1)}})
	snapshot := func() string {
		var b strings.Builder
		fs, err := s.ListFolders(ctx, g)
		ok(t, err, "folders")
		ms := listMessages(t, s, store.MessageQuery{GrantID: g})
		ts, err := s.ListThreads(ctx, store.ThreadQuery{GrantID: g})
		ok(t, err, "threads")
		fmt.Fprintf(&b, "%+v\n%+v\n%+v\n%+v", fs, ms, ts, changeKeys(changesOf(t, s)))
		return b.String()
	}
	before := snapshot()
	// Each batch does real work first, then fails.
	full := func() store.MailBatch {
		return store.MailBatch{
			GrantID:          g,
			Folders:          []store.Folder{mkFolder(g, "f-new", "New")},
			ClearFolders:     []string{"f-a"},
			Messages:         []store.Message{mkMessage(g, "m-1", "t-0", 5)},
			Locations:        []store.Location{loc("m-1", "f-new", 1, `\Flagged`)},
			RemovedLocations: []store.LocationKey{{FolderID: "f-a", UID: 1}},
			DeleteOrphans:    true,
			Changes:          []store.Change{{ObjectType: "message", ObjectID: "m-1", Action: "created"}},
		}
	}
	cases := []struct {
		name  string
		spoil func(b *store.MailBatch)
		want  error
	}{
		{"location of a missing message", func(b *store.MailBatch) {
			b.Locations = append(b.Locations, loc("m-missing", "f-new", 2))
		}, store.ErrNotFound},
		{"location in a missing folder", func(b *store.MailBatch) {
			b.Locations = append(b.Locations, loc("m-1", "f-missing", 2))
		}, store.ErrNotFound},
		{"location in a folder the batch deletes", func(b *store.MailBatch) {
			b.DeletedFolders = []string{"f-new"}
		}, store.ErrNotFound},
		{"duplicate identity key", func(b *store.MailBatch) {
			m := mkMessage(g, "m-2", "t-2", 6)
			m.IdentityKey = "mid:<m-0@example.com>"
			b.Messages = append(b.Messages, m)
		}, store.ErrConflict},
		{"duplicate folder name", func(b *store.MailBatch) {
			b.Folders = append(b.Folders, mkFolder(g, "f-other", "A"))
		}, store.ErrConflict},
	}
	for _, tc := range cases {
		b := full()
		tc.spoil(&b)
		isErr(t, s.ApplyMailBatch(ctx, &b), tc.want, tc.name)
		if after := snapshot(); after != before {
			t.Fatalf("%s: the failed batch left changes:\nbefore %s\nafter  %s", tc.name, before, after)
		}
	}
	// The same batch without the fault applies.
	b := full()
	apply(t, s, &b)
	if _, err := s.GetMessage(ctx, g, "m-0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("m-0 not deleted as an orphan: %v", err)
	}
}

// --- queries against a model ------------------------------------------------

// corpus is a set of messages with known folders and flags, and the
// expected derived state, for comparing every query with a Go model.
type corpus struct {
	grant   string
	msgs    []store.Message // as the store should return them
	folders []string
}

const corpusSize = 90

func buildCorpus(t *testing.T, s store.Store, g string) *corpus {
	t.Helper()
	c := &corpus{grant: g, folders: []string{"f-inbox", "f-archive", "f-sent", "f-empty"}}
	subjects := []string{"Quarterly report", "Lunch plans", "Re: Lunch plans", "100% done_ok", "ÜBER straße", "Plain"}
	senders := []store.Participant{{Name: "Alice", Email: "Alice@Example.com"}, {Email: "bob@example.com"},
		{Name: "Carol", Email: "carol@example.com"}, {Email: "dave@example.org"}, {Name: "Eve", Email: "EVE@example.net"}}
	b := &store.MailBatch{GrantID: g}
	for _, f := range c.folders {
		b.Folders = append(b.Folders, mkFolder(g, f, strings.TrimPrefix(f, "f-")))
	}
	uid := uint32(0)
	for i := range corpusSize {
		// ids are a permutation unrelated to dates; dates tie in threes
		// so that the id tie-break shows.
		id := fmt.Sprintf("m%03d", (i*37)%corpusSize)
		m := mkMessage(g, id, fmt.Sprintf("t%02d", i/4), i/3)
		m.Subject = subjects[i%len(subjects)] + fmt.Sprintf(" %d", i)
		m.SubjectKey = strings.ToLower(subjects[i%len(subjects)])
		m.From = []store.Participant{senders[i%len(senders)]}
		m.To = []store.Participant{{Name: "Me", Email: "me@example.com"}, senders[(i+1)%len(senders)]}
		if i%4 == 0 {
			m.Cc = []store.Participant{{Email: "Carol@example.com"}}
		}
		if i%13 == 0 {
			m.Cc = append(m.Cc, store.Participant{Name: "Rare", Email: "rare@example.com"})
		}
		if i%6 == 0 {
			m.Bcc = []store.Participant{{Email: "dave@example.org"}}
		}
		if i%10 == 0 {
			m.ReplyTo = []store.Participant{{Email: "noreply@example.com"}}
		}
		switch {
		case i%5 == 0:
			m.Attachments = []store.Attachment{{ID: "a" + id, Filename: "x.pdf", Part: "2"}}
		case i%9 == 0:
			m.Attachments = []store.Attachment{{ID: "a" + id, Filename: "logo.png", Part: "2", IsInline: true}}
		}
		var folders []string
		add := func(folder string, flags ...string) {
			uid++
			b.Locations = append(b.Locations, loc(id, folder, uid, flags...))
			if !slices.Contains(folders, folder) {
				folders = append(folders, folder)
			}
		}
		seen, flagged := i%8 != 0, i%7 == 0
		var fl []string
		if flagged {
			fl = append(fl, `\Flagged`)
		}
		switch {
		case i%3 == 0:
			// Two folders; only the archive copy carries the flags.
			add("f-inbox")
			if seen {
				fl = append(fl, `\Seen`)
			}
			add("f-archive", fl...)
		case i%5 == 1:
			if seen {
				fl = append(fl, `\Seen`)
			}
			add("f-sent", fl...)
		default:
			if seen {
				fl = append(fl, `\Seen`)
			}
			add("f-inbox", fl...)
		}
		if i%11 == 0 {
			add(folders[0]) // a second copy in the same folder
		}
		b.Messages = append(b.Messages, m)

		want := m
		want.Date, want.SentAt, want.CreatedAt, want.UpdatedAt = normalized(m.Date), normalized(m.SentAt), time.Time{}, time.Time{}
		want.Unread, want.Starred = !seen, flagged
		slices.Sort(folders)
		want.Folders = folders
		c.msgs = append(c.msgs, withEmptySlices(want))
	}
	apply(t, s, b)
	slices.SortFunc(c.msgs, func(a, b store.Message) int {
		if d := b.Date.Compare(a.Date); d != 0 {
			return d
		}
		return strings.Compare(b.ID, a.ID)
	})
	return c
}

// withEmptySlices is m as the store returns it: nil slices read back empty.
func withEmptySlices(m store.Message) store.Message {
	if m.References == nil {
		m.References = []string{}
	}
	for _, ps := range []*[]store.Participant{&m.From, &m.To, &m.Cc, &m.Bcc, &m.ReplyTo} {
		if *ps == nil {
			*ps = []store.Participant{}
		}
	}
	if m.Attachments == nil {
		m.Attachments = []store.Attachment{}
	}
	if m.Folders == nil {
		m.Folders = []string{}
	}
	return m
}

func hasEmail(ps []store.Participant, emails []string) bool {
	for _, p := range ps {
		for _, e := range emails {
			if strings.EqualFold(p.Email, e) {
				return true
			}
		}
	}
	return false
}

func (c *corpus) match(m store.Message, q store.MessageQuery) bool {
	everyone := slices.Concat(m.From, m.To, m.Cc, m.Bcc)
	switch {
	case q.Subject != "" && !strings.Contains(strings.ToLower(m.Subject), strings.ToLower(q.Subject)),
		len(q.AnyEmail) > 0 && !hasEmail(everyone, q.AnyEmail),
		len(q.From) > 0 && !hasEmail(m.From, q.From),
		len(q.To) > 0 && !hasEmail(m.To, q.To),
		len(q.Cc) > 0 && !hasEmail(m.Cc, q.Cc),
		len(q.Bcc) > 0 && !hasEmail(m.Bcc, q.Bcc),
		len(q.FolderIDs) > 0 && !slices.ContainsFunc(m.Folders, func(f string) bool { return slices.Contains(q.FolderIDs, f) }),
		q.ThreadID != "" && m.ThreadID != q.ThreadID,
		len(q.IDs) > 0 && !slices.Contains(q.IDs, m.ID),
		q.Unread != nil && m.Unread != *q.Unread,
		q.Starred != nil && m.Starred != *q.Starred,
		q.HasAttachment != nil && slices.ContainsFunc(m.Attachments, func(a store.Attachment) bool { return !a.IsInline }) != *q.HasAttachment,
		!q.ReceivedBefore.IsZero() && !m.Date.Before(q.ReceivedBefore),
		!q.ReceivedAfter.IsZero() && !m.Date.After(q.ReceivedAfter):
		return false
	}
	return true
}

func (c *corpus) expect(q store.MessageQuery) []string {
	out := []string{}
	for _, m := range c.msgs {
		if c.match(m, q) {
			out = append(out, m.ID)
		}
	}
	return out
}

func messageQueries(c *corpus) []struct {
	name string
	q    store.MessageQuery
} {
	mid := c.msgs[len(c.msgs)/2]
	return []struct {
		name string
		q    store.MessageQuery
	}{
		{"all", store.MessageQuery{}},
		{"subject word", store.MessageQuery{Subject: "lunch"}},
		{"subject any case", store.MessageQuery{Subject: "LUNCH PLANS"}},
		{"subject percent", store.MessageQuery{Subject: "100%"}},
		{"subject underscore", store.MessageQuery{Subject: "done_"}},
		{"subject lone underscore", store.MessageQuery{Subject: "_"}},
		{"subject lone percent", store.MessageQuery{Subject: "%"}},
		{"subject backslash", store.MessageQuery{Subject: `\`}},
		{"subject unicode", store.MessageQuery{Subject: "über STRASSE"}},
		{"subject unicode folded", store.MessageQuery{Subject: "über straße"}},
		{"subject none", store.MessageQuery{Subject: "nothing like this"}},
		{"any email", store.MessageQuery{AnyEmail: []string{"alice@example.com"}}},
		{"any email case", store.MessageQuery{AnyEmail: []string{"ALICE@EXAMPLE.COM"}}},
		{"any email two", store.MessageQuery{AnyEmail: []string{"eve@example.net", "dave@example.org"}}},
		{"any email own", store.MessageQuery{AnyEmail: []string{"me@example.com"}}},
		{"any email reply-to only", store.MessageQuery{AnyEmail: []string{"noreply@example.com"}}},
		{"any email unknown", store.MessageQuery{AnyEmail: []string{"nobody@example.com"}}},
		{"from", store.MessageQuery{From: []string{"bob@example.com"}}},
		{"from two", store.MessageQuery{From: []string{"bob@example.com", "Carol@Example.com"}}},
		{"from only in to", store.MessageQuery{From: []string{"me@example.com"}}},
		{"to", store.MessageQuery{To: []string{"carol@example.com"}}},
		{"cc", store.MessageQuery{Cc: []string{"carol@example.com"}}},
		{"bcc", store.MessageQuery{Bcc: []string{"dave@example.org"}}},
		{"in inbox", store.MessageQuery{FolderIDs: []string{"f-inbox"}}},
		{"in archive", store.MessageQuery{FolderIDs: []string{"f-archive"}}},
		{"in archive or sent", store.MessageQuery{FolderIDs: []string{"f-archive", "f-sent"}}},
		{"in empty", store.MessageQuery{FolderIDs: []string{"f-empty"}}},
		{"in unknown", store.MessageQuery{FolderIDs: []string{"nope"}}},
		{"thread", store.MessageQuery{ThreadID: "t03"}},
		{"ids", store.MessageQuery{IDs: []string{"m005", "m050", "m077", "nope"}}},
		{"unread", store.MessageQuery{Unread: ptr(true)}},
		{"read", store.MessageQuery{Unread: ptr(false)}},
		{"starred", store.MessageQuery{Starred: ptr(true)}},
		{"not starred", store.MessageQuery{Starred: ptr(false)}},
		{"attachment", store.MessageQuery{HasAttachment: ptr(true)}},
		{"no attachment", store.MessageQuery{HasAttachment: ptr(false)}},
		{"received before", store.MessageQuery{ReceivedBefore: mid.Date}},
		{"received after", store.MessageQuery{ReceivedAfter: mid.Date}},
		{"received window", store.MessageQuery{ReceivedAfter: at(5), ReceivedBefore: at(20)}},
		{"from + inbox", store.MessageQuery{From: []string{"alice@example.com"}, FolderIDs: []string{"f-inbox"}}},
		{"any email + unread + subject", store.MessageQuery{AnyEmail: []string{"carol@example.com"}, Unread: ptr(true), Subject: "re"}},
		{"inbox + starred + after", store.MessageQuery{FolderIDs: []string{"f-inbox"}, Starred: ptr(false), ReceivedAfter: at(3)}},
		{"ids + folder", store.MessageQuery{IDs: []string{"m000", "m001", "m002", "m003", "m037"}, FolderIDs: []string{"f-archive"}}},
		{"thread + unread", store.MessageQuery{ThreadID: "t00", Unread: ptr(true)}},
		{"from two + to one", store.MessageQuery{From: []string{"alice@example.com", "bob@example.com"}, To: []string{"me@example.com"}}},
		{"to one + cc one", store.MessageQuery{To: []string{"me@example.com"}, Cc: []string{"carol@example.com"}}},
		{"in inbox + from one", store.MessageQuery{FolderIDs: []string{"f-inbox"}, From: []string{"eve@example.net"}, HasAttachment: ptr(true)}},
		{"folders + attachment + before", store.MessageQuery{FolderIDs: []string{"f-sent", "f-inbox"}, HasAttachment: ptr(false), ReceivedBefore: at(25)}},
		{"everything", store.MessageQuery{Subject: "plans", AnyEmail: []string{"me@example.com"}, From: []string{"bob@example.com", "alice@example.com"},
			FolderIDs: []string{"f-inbox", "f-archive"}, Unread: ptr(false), Starred: ptr(false), HasAttachment: ptr(false), ReceivedAfter: at(-1)}},
	}
}

func testListMessagesFilters(t *testing.T, s store.Store) {
	g := mailGrant(t, s, "app", "grant-1")
	c := buildCorpus(t, s, g)

	all := listMessages(t, s, store.MessageQuery{GrantID: g})
	if len(all) != corpusSize {
		t.Fatalf("%d messages, want %d", len(all), corpusSize)
	}
	for i := range all {
		all[i].CreatedAt, all[i].UpdatedAt = time.Time{}, time.Time{}
	}
	same(t, all, c.msgs, "full listing")

	for _, tc := range messageQueries(c) {
		q := tc.q
		q.GrantID = g
		want := c.expect(q)
		if tc.name != "all" && tc.name != "any email own" && len(want) == corpusSize {
			t.Fatalf("%s: the model selects everything; the query tests nothing", tc.name)
		}
		same(t, messageIDs(listMessages(t, s, q)), want, tc.name)
		// Keyset pages: no duplicates, no gaps.
		for _, limit := range []int{1, 7} {
			var got []string
			pq := q
			pq.Limit = limit
			for range corpusSize + 2 {
				page := listMessages(t, s, pq)
				if len(page) > limit {
					t.Fatalf("%s: page of %d, limit %d", tc.name, len(page), limit)
				}
				got = append(got, messageIDs(page)...)
				if len(page) < limit {
					break
				}
				last := page[len(page)-1]
				pq.AfterDate, pq.AfterID = last.Date, last.ID
			}
			if got == nil {
				got = []string{}
			}
			same(t, got, want, fmt.Sprintf("%s, pages of %d", tc.name, limit))
		}
	}

	// Folders and derived fields are filled on every listing path.
	for _, q := range []store.MessageQuery{{FolderIDs: []string{"f-archive"}}, {From: []string{"alice@example.com"}}, {IDs: []string{"m000"}}} {
		q.GrantID = g
		for _, m := range listMessages(t, s, q) {
			i := slices.IndexFunc(c.msgs, func(w store.Message) bool { return w.ID == m.ID })
			m.CreatedAt, m.UpdatedAt = time.Time{}, time.Time{}
			same(t, m, c.msgs[i], "listed message "+m.ID)
		}
	}

	// Too many values in one filter are refused, not silently cut.
	many := make([]string, 5000)
	for i := range many {
		many[i] = fmt.Sprintf("m%d", i)
	}
	if _, err := s.ListMessages(t.Context(), store.MessageQuery{GrantID: g, IDs: many}); err == nil {
		t.Fatal("5000 ids accepted")
	}
}

// --- threads ------------------------------------------------------------------

// expectThreads computes the threads of a corpus the way the store
// documents them.
func expectThreads(msgs []store.Message) []store.Thread {
	byID := map[string][]store.Message{}
	for _, m := range msgs {
		if m.ThreadID != "" {
			byID[m.ThreadID] = append(byID[m.ThreadID], m)
		}
	}
	var out []store.Thread
	for id, ms := range byID {
		slices.SortFunc(ms, func(a, b store.Message) int {
			if d := a.Date.Compare(b.Date); d != 0 {
				return d
			}
			return strings.Compare(a.ID, b.ID)
		})
		t := store.Thread{ID: id, GrantID: ms[0].GrantID, Subject: ms[0].Subject, SubjectKey: ms[0].SubjectKey,
			MessageIDs: []string{}, Folders: []string{}, Participants: []store.Participant{},
			EarliestMessageAt: ms[0].Date}
		emails := map[string]int{}
		for _, m := range ms {
			t.MessageIDs = append(t.MessageIDs, m.ID)
			t.Unread = t.Unread || m.Unread
			t.Starred = t.Starred || m.Starred
			t.HasAttachments = t.HasAttachments || slices.ContainsFunc(m.Attachments, func(a store.Attachment) bool { return !a.IsInline })
			t.LatestMessageID, t.LatestMessageAt, t.Snippet = m.ID, m.Date, m.Snippet
			for _, f := range m.Folders {
				if !slices.Contains(t.Folders, f) {
					t.Folders = append(t.Folders, f)
				}
			}
			for _, p := range slices.Concat(m.From, m.To, m.Cc, m.Bcc) {
				e := strings.ToLower(p.Email)
				if i, ok := emails[e]; ok {
					if t.Participants[i].Name == "" {
						t.Participants[i].Name = p.Name
					}
					continue
				}
				emails[e] = len(t.Participants)
				t.Participants = append(t.Participants, p)
			}
		}
		slices.Sort(t.Folders)
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b store.Thread) int {
		if d := b.LatestMessageAt.Compare(a.LatestMessageAt); d != 0 {
			return d
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out
}

func matchThread(t store.Thread, q store.ThreadQuery) bool {
	switch {
	case q.Subject != "" && !strings.Contains(strings.ToLower(t.Subject), strings.ToLower(q.Subject)),
		len(q.AnyEmail) > 0 && !hasEmail(t.Participants, q.AnyEmail),
		len(q.FolderIDs) > 0 && !slices.ContainsFunc(t.Folders, func(f string) bool { return slices.Contains(q.FolderIDs, f) }),
		q.Unread != nil && t.Unread != *q.Unread,
		q.Starred != nil && t.Starred != *q.Starred,
		!q.LatestBefore.IsZero() && !t.LatestMessageAt.Before(q.LatestBefore),
		!q.LatestAfter.IsZero() && !t.LatestMessageAt.After(q.LatestAfter):
		return false
	}
	return true
}

func testListThreadsFilters(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	c := buildCorpus(t, s, g)
	want := expectThreads(c.msgs)
	got, err := s.ListThreads(ctx, store.ThreadQuery{GrantID: g})
	ok(t, err, "list threads")
	same(t, got, want, "all threads")
	for _, w := range want[:3] {
		th, err := s.GetThread(ctx, g, w.ID)
		ok(t, err, "get thread")
		same(t, th, &w, "get thread "+w.ID)
	}
	_, err = s.GetThread(ctx, g, "nope")
	isErr(t, err, store.ErrNotFound, "get missing thread")

	mid := want[len(want)/2].LatestMessageAt
	for _, tc := range []struct {
		name string
		q    store.ThreadQuery
	}{
		{"all", store.ThreadQuery{}},
		{"subject", store.ThreadQuery{Subject: "LUNCH"}},
		{"subject percent", store.ThreadQuery{Subject: "100%"}},
		{"any email", store.ThreadQuery{AnyEmail: []string{"RARE@example.com"}}},
		{"any email two", store.ThreadQuery{AnyEmail: []string{"rare@example.com", "nobody@example.com"}}},
		{"in sent", store.ThreadQuery{FolderIDs: []string{"f-sent"}}},
		{"in archive or sent", store.ThreadQuery{FolderIDs: []string{"f-archive", "f-sent"}}},
		{"in empty", store.ThreadQuery{FolderIDs: []string{"f-empty"}}},
		{"unread", store.ThreadQuery{Unread: ptr(true)}},
		{"read", store.ThreadQuery{Unread: ptr(false)}},
		{"starred", store.ThreadQuery{Starred: ptr(true)}},
		{"not starred", store.ThreadQuery{Starred: ptr(false)}},
		{"before", store.ThreadQuery{LatestBefore: mid}},
		{"after", store.ThreadQuery{LatestAfter: mid}},
		{"email + folder", store.ThreadQuery{AnyEmail: []string{"rare@example.com"}, FolderIDs: []string{"f-archive"}}},
		{"folder + unread + after", store.ThreadQuery{FolderIDs: []string{"f-inbox"}, Unread: ptr(true), LatestAfter: at(2)}},
		{"subject + starred", store.ThreadQuery{Subject: "report", Starred: ptr(false)}},
	} {
		q := tc.q
		q.GrantID = g
		exp := []string{}
		for _, th := range want {
			if matchThread(th, q) {
				exp = append(exp, th.ID)
			}
		}
		if tc.name != "all" && len(exp) == len(want) {
			t.Fatalf("%s: the model selects every thread", tc.name)
		}
		got, err := s.ListThreads(ctx, q)
		ok(t, err, tc.name)
		same(t, threadIDs(got), exp, tc.name)
		for _, limit := range []int{1, 4} {
			pq := q
			pq.Limit = limit
			var ids []string
			for range len(want) + 2 {
				page, err := s.ListThreads(ctx, pq)
				ok(t, err, tc.name+" page")
				ids = append(ids, threadIDs(page)...)
				if len(page) < limit {
					break
				}
				last := page[len(page)-1]
				pq.AfterDate, pq.AfterID = last.LatestMessageAt, last.ID
			}
			if ids == nil {
				ids = []string{}
			}
			same(t, ids, exp, fmt.Sprintf("%s, pages of %d", tc.name, limit))
		}
	}

	// Field-specific addresses and attachments are properties of the
	// thread's messages: the model is computed from the messages.
	// addr picks an address of that field that some threads have and
	// some do not, so the filter is seen to select.
	addr := func(pick func(store.Message) []store.Participant) string {
		for _, m := range c.msgs {
			for _, p := range pick(m) {
				threads := map[string]bool{}
				for _, o := range c.msgs {
					if hasEmail(pick(o), []string{p.Email}) {
						threads[o.ThreadID] = true
					}
				}
				if len(threads) < len(want) {
					return p.Email
				}
			}
		}
		t.Fatal("corpus has no selective address")
		return ""
	}
	from, to := addr(func(m store.Message) []store.Participant { return m.From }), addr(func(m store.Message) []store.Participant { return m.To })
	hasFileAttachment := func(m store.Message) bool {
		return slices.ContainsFunc(m.Attachments, func(a store.Attachment) bool { return !a.IsInline })
	}
	for _, tc := range []struct {
		name string
		q    store.ThreadQuery
		pick func(store.Message) bool
	}{
		{"from", store.ThreadQuery{From: []string{strings.ToUpper(from)}}, func(m store.Message) bool { return hasEmail(m.From, []string{from}) }},
		{"to", store.ThreadQuery{To: []string{to}}, func(m store.Message) bool { return hasEmail(m.To, []string{to}) }},
		{"has attachment", store.ThreadQuery{HasAttachment: ptr(true)}, hasFileAttachment},
	} {
		q := tc.q
		q.GrantID = g
		threads := map[string]bool{}
		for _, m := range c.msgs {
			if tc.pick(m) {
				threads[m.ThreadID] = true
			}
		}
		exp := []string{}
		for _, th := range want {
			if threads[th.ID] {
				exp = append(exp, th.ID)
			}
		}
		if len(exp) == len(want) {
			t.Fatalf("%s: the model selects every thread", tc.name)
		}
		got, err := s.ListThreads(ctx, q)
		ok(t, err, tc.name)
		same(t, threadIDs(got), exp, tc.name)
	}
}

func testThreadAggregates(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	getThread := func(id string) *store.Thread {
		t.Helper()
		th, err := s.GetThread(ctx, g, id)
		ok(t, err, "get thread "+id)
		return th
	}
	root := mkMessage(g, "m-root", "t-1", 10)
	root.Subject, root.SubjectKey = "Plans", "plans"
	root.From = []store.Participant{{Email: "alice@example.com"}}
	root.To = []store.Participant{{Name: "Bob", Email: "bob@example.com"}}
	apply(t, s, &store.MailBatch{GrantID: g, Folders: []store.Folder{mkFolder(g, "f-in", "INBOX"), mkFolder(g, "f-sent", "Sent")},
		Messages: []store.Message{root}, Locations: []store.Location{loc("m-root", "f-in", 1, `\Seen`)}})
	same(t, getThread("t-1"), &store.Thread{
		ID: "t-1", GrantID: g, Subject: "Plans", SubjectKey: "plans", MessageIDs: []string{"m-root"}, Folders: []string{"f-in"},
		Participants: []store.Participant{{Email: "alice@example.com"}, {Name: "Bob", Email: "bob@example.com"}},
		Snippet:      "snippet m-root", LatestMessageID: "m-root",
		EarliestMessageAt: normalized(at(10)), LatestMessageAt: normalized(at(10)),
	}, "thread of one message")

	// A reply (later), and an older message arriving late.
	reply := mkMessage(g, "m-reply", "t-1", 20)
	reply.Subject, reply.SubjectKey = "Re: Plans", "plans"
	reply.From = []store.Participant{{Name: "Bob B.", Email: "BOB@example.com"}}
	reply.To = []store.Participant{{Name: "Alice", Email: "alice@example.com"}}
	reply.Cc = []store.Participant{{Email: "carol@example.com"}}
	reply.Attachments = []store.Attachment{{ID: "a", Filename: "f.txt", Part: "2"}}
	early := mkMessage(g, "m-early", "t-1", 5)
	early.Subject, early.SubjectKey = "Fwd: Plans", "plans"
	early.From = []store.Participant{{Email: "dave@example.com"}}
	early.To = nil
	apply(t, s, &store.MailBatch{GrantID: g, Messages: []store.Message{reply, early},
		Locations: []store.Location{loc("m-reply", "f-in", 2, `\Flagged`), loc("m-early", "f-sent", 1, `\Seen`)}})
	same(t, getThread("t-1"), &store.Thread{
		ID: "t-1", GrantID: g, Subject: "Fwd: Plans", SubjectKey: "plans",
		MessageIDs: []string{"m-early", "m-root", "m-reply"}, Folders: []string{"f-in", "f-sent"},
		Participants: []store.Participant{{Email: "dave@example.com"}, {Name: "Alice", Email: "alice@example.com"},
			{Name: "Bob", Email: "bob@example.com"}, {Email: "carol@example.com"}},
		Unread: true, Starred: true, HasAttachments: true,
		Snippet: "snippet m-reply", LatestMessageID: "m-reply",
		EarliestMessageAt: normalized(at(5)), LatestMessageAt: normalized(at(20)),
	}, "thread of three messages")

	// Moving a message to another thread updates both.
	reply.ThreadID = "t-2"
	apply(t, s, &store.MailBatch{GrantID: g, Messages: []store.Message{reply}})
	th := getThread("t-1")
	same(t, th.MessageIDs, []string{"m-early", "m-root"}, "t-1 after move")
	if th.Unread || th.Starred || th.HasAttachments || th.LatestMessageID != "m-root" || !th.LatestMessageAt.Equal(normalized(at(10))) {
		t.Fatalf("t-1 after move: %+v", th)
	}
	same(t, getThread("t-2").MessageIDs, []string{"m-reply"}, "t-2 after move")

	// Removing the last message deletes the thread.
	apply(t, s, &store.MailBatch{GrantID: g, RemovedLocations: []store.LocationKey{{FolderID: "f-in", UID: 2}}, DeleteOrphans: true})
	_, err := s.GetThread(ctx, g, "t-2")
	isErr(t, err, store.ErrNotFound, "empty thread")
	ts, err := s.ListThreads(ctx, store.ThreadQuery{GrantID: g, AnyEmail: []string{"carol@example.com"}})
	ok(t, err, "threads by carol")
	if len(ts) != 0 {
		t.Fatalf("deleted thread still listed: %+v", ts)
	}
	// A date change moves the thread's latest activity.
	root.Date = at(30)
	apply(t, s, &store.MailBatch{GrantID: g, Messages: []store.Message{root}})
	th = getThread("t-1")
	if !th.LatestMessageAt.Equal(normalized(at(30))) || th.LatestMessageID != "m-root" {
		t.Fatalf("after date change: %+v", th)
	}
	ts, err = s.ListThreads(ctx, store.ThreadQuery{GrantID: g, FolderIDs: []string{"f-in"}, LatestAfter: at(25)})
	ok(t, err, "threads in f-in after date change")
	same(t, threadIDs(ts), []string{"t-1"}, "thread_folders follow the latest date")
	ms := listMessages(t, s, store.MessageQuery{GrantID: g, FolderIDs: []string{"f-in"}, ReceivedAfter: at(25)})
	same(t, messageIDs(ms), []string{"m-root"}, "locations follow the message date")
	ms = listMessages(t, s, store.MessageQuery{GrantID: g, From: []string{"alice@example.com"}, ReceivedAfter: at(25)})
	same(t, messageIDs(ms), []string{"m-root"}, "addresses follow the message date")

	// Messages without a thread id belong to no thread.
	loner := mkMessage(g, "m-loner", "", 40)
	apply(t, s, &store.MailBatch{GrantID: g, Messages: []store.Message{loner}, Locations: []store.Location{loc("m-loner", "f-in", 9)}})
	ts, err = s.ListThreads(ctx, store.ThreadQuery{GrantID: g})
	ok(t, err, "all threads")
	same(t, threadIDs(ts), []string{"t-1"}, "threads")
}

func testThreadLookups(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	a := mkMessage(g, "m-a", "t-a", 1) // <m-a@example.com>
	b := mkMessage(g, "m-b", "t-b", 2)
	b.InReplyTo, b.References = "<m-a@example.com>", []string{"<root@example.com>", "<m-a@example.com>"}
	c := mkMessage(g, "m-c", "t-c", 0) // refers to b but is older
	c.References = []string{"<m-b@example.com>"}
	a.SubjectKey, b.SubjectKey, c.SubjectKey = "plans", "plans", "other"
	apply(t, s, &store.MailBatch{GrantID: g, Folders: []store.Folder{mkFolder(g, "f", "F")}, Messages: []store.Message{a, b, c},
		Locations: []store.Location{loc("m-a", "f", 1), loc("m-b", "f", 2), loc("m-c", "f", 3)}})
	for _, tc := range []struct {
		ids  []string
		want string
	}{
		{[]string{"<m-a@example.com>"}, "t-a"},  // a's own header beats b's reference
		{[]string{"<m-b@example.com>"}, "t-b"},  // b's own header beats c's (older) reference
		{[]string{"<root@example.com>"}, "t-b"}, // only referenced
		{[]string{"<unknown>", "<m-b@example.com>"}, "t-b"},
		{[]string{"<m-b@example.com>", "<m-a@example.com>"}, "t-b"}, // the first id that matches wins
		{[]string{"", "<unknown>"}, ""},
		{nil, ""},
	} {
		got, err := s.ThreadIDByMessageIDs(ctx, g, tc.ids)
		ok(t, err, "thread by message ids")
		if got != tc.want {
			t.Fatalf("ThreadIDByMessageIDs(%q) = %q, want %q", tc.ids, got, tc.want)
		}
	}

	for _, tc := range []struct {
		key   string
		since time.Time
		want  string
	}{
		{"plans", at(-10), "t-b"}, // the most recent
		{"plans", at(1), "t-b"},
		{"plans", at(2), ""}, // latest must be after since
		{"other", at(-1), "t-c"},
		{"", at(-100), ""},
		{"nope", at(-100), ""},
	} {
		got, err := s.ThreadIDBySubject(ctx, g, tc.key, tc.since)
		ok(t, err, "thread by subject")
		if got != tc.want {
			t.Fatalf("ThreadIDBySubject(%q, %v) = %q, want %q", tc.key, tc.since, got, tc.want)
		}
	}
}

func testListChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	g1 := mailGrant(t, s, "app", "grant-1")
	g2 := mailGrant(t, s, "app", "grant-2")
	var want []string
	for i := range 5 {
		for _, g := range []string{g1, g2} {
			var cs []store.Change
			for j := range 3 {
				cs = append(cs, store.Change{ObjectType: "message", ObjectID: fmt.Sprintf("m-%d-%d", i, j), Action: "created"})
				want = append(want, fmt.Sprintf("%s message m-%d-%d created", g, i, j))
			}
			apply(t, s, &store.MailBatch{GrantID: g, Changes: cs})
		}
	}
	all := changesOf(t, s)
	same(t, changeKeys(all), want, "all changes, oldest first")
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Fatalf("ids not increasing: %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	// Pages by cursor.
	var paged []store.Change
	cursor := int64(0)
	for {
		page, err := s.ListChanges(ctx, cursor, 4)
		ok(t, err, "page of changes")
		if len(page) > 4 {
			t.Fatalf("page of %d", len(page))
		}
		paged = append(paged, page...)
		if len(page) < 4 {
			break
		}
		cursor = page[len(page)-1].ID
	}
	same(t, paged, all, "paged changes")
	rest, err := s.ListChanges(ctx, all[len(all)-1].ID, 10)
	ok(t, err, "after the last")
	if rest == nil || len(rest) != 0 {
		t.Fatalf("after the last change: %#v", rest)
	}
	// A given CreatedAt is kept.
	apply(t, s, &store.MailBatch{GrantID: g1, Changes: []store.Change{{ObjectType: "thread", ObjectID: "t", Action: "updated", CreatedAt: at(0)}}})
	last, err := s.ListChanges(ctx, all[len(all)-1].ID, 0)
	ok(t, err, "last")
	if len(last) != 1 || !last[0].CreatedAt.Equal(normalized(at(0))) {
		t.Fatalf("given CreatedAt: %+v", last)
	}
	// Ids are never reused after the newest rows go (here with their
	// grant).
	ok(t, s.DeleteGrant(ctx, "app", g1), "delete grant")
	apply(t, s, &store.MailBatch{GrantID: g2, Changes: []store.Change{{ObjectType: "folder", ObjectID: "f", Action: "created"}}})
	after, err := s.ListChanges(ctx, last[0].ID, 0)
	ok(t, err, "after deleting")
	if len(after) != 1 || after[0].GrantID != g2 {
		t.Fatalf("new change after the deleted newest: %+v", after)
	}
}

func testMailTenantIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mailGrant(t, s, "app-a", "grant-a")
	b := mailGrant(t, s, "app-b", "grant-b")
	m := mkMessage(a, "m-a", "t-a", 1)
	m.SubjectKey = "secret"
	orphan := mkMessage(a, "m-orphan", "t-o", 2)
	apply(t, s, &store.MailBatch{GrantID: a, Folders: []store.Folder{mkFolder(a, "f-a", "INBOX")},
		Messages: []store.Message{m, orphan}, Locations: []store.Location{loc("m-a", "f-a", 1, `\Seen`)},
		Changes: []store.Change{{ObjectType: "message", ObjectID: "m-a", Action: "created"}}})
	snapshot := func() string {
		fs, err := s.ListFolders(ctx, a)
		ok(t, err, "folders of a")
		ms := listMessages(t, s, store.MessageQuery{GrantID: a})
		ts, err := s.ListThreads(ctx, store.ThreadQuery{GrantID: a})
		ok(t, err, "threads of a")
		locs, err := s.MessageLocations(ctx, a, "m-a")
		ok(t, err, "locations of a")
		o, err := s.GetMessage(ctx, a, "m-orphan")
		ok(t, err, "orphan of a")
		return fmt.Sprintf("%+v %+v %+v %+v %+v", fs, ms, ts, locs, o)
	}
	before := snapshot()

	// Reads under B see nothing of A.
	fs, err := s.ListFolders(ctx, b)
	ok(t, err, "B folders")
	if len(fs) != 0 {
		t.Fatalf("B sees folders %+v", fs)
	}
	_, err = s.GetFolder(ctx, b, "f-a")
	isErr(t, err, store.ErrNotFound, "B gets A's folder")
	uids, err := s.FolderUIDs(ctx, b, "f-a")
	ok(t, err, "B uids")
	if len(uids) != 0 {
		t.Fatalf("B sees uids %v", uids)
	}
	_, err = s.GetMessage(ctx, b, "m-a")
	isErr(t, err, store.ErrNotFound, "B gets A's message")
	ms, err := s.GetMessagesByIdentity(ctx, b, []string{m.IdentityKey})
	ok(t, err, "B by identity")
	if len(ms) != 0 {
		t.Fatal("B finds A's message by identity")
	}
	for _, q := range []store.MessageQuery{{}, {IDs: []string{"m-a"}}, {FolderIDs: []string{"f-a"}}, {FolderIDs: []string{"f-a", "x"}},
		{ThreadID: "t-a"}, {AnyEmail: []string{"sender@example.com"}}, {From: []string{"sender@example.com"}}, {Subject: "subject"}, {Unread: ptr(false)}} {
		q.GrantID = b
		if got := listMessages(t, s, q); len(got) != 0 {
			t.Fatalf("B lists A's messages with %+v", q)
		}
	}
	locs, err := s.MessageLocations(ctx, b, "m-a")
	ok(t, err, "B locations")
	if len(locs) != 0 {
		t.Fatal("B sees A's locations")
	}
	ids, err := s.MessageIDsAt(ctx, b, "f-a", []uint32{1})
	ok(t, err, "B ids at")
	if len(ids) != 0 {
		t.Fatal("B maps A's uids")
	}
	if id, err := s.ThreadIDByMessageIDs(ctx, b, []string{m.MessageIDHeader}); err != nil || id != "" {
		t.Fatalf("B finds A's thread by message id: %q %v", id, err)
	}
	if id, err := s.ThreadIDBySubject(ctx, b, "secret", at(-100)); err != nil || id != "" {
		t.Fatalf("B finds A's thread by subject: %q %v", id, err)
	}
	for _, q := range []store.ThreadQuery{{}, {FolderIDs: []string{"f-a"}}, {AnyEmail: []string{"sender@example.com"}}} {
		q.GrantID = b
		ts, err := s.ListThreads(ctx, q)
		ok(t, err, "B threads")
		if len(ts) != 0 {
			t.Fatalf("B lists A's threads with %+v", q)
		}
	}
	_, err = s.GetThread(ctx, b, "t-a")
	isErr(t, err, store.ErrNotFound, "B gets A's thread")

	// Writes under B cannot reach A's rows.
	isErr(t, s.ApplyMailBatch(ctx, &store.MailBatch{GrantID: b, Folders: []store.Folder{mkFolder(b, "f-b", "INBOX")},
		Locations: []store.Location{loc("m-a", "f-b", 1)}}), store.ErrNotFound, "B links A's message")
	isErr(t, s.ApplyMailBatch(ctx, &store.MailBatch{GrantID: b, Messages: []store.Message{mkMessage(b, "m-b", "t-b", 0)},
		Locations: []store.Location{loc("m-b", "f-a", 5)}}), store.ErrNotFound, "B writes into A's folder")
	apply(t, s, &store.MailBatch{GrantID: b,
		DeletedFolders:   []string{"f-a"},
		ClearFolders:     []string{"f-a"},
		RemovedLocations: []store.LocationKey{{FolderID: "f-a", UID: 1}},
		FlagUpdates:      []store.FlagUpdate{{FolderID: "f-a", UID: 1, Flags: []string{`\Flagged`}}},
		DeleteOrphans:    true,
	})
	// B's own rows may reuse A's ids without touching A's.
	bm := mkMessage(b, "m-a", "t-a", 9)
	bm.IdentityKey = m.IdentityKey
	apply(t, s, &store.MailBatch{GrantID: b, Folders: []store.Folder{mkFolder(b, "f-a", "INBOX")}, Messages: []store.Message{bm},
		Locations: []store.Location{loc("m-a", "f-a", 1)}})
	if after := snapshot(); after != before {
		t.Fatalf("B's batches changed A's mail:\nbefore %s\nafter  %s", before, after)
	}
	if got := getMessage(t, s, b, "m-a"); got.GrantID != b || !got.Date.Equal(normalized(at(9))) {
		t.Fatalf("B's own m-a: %+v", got)
	}
	same(t, changeKeys(changesOf(t, s)), []string{a + " message m-a created"}, "changes")
}

func testMailGrantDeletion(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mailGrant(t, s, "app", "grant-a")
	b := mailGrant(t, s, "app", "grant-b")
	for _, g := range []string{a, b} {
		c := buildCorpus(t, s, g)
		_ = c
		apply(t, s, &store.MailBatch{GrantID: g, Changes: []store.Change{{ObjectType: "folder", ObjectID: "f-inbox", Action: "created"}}})
	}
	ok(t, s.DeleteGrant(ctx, "app", a), "delete grant")
	fs, err := s.ListFolders(ctx, a)
	ok(t, err, "folders")
	ts, err := s.ListThreads(ctx, store.ThreadQuery{GrantID: a})
	ok(t, err, "threads")
	if len(fs) != 0 || len(listMessages(t, s, store.MessageQuery{GrantID: a})) != 0 || len(ts) != 0 {
		t.Fatal("mail of a deleted grant is left")
	}
	if id, _ := s.ThreadIDByMessageIDs(ctx, a, []string{"<m000@example.com>"}); id != "" {
		t.Fatal("references of a deleted grant are left")
	}
	same(t, changeKeys(changesOf(t, s)), []string{b + " folder f-inbox created"}, "changes of the deleted grant go with it")
	if n := len(listMessages(t, s, store.MessageQuery{GrantID: b})); n != corpusSize {
		t.Fatalf("the other grant has %d messages", n)
	}
	// The grant's id can be used again from scratch.
	mailGrant(t, s, "app", a)
	buildCorpus(t, s, a)
}

// testMailRandomBatches applies random batches and compares everything the
// store derives (Unread/Starred, Folders, folder counts, threads) with a
// model after each one.
func testMailRandomBatches(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	r := rand.New(rand.NewPCG(1, 2))

	type mloc struct {
		msg   string
		flags []string
	}
	type key struct {
		folder string
		uid    uint32
	}
	folders := map[string]bool{}
	msgs := map[string]store.Message{}
	locs := map[key]mloc{}
	folderNames := []string{"f-0", "f-1", "f-2"}
	flagSets := [][]string{nil, {`\Seen`}, {`\Flagged`}, {`\Seen`, `\Flagged`}, {`\SEEN`}}
	nextUID := uint32(1)

	for round := range 60 {
		b := &store.MailBatch{GrantID: g}
		// Folders: create missing ones, sometimes delete or clear one.
		for _, f := range folderNames {
			if !folders[f] && r.IntN(2) == 0 {
				b.Folders = append(b.Folders, mkFolder(g, f, "name-"+f))
				folders[f] = true
			}
		}
		if r.IntN(8) == 0 {
			f := folderNames[r.IntN(len(folderNames))]
			if folders[f] {
				b.DeletedFolders = append(b.DeletedFolders, f)
				delete(folders, f)
				for k := range locs {
					if k.folder == f {
						delete(locs, k)
					}
				}
			}
		}
		if r.IntN(8) == 0 {
			f := folderNames[r.IntN(len(folderNames))]
			b.ClearFolders = append(b.ClearFolders, f)
			for k := range locs {
				if k.folder == f {
					delete(locs, k)
				}
			}
		}
		// Messages: new ones or updates (thread moves, date changes).
		for range r.IntN(5) {
			id := fmt.Sprintf("m%02d", r.IntN(25))
			m := mkMessage(g, id, fmt.Sprintf("t%d", r.IntN(6)), r.IntN(40))
			m.From = []store.Participant{{Email: fmt.Sprintf("p%d@example.com", r.IntN(4))}}
			if r.IntN(3) == 0 {
				m.Attachments = []store.Attachment{{ID: "a", Part: "2", IsInline: r.IntN(2) == 0}}
			}
			b.Messages = append(b.Messages, m)
			msgs[id] = m
		}
		var live []string
		for f := range folders {
			live = append(live, f)
		}
		slices.Sort(live)
		var ids []string
		for id := range msgs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		var keys []key
		for k := range locs {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b key) int { return cmp.Or(strings.Compare(a.folder, b.folder), cmp.Compare(a.uid, b.uid)) })
		// Locations: new copies, or an existing key re-pointed.
		if len(live) > 0 && len(ids) > 0 {
			for range r.IntN(6) {
				k := key{live[r.IntN(len(live))], nextUID}
				nextUID++
				if len(keys) > 0 && r.IntN(4) == 0 {
					k = keys[r.IntN(len(keys))]
				}
				if !folders[k.folder] {
					continue
				}
				l := mloc{ids[r.IntN(len(ids))], flagSets[r.IntN(len(flagSets))]}
				b.Locations = append(b.Locations, loc(l.msg, k.folder, k.uid, l.flags...))
				locs[k] = l
			}
		}
		for range r.IntN(3) {
			if len(keys) > 0 {
				k := keys[r.IntN(len(keys))]
				b.RemovedLocations = append(b.RemovedLocations, store.LocationKey{FolderID: k.folder, UID: k.uid})
				delete(locs, k)
			}
		}
		for range r.IntN(4) {
			if len(keys) > 0 {
				k := keys[r.IntN(len(keys))]
				fl := flagSets[r.IntN(len(flagSets))]
				b.FlagUpdates = append(b.FlagUpdates, store.FlagUpdate{FolderID: k.folder, UID: k.uid, Flags: fl})
				if l, ok := locs[k]; ok {
					l.flags = fl
					locs[k] = l
				}
			}
		}
		if r.IntN(4) == 0 {
			b.DeleteOrphans = true
			for id := range msgs {
				if !slices.ContainsFunc(slices.Collect(maps.Values(locs)), func(l mloc) bool { return l.msg == id }) {
					delete(msgs, id)
				}
			}
		}
		ok(t, s.ApplyMailBatch(ctx, b), fmt.Sprintf("round %d", round))

		// The model's view.
		want := map[string]store.Message{}
		for id, m := range msgs {
			w := m
			w.Unread, w.Starred, w.Folders = true, false, []string{}
			for k, l := range locs {
				if l.msg != id {
					continue
				}
				if hasFlagFold(l.flags, `\Seen`) {
					w.Unread = false
				}
				if hasFlagFold(l.flags, `\Flagged`) {
					w.Starred = true
				}
				if !slices.Contains(w.Folders, k.folder) {
					w.Folders = append(w.Folders, k.folder)
				}
			}
			slices.Sort(w.Folders)
			want[id] = w
		}
		got := listMessages(t, s, store.MessageQuery{GrantID: g})
		if len(got) != len(want) {
			t.Fatalf("round %d: %d messages, want %d", round, len(got), len(want))
		}
		var wantList []store.Message
		for _, m := range got {
			w, found := want[m.ID]
			if !found {
				t.Fatalf("round %d: unexpected message %s", round, m.ID)
			}
			if m.Unread != w.Unread || m.Starred != w.Starred || !slices.Equal(m.Folders, w.Folders) || m.ThreadID != w.ThreadID ||
				!m.Date.Equal(normalized(w.Date)) {
				t.Fatalf("round %d: message %s\n got  unread %v starred %v folders %v thread %s date %v\n want unread %v starred %v folders %v thread %s date %v",
					round, m.ID, m.Unread, m.Starred, m.Folders, m.ThreadID, m.Date, w.Unread, w.Starred, w.Folders, w.ThreadID, normalized(w.Date))
			}
			w.Date, w.SentAt = normalized(w.Date), normalized(w.SentAt)
			wantList = append(wantList, w)
		}
		counts := map[string][2]int{}
		for f := range folders {
			var total, unread int
			for _, w := range want {
				if slices.Contains(w.Folders, f) {
					total++
					if w.Unread {
						unread++
					}
				}
			}
			counts[f] = [2]int{total, unread}
		}
		same(t, folderCounts(t, s, g), counts, fmt.Sprintf("round %d: folder counts", round))
		for f := range folders {
			n := len(listMessages(t, s, store.MessageQuery{GrantID: g, FolderIDs: []string{f}}))
			if n != counts[f][0] {
				t.Fatalf("round %d: %d messages listed in %s, count %d", round, n, f, counts[f][0])
			}
		}
		wantThreads := expectThreads(wantList)
		gotThreads, err := s.ListThreads(ctx, store.ThreadQuery{GrantID: g})
		ok(t, err, "threads")
		if wantThreads == nil {
			wantThreads = []store.Thread{}
		}
		same(t, gotThreads, wantThreads, fmt.Sprintf("round %d: threads", round))
	}
}

// testMailConcurrentBatches applies batches of one grant from several
// goroutines, all touching the same messages: whatever order they commit
// in, the derived state must match the final locations.
func testMailConcurrentBatches(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	b := &store.MailBatch{GrantID: g, Folders: []store.Folder{mkFolder(g, "f-a", "A"), mkFolder(g, "f-b", "B")}}
	for i := range 6 {
		id := fmt.Sprintf("m-%d", i)
		b.Messages = append(b.Messages, mkMessage(g, id, fmt.Sprintf("t-%d", i%2), i))
		b.Locations = append(b.Locations, loc(id, "f-a", uint32(i+1)))
	}
	apply(t, s, b)
	const workers, rounds = 6, 15
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for range rounds {
				uid := uint32(r.IntN(6) + 1)
				var flags []string
				if r.IntN(2) == 0 {
					flags = []string{`\Seen`}
				}
				b := &store.MailBatch{GrantID: g, FlagUpdates: []store.FlagUpdate{{FolderID: "f-a", UID: uid, Flags: flags}}}
				// Copies in f-b come and go.
				if r.IntN(2) == 0 {
					b.Locations = []store.Location{loc(fmt.Sprintf("m-%d", r.IntN(6)), "f-b", uint32(r.IntN(4)+1), `\Flagged`)}
				} else {
					b.RemovedLocations = []store.LocationKey{{FolderID: "f-b", UID: uint32(r.IntN(4) + 1)}}
				}
				if errs[w] = s.ApplyMailBatch(ctx, b); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		ok(t, err, fmt.Sprintf("worker %d", w))
	}
	all := listMessages(t, s, store.MessageQuery{GrantID: g})
	counts := map[string][2]int{"f-a": {}, "f-b": {}}
	for _, m := range all {
		locs, err := s.MessageLocations(ctx, g, m.ID)
		ok(t, err, "locations")
		unread, starred := true, false
		for _, l := range locs {
			unread = unread && !hasFlagFold(l.Flags, `\Seen`)
			starred = starred || hasFlagFold(l.Flags, `\Flagged`)
		}
		if m.Unread != unread || m.Starred != starred {
			t.Fatalf("%s: unread %v starred %v, locations say %v %v", m.ID, m.Unread, m.Starred, unread, starred)
		}
		for _, f := range m.Folders {
			c := counts[f]
			c[0]++
			if unread {
				c[1]++
			}
			counts[f] = c
		}
	}
	same(t, folderCounts(t, s, g), counts, "counts after concurrent batches")
	ts, err := s.ListThreads(ctx, store.ThreadQuery{GrantID: g})
	ok(t, err, "threads")
	for i := range all {
		all[i].CreatedAt, all[i].UpdatedAt = time.Time{}, time.Time{}
	}
	same(t, ts, expectThreads(all), "threads after concurrent batches")
}

func hasFlagFold(flags []string, f string) bool {
	return slices.ContainsFunc(flags, func(x string) bool { return strings.EqualFold(x, f) })
}
