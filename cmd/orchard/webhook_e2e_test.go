package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/orchard-mail/orchard/internal/testenv"
)

// receiver is an application's webhook endpoint: it answers the
// challenge, checks every signature and counts notifications by id.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	seen   map[string]int // notification id → deliveries
	got    []notification
	badSig int
	// hang, when set, makes POSTs wait until it is closed.
	hang chan struct{}
}

type notification struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Attempt int             `json:"webhook_delivery_attempt"`
	Data    json.RawMessage `json:"data"`
	object  map[string]any
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, seen: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if c := req.URL.Query().Get("challenge"); req.Method == http.MethodGet && c != "" {
			_, _ = io.WriteString(w, c)
			return
		}
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		hang := r.hang
		r.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-req.Context().Done():
				return
			}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		mac := hmac.New(sha256.New, []byte(r.secret))
		mac.Write(body)
		if req.Header.Get("X-Nylas-Signature") != hex.EncodeToString(mac.Sum(nil)) {
			r.badSig++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var n notification
		if err := json.Unmarshal(body, &n); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var d struct {
			Object map[string]any `json:"object"`
		}
		_ = json.Unmarshal(n.Data, &d)
		n.object = d.Object
		r.seen[n.ID]++
		r.got = append(r.got, n)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// wait returns the first notification of type typ that match accepts.
func (r *receiver) wait(typ string, match func(map[string]any) bool) notification {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		for _, n := range r.got {
			if n.Type == typ && (match == nil || match(n.object)) {
				r.mu.Unlock()
				return n
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			var types []string
			for _, n := range r.got {
				types = append(types, n.Type)
			}
			r.t.Fatalf("no %s notification; got %v", typ, types)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestWebhooksEndToEnd(t *testing.T) {
	env := testenv.Get(t)
	u := env.NewUser(t)
	dataDir := t.TempDir()
	args := []string{"ORCHARD_DATA_DIR=" + dataDir, "ORCHARD_CA_FILE=" + env.CAFile, "ORCHARD_ICLOUD_IMAP_ADDR=" + env.IMAPAddr,
		"ORCHARD_ICLOUD_SMTP_ADDR=" + env.SMTPAddr, "ORCHARD_ICLOUD_CALDAV_URL=" + env.CalDAVURL, "ORCHARD_SYNC_POLL_INTERVAL=1s",
		"ORCHARD_CALENDAR_SYNC_INTERVAL=1s", "ORCHARD_WEBHOOK_TIMEOUT=1s"}
	s := startServer(t, args...)
	key := connectUser(t, s, u)
	rcv := newReceiver(t)

	// A URL that does not echo the challenge is refused.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "wrong") }))
	defer bad.Close()
	st, v := s.call("POST", "/v3/webhooks", key, `{"trigger_types":["message.created"],"webhook_url":"`+bad.URL+`"}`)
	wantStatus(t, "challenge not echoed", st, v, 400, "challenge")
	st, v = s.call("POST", "/v3/webhooks", key, `{"trigger_types":["message.nope"],"webhook_url":"`+rcv.srv.URL+`"}`)
	wantStatus(t, "unknown trigger", st, v, 400, "trigger_types")

	st, v = s.call("POST", "/v3/webhooks", key, `{"description":"e2e","trigger_types":["grant.created","grant.updated","grant.deleted","grant.expired",
		"message.created","message.updated","folder.created","calendar.created","event.created"],"webhook_url":"`+rcv.srv.URL+`"}`)
	wantStatus(t, "create webhook", st, v, 200, "")
	hook := data(v)
	hookID := hook["id"].(string)
	rcv.mu.Lock()
	rcv.secret = hook["webhook_secret"].(string)
	rcv.mu.Unlock()
	if rcv.secret == "" || hook["status"] != "active" {
		t.Fatalf("created webhook %v", hook)
	}
	if _, v = s.call("GET", "/v3/webhooks/"+hookID, key, ""); data(v)["webhook_secret"] != nil {
		t.Fatal("the secret is shown again after create")
	}

	// grant.created, then mail delivered into Dovecot → message.created
	// with the full message.
	grant := grantOf(t, s, u)
	rcv.wait("grant.created", func(o map[string]any) bool { return o["grant_id"] == grant })
	waitFolder(t, s, key, grant, "inbox")
	subject := "webhook " + fmt.Sprint(time.Now().UnixNano())
	env.Deliver(t, "sender@example.org", []string{u.Email}, []byte("From: sender@example.org\r\nTo: "+u.Email+"\r\nSubject: "+subject+"\r\nMessage-ID: <"+fmt.Sprint(time.Now().UnixNano())+"@x>\r\n\r\nhello webhook\r\n"))
	created := rcv.wait("message.created", func(o map[string]any) bool { return o["subject"] == subject })
	if created.object["grant_id"] != grant || !strings.Contains(fmt.Sprint(created.object["body"]), "hello webhook") || created.Attempt != 1 {
		t.Fatalf("message.created %+v", created.object)
	}

	// Another client flags it → message.updated.
	c := env.IMAP(t, u)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	rcv.wait("message.updated", func(o map[string]any) bool { return o["id"] == created.object["id"] && o["starred"] == true })

	// An event created directly on the calendar server → event.created
	// (after the calendar appears).
	cl, acct := dav(t, env, u)
	st, v = s.call("POST", "/v3/grants/"+grant+"/calendars", key, `{"name":"Hooks"}`)
	wantStatus(t, "create calendar", st, v, 200, "")
	rcv.wait("calendar.created", nil)
	cal := onlyCalendar(t, cl, acct)
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:hook-1\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\nSUMMARY:From Radicale\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	if _, err := cl.PutObject(t.Context(), acct, cal.URL+"hook-1.ics", []byte(ics), ""); err != nil {
		t.Fatal(err)
	}
	rcv.wait("event.created", func(o map[string]any) bool { return o["title"] == "From Radicale" })

	// Deliveries are visible to the operator.
	st, v = s.call("GET", "/v3/webhooks/"+hookID+"/deliveries", key, "")
	if wantStatus(t, "deliveries", st, v, 200, ""); len(list(v)) < 5 {
		t.Fatalf("deliveries %v", v)
	}

	// Durability: the receiver hangs, Orchard is killed with deliveries
	// pending, and after a restart every notification arrives.
	rcv.mu.Lock()
	rcv.hang = make(chan struct{})
	rcv.mu.Unlock()
	for i := 0; i < 3; i++ {
		env.Deliver(t, "sender@example.org", []string{u.Email}, []byte(fmt.Sprintf("From: sender@example.org\r\nTo: %s\r\nSubject: kill %d %s\r\n\r\nx\r\n", u.Email, i, subject)))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, v = s.call("GET", "/v3/webhooks/"+hookID+"/deliveries", key, "")
		pending := 0
		for _, d := range list(v) {
			if d.(map[string]any)["state"] == "pending" {
				pending++
			}
		}
		if pending >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the three deliveries never became pending: %v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	rcv.mu.Lock()
	close(rcv.hang)
	rcv.hang = nil
	rcv.mu.Unlock()
	s = startServer(t, args...)
	for i := 0; i < 3; i++ {
		rcv.wait("message.created", func(o map[string]any) bool { return o["subject"] == fmt.Sprintf("kill %d %s", i, subject) })
	}

	// The password is revoked: grant.expired (after the restart the sync
	// logs in again and is refused).
	s.stop()
	env.SetDovecotPassword(t, u.Email, "revoked-"+u.Password)
	s = startServer(t, args...)
	rcv.wait("grant.expired", func(o map[string]any) bool { return o["grant_id"] == grant })
	// Deleting the grant → grant.deleted.
	st, v = s.call("DELETE", "/v3/grants/"+grant, key, "")
	wantStatus(t, "delete grant", st, v, 200, "")
	rcv.wait("grant.deleted", func(o map[string]any) bool { return o["grant_id"] == grant })

	rcv.mu.Lock()
	if rcv.badSig != 0 {
		t.Errorf("%d deliveries with a bad signature", rcv.badSig)
	}
	rcv.mu.Unlock()
	s.stop()
}
