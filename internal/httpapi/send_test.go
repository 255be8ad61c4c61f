package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
)

// fakeSender records submissions; hook, when set, decides the outcome.
type fakeSender struct {
	mu   sync.Mutex
	sent [][]byte
	rcpt [][]string
	hook func() (uncertain bool, err error)
}

func (f *fakeSender) Submit(_ context.Context, _ provider.Credentials, _ string, rcpts []string, msg []byte) (bool, error) {
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if uncertain, err := hook(); err != nil {
			f.mu.Lock()
			f.rcpt = append(f.rcpt, rcpts) // attempted
			f.mu.Unlock()
			return uncertain, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, msg)
	f.rcpt = append(f.rcpt, rcpts)
	return false, nil
}

func (f *fakeSender) counts() (sent, attempts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent), len(f.rcpt)
}

func (f *fakeSender) setHook(h func() (bool, error)) { f.mu.Lock(); f.hook = h; f.mu.Unlock() }

// doWith is do with request headers and a raw content type.
func (h *harness) doWith(method, path, contentType string, body io.Reader, headers map[string]string) reply {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, body)
	req.Header.Set("Authorization", "Bearer "+h.keyA)
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		h.t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
	}
	return r
}

// The SDK's multipart form: the JSON in "message", files by content id or
// file<i>, sent chunked.
func TestSendMultipart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(1)
	big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 5000)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormField("message")
		fw.Write([]byte(`{"to":[{"email":"bob@example.test"}],"subject":"multipart","body":"<img src=\"cid:pic1\">"}`))
		fw, _ = mw.CreateFormFile("file0", "data.bin")
		fw.Write(big)
		fw, _ = mw.CreateFormFile("pic1", "pic.png")
		fw.Write([]byte("PNG!"))
		mw.Close()
		pw.Close()
	}()
	r := h.doWith("POST", "/v3/grants/"+g+"/messages/send", mw.FormDataContentType(), pr, nil)
	h.want(r, 200, "")
	if r.body["grant_id"] != g || r.data()["subject"] != "multipart" {
		t.Fatalf("answer %s", r.raw)
	}
	if n, _ := h.sender.counts(); n != 1 {
		t.Fatalf("%d messages submitted", n)
	}
	mr, err := mail.CreateReader(bytes.NewReader(h.sender.sent[0]))
	if err != nil {
		t.Fatal(err)
	}
	var file, inline []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		if ah, ok := p.Header.(*mail.AttachmentHeader); ok {
			if name, _ := ah.Filename(); name == "data.bin" {
				file = b
			}
		} else if p.Header.Get("Content-Id") == "<pic1>" {
			inline = b
		}
	}
	if !bytes.Equal(file, big) || string(inline) != "PNG!" {
		t.Fatalf("file %d bytes, inline %q", len(file), inline)
	}

	// A form without the message part says what it needs.
	var buf bytes.Buffer
	mw = multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file0", "a.txt")
	fw.Write([]byte("x"))
	mw.Close()
	r = h.doWith("POST", "/v3/grants/"+g+"/messages/send", mw.FormDataContentType(), &buf, nil)
	if r.status != 400 || !strings.Contains(r.errMsg(), `named "message"`) {
		t.Fatalf("no message part: %d %s", r.status, r.raw)
	}
}

