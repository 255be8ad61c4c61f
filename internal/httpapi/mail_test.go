package httpapi_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/orchard-mail/orchard/internal/mailbox"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
)

// fakeMailbox serves sections from memory ("uid/section" → bytes); the
// real IMAP path is covered by the SDK tests.
type fakeMailbox struct {
	mu       sync.Mutex
	sections map[string]string
	calls    []string
	nextUID  uint32
}

// Append keeps the message as section "<uid>/" of a new UID (from 1000),
// in a folder of UIDVALIDITY 7 like the seeded ones.
func (f *fakeMailbox) Append(_ context.Context, _ provider.Credentials, folder string, flags []imap.Flag, _ time.Time, msg []byte) (uint32, uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nextUID == 0 {
		f.nextUID = 1000
	}
	f.nextUID++
	f.sections[fmt.Sprintf("%d/", f.nextUID)] = string(msg)
	f.calls = append(f.calls, fmt.Sprintf("append %s/%d %v", folder, f.nextUID, flags))
	return f.nextUID, 7, nil
}

func (f *fakeMailbox) Replace(ctx context.Context, c provider.Credentials, folder string, _, oldUID uint32, flags []imap.Flag, date time.Time, msg []byte) (uint32, uint32, error) {
	uid, v, err := f.Append(ctx, c, folder, flags, date, msg)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sections, fmt.Sprintf("%d/", oldUID))
	f.calls = append(f.calls, fmt.Sprintf("expunge %s/%d", folder, oldUID))
	return uid, v, err
}

func (f *fakeMailbox) FindByMessageID(_ context.Context, _ provider.Credentials, folder, messageID string) ([]uint32, uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "find "+folder)
	return nil, 7, nil
}

func (f *fakeMailbox) AppendUnlessPresent(ctx context.Context, c provider.Credentials, folder, messageID string, flags []imap.Flag, msg []byte) (uint32, uint32, error) {
	f.mu.Lock()
	f.calls = append(f.calls, "find "+folder)
	f.mu.Unlock()
	return f.Append(ctx, c, folder, flags, time.Time{}, msg)
}

// callList returns the calls made so far.
func (f *fakeMailbox) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeMailbox) FetchSection(_ context.Context, _ provider.Credentials, _ string, _, uid uint32, section string, fn func(io.Reader) error) error {
	f.mu.Lock()
	body, ok := f.sections[fmt.Sprintf("%d/%s", uid, section)]
	f.mu.Unlock()
	if !ok {
		return &provider.Error{Kind: provider.KindUnavailable, Service: "imap", Text: "gone"}
	}
	return fn(strings.NewReader(body))
}

func (f *fakeMailbox) SetFlags(_ context.Context, _ provider.Credentials, _ string, _, uid uint32, add, remove []imap.Flag) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%d +%v -%v", uid, add, remove))
	return nil
}

func (f *fakeMailbox) Move(_ context.Context, _ provider.Credentials, folder string, _, uid uint32, dest string) (uint32, uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("move %s/%d → %s", folder, uid, dest))
	return 100 + uid, 7, nil
}

func (f *fakeMailbox) Expunge(_ context.Context, _ provider.Credentials, folder string, _, uid uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("expunge %s/%d", folder, uid))
	return nil
}

func (f *fakeMailbox) CreateFolder(_ context.Context, _ provider.Credentials, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "create "+name)
	return nil
}

func (f *fakeMailbox) RenameFolder(_ context.Context, _ provider.Credentials, from, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "rename "+from+" → "+to)
	return nil
}

func (f *fakeMailbox) DeleteFolder(_ context.Context, _ provider.Credentials, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "delete "+name)
	return nil
}

func (f *fakeMailbox) Search(_ context.Context, _ provider.Credentials, _ string, _ uint32, query string) ([]uint32, error) {
	if _, err := mailbox.ParseSearch(query); err != nil {
		return nil, &mailbox.SearchError{Err: err}
	}
	return []uint32{2, 4}, nil
}

