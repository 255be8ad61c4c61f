package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/mail"

	"github.com/orchard-mail/orchard/internal/testenv"
)

// callWith is call with extra request headers; it returns the response
// headers too.
func (s *server) callWith(method, path, key, body string, headers map[string]string) (int, http.Header, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &v); err != nil {
		s.t.Fatalf("%s %s: not JSON: %q", method, path, raw)
	}
	return resp.StatusCode, resp.Header, v
}

// mailServer starts Orchard against the test environment and connects u
// through the iCloud connector; it returns the server, the API key and the
// grant id.
func mailServer(t *testing.T, env *testenv.Env, u testenv.User, extra ...string) (*server, string, string) {
	t.Helper()
	s := startServer(t, append([]string{"ORCHARD_DATA_DIR=" + t.TempDir(), "ORCHARD_CA_FILE=" + env.CAFile,
		"ORCHARD_ICLOUD_IMAP_ADDR=" + env.IMAPAddr, "ORCHARD_ICLOUD_SMTP_ADDR=" + env.SMTPAddr, "ORCHARD_SYNC_POLL_INTERVAL=1s"}, extra...)...)
	return s, connectUser(t, s, u), grantOf(t, s, u)
}

func connectUser(t *testing.T, s *server, u testenv.User) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var m []string
	for m = defaultKeyRe.FindStringSubmatch(s.stdout.String()); m == nil; m = defaultKeyRe.FindStringSubmatch(s.stdout.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no key printed: %q", s.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	key := m[1]
	if st, _ := s.call("POST", "/v3/connectors", key, `{"provider":"icloud"}`); st != 201 {
		t.Fatal("connector")
	}
	return key
}

func grantOf(t *testing.T, s *server, u testenv.User) string {
	t.Helper()
	key := defaultKeyRe.FindStringSubmatch(s.stdout.String())[1]
	st, v := s.call("POST", "/v3/connect/custom", key, fmt.Sprintf(`{"provider":"icloud","settings":{"username":%q,"password":%q}}`, u.Email, u.Password))
	if st != 201 {
		t.Fatalf("custom auth: %d %v", st, v)
	}
	return v["data"].(map[string]any)["id"].(string)
}

// waitFolder waits until the sync knows the grant's folder with this
// role and returns its id.
func waitFolder(t *testing.T, s *server, key, grant, name string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, v := s.call("GET", "/v3/grants/"+grant+"/folders/"+name, key, ""); st == 200 {
			return v["data"].(map[string]any)["id"].(string)
		}
		if time.Now().After(deadline) {
			t.Fatalf("folder %s never synced", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serverMessages returns the messages of folder on the IMAP server whose
// Subject contains subject, parsed.
func serverMessages(t *testing.T, c *imapclient.Client, folder, subject string) []serverMessage {
	t.Helper()
	if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("select %s: %v", folder, err)
	}
	defer func() { _ = c.Unselect().Wait() }()
	data, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: subject}}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	uids := data.AllUIDs()
	if len(uids) == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []serverMessage
	for _, m := range msgs {
		out = append(out, parseServerMessage(t, m.Flags, m.FindBodySection(&imap.FetchItemBodySection{Peek: true})))
	}
	return out
}

type serverMessage struct {
	flags   []imap.Flag
	header  mail.Header
	html    string
	text    string
	files   map[string][]byte // by filename
	inline  map[string][]byte // by content id
	rawSize int
}

func parseServerMessage(t *testing.T, flags []imap.Flag, raw []byte) serverMessage {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	sm := serverMessage{flags: flags, header: mr.Header, files: map[string][]byte{}, inline: map[string][]byte{}, rawSize: len(raw)}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		switch h := p.Header.(type) {
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			sm.files[name] = b
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			switch {
			case h.Get("Content-Id") != "":
				sm.inline[strings.Trim(h.Get("Content-Id"), "<>")] = b
			case ct == "text/html":
				sm.html = string(b)
			default:
				sm.text = string(b)
			}
		}
	}
	return sm
}