func TestSendIdempotency(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(1)
	path := "/v3/grants/" + g + "/messages/send"
	body := `{"to":[{"email":"bob@example.test"}],"subject":"once"}`
	key := map[string]string{"Idempotency-Key": "k1"}

	// While the first request runs, a retry is told so (409) and sends
	// nothing.
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h.sender.setHook(func() (bool, error) {
		entered <- struct{}{}
		<-release
		return false, nil
	})
	first := make(chan reply, 1)
	go func() { first <- h.doWith("POST", path, "application/json", strings.NewReader(body), key) }()
	<-entered
	r := h.doWith("POST", path, "application/json", strings.NewReader(body), key)
	if r.status != 409 || !strings.Contains(r.errMsg(), "in progress") {
		t.Fatalf("retry during the first: %d %s", r.status, r.raw)
	}
	close(release)
	r1 := <-first
	h.want(r1, 200, "")
	h.sender.setHook(nil)
	r2 := h.doWith("POST", path, "application/json", strings.NewReader(body), key)
	if r2.status != 200 || r2.header.Get("Idempotent-Replayed") != "true" || r2.data()["id"] != r1.data()["id"] {
		t.Fatalf("replay: %d %s", r2.status, r2.raw)
	}
	if n, _ := h.sender.counts(); n != 1 {
		t.Fatalf("sent %d times", n)
	}
	if r := h.doWith("POST", path, "application/json", strings.NewReader(`{"to":[{"email":"x@example.test"}]}`), key); r.status != 409 {
		t.Fatalf("same key, other request: %d %s", r.status, r.raw)
	}
	if r := h.doWith("POST", path, "application/json", strings.NewReader(body), map[string]string{"Idempotency-Key": strings.Repeat("k", 257)}); r.status != 400 {
		t.Fatalf("257-character key: %d", r.status)
	}

	// A send that failed without effect frees its key: the retry runs.
	h.sender.setHook(func() (bool, error) {
		return false, &provider.Error{Kind: provider.KindUnavailable, Service: "smtp", Text: "421 try later"}
	})
	k2 := map[string]string{"Idempotency-Key": "k2"}
	if r := h.doWith("POST", path, "application/json", strings.NewReader(body), k2); r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("transient failure: %d %s", r.status, r.raw)
	}
	h.sender.setHook(nil)
	if r := h.doWith("POST", path, "application/json", strings.NewReader(body), k2); r.status != 200 || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after a failure: %d %s", r.status, r.raw)
	}

	// A send the server never confirmed may have gone out: its answer is
	// kept and replayed, never retried.
	h.sender.setHook(func() (bool, error) {
		return true, &provider.Error{Kind: provider.KindTimeout, Service: "smtp", Text: "no reply"}
	})
	k3 := map[string]string{"Idempotency-Key": "k3"}
	r = h.doWith("POST", path, "application/json", strings.NewReader(body), k3)
	if r.status != 504 || !strings.Contains(r.errMsg(), "may have been sent") {
		t.Fatalf("uncertain: %d %s", r.status, r.raw)
	}
	_, before := h.sender.counts()
	h.sender.setHook(nil)
	r = h.doWith("POST", path, "application/json", strings.NewReader(body), k3)
	if _, after := h.sender.counts(); r.status != 504 || r.header.Get("Idempotent-Replayed") != "true" || after != before {
		t.Fatalf("retry of an uncertain send: %d, attempts %d → %d", r.status, before, after)
	}
}

// The harness's limits: 3 messages a day, 2 recipients a message, 64 KiB.
func TestSendLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(1)
	path := "/v3/grants/" + g + "/messages/send"
	send := func(body string) reply {
		return h.doWith("POST", path, "application/json", strings.NewReader(body), nil)
	}
	h.want(send(`{"to":[{"email":"a@x.test"},{"email":"b@x.test"},{"email":"c@x.test"}]}`), 400, "invalid_request_error")
	h.want(send(`{"to":[{"email":"a@x.test"}],"attachments":[{"filename":"f","content":"`+strings.Repeat("AAAA", 22<<10)+`"}]}`), 413, "request_too_large")
	for i := 0; i < 3; i++ {
		h.want(send(`{"to":[{"email":"a@x.test"},{"email":"b@x.test"}]}`), 200, "")
	}
	r := send(`{"to":[{"email":"a@x.test"}]}`)
	h.want(r, 429, "rate_limit_error")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	if n, attempts := h.sender.counts(); n != 3 || attempts != 3 {
		t.Fatalf("%d sent, %d attempted; the refused ones must not reach SMTP", n, attempts)
	}
}