// seedMail makes a grant with n messages in INBOX (UID i+1, one minute
// apart, odd ones unread) and one attachment on message 1.
func (h *harness) seedMail(n int) (grantID string) {
	h.t.Helper()
	h.want(h.do("POST", "/v3/connectors", h.keyA, `{"provider":"icloud"}`), 201, "")
	r := h.do("POST", "/v3/connect/custom", h.keyA, `{"provider":"icloud","settings":{"username":"m@icloud.com","password":"p"}}`)
	h.want(r, 201, "")
	grantID = r.data()["id"].(string)
	b := &store.MailBatch{GrantID: grantID, Folders: []store.Folder{{ID: "f-inbox", GrantID: grantID, Name: "INBOX", Role: store.RoleInbox, UIDValidity: 7}}}
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		m := store.Message{ID: fmt.Sprintf("m%02d", i), GrantID: grantID, ThreadID: "t1", IdentityKey: fmt.Sprintf("mid:%d@x", i),
			MessageIDHeader: fmt.Sprintf("%d@x", i), Subject: fmt.Sprintf("Subject %d", i), Date: base.Add(time.Duration(i) * time.Minute),
			From: []store.Participant{{Name: "Ann", Email: fmt.Sprintf("ann%d@example.test", i%2)}}, Body: "<p>hi</p>", Snippet: "hi",
			Headers: []byte(fmt.Sprintf("Message-ID: <%d@x>\r\nSubject: Subject %d\r\nX-Long: a\r\n b\r\n\r\n", i, i))}
		if i == 1 {
			m.Attachments = []store.Attachment{{ID: "a1", Filename: "€ rates.pdf", ContentType: "application/pdf", Size: 5, Part: "2", Encoding: "base64"}}
		}
		flags := []string{`\Seen`}
		if i%2 == 1 {
			flags = nil
		}
		b.Messages = append(b.Messages, m)
		b.Locations = append(b.Locations, store.Location{MessageID: m.ID, FolderID: "f-inbox", UID: uint32(i), Flags: flags})
	}
	if err := h.st.ApplyMailBatch(context.Background(), b); err != nil {
		h.t.Fatal(err)
	}
	h.mbox.sections["1/2"] = "aGVs\r\nbG8=\r\n" // "hello", base64 wrapped like MIME
	h.mbox.sections["1/"] = "Subject: Subject 1\r\n\r\nhi\r\n"
	return grantID
}

func TestMessagesPaginationAndFilters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(7)
	// Keyset pages of 3: newest first, no duplicates, no gaps.
	var ids []string
	path := "/v3/grants/" + g + "/messages?limit=3"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		r := h.do("GET", path, h.keyA, "")
		h.want(r, 200, "")
		if len(r.list()) > 3 {
			t.Fatalf("page of %d > limit", len(r.list()))
		}
		for _, m := range r.list() {
			ids = append(ids, m.(map[string]any)["id"].(string))
		}
		next, _ := r.body["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/v3/grants/" + g + "/messages?limit=3&page_token=" + next
	}
	if got := strings.Join(ids, ","); got != "m07,m06,m05,m04,m03,m02,m01" {
		t.Fatalf("pages gave %s", got)
	}
	count := func(q string) int {
		r := h.do("GET", "/v3/grants/"+g+"/messages?"+q, h.keyA, "")
		h.want(r, 200, "")
		return len(r.list())
	}
	for q, want := range map[string]int{
		"unread=true": 4, "unread=false": 3, "has_attachment=true": 1, "subject=subject%203": 1,
		"from=ann1@example.test": 4, "any_email=nobody@x.test,ann0@example.test": 3, "in=INBOX": 7, "in=f-inbox": 7,
		"in=nonexistent": 0, "thread_id=t1": 7, "received_after=" + fmt.Sprint(time.Date(2026, 11, 1, 12, 4, 0, 0, time.UTC).Unix()): 3,
		"search_query_native=SUBJECT%20x": 2,
	} {
		if got := count(q); got != want {
			t.Errorf("%s: %d messages, want %d", q, got, want)
		}
	}
	h.want(h.do("GET", "/v3/grants/"+g+"/messages?unread=maybe", h.keyA, ""), 400, "invalid_request_error")
	h.want(h.do("GET", "/v3/grants/"+g+"/messages?fields=everything", h.keyA, ""), 400, "invalid_request_error")
	h.want(h.do("GET", "/v3/grants/"+g+"/messages?search_query_native=FROBNICATE", h.keyA, ""), 400, "invalid_request_error")
	h.want(h.do("GET", "/v3/grants/"+g+"/messages?limit=0", h.keyA, ""), 400, "invalid_request_error")
	many := strings.Repeat("to=a@x.test&", 101)
	h.want(h.do("GET", "/v3/grants/"+g+"/messages?"+many, h.keyA, ""), 400, "invalid_request_error")
	// Another application cannot read this grant's mail.
	h.want(h.do("GET", "/v3/grants/"+g+"/messages", h.keyB, ""), 404, "not_found_error")
}

