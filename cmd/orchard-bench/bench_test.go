package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/mimeconv"
	"github.com/orchard-mail/orchard/internal/testenv"
)

func TestCorpusParses(t *testing.T) {
	me := person{"Bench User", "bench@example.test"}
	c := newCorpus(7, me, 80*24*time.Hour, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	mails := c.generate(2000)
	var total, replies, withAtt int
	for i := range mails {
		m := &mails[i]
		raw := m.raw()
		total += len(raw)
		if len(raw) < 1200 || len(raw) > 6000 {
			t.Errorf("message %d is %d bytes", i, len(raw))
		}
		p, err := mimeconv.Parse(bytes.NewReader(raw), mimeconv.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Problems) > 0 {
			t.Errorf("message %d: %v\n%s", i, p.Problems, raw)
		}
		if p.Subject != m.subject || p.MessageID != m.msgID || len(p.From) != 1 || p.From[0].Email != m.from.email {
			t.Errorf("message %d parsed as %q %q %v", i, p.Subject, p.MessageID, p.From)
		}
		if m.inReplyTo != "" {
			replies++
			if p.InReplyTo != m.inReplyTo {
				t.Errorf("message %d: In-Reply-To %q, want %q", i, p.InReplyTo, m.inReplyTo)
			}
		}
		if m.att != nil {
			withAtt++
			if len(p.Attachments) != 1 || p.Attachments[0].Filename != m.att.filename {
				t.Errorf("message %d: attachments %+v", i, p.Attachments)
			}
		}
		if i > 0 && m.date.Before(mails[i-1].date.Add(-time.Hour)) {
			t.Errorf("message %d is older than message %d", i, i-1)
		}
	}
	avg := total / len(mails)
	if avg < 2000 || avg > 4096 {
		t.Errorf("average size %d bytes, want 2–4 KB", avg)
	}
	if replies < 400 || replies > 800 || withAtt < 150 || withAtt > 350 {
		t.Errorf("%d replies, %d with an attachment of 2000", replies, withAtt)
	}
}

func TestSummarizeTraces(t *testing.T) {
	out := `File: orchard-bench
Type: cpu
Duration: 5s, Total samples = 60ms (1.2%)
-----------+-------------------------------------------------------
      10ms   cmpbody
             bytes.Compare (inline)
             modernc.org/sqlite.(*conn).step
             github.com/orchard-mail/orchard/internal/store/sqlstore.(*Store).ApplyMailBatch
             github.com/orchard-mail/orchard/internal/syncer.(*syncSession).fetchAndStore
             runtime.goexit
-----------+-------------------------------------------------------
      20ms   github.com/orchard-mail/orchard/internal/mimeconv.unfold
             github.com/orchard-mail/orchard/internal/mimeconv.Parse
             github.com/orchard-mail/orchard/internal/syncer.readFetched
             github.com/orchard-mail/orchard/internal/syncer.(*syncSession).fetchAndStore
             runtime.goexit
-----------+-------------------------------------------------------
      20ms   crypto/internal/fips140/aes/gcm.gcmAesDec
             crypto/tls.(*Conn).Read
             bufio.(*Reader).Read
             github.com/orchard-mail/orchard/internal/mimeconv.Parse
             github.com/orchard-mail/orchard/internal/syncer.(*syncSession).fetchAndStore
             runtime.goexit
-----------+-------------------------------------------------------
      10ms   runtime.scanobject
             runtime.gcBgMarkWorker
             runtime.goexit
-----------+-------------------------------------------------------
`
	s := summarizeTraces([]byte(out), syncGroups, 3)
	if s.total != 60*time.Millisecond {
		t.Fatalf("total %v", s.total)
	}
	got := map[string]time.Duration{}
	for _, g := range s.groups {
		got[g.name] = g.value
	}
	for prefix, want := range map[string]time.Duration{"IMAP read": 20 * time.Millisecond, "store": 10 * time.Millisecond,
		"MIME parse": 20 * time.Millisecond, "GC": 10 * time.Millisecond} {
		found := false
		for name, v := range got {
			if strings.HasPrefix(name, prefix) {
				found = true
				if v != want {
					t.Errorf("%s: %v, want %v", name, v, want)
				}
			}
		}
		if !found {
			t.Errorf("no group %s in %v", prefix, got)
		}
	}
	if len(s.top) != 3 || !strings.HasSuffix(s.top[0].fn, "fetchAndStore") || s.top[0].cum != 50*time.Millisecond ||
		!strings.HasSuffix(s.top[1].fn, "mimeconv.Parse") {
		t.Errorf("top: %+v", s.top)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{50: 50, 90: 90, 99: 99, 100: 100} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
}

func TestDovecotLogSince(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dovecot.log")
	log := "Nov 29 02:10:03 imap-login: Info: Login: user=<a@x>\n" +
		"Nov 29 02:10:04 master: Warning: service(imap-login): process_limit (100) reached, client connections are being dropped\n" +
		"Nov 29 02:10:05 master: Warning: service(imap-login): process_limit (100) reached, client connections are being dropped\n" +
		"Nov 29 02:10:06 imap(u1@x)<1><abc>: Warning: Inotify instance limit for user 999 (UID vmail) exceeded\n" +
		"Nov 29 02:10:06 imap(u2@x)<2><def>: Warning: Inotify instance limit for user 999 (UID vmail) exceeded\n"
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	got := dovecotLogSince(p, 0)
	want := []string{
		"2× master: Warning: service(imap-login): process_limit (100) reached, client connections are being dropped",
		"2× imap(…): Warning: Inotify instance limit for user 999 (UID vmail) exceeded",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSummarizeFile(t *testing.T) {
	p := os.Getenv("ORCHARD_BENCH_PROFILE")
	if p == "" {
		t.Skip("ORCHARD_BENCH_PROFILE not set")
	}
	s, err := summarizeProfile(p, syncGroups)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range s.groups {
		t.Logf("%-50s %v", g.name, g.value)
	}
	for _, f := range s.top {
		t.Logf("%-80s %v %s %s", f.fn, f.cum, f.cumPct, f.group)
	}
}

// The send command end to end against the test environment, small: it
// sends, files and counts real mail, and fails when any goes missing.
func TestSendCommand(t *testing.T) {
	testenv.Get(t) // skips without the test environment (fails in CI)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := sendCommand(ctx, []string{"-n", "3", "-warmup", "1", "-size", "6000", "-deliver-wait", "30s", "-timeout", "2m"}, &out)
	report := out.String()
	if err != nil {
		t.Fatalf("send: %v\n%s", err, report)
	}
	for _, want := range []string{
		"| baseline: raw SMTP submission | 3 |",
		"| **Orchard** `POST …/messages/send` | 3 |",
		"**Orchard / raw SMTP, p50: ",
		"| SMTP submission (`Sender.Submit`) | 1.00 |",
		"| Sent: look for the copy, else APPEND it, in one session (`Mailbox.AppendUnlessPresent`) | 1.00 |",
		"| store.ReserveSend | 1.00 |",
		"| … of them Orchard (by subject) | 4 | 4 | yes |",
		"| sender's \"Sent Messages\" over IMAP | 4 | 4 | yes |",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if !strings.Contains(report, "recipient's INBOX over IMAP") || !strings.Contains(report, "| 8 | 8 | yes |") || strings.Contains(report, "**NO**") {
		t.Errorf("mail not accounted for:\n%s", report)
	}
}

func TestSendCheckProblems(t *testing.T) {
	ok := sendCheck{sent: [numOps]int{5, 5, 5}, rcptInbox: 10, rcptRaw: 5, rcptOrchard: 5, sentIMAP: 5, copyIMAP: 5, storeTotal: 5, storeListed: 5}
	if p := ok.problems(); len(p) != 0 {
		t.Fatalf("all there, yet: %v", p)
	}
	for name, c := range map[string]func(*sendCheck){
		"one undelivered":     func(c *sendCheck) { c.rcptInbox, c.rcptOrchard = 9, 4 },
		"a Sent copy missing": func(c *sendCheck) { c.sentIMAP = 4 },
		"a raw copy missing":  func(c *sendCheck) { c.copyIMAP = 4 },
		"not in the store":    func(c *sendCheck) { c.storeListed = 4 },
		"a warning":           func(c *sendCheck) { c.warnings = []string{"file the sent message in Sent"} },
	} {
		bad := ok
		c(&bad)
		if p := bad.problems(); len(p) != 1 {
			t.Errorf("%s: problems %v", name, p)
		}
	}
}