// SMTP refusing the grant's login: 401, and the grant turns invalid.
func TestSendAuthRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(1)
	h.sender.setHook(func() (bool, error) {
		return false, &provider.Error{Kind: provider.KindAuth, Service: "smtp", Text: "535 5.7.8 Authentication failed"}
	})
	r := h.doWith("POST", "/v3/grants/"+g+"/messages/send", "application/json", strings.NewReader(`{"to":[{"email":"a@x.test"}]}`), nil)
	h.want(r, 401, "")
	deadline := time.Now().Add(5 * time.Second)
	for h.do("GET", "/v3/grants/"+g, h.keyA, "").data()["grant_status"] != "invalid" {
		if time.Now().After(deadline) {
			t.Fatal("grant still valid after SMTP refused its login")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Drafts over the fake mailbox: the multipart "draft" part, the \Draft
// APPEND, an update that keeps the id and the attachment, send and
// delete.
func TestDraftsLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	g := h.seedMail(1)
	// A Drafts folder for the grant (the seeded mail has INBOX only).
	r := h.do("GET", "/v3/grants/"+g+"/drafts", h.keyA, "")
	h.want(r, 200, "")
	if len(r.list()) != 0 {
		t.Fatalf("drafts before any: %s", r.raw)
	}
	h.want(h.doWith("POST", "/v3/grants/"+g+"/drafts", "application/json", strings.NewReader(`{"subject":"x"}`), nil), 400, "invalid_request_error")
	h.addFolder(g, "f-drafts", "Drafts", "drafts")

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormField("draft")
	fw.Write([]byte(`{"to":[{"email":"bob@example.test"}],"subject":"plan","body":"<p>v1</p>","starred":true}`))
	fw, _ = mw.CreateFormFile("file0", "plan.txt")
	fw.Write([]byte("the plan"))
	mw.Close()
	r = h.doWith("POST", "/v3/grants/"+g+"/drafts", mw.FormDataContentType(), &buf, nil)
	h.want(r, 200, "")
	d := r.data()
	id, _ := d["id"].(string)
	if d["object"] != "draft" || d["starred"] != true || len(d["attachments"].([]any)) != 1 {
		t.Fatalf("created: %s", r.raw)
	}
	calls := h.mbox.callList()
	if last := calls[len(calls)-1]; !strings.HasPrefix(last, `append Drafts/1001 [\Draft \Seen \Flagged]`) {
		t.Fatalf("APPEND: %q", calls)
	}

	r = h.doWith("PUT", "/v3/grants/"+g+"/drafts/"+id, "application/json", strings.NewReader(`{"subject":"plan v2"}`), nil)
	h.want(r, 200, "")
	if d := r.data(); d["id"] != id || d["subject"] != "plan v2" || len(d["attachments"].([]any)) != 1 || d["starred"] != true {
		t.Fatalf("updated: %s", r.raw)
	}
	if got := h.mbox.callList()[len(h.mbox.callList())-1]; got != "expunge Drafts/1001" {
		t.Fatalf("old version not removed: %q", got)
	}
	r = h.do("GET", "/v3/grants/"+g+"/drafts", h.keyA, "")
	if l := r.list(); len(l) != 1 || l[0].(map[string]any)["id"] != id || l[0].(map[string]any)["object"] != "draft" {
		t.Fatalf("list: %s", r.raw)
	}
	// A message that is not in Drafts is not a draft.
	h.want(h.do("GET", "/v3/grants/"+g+"/drafts/m01", h.keyA, ""), 404, "not_found_error")

	r = h.doWith("POST", "/v3/grants/"+g+"/drafts/"+id, "application/json", strings.NewReader(`{}`), nil)
	h.want(r, 200, "")
	if n, _ := h.sender.counts(); n != 1 || !bytes.Contains(h.sender.sent[0], []byte("Subject: plan v2")) || bytes.Contains(h.sender.sent[0], []byte("Bcc:")) {
		t.Fatalf("sent %d: %s", n, h.sender.sent)
	}
	h.want(h.do("GET", "/v3/grants/"+g+"/drafts/"+id, h.keyA, ""), 404, "not_found_error")

	r = h.doWith("POST", "/v3/grants/"+g+"/drafts", "application/json", strings.NewReader(`{"subject":"doomed"}`), nil)
	h.want(r, 200, "")
	doomed := r.data()["id"].(string)
	h.want(h.do("DELETE", "/v3/grants/"+g+"/drafts/"+doomed, h.keyA, ""), 200, "")
	h.want(h.do("GET", "/v3/grants/"+g+"/drafts/"+doomed, h.keyA, ""), 404, "not_found_error")
	// A reply drafted in a thread shows as the thread's draft, not as one
	// of its messages.
	r = h.doWith("POST", "/v3/grants/"+g+"/drafts", "application/json", strings.NewReader(`{"subject":"Re: Subject 1","reply_to_message_id":"m01"}`), nil)
	h.want(r, 200, "")
	reply := r.data()["id"].(string)
	if r.data()["thread_id"] != "t1" {
		t.Fatalf("reply draft thread: %s", r.raw)
	}
	th := h.do("GET", "/v3/grants/"+g+"/threads/t1", h.keyA, "").data()
	if th["has_drafts"] != true || fmt.Sprint(th["draft_ids"]) != "["+reply+"]" || fmt.Sprint(th["message_ids"]) != "[m01]" ||
		th["latest_draft_or_message"].(map[string]any)["object"] != "draft" {
		t.Fatalf("thread with a draft: %v", th)
	}
	h.want(h.do("DELETE", "/v3/grants/"+g+"/drafts/"+reply, h.keyA, ""), 200, "")

	// A draft without recipients cannot be sent.
	r = h.doWith("POST", "/v3/grants/"+g+"/drafts", "application/json", strings.NewReader(`{"subject":"nobody"}`), nil)
	h.want(h.doWith("POST", "/v3/grants/"+g+"/drafts/"+r.data()["id"].(string), "application/json", strings.NewReader(`{}`), nil), 400, "invalid_request_error")
}

// addFolder stores a folder of UIDVALIDITY 7 (the fake mailbox's).
func (h *harness) addFolder(grantID, id, name, role string) {
	h.t.Helper()
	err := h.st.ApplyMailBatch(context.Background(), &store.MailBatch{GrantID: grantID,
		Folders: []store.Folder{{ID: id, GrantID: grantID, Name: name, Role: role, UIDValidity: 7}}})
	if err != nil {
		h.t.Fatal(err)
	}
}