func TestMessageFieldsAndSelect(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(2)
	r := h.do("GET", "/v3/grants/"+g+"/messages/m01?select=id,subject", h.keyA, "")
	if d := r.data(); len(d) != 2 || d["subject"] != "Subject 1" {
		t.Fatalf("select: %s", r.raw)
	}
	r = h.do("GET", "/v3/grants/"+g+"/messages/m01?fields=include_headers", h.keyA, "")
	hs, _ := r.data()["headers"].([]any)
	if len(hs) != 3 || hs[2].(map[string]any)["value"] != "a b" {
		t.Fatalf("headers: %s", r.raw)
	}
	r = h.do("GET", "/v3/grants/"+g+"/messages/m01?fields=include_basic_headers", h.keyA, "")
	if hs, _ := r.data()["headers"].([]any); len(hs) != 1 {
		t.Fatalf("basic headers: %s", r.raw)
	}
	r = h.do("GET", "/v3/grants/"+g+"/messages/m01?fields=raw_mime", h.keyA, "")
	raw, _ := base64.URLEncoding.DecodeString(r.data()["raw_mime"].(string))
	if string(raw) != "Subject: Subject 1\r\n\r\nhi\r\n" || r.data()["subject"] != nil {
		t.Fatalf("raw_mime: %s", r.raw)
	}
	h.want(h.do("GET", "/v3/grants/"+g+"/messages/nope", h.keyA, ""), 404, "not_found_error")
	// The message's copy is gone on the server: a clear provider error.
	r = h.do("GET", "/v3/grants/"+g+"/messages/m02?fields=raw_mime", h.keyA, "")
	h.want(r, 503, "provider_error")
	if !strings.Contains(r.errMsg(), "(gone)") {
		t.Fatalf("the server's reason is not in the message: %q", r.errMsg())
	}
}

