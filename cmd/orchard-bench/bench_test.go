package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// The webhook command end to end against the test environment, small: real
// grants, a real Orchard and receiver; it fails when a notification is
// missing, duplicated or wrong.
func TestWebhookCommand(t *testing.T) {
	testenv.Get(t) // skips without the test environment (fails in CI)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := webhookCommand(ctx, []string{"-grants", "2", "-n", "6", "-folder-n", "2", "-history", "2", "-interval", "50ms",
		"-folder-poll", "1s", "-drain", "30s", "-timeout", "2m"}, &out)
	report := out.String()
	if err != nil {
		t.Fatalf("webhook: %v\n%s", err, report)
	}
	for _, want := range []string{
		"| baseline: Dovecot announces it (`EXISTS` at the bench's IDLE) | 6 |",
		"| **Orchard**: `message.created` at the receiver | 6 |",
		"**Orchard / Dovecot: p50 ",
		"| store: `ApplyMailBatch` with its change row |",
		"restarted with **poll interval 1 s**",
		"| **Orchard**: `message.created` at the receiver (poll 1 s) | 2 |",
		"| INBOX: messages with a notification | 6 | 6 | yes |",
		"| Archive: messages with a notification | 2 | 2 | yes |",
		"| notifications of other mail (the history the initial sync found) or of other types | 0 | 0 | yes |",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "**NO**") {
		t.Errorf("notifications not accounted for:\n%s", report)
	}
}

// analyzeHooks tells lost, duplicated, redelivered, misaddressed and
// unexpected notifications apart, and times the rest.
func TestAnalyzeHooks(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	msg := func(seq int) *hookMsg {
		return &hookMsg{seq: seq, grant: seq % 2, folder: "INBOX", subject: fmt.Sprintf("s%d", seq), pos: seq/2 + 1,
			submit: at(1000 * seq), stored: at(1000*seq + 4)}
	}
	part := &hookPart{folder: "INBOX", msgs: []*hookMsg{msg(0), msg(1), msg(2), msg(3), msg(4)}}
	post := func(id string, seq, after int, grant, folder string) hookPost {
		return hookPost{id: id, typ: "message.created", attempt: 1, at: at(1000*seq + after), objectID: "m" + id,
			grantID: grant, subject: fmt.Sprintf("s%d", seq), folders: []string{folder}}
	}
	posts := []hookPost{
		post("a", 0, 600, "g0", "in0"),                        // fine
		post("b", 1, 700, "g1", "in1"),                        // fine …
		post("b", 1, 900, "g1", "in1"),                        // … and redelivered under its id
		post("c", 2, 650, "g0", "in0"),                        // two ids for one message
		post("d", 2, 800, "g0", "in0"),                        //
		post("e", 4, 620, "g1", "elsewhere"),                  // the wrong folder
		{id: "f", typ: "message.created", subject: "history"}, // found by the initial sync
		{id: "g", typ: "message.updated", subject: "s0"},      // another type
	}
	posts[2].attempt = 2
	times := newHookTimes()
	times.batch["ma"] = [2]time.Time{at(520), at(530)}
	times.enqueued["a"] = at(580)
	times.claimed["a"] = at(590)
	r := &hookResult{}
	exists := func(m *hookMsg) (time.Time, bool) { return at(1000*m.seq + 500), m.seq != 3 }
	where := func(m *hookMsg) (string, string) { return fmt.Sprintf("g%d", m.grant), fmt.Sprintf("in%d", m.grant) }
	o := analyzeHooks([]*hookPart{part}, posts, r, exists, where, times)[0]

	if o.notified != 4 || len(o.lost) != 1 || o.lost[0].seq != 3 {
		t.Errorf("notified %d, lost %v", o.notified, o.lost)
	}
	if o.dupMsgs != 1 || o.extraIDs != 1 || o.wrong != 1 {
		t.Errorf("duplicates %d (%d extra ids), wrong %d", o.dupMsgs, o.extraIDs, o.wrong)
	}
	if r.redelivered != 1 || r.retried != 1 || r.unexpected != 2 {
		t.Errorf("redelivered %d, retried %d, unexpected %d", r.redelivered, r.retried, r.unexpected)
	}
	// Each message's earliest notification counts: 600, 700, 650, 620 ms.
	if want := []time.Duration{600, 700, 650, 620}; !slices.Equal(o.latency, scaleMS(want)) {
		t.Errorf("latency %v", o.latency)
	}
	if want := []time.Duration{100, 200, 150, 120}; len(o.baseline) != 4 || !slices.Equal(o.diff, scaleMS(want)) {
		t.Errorf("baseline %v, diff %v", o.baseline, o.diff)
	}
	// Only message 0 has every timestamp: delivery 0 → EXISTS 500 → batch
	// 520–530 → enqueued 580 → claimed 590 → arrived 600.
	if o.phasesFor != 1 || len(o.phases) != 6 {
		t.Fatalf("phases for %d messages: %v", o.phasesFor, o.phases)
	}
	for i, want := range scaleMS([]time.Duration{500, 20, 10, 50, 10, 10}) {
		if o.phases[i][0] != want {
			t.Errorf("phase %d: %v, want %v", i, o.phases[i][0], want)
		}
	}
	// Lost, duplicated, wrong, unseen by the baseline, redelivered,
	// retried, unexpected.
	r.inbox = o
	if p := r.problems(); len(p) != 7 {
		t.Errorf("problems: %q", p)
	}
}

func scaleMS(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d * time.Millisecond
	}
	return out
}