// waitServerMessages waits until folder holds n messages with subject.
func waitServerMessages(t *testing.T, c *imapclient.Client, folder, subject string, n int) []serverMessage {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msgs := serverMessages(t, c, folder, subject)
		if len(msgs) == n {
			return msgs
		}
		if len(msgs) > n || time.Now().After(deadline) {
			t.Fatalf("%s: %d messages with subject %q, want %d", folder, len(msgs), subject, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestSendOnServer is the real loop: a message sent through the API goes
// through Postfix into the recipients' Dovecot mailboxes, where it is read
// back over IMAP; the sender's Sent folder has exactly one copy.
func TestSendOnServer(t *testing.T) {
	env := testenv.Get(t)
	sender, to, bcc := env.NewUser(t), env.NewUser(t), env.NewUser(t)
	s, key, grant := mailServer(t, env, sender, "ORCHARD_ICLOUD_SENT_COPY_WAIT=1s")
	sentID := waitFolder(t, s, key, grant, "sent")
	senderIMAP, toIMAP, bccIMAP := env.IMAP(t, sender), env.IMAP(t, to), env.IMAP(t, bcc)

	pdf := bytes.Repeat([]byte("%PDF-1.4 binary \x00\xff\x10 "), 4000)
	png := []byte("\x89PNG\r\n\x1a\n fake image bytes \x00\x01")
	subject := "Grüße aus dem Obstgarten 🍎 — a subject long enough to need folding across lines " + fmt.Sprint(time.Now().UnixNano())
	body := fmt.Sprintf(`{"to":[{"name":"Zoë Ünïcode","email":%q}],"bcc":[{"email":%q}],"subject":%q,
		"body":"<p>Hello <b>there</b></p><img src=\"cid:logo@orchard\">",
		"custom_headers":[{"name":"X-Orchard-Test","value":"yes"}],
		"attachments":[{"filename":"rates €.pdf","content_type":"application/pdf","content":%q},
		               {"filename":"logo.png","content_type":"image/png","content":%q,"content_id":"logo@orchard","is_inline":true}]}`,
		to.Email, bcc.Email, subject, b64(pdf), b64(png))
	idem := map[string]string{"Idempotency-Key": "send-" + subject}
	st, _, v := s.callWith("POST", "/v3/grants/"+grant+"/messages/send", key, body, idem)
	if st != 200 || v["grant_id"] != grant {
		t.Fatalf("send: %d %v", st, v)
	}
	sent := v["data"].(map[string]any)
	if sent["subject"] != subject || !slices.Contains(toStrings(sent["folders"]), sentID) {
		t.Fatalf("send answered %v", sent)
	}

	got := waitServerMessages(t, toIMAP, "INBOX", subject, 1)[0]
	if s, _ := got.header.Subject(); s != subject {
		t.Errorf("Subject on arrival %q", s)
	}
	if from, _ := got.header.AddressList("From"); len(from) != 1 || from[0].Address != sender.Email {
		t.Errorf("From %v", from)
	}
	if tos, _ := got.header.AddressList("To"); len(tos) != 1 || tos[0].Name != "Zoë Ünïcode" || tos[0].Address != to.Email {
		t.Errorf("To %v", tos)
	}
	if got.header.Get("Bcc") != "" || got.header.Get("X-Orchard-Test") != "yes" {
		t.Errorf("Bcc %q, X-Orchard-Test %q", got.header.Get("Bcc"), got.header.Get("X-Orchard-Test"))
	}
	if !strings.Contains(got.html, "<b>there</b>") || !strings.Contains(got.text, "there") {
		t.Errorf("html %q text %q", got.html, got.text)
	}
	if !bytes.Equal(got.files["rates €.pdf"], pdf) || !bytes.Equal(got.inline["logo@orchard"], png) {
		t.Errorf("attachments: files %d, inline %d", len(got.files), len(got.inline))
	}
	msgID, _ := got.header.MessageID()
	if msgID == "" || got.header.Get("Date") == "" {
		t.Errorf("Message-ID %q Date %q", msgID, got.header.Get("Date"))
	}
	waitServerMessages(t, bccIMAP, "INBOX", subject, 1)
	copies := waitServerMessages(t, senderIMAP, "Sent Messages", subject, 1)
	if !slices.Contains(copies[0].flags, imap.FlagSeen) {
		t.Errorf("Sent copy flags %v", copies[0].flags)
	}
	if bccs, _ := copies[0].header.AddressList("Bcc"); len(bccs) != 1 {
		t.Errorf("the sender's copy lost its Bcc: %v", bccs)
	}

	// A retry with the same key sends nothing and answers the same.
	st, h, v2 := s.callWith("POST", "/v3/grants/"+grant+"/messages/send", key, body, idem)
	if st != 200 || h.Get("Idempotent-Replayed") != "true" || v2["data"].(map[string]any)["id"] != sent["id"] {
		t.Fatalf("retry: %d %v %v", st, h, v2)
	}
	st, _, v2 = s.callWith("POST", "/v3/grants/"+grant+"/messages/send", key, strings.Replace(body, "Hello", "Bye", 1), idem)
	if st != 409 {
		t.Fatalf("same key, other body: %d %v", st, v2)
	}

	// A reply threads: In-Reply-To and References name the original, and
	// the sender's store puts both in one thread.
	reply := fmt.Sprintf(`{"to":[{"email":%q}],"subject":"Re: %s","body":"<p>reply</p>","reply_to_message_id":%q}`, to.Email, subject, sent["id"])
	st, _, v = s.callWith("POST", "/v3/grants/"+grant+"/messages/send", key, reply, nil)
	if st != 200 {
		t.Fatalf("reply: %d %v", st, v)
	}
	if tid := v["data"].(map[string]any)["thread_id"]; tid != sent["thread_id"] || tid == "" {
		t.Errorf("reply thread %v, original %v", tid, sent["thread_id"])
	}
	replies := waitServerMessages(t, toIMAP, "INBOX", "Re: "+subject, 1)
	if irt, _ := replies[0].header.MsgIDList("In-Reply-To"); len(irt) != 1 || irt[0] != msgID {
		t.Errorf("In-Reply-To %v, want %s", irt, msgID)
	}
	if refs, _ := replies[0].header.MsgIDList("References"); !slices.Contains(refs, msgID) {
		t.Errorf("References %v", refs)
	}

	// The recipient got exactly one copy of the first message, after
	// the retry and everything else.
	time.Sleep(time.Second)
	if n := len(serverMessages(t, toIMAP, "INBOX", subject)); n != 2 { // the message and the reply
		t.Errorf("recipient holds %d messages with the subject, want 2", n)
	}
	if n := len(serverMessages(t, senderIMAP, "Sent Messages", subject)); n != 2 {
		t.Errorf("Sent holds %d copies, want 2 (message and reply)", n)
	}
	s.stop()
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestSendRefusals: bad input is a clear 4xx and nothing is sent; a
// recipient the server refuses is a 400 with its words; revoked
// credentials are a 401 and the grant turns invalid.
func TestSendRefusals(t *testing.T) {
	env := testenv.Get(t)
	sender, rcpt := env.NewUser(t), env.NewUser(t)
	s, key, grant := mailServer(t, env, sender)
	path := "/v3/grants/" + grant + "/messages/send"
	rcptIMAP := env.IMAP(t, rcpt)
	tag := fmt.Sprint(time.Now().UnixNano())
	for name, tc := range map[string]struct {
		body   string
		status int
		says   string
	}{
		"no recipients":    {`{"subject":"x` + tag + `","body":"b"}`, 400, "recipient"},
		"bad address":      {`{"to":[{"email":"not an address"}],"subject":"x` + tag + `"}`, 400, "to"},
		"subject CRLF":     {`{"to":[{"email":"` + rcpt.Email + `"}],"subject":"x` + tag + `\r\nBcc: evil@example.test"}`, 400, "subject"},
		"header injection": {`{"to":[{"email":"` + rcpt.Email + `"}],"subject":"x` + tag + `","custom_headers":[{"name":"X-A","value":"1\r\nBcc: evil@example.test"}]}`, 400, "custom_headers"},
		"protected header": {`{"to":[{"email":"` + rcpt.Email + `"}],"subject":"x` + tag + `","custom_headers":[{"name":"Message-ID","value":"<a@b>"}]}`, 400, "Message-ID"},
		"bad base64":       {`{"to":[{"email":"` + rcpt.Email + `"}],"subject":"x` + tag + `","attachments":[{"filename":"a","content":"%%%"}]}`, 400, "base64"},
		"unknown reply":    {`{"to":[{"email":"` + rcpt.Email + `"}],"subject":"x` + tag + `","reply_to_message_id":"nope"}`, 400, "reply_to_message_id"},
		"send_at":          {`{"to":[{"email":"` + rcpt.Email + `"}],"subject":"x` + tag + `","send_at":4102444800}`, 400, "send_at"},
		"not JSON":         {`{"to":`, 400, "JSON"},
	} {
		st, _, v := s.callWith("POST", path, key, tc.body, nil)
		e, _ := v["error"].(map[string]any)
		if st != tc.status || !strings.Contains(fmt.Sprint(e["message"]), tc.says) {
			t.Errorf("%s: %d %v", name, st, v)
		}
	}
	// 25 MB of attachment: over iCloud's 20 MB, refused before SMTP.
	big := b64(bytes.Repeat([]byte{0xAB}, 19<<20))
	st, _, v := s.callWith("POST", path, key, `{"to":[{"email":"`+rcpt.Email+`"}],"subject":"x`+tag+`","attachments":[{"filename":"big.bin","content":"`+big+`"}]}`, nil)
	if e, _ := v["error"].(map[string]any); st != 413 || !strings.Contains(fmt.Sprint(e["message"]), "20 MB") {
		t.Errorf("25 MB encoded: %d %v", st, v)
	}
	// Postfix refuses an unknown local recipient: 400 with its reply, and
	// the known recipient gets nothing either.
	st, _, v = s.callWith("POST", path, key, `{"to":[{"email":"`+rcpt.Email+`"},{"email":"nobody-`+tag+`@example.test"}],"subject":"x`+tag+`"}`, nil)
	if e, _ := v["error"].(map[string]any); st != 400 || e["type"] != "provider_error" || !strings.Contains(fmt.Sprint(e["message"]), "nobody-"+tag) {
		t.Errorf("unknown recipient: %d %v", st, v)
	}
	time.Sleep(time.Second)
	if n := len(serverMessages(t, rcptIMAP, "INBOX", "x"+tag)); n != 0 {
		t.Fatalf("%d messages arrived from refused sends", n)
	}

	// The app-specific password is revoked: 401, grant invalid.
	env.SetDovecotPassword(t, sender.Email, "revoked-"+tag)
	st, _, v = s.callWith("POST", path, key, `{"to":[{"email":"`+rcpt.Email+`"}],"subject":"x`+tag+`"}`, nil)
	if st != 401 {
		t.Fatalf("revoked password: %d %v", st, v)
	}
	if _, g := s.call("GET", "/v3/grants/"+grant, key, ""); g["data"].(map[string]any)["grant_status"] != "invalid" {
		t.Fatalf("grant after SMTP refused its login: %v", g)
	}
	if strings.Contains(s.logs.String(), sender.Password) {
		t.Fatal("a password reached the log")
	}
	s.stop()
}

// TestSendLimitsOnServer: the daily limits answer 429 with Retry-After,
// hold across a restart, and of parallel sends at the last free unit
// exactly one goes out.
func TestSendLimitsOnServer(t *testing.T) {
	env := testenv.Get(t)
	sender, rcpt := env.NewUser(t), env.NewUser(t)
	dataDir := t.TempDir()
	limits := "ORCHARD_SEND_LIMITS=icloud=3/100/2/100000"
	s, key, grant := mailServer(t, env, sender, limits, "ORCHARD_DATA_DIR="+dataDir)
	path := "/v3/grants/" + grant + "/messages/send"
	msg := func(subject string, rcpts ...string) string {
		var to []string
		for _, r := range rcpts {
			to = append(to, fmt.Sprintf(`{"email":%q}`, r))
		}
		return fmt.Sprintf(`{"to":[%s],"subject":%q,"body":"hi"}`, strings.Join(to, ","), subject)
	}
	// Per message: 2 recipients pass, 3 do not; 100,000 bytes is the cap.
	if st, _, v := s.callWith("POST", path, key, msg("limit 1", rcpt.Email, sender.Email), nil); st != 200 {
		t.Fatalf("2 recipients: %d %v", st, v)
	}
	if st, _, v := s.callWith("POST", path, key, msg("limit x", rcpt.Email, sender.Email, "third@example.test"), nil); st != 400 {
		t.Fatalf("3 recipients: %d %v", st, v)
	}
	big := `{"to":[{"email":"` + rcpt.Email + `"}],"subject":"big","attachments":[{"filename":"b","content":"` + b64(bytes.Repeat([]byte{1}, 80000)) + `"}]}`
	if st, _, v := s.callWith("POST", path, key, big, nil); st != 413 {
		t.Fatalf("over the size limit: %d %v", st, v)
	}
	if st, _, v := s.callWith("POST", path, key, msg("limit 2", rcpt.Email), nil); st != 200 {
		t.Fatalf("second message: %d %v", st, v)
	}
	s.stop()

	// After a restart the two sends still count: of five parallel sends
	// at the last free unit exactly one goes out, the others get 429.
	s = startServer(t, "ORCHARD_DATA_DIR="+dataDir, "ORCHARD_CA_FILE="+env.CAFile, limits,
		"ORCHARD_ICLOUD_IMAP_ADDR="+env.IMAPAddr, "ORCHARD_ICLOUD_SMTP_ADDR="+env.SMTPAddr)
	var wg sync.WaitGroup
	statuses := make([]int, 5)
	retry := make([]string, 5)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, h, _ := s.callWith("POST", path, key, msg(fmt.Sprint("race ", i), rcpt.Email), nil)
			statuses[i], retry[i] = st, h.Get("Retry-After")
		}()
	}
	wg.Wait()
	ok := 0
	for i, st := range statuses {
		switch st {
		case 200:
			ok++
		case 429:
			if secs := retry[i]; secs == "" || secs == "0" {
				t.Errorf("429 without a Retry-After: %q", secs)
			}
		default:
			t.Errorf("parallel send %d: %d", i, st)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 5 parallel sends went out at the last free unit, want 1 (%v)", ok, statuses)
	}
	st, h, v := s.callWith("POST", path, key, msg("one too many", rcpt.Email), nil)
	if e, _ := v["error"].(map[string]any); st != 429 || e["type"] != "rate_limit_error" || !strings.Contains(fmt.Sprint(e["message"]), "3 messages a day") {
		t.Fatalf("4th message of the day: %d %v %v", st, h, v)
	}
	s.stop()
}

// TestDraftsOnServer: a draft lives in the Drafts folder with \Draft; an
// update replaces it on the server and keeps its id and attachments;
// sending it delivers it and moves it from Drafts to Sent.
func TestDraftsOnServer(t *testing.T) {
	env := testenv.Get(t)
	sender, rcpt := env.NewUser(t), env.NewUser(t)
	s, key, grant := mailServer(t, env, sender, "ORCHARD_ICLOUD_SENT_COPY_WAIT=0s")
	draftsID := waitFolder(t, s, key, grant, "drafts")
	senderIMAP, rcptIMAP := env.IMAP(t, sender), env.IMAP(t, rcpt)
	tag := fmt.Sprint(time.Now().UnixNano())
	path := "/v3/grants/" + grant + "/drafts"
	file := bytes.Repeat([]byte("draft attachment \x00\x01 "), 500)

	st, _, v := s.callWith("POST", path, key, fmt.Sprintf(`{"to":[{"email":%q}],"bcc":[{"email":"hidden@example.test"}],"subject":"draft %s","body":"<p>first</p>","starred":true,
		"attachments":[{"filename":"notes.bin","content_type":"application/octet-stream","content":%q}]}`, rcpt.Email, tag, b64(file)), nil)
	if st != 200 {
		t.Fatalf("create: %d %v", st, v)
	}
	d := v["data"].(map[string]any)
	id := d["id"].(string)
	if d["object"] != "draft" || d["starred"] != true || !slices.Contains(toStrings(d["folders"]), draftsID) {
		t.Fatalf("created draft %v", d)
	}
	onServer := serverMessages(t, senderIMAP, "Drafts", "draft "+tag)
	if len(onServer) != 1 || !slices.Contains(onServer[0].flags, imap.FlagDraft) || !slices.Contains(onServer[0].flags, imap.FlagFlagged) ||
		!bytes.Equal(onServer[0].files["notes.bin"], file) {
		t.Fatalf("draft on the server: %+v", onServer)
	}
	if bccs, _ := onServer[0].header.AddressList("Bcc"); len(bccs) != 1 {
		t.Fatalf("the draft lost its Bcc: %v", bccs)
	}

	// Update the subject and body only: one copy on the server, same id,
	// attachment and recipients kept.
	st, _, v = s.callWith("PUT", path+"/"+id, key, fmt.Sprintf(`{"subject":"draft %s v2","body":"<p>second</p>"}`, tag), nil)
	if st != 200 || v["data"].(map[string]any)["id"] != id || v["data"].(map[string]any)["subject"] != "draft "+tag+" v2" {
		t.Fatalf("update: %d %v", st, v)
	}
	onServer = serverMessages(t, senderIMAP, "Drafts", "draft "+tag)
	if len(onServer) != 1 || !strings.Contains(onServer[0].html, "second") || !bytes.Equal(onServer[0].files["notes.bin"], file) {
		t.Fatalf("after update the server holds %d drafts: %+v", len(onServer), onServer)
	}
	if tos, _ := onServer[0].header.AddressList("To"); len(tos) != 1 || tos[0].Address != rcpt.Email {
		t.Fatalf("recipients after update: %v", tos)
	}
	st, _, v = s.callWith("GET", path, key, "", nil)
	if l := v["data"].([]any); st != 200 || len(l) != 1 || l[0].(map[string]any)["id"] != id {
		t.Fatalf("list: %d %v", st, v)
	}

	// Sending to an address the server refuses fails cleanly and leaves
	// the draft as it was.
	st, _, v = s.callWith("POST", path+"/"+id, key, `{}`, nil)
	if st != 400 || len(serverMessages(t, senderIMAP, "Drafts", "draft "+tag)) != 1 {
		t.Fatalf("send with a refused Bcc: %d %v", st, v)
	}
	bcc := env.NewUser(t)
	if st, _, v = s.callWith("PUT", path+"/"+id, key, `{"bcc":[{"email":"`+bcc.Email+`"}]}`, nil); st != 200 {
		t.Fatalf("update bcc: %d %v", st, v)
	}

	// Send it: delivered, gone from Drafts, in Sent.
	st, _, v = s.callWith("POST", path+"/"+id, key, `{}`, nil)
	if st != 200 {
		t.Fatalf("send draft: %d %v", st, v)
	}
	got := waitServerMessages(t, rcptIMAP, "INBOX", "draft "+tag+" v2", 1)[0]
	if got.header.Get("Bcc") != "" || !bytes.Equal(got.files["notes.bin"], file) {
		t.Fatalf("sent draft arrived with Bcc %q, %d files", got.header.Get("Bcc"), len(got.files))
	}
	waitServerMessages(t, env.IMAP(t, bcc), "INBOX", "draft "+tag+" v2", 1)
	if n := len(serverMessages(t, senderIMAP, "Drafts", "draft "+tag)); n != 0 {
		t.Fatalf("Drafts still holds %d copies after the send", n)
	}
	if sent := serverMessages(t, senderIMAP, "Sent Messages", "draft "+tag); len(sent) != 1 || slices.Contains(sent[0].flags, imap.FlagDraft) {
		t.Fatalf("Sent after sending the draft: %+v", sent)
	}
	if st, _, _ = s.callWith("GET", path+"/"+id, key, "", nil); st != 404 {
		t.Fatalf("the sent draft is still a draft: %d", st)
	}

	// Delete: gone from the server.
	st, _, v = s.callWith("POST", path, key, `{"subject":"doomed `+tag+`"}`, nil)
	if st != 200 {
		t.Fatalf("create: %d %v", st, v)
	}
	doomed := v["data"].(map[string]any)["id"].(string)
	if st, _, _ = s.callWith("DELETE", path+"/"+doomed, key, "", nil); st != 200 {
		t.Fatalf("delete: %d", st)
	}
	if n := len(serverMessages(t, senderIMAP, "Drafts", "doomed "+tag)); n != 0 {
		t.Fatalf("deleted draft still on the server (%d)", n)
	}
	if st, _, _ = s.callWith("GET", path+"/"+doomed, key, "", nil); st != 404 {
		t.Fatalf("deleted draft still readable: %d", st)
	}
	// A message outside Drafts is not a draft.
	if st, _, v = s.callWith("PUT", path+"/nope", key, `{"subject":"x"}`, nil); st != 404 {
		t.Fatalf("update of an unknown draft: %d %v", st, v)
	}
	s.stop()
}

// A revoked password expires the grant when the sync's next login is
// refused (here: after a restart); re-authenticating revives the same id.
func TestGrantExpiresOnRefusedLogin(t *testing.T) {
	env := testenv.Get(t)
	u := env.NewUser(t)
	dataDir := t.TempDir()
	s, key, grant := mailServer(t, env, u, "ORCHARD_DATA_DIR="+dataDir)
	waitFolder(t, s, key, grant, "inbox")
	s.stop()
	env.SetDovecotPassword(t, u.Email, "revoked-"+u.Password)
	s = startServer(t, "ORCHARD_DATA_DIR="+dataDir, "ORCHARD_CA_FILE="+env.CAFile,
		"ORCHARD_ICLOUD_IMAP_ADDR="+env.IMAPAddr, "ORCHARD_ICLOUD_SMTP_ADDR="+env.SMTPAddr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, v := s.call("GET", "/v3/grants/"+grant, key, "")
		if data(v)["grant_status"] == "invalid" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grant still %v after its login was refused", data(v)["grant_status"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The user makes a new password and signs in again: same grant, valid.
	st, v := s.call("POST", "/v3/connect/custom", key, fmt.Sprintf(`{"provider":"icloud","settings":{"username":%q,"password":%q}}`, u.Email, "revoked-"+u.Password))
	if st != 201 || data(v)["id"] != grant || data(v)["grant_status"] != "valid" {
		t.Fatalf("re-authentication: %d %v", st, v)
	}
	if strings.Contains(s.logs.String(), u.Password) {
		t.Fatal("a password reached the log")
	}
	s.stop()
}