func TestAttachments(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(2)
	r := h.do("GET", "/v3/grants/"+g+"/attachments/a1?message_id=m01", h.keyA, "")
	if d := r.data(); d["filename"] != "€ rates.pdf" || d["size"] != float64(5) || d["content_type"] != "application/pdf" {
		t.Fatalf("attachment: %s", r.raw)
	}
	h.want(h.do("GET", "/v3/grants/"+g+"/attachments/a1", h.keyA, ""), 400, "invalid_request_error")
	h.want(h.do("GET", "/v3/grants/"+g+"/attachments/a1?message_id=m02", h.keyA, ""), 404, "not_found_error")
	req, _ := http.NewRequest("GET", h.url+"/v3/grants/"+g+"/attachments/a1/download?message_id=m01", nil)
	req.Header.Set("Authorization", "Bearer "+h.keyA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" || resp.Header.Get("Content-Type") != "application/pdf" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "filename*=utf-8''%E2%82%AC%20rates.pdf") {
		t.Fatalf("download: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestFoldersAndThreads(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(3)
	r := h.do("GET", "/v3/grants/"+g+"/folders", h.keyA, "")
	if len(r.list()) != 1 {
		t.Fatalf("folders: %s", r.raw)
	}
	f := r.list()[0].(map[string]any)
	if f["name"] != "INBOX" || f["total_count"] != float64(3) || f["unread_count"] != float64(2) || f["system_folder"] != true {
		t.Fatalf("folder: %v", f)
	}
	h.want(h.do("GET", "/v3/grants/"+g+"/folders/f-inbox", h.keyA, ""), 200, "")
	h.want(h.do("GET", "/v3/grants/"+g+"/folders/nope", h.keyA, ""), 404, "not_found_error")
	r = h.do("GET", "/v3/grants/"+g+"/threads", h.keyA, "")
	if len(r.list()) != 1 {
		t.Fatalf("threads: %s", r.raw)
	}
	th := r.list()[0].(map[string]any)
	if ids, _ := th["message_ids"].([]any); len(ids) != 3 || th["unread"] != true {
		t.Fatalf("thread: %v", th)
	}
	if latest, _ := th["latest_draft_or_message"].(map[string]any); latest["id"] != "m03" {
		t.Fatalf("latest: %v", th["latest_draft_or_message"])
	}
	h.want(h.do("GET", "/v3/grants/"+g+"/threads/t1", h.keyA, ""), 200, "")
	r = h.do("GET", "/v3/grants/"+g+"/sync", h.keyA, "")
	if r.data()["messages"] != float64(3) || r.data()["state"] != "not_running" {
		t.Fatalf("sync status: %s", r.raw)
	}
}

func TestUpdateMessageFlags(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(3) // m01 and m03 unread
	r := h.do("PUT", "/v3/grants/"+g+"/messages/m01", h.keyA, `{"unread":false,"starred":true}`)
	h.want(r, 200, "")
	if d := r.data(); d["unread"] != false || d["starred"] != true || d["id"] != "m01" {
		t.Fatalf("updated message: %s", r.raw)
	}
	if len(h.mbox.calls) != 1 || h.mbox.calls[0] != `1 +[\Seen \Flagged] -[]` {
		t.Fatalf("IMAP calls: %q", h.mbox.calls)
	}
	if f := h.do("GET", "/v3/grants/"+g+"/folders/f-inbox", h.keyA, "").data(); f["unread_count"] != float64(1) {
		t.Fatalf("folder after update: %v", f)
	}
	// Changing nothing calls nothing.
	h.want(h.do("PUT", "/v3/grants/"+g+"/messages/m01", h.keyA, `{}`), 200, "")
	if len(h.mbox.calls) != 1 {
		t.Fatalf("empty update reached IMAP: %q", h.mbox.calls)
	}
	r = h.do("PUT", "/v3/grants/"+g+"/messages/m01", h.keyA, `{"unread":true}`)
	if r.data()["unread"] != true || r.data()["starred"] != true || h.mbox.calls[1] != `1 +[] -[\Seen]` {
		t.Fatalf("mark unread: %s %q", r.raw, h.mbox.calls)
	}
	h.want(h.do("PUT", "/v3/grants/"+g+"/messages/m01", h.keyA, `{"folders":["f-inbox","f-other"]}`), 400, "invalid_request_error")
	h.want(h.do("PUT", "/v3/grants/"+g+"/messages/m01", h.keyA, `{"folders":["nope"]}`), 400, "invalid_request_error")
	h.want(h.do("PUT", "/v3/grants/"+g+"/messages/m01", h.keyA, `{"unread":"no"}`), 400, "api.invalid_request_payload")
	h.want(h.do("PUT", "/v3/grants/"+g+"/messages/nope", h.keyA, `{"unread":false}`), 404, "not_found_error")
	h.want(h.do("PUT", "/v3/grants/"+g+"/messages/m01", h.keyB, `{"unread":false}`), 404, "not_found_error")
	cs, _ := h.st.ListChanges(context.Background(), 0, 100)
	updated := 0
	for _, c := range cs {
		if c.ObjectID == "m01" && c.Action == "updated" {
			updated++
		}
	}
	if updated != 2 {
		t.Fatalf("%d updated changes for m01, want 2", updated)
	}
}

func TestMoveAndDeleteMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(2)
	if err := h.st.ApplyMailBatch(context.Background(), &store.MailBatch{GrantID: g, Folders: []store.Folder{
		{ID: "f-archive", GrantID: g, Name: "Archive", Role: store.RoleArchive, UIDValidity: 7},
		{ID: "f-trash", GrantID: g, Name: "Deleted Messages", Role: store.RoleTrash, UIDValidity: 7},
	}}); err != nil {
		t.Fatal(err)
	}
	// Move by folder id: same message id, now in Archive at the UID the server gave.
	r := h.do("PUT", "/v3/grants/"+g+"/messages/m01", h.keyA, `{"folders":["f-archive"]}`)
	h.want(r, 200, "")
	if f, _ := r.data()["folders"].([]any); r.data()["id"] != "m01" || len(f) != 1 || f[0] != "f-archive" {
		t.Fatalf("after move: %s", r.raw)
	}
	if got := h.mbox.calls[len(h.mbox.calls)-1]; got != "move INBOX/1 → Archive" {
		t.Fatalf("IMAP call %q", got)
	}
	if uids, _ := h.st.FolderUIDs(context.Background(), g, "f-archive"); len(uids) != 1 || uids[0] != 101 {
		t.Fatalf("Archive UIDs %v", uids)
	}
	// Delete: to Trash first, then for good.
	h.want(h.do("DELETE", "/v3/grants/"+g+"/messages/m01", h.keyA, ""), 200, "")
	if got := h.mbox.calls[len(h.mbox.calls)-1]; got != "move Archive/101 → Deleted Messages" {
		t.Fatalf("IMAP call %q", got)
	}
	if f := h.do("GET", "/v3/grants/"+g+"/messages/m01", h.keyA, "").data()["folders"].([]any); len(f) != 1 || f[0] != "f-trash" {
		t.Fatalf("after delete: folders %v", f)
	}
	h.want(h.do("DELETE", "/v3/grants/"+g+"/messages/m01", h.keyA, ""), 200, "")
	if got := h.mbox.calls[len(h.mbox.calls)-1]; got != "expunge Deleted Messages/201" {
		t.Fatalf("IMAP call %q", got)
	}
	h.want(h.do("GET", "/v3/grants/"+g+"/messages/m01", h.keyA, ""), 404, "not_found_error")
	h.want(h.do("DELETE", "/v3/grants/"+g+"/messages/m01", h.keyA, ""), 404, "not_found_error")
	h.want(h.do("DELETE", "/v3/grants/"+g+"/messages/m02", h.keyB, ""), 404, "not_found_error")
}

func TestUpdateAndDeleteThread(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(3) // one thread t1: m01, m03 unread
	r := h.do("PUT", "/v3/grants/"+g+"/threads/t1", h.keyA, `{"unread":false}`)
	h.want(r, 200, "")
	if r.data()["unread"] != false || len(h.mbox.calls) != 3 {
		t.Fatalf("thread update: %s, IMAP calls %q", r.raw, h.mbox.calls)
	}
	h.want(h.do("PUT", "/v3/grants/"+g+"/threads/nope", h.keyA, `{"unread":false}`), 404, "not_found_error")
	// No Trash folder here: deleting removes every message for good.
	h.want(h.do("DELETE", "/v3/grants/"+g+"/threads/t1", h.keyA, ""), 200, "")
	if n := len(h.do("GET", "/v3/grants/"+g+"/messages", h.keyA, "").list()); n != 0 {
		t.Fatalf("%d messages left after deleting the thread", n)
	}
	h.want(h.do("GET", "/v3/grants/"+g+"/threads/t1", h.keyA, ""), 404, "not_found_error")
}

func TestFolderChanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(1)
	last := func() string { return h.mbox.calls[len(h.mbox.calls)-1] }
	r := h.do("POST", "/v3/grants/"+g+"/folders", h.keyA, `{"name":"Projects"}`)
	h.want(r, 200, "")
	projects := r.data()["id"].(string)
	if r.data()["name"] != "Projects" || last() != "create Projects" {
		t.Fatalf("create: %s %q", r.raw, h.mbox.calls)
	}
	r = h.do("POST", "/v3/grants/"+g+"/folders", h.keyA, `{"name":"2026","parent_id":"`+projects+`"}`)
	h.want(r, 200, "")
	child := r.data()["id"].(string)
	if r.data()["name"] != "Projects/2026" || r.data()["parent_id"] != projects {
		t.Fatalf("create child: %s", r.raw)
	}
	h.want(h.do("POST", "/v3/grants/"+g+"/folders", h.keyA, `{"name":"Projects"}`), 409, "conflict_error")
	h.want(h.do("POST", "/v3/grants/"+g+"/folders", h.keyA, `{"name":"a/b"}`), 400, "invalid_request_error")
	h.want(h.do("POST", "/v3/grants/"+g+"/folders", h.keyA, `{}`), 400, "invalid_request_error")
	h.want(h.do("POST", "/v3/grants/"+g+"/folders", h.keyA, `{"name":"x","parent_id":"nope"}`), 400, "invalid_request_error")

	// Rename keeps the id and renames the child too.
	r = h.do("PUT", "/v3/grants/"+g+"/folders/"+projects, h.keyA, `{"name":"Work"}`)
	if r.data()["id"] != projects || r.data()["name"] != "Work" || last() != "rename Projects → Work" {
		t.Fatalf("rename: %s %q", r.raw, h.mbox.calls)
	}
	if c := h.do("GET", "/v3/grants/"+g+"/folders/"+child, h.keyA, "").data(); c["name"] != "Work/2026" {
		t.Fatalf("child after rename: %v", c)
	}
	h.want(h.do("PUT", "/v3/grants/"+g+"/folders/f-inbox", h.keyA, `{"name":"Old"}`), 400, "invalid_request_error")
	h.want(h.do("DELETE", "/v3/grants/"+g+"/folders/f-inbox", h.keyA, ""), 400, "invalid_request_error")
	h.want(h.do("DELETE", "/v3/grants/"+g+"/folders/"+projects, h.keyA, ""), 200, "")
	if n := len(h.mbox.calls); n < 2 || h.mbox.calls[n-2] != "delete Work/2026" || last() != "delete Work" {
		t.Fatalf("delete: %q", h.mbox.calls)
	}
	h.want(h.do("GET", "/v3/grants/"+g+"/folders/"+child, h.keyA, ""), 404, "not_found_error")
	h.want(h.do("DELETE", "/v3/grants/"+g+"/folders/"+projects, h.keyB, ""), 404, "not_found_error")
}
