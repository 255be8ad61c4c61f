package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/compose"
	"github.com/orchard-mail/orchard/internal/httpapi"
	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/mailbox"
	"github.com/orchard-mail/orchard/internal/provider"
	imapprov "github.com/orchard-mail/orchard/internal/provider/imap"
	"github.com/orchard-mail/orchard/internal/secret"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/smtpx"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
	"github.com/orchard-mail/orchard/internal/syncer"
	"github.com/orchard-mail/orchard/internal/testenv"
)

type sendFlags struct {
	n, size, warmup int
	seed            uint64
	deliverWait     time.Duration
	timeout         time.Duration
	verbose         bool
}

// copyFolder is where the raw Sent-copy baseline files its copies: a
// folder of its own, so that Sent holds exactly Orchard's copies.
const copyFolder = "orchard-bench sent copies"

// The operations of one round, run in rotating order so that noise hits
// all of them alike.
const (
	opRawSMTP = iota
	opRawCopy
	opOrchard
	numOps
)

var opNames = [numOps]string{"raw SMTP submission", "raw Sent copy", "Orchard send"}

// Names of the calls timed inside Orchard that are not store calls
// (every other name the recorder holds is a store method).
const (
	phaseSubmit = "SMTP Submit"
	phaseFind   = "IMAP FindByMessageID"
	phaseAppend = "IMAP Append"
	phaseFile   = "IMAP AppendUnlessPresent"
)

func runSend(ctx context.Context, args []string) error { return sendCommand(ctx, args, os.Stdout) }

// sendCommand is runSend writing its report to out (the test reads it).
func sendCommand(ctx context.Context, args []string, out io.Writer) error {
	var f sendFlags
	fs := newFlags("send")
	fs.IntVar(&f.n, "n", 200, "timed messages per path (raw SMTP, raw Sent copy, Orchard), interleaved")
	fs.IntVar(&f.size, "size", 20000, "approximate size in bytes of each message as it goes over SMTP (one attachment makes up most of it)")
	fs.IntVar(&f.warmup, "warmup", 2, "untimed rounds first (their mail is delivered and counted like the rest)")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed of the message text and attachment")
	fs.DurationVar(&f.deliverWait, "deliver-wait", 60*time.Second, "how long to wait after the last send for Postfix to deliver every message")
	fs.DurationVar(&f.timeout, "timeout", 4*time.Minute+30*time.Second, "give up after this long")
	fs.BoolVar(&f.verbose, "v", false, "log the service to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.n < 1 || f.size < 2000 || f.warmup < 0 {
		return errors.New("send: want -n ≥ 1, -size ≥ 2000, -warmup ≥ 0")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var cl cleanups
	defer cl.run()

	b, err := setupSend(ctx, &cl, f)
	if err != nil {
		return err
	}
	res, err := b.run(ctx)
	if err != nil {
		return err
	}
	chk, err := b.verify(ctx, res)
	if err != nil {
		return fmt.Errorf("verifying the mail: %w", err)
	}
	reportSend(out, b, res, chk)
	if p := chk.problems(); len(p) > 0 {
		return fmt.Errorf("send: mail went missing or was not recorded: %s", strings.Join(p, "; "))
	}
	return nil
}

// sendBench is the set-up benchmark.
type sendBench struct {
	f         sendFlags
	env       *testenv.Env
	tls       *tls.Config
	smtp      *smtpx.Dialer
	sender    testenv.User
	rcpt      testenv.User
	st        store.Store
	rec       *timedStore
	timedSMTP *timedSender
	warn      *warnLog
	srv       *httptest.Server
	client    *http.Client
	apiKey    string
	grantID   string
	sent      store.Folder // the grant's Sent folder as the store knows it
	folders   int
	syncWall  time.Duration
	tag       string
	raws      [][]byte // pre-built messages of the baselines
	rawIDs    []string // their Message-IDs
	bodies    [][]byte // pre-built JSON of the Orchard sends
	attBytes  int
	htmlBytes int
}

// benchTB lets a command call testenv.NewUser: its t<12 hex>@example.test
// users are the only new ones Postfix accepts mail for (AddUsers' names do
// not match up.sh's vmailbox regexp, so RCPT TO them is refused). Only the
// methods NewUser calls are implemented; the embedded TB is nil.
type benchTB struct {
	testing.TB
	cl  *cleanups
	err error
}

func (t *benchTB) Helper() {}

func (t *benchTB) Fatalf(format string, args ...any) {
	if t.err == nil {
		t.err = fmt.Errorf(format, args...)
	}
}

func (t *benchTB) Errorf(format string, args ...any) { logf("cleanup: "+format, args...) }

func (t *benchTB) Cleanup(f func()) { t.cl.add(func(context.Context) { f() }) }

// warnLog keeps the service's warnings: a send that could not file or
// record its Sent copy still answers 200 and only logs.
type warnLog struct {
	mu      sync.Mutex
	msgs    []string
	verbose bool
}

func (w *warnLog) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || w.verbose
}

func (w *warnLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	if w.verbose {
		logf("service %s: %s", r.Level, b.String())
	}
	if r.Level >= slog.LevelWarn {
		w.mu.Lock()
		w.msgs = append(w.msgs, b.String())
		w.mu.Unlock()
	}
	return nil
}

func (w *warnLog) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnLog) WithGroup(string) slog.Handler      { return w }

func (w *warnLog) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

// timedSender and timedMailbox time the provider calls the service makes
// (the same smtpx.Dialer and mailbox.Mailbox serve.go wires in).
type timedSender struct {
	d    *smtpx.Dialer
	rec  *timedStore
	size atomic.Int64 // of the last message submitted
}

func (t *timedSender) Submit(ctx context.Context, c provider.Credentials, from string, rcpts []string, msg []byte) (bool, error) {
	defer t.rec.since(phaseSubmit, time.Now())
	t.size.Store(int64(len(msg)))
	return t.d.Submit(ctx, c, from, rcpts, msg)
}

type timedMailbox struct {
	*mailbox.Mailbox
	rec *timedStore
}

func (t *timedMailbox) FindByMessageID(ctx context.Context, c provider.Credentials, folder, messageID string) ([]uint32, uint32, error) {
	defer t.rec.since(phaseFind, time.Now())
	return t.Mailbox.FindByMessageID(ctx, c, folder, messageID)
}

func (t *timedMailbox) AppendUnlessPresent(ctx context.Context, c provider.Credentials, folder, messageID string, flags []imap.Flag, msg []byte) (uint32, uint32, error) {
	defer t.rec.since(phaseFile, time.Now())
	return t.Mailbox.AppendUnlessPresent(ctx, c, folder, messageID, flags, msg)
}

func (t *timedMailbox) Append(ctx context.Context, c provider.Credentials, folder string, flags []imap.Flag, date time.Time, msg []byte) (uint32, uint32, error) {
	defer t.rec.since(phaseAppend, time.Now())
	return t.Mailbox.Append(ctx, c, folder, flags, date, msg)
}

// sendStore adds the store calls of a send to those timedStore times.
type sendStore struct{ *timedStore }

func (t sendStore) APIKeysByPrefix(ctx context.Context, prefix string) ([]store.APIKey, error) {
	defer t.since("APIKeysByPrefix", time.Now())
	return t.Store.APIKeysByPrefix(ctx, prefix)
}

func (t sendStore) GetGrant(ctx context.Context, appID, id string) (*store.Grant, error) {
	defer t.since("GetGrant", time.Now())
	return t.Store.GetGrant(ctx, appID, id)
}

func (t sendStore) GetGrantByEmail(ctx context.Context, appID, email string) (*store.Grant, error) {
	defer t.since("GetGrantByEmail", time.Now())
	return t.Store.GetGrantByEmail(ctx, appID, email)
}

func (t sendStore) ReserveSend(ctx context.Context, grantID, id string, at time.Time, n int, window time.Duration, maxMessages, maxRecipients int) (store.SendRefusal, error) {
	defer t.since("ReserveSend", time.Now())
	return t.Store.ReserveSend(ctx, grantID, id, at, n, window, maxMessages, maxRecipients)
}

func (t sendStore) ReleaseSend(ctx context.Context, grantID, id string) error {
	defer t.since("ReleaseSend", time.Now())
	return t.Store.ReleaseSend(ctx, grantID, id)
}

func (t sendStore) GetMessage(ctx context.Context, grantID, id string) (*store.Message, error) {
	defer t.since("GetMessage", time.Now())
	return t.Store.GetMessage(ctx, grantID, id)
}

func (t sendStore) GetThread(ctx context.Context, grantID, id string) (*store.Thread, error) {
	defer t.since("GetThread", time.Now())
	return t.Store.GetThread(ctx, grantID, id)
}

func (t sendStore) ListMessages(ctx context.Context, q store.MessageQuery) ([]store.Message, error) {
	defer t.since("ListMessages", time.Now())
	return t.Store.ListMessages(ctx, q)
}

func setupSend(ctx context.Context, cl *cleanups, f sendFlags) (*sendBench, error) {
	b := &sendBench{f: f}
	env, err := testenv.Load()
	if err != nil {
		return nil, err
	}
	b.env = env
	pool, err := env.RootCAs()
	if err != nil {
		return nil, err
	}
	// As serve.go configures its dialers.
	b.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	b.smtp = &smtpx.Dialer{TLSConfig: b.tls, Timeout: 30 * time.Second}
	imapDialer := &imapx.Dialer{TLSConfig: b.tls, Timeout: 30 * time.Second}

	users, err := env.AddUsers("bench-send", 1)
	if err != nil {
		return nil, err
	}
	b.sender = users[0]
	tb := &benchTB{cl: cl}
	b.rcpt = env.NewUser(tb)
	if tb.err == nil {
		// NewUser's own cleanup leaves the user's empty home directory;
		// RemoveUsers takes it (and runs first, in the same edit as the
		// sender's removal).
		users = append(users, b.rcpt)
	}
	cl.add(func(context.Context) {
		if err := env.RemoveUsers(users); err != nil {
			logf("cleanup: %v", err)
		}
	})
	if tb.err != nil {
		return nil, tb.err
	}
	logf("sender %s, recipient %s", b.sender.Email, b.rcpt.Email)

	dir, err := os.MkdirTemp("", "orchard-bench-send-")
	if err != nil {
		return nil, err
	}
	cl.add(func(context.Context) { _ = os.RemoveAll(dir) })
	st, err := sqlite.Open(ctx, filepath.Join(dir, "orchard.db"))
	if err != nil {
		return nil, err
	}
	cl.add(func(context.Context) { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		return nil, err
	}
	b.st = st
	var key [32]byte
	copy(key[:], "orchard-bench-send-not-a-secret!")
	box, err := secret.New(key[:])
	if err != nil {
		return nil, err
	}
	b.rec = &timedStore{Store: st, calls: map[string]*callStat{}}
	b.warn = &warnLog{verbose: f.verbose}
	logger := slog.New(b.warn)
	b.timedSMTP = &timedSender{d: b.smtp, rec: b.rec}
	svc := service.New(service.Deps{
		Store: sendStore{b.rec}, Box: box, Logger: logger, ProviderTimeout: 30 * time.Second,
		Mailbox:      &timedMailbox{Mailbox: &mailbox.Mailbox{Dialer: imapDialer}, rec: b.rec},
		Sender:       b.timedSMTP,
		SentCopyWait: map[string]time.Duration{service.ProviderIMAP: 0},
		ICloud:       nopICloud{},
		IMAP:         &imapprov.Verifier{IMAP: imapDialer, SMTP: b.smtp},
	})
	_, apiKey, err := svc.CreateApplication(ctx, "bench")
	if err != nil {
		return nil, err
	}
	b.apiKey = apiKey
	b.srv = httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Logger: logger, MaxBodyBytes: 1 << 20, MaxSendBodyBytes: 36 << 20}))
	cl.add(func(context.Context) { b.srv.Close() })
	b.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: 60 * time.Second}
	cl.add(func(context.Context) { b.client.CloseIdleConnections() })

	// The grant, the way an application connects one.
	if _, err := b.call(ctx, "POST", "/v3/connectors", []byte(`{"provider":"imap"}`), http.StatusOK, http.StatusCreated); err != nil {
		return nil, err
	}
	imapHost, imapPort, _ := net.SplitHostPort(env.IMAPAddr)
	smtpHost, smtpPort, _ := net.SplitHostPort(env.SMTPAddr)
	connect, _ := json.Marshal(map[string]any{"provider": "imap", "settings": map[string]any{
		"imap_username": b.sender.Email, "imap_password": b.sender.Password,
		"imap_host": imapHost, "imap_port": imapPort, "smtp_host": smtpHost, "smtp_port": smtpPort,
	}})
	body, err := b.call(ctx, "POST", "/v3/connect/custom", connect, http.StatusOK, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	var grant struct {
		Data struct{ ID string } `json:"data"`
	}
	if err := json.Unmarshal(body, &grant); err != nil || grant.Data.ID == "" {
		return nil, fmt.Errorf("connect/custom answered %.300s", body)
	}
	b.grantID = grant.Data.ID

	// The send needs the grant's folders in the store: one initial sync,
	// stopped before the measurement so that nothing runs beside it.
	t0 := time.Now()
	folders, err := initialSync(ctx, st, imapDialer, svc.Credentials)
	if err != nil {
		return nil, err
	}
	b.syncWall = time.Since(t0)
	b.folders = len(folders)
	i := slices.IndexFunc(folders, func(f store.Folder) bool { return f.Role == store.RoleSent })
	if i < 0 {
		return nil, errors.New("the grant has no Sent folder after its initial sync")
	}
	b.sent = folders[i]
	logf("grant %s connected and synced (%d folders, Sent is %q) in %s", b.grantID, len(folders), b.sent.Name, b.syncWall.Round(time.Millisecond))

	if err := b.imapSession(ctx, b.sender, func(c *imapclient.Client) error {
		return c.Create(copyFolder, nil).Wait()
	}); err != nil {
		return nil, fmt.Errorf("creating %q: %w", copyFolder, err)
	}
	if err := b.buildMessages(); err != nil {
		return nil, err
	}
	return b, nil
}

// initialSync runs a Supervisor over the store's one grant until every
// folder's initial sync is done, then stops it.
func initialSync(ctx context.Context, st store.Store, d *imapx.Dialer, creds syncer.Credentials) ([]store.Folder, error) {
	sup := syncer.New(syncer.Options{Store: st, Dialer: d, Credentials: creds, Logger: slog.New(slog.DiscardHandler), WindowDays: 90})
	gs, err := st.GrantsWithStatus(ctx, service.GrantValid)
	if err != nil {
		return nil, err
	}
	if len(gs) != 1 {
		return nil, fmt.Errorf("%d valid grants in the store, want 1", len(gs))
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = sup.Run(runCtx) }()
	defer func() { stop(); <-done }()
	for {
		fs, err := st.ListFolders(ctx, gs[0].ID)
		if err != nil {
			return nil, err
		}
		if len(fs) > 0 && !slices.ContainsFunc(fs, func(f store.Folder) bool { return !f.InitialDone }) {
			return fs, nil
		}
		if s, ok := sup.Status(gs[0].ID); ok && s.State == "retrying" {
			return nil, fmt.Errorf("initial sync failed: %s", s.LastError)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("initial sync not done: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// call makes an API request and wants one of the statuses.
func (b *sendBench) call(ctx context.Context, method, path string, body []byte, want ...int) ([]byte, error) {
	return apiCall(ctx, b.client, b.srv.URL, b.apiKey, method, path, body, want...)
}

// imapSession runs fn on a fresh IMAPS connection logged in as u.
func (b *sendBench) imapSession(ctx context.Context, u testenv.User, fn func(*imapclient.Client) error) error {
	c, err := imapclient.DialTLS(b.env.IMAPAddr, &imapclient.Options{TLSConfig: b.tls.Clone()})
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Login(u.Email, u.Password).Wait(); err != nil {
		return err
	}
	if err := fn(c); err != nil {
		return err
	}
	return c.Logout().Wait()
}

// buildMessages pre-builds every message of the run: the baselines' RFC
// 5322 messages (with internal/compose, as Orchard builds them) and the
// JSON of the Orchard sends, with the same subject, HTML and attachment.
func (b *sendBench) buildMessages() error {
	total := b.f.n + b.f.warmup
	c := newCorpus(b.f.seed, person{"Bench Sender", b.sender.Email}, time.Hour, time.Now())
	html := "<html><body><div>" + strings.Join(c.paragraphs(900), "</div>\r\n<div><br></div>\r\n<div>") + "</div></body></html>"
	b.htmlBytes = len(html)
	build := func(attLen int, subject, id string) ([]byte, error) {
		att := make([]byte, attLen)
		for i := range att {
			att[i] = byte(c.rng.Uint32())
		}
		m := compose.Message{
			From: compose.Address{Email: b.sender.Email}, To: []compose.Address{{Email: b.rcpt.Email}},
			Subject: subject, Body: html, MessageID: id, Date: time.Now(),
			Attachments: []compose.Attachment{{Filename: "bench-data.bin", ContentType: "application/octet-stream", Content: att}},
		}
		var w bytes.Buffer
		err := compose.Build(&w, &m)
		return w.Bytes(), err
	}
	// Base64 in lines of 76 plus CRLF: 78 bytes on the wire per 57 of file.
	probeLen := b.f.size * 3 / 4
	probe, err := build(probeLen, "probe", compose.NewMessageID("example.test"))
	if err != nil {
		return err
	}
	b.attBytes = max(256, probeLen+(b.f.size-len(probe))*57/78)

	var tag [4]byte
	for i := range tag {
		tag[i] = "abcdefghijklmnopqrstuvwxyz"[c.rng.IntN(26)]
	}
	b.tag = fmt.Sprintf("%s%d", tag[:], time.Now().Unix()%100000)
	att := make([]byte, b.attBytes)
	for i := range att {
		att[i] = byte(c.rng.Uint32())
	}
	content := base64.StdEncoding.EncodeToString(att)
	for i := range total {
		id := compose.NewMessageID("example.test")
		m := compose.Message{
			From: compose.Address{Email: b.sender.Email}, To: []compose.Address{{Email: b.rcpt.Email}},
			Subject: fmt.Sprintf("orchard-bench %s raw #%d", b.tag, i), Body: html, MessageID: id, Date: time.Now(),
			Attachments: []compose.Attachment{{Filename: "bench-data.bin", ContentType: "application/octet-stream", Content: att}},
		}
		var w bytes.Buffer
		if err := compose.Build(&w, &m); err != nil {
			return err
		}
		b.raws = append(b.raws, w.Bytes())
		b.rawIDs = append(b.rawIDs, id)

		subject := fmt.Sprintf("orchard-bench %s api #%d", b.tag, i)
		body, err := json.Marshal(api.OutgoingMessage{
			To: &[]api.Participant{{Email: b.rcpt.Email}}, Subject: &subject, Body: &html,
			Attachments: &[]api.OutgoingAttachment{{Filename: "bench-data.bin", ContentType: "application/octet-stream", Content: &content}},
		})
		if err != nil {
			return err
		}
		b.bodies = append(b.bodies, body)
	}
	logf("built %d messages of %d bytes (HTML %d bytes, attachment %d bytes) and their JSON (%d bytes)",
		total, len(b.raws[0]), b.htmlBytes, b.attBytes, len(b.bodies[0]))
	return nil
}

type opSample struct{ wall, cpu time.Duration }

type sendResult struct {
	rounds    int // timed rounds done (< n when cut short)
	warm      int // warm-up rounds done
	cutShort  bool
	loopWall  time.Duration
	samples   [numOps][]opSample
	search    []time.Duration // raw copy: connect, LOGIN, SELECT, SEARCH
	appendRaw []time.Duration // raw copy: connect, LOGIN, APPEND
	phases    []map[string]time.Duration
	calls     map[string]int // store and provider calls over the timed Orchard sends
	ids       []string       // ids Orchard answered with
	lastSend  time.Time
}

func (b *sendBench) run(ctx context.Context) (*sendResult, error) {
	r := &sendResult{calls: map[string]int{}}
	total := b.f.n + b.f.warmup
	deadline, _ := ctx.Deadline()
	// Keep enough of -timeout to wait for delivery and clean up.
	reserve := b.f.deliverWait + 30*time.Second
	start := time.Now()
	lastLog := time.Now()
	for i := range total {
		if time.Until(deadline) < reserve {
			r.cutShort = true
			logf("stopping after %d of %d rounds: -timeout %s leaves %s for delivery and cleanup", i, total, b.f.timeout, reserve)
			break
		}
		warm := i < b.f.warmup
		for k := range numOps {
			op := (i + k) % numOps
			var before map[string]*callStat
			if op == opOrchard {
				before = b.rec.snapshot()
			}
			cpu0 := cpuTime()
			t0 := time.Now()
			var err error
			var search, app time.Duration
			var id string
			switch op {
			case opRawSMTP:
				creds := provider.Credentials{SMTPAddr: b.env.SMTPAddr, SMTPUsername: b.sender.Email, SMTPPassword: b.sender.Password}
				var uncertain bool
				uncertain, err = b.smtp.Submit(ctx, creds, b.sender.Email, []string{b.rcpt.Email}, b.raws[i])
				if err == nil && uncertain {
					err = errors.New("no answer after DATA")
				}
			case opRawCopy:
				search, app, err = b.rawSentCopy(ctx, b.rawIDs[i], b.raws[i])
			case opOrchard:
				id, err = b.orchardSend(ctx, b.bodies[i])
			}
			sample := opSample{time.Since(t0), cpuTime() - cpu0}
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", i, opNames[op], err)
			}
			if op == opOrchard {
				r.ids = append(r.ids, id)
			}
			if warm {
				continue
			}
			r.samples[op] = append(r.samples[op], sample)
			switch op {
			case opRawCopy:
				r.search = append(r.search, search)
				r.appendRaw = append(r.appendRaw, app)
			case opOrchard:
				// The calls this send made: the recorder's counts now less
				// those before it.
				ph := map[string]time.Duration{}
				for name, c := range b.rec.snapshot() {
					n, w := c.n, c.wall
					if p := before[name]; p != nil {
						n, w = n-p.n, w-p.wall
					}
					if n > 0 {
						ph[name] = w
						r.calls[name] += n
					}
				}
				r.phases = append(r.phases, ph)
			}
		}
		if warm {
			r.warm++
		} else {
			r.rounds++
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			logf("%d of %d rounds (%d warm-up): raw SMTP p50 %s, Orchard p50 %s", i+1, total, b.f.warmup,
				ms(p50(r.samples[opRawSMTP])), ms(p50(r.samples[opOrchard])))
		}
	}
	r.loopWall = time.Since(start)
	r.lastSend = time.Now()
	if r.rounds == 0 {
		return nil, errors.New("send: no timed round done within -timeout")
	}
	logf("%d rounds in %s: raw SMTP p50 %s, raw Sent copy p50 %s, Orchard p50 %s", r.rounds, secs(r.loopWall),
		ms(p50(r.samples[opRawSMTP])), ms(p50(r.samples[opRawCopy])), ms(p50(r.samples[opOrchard])))
	return r, nil
}

func p50(s []opSample) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return percentile(walls(s), 50)
}

// walls returns the sorted wall times of s.
func walls(s []opSample) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, x := range s {
		out[i] = x.wall
	}
	slices.Sort(out)
	return out
}

// rawSentCopy files msg in copyFolder as Orchard files a sent message in
// Sent (service.fileSent with SentCopyWait 0, through
// mailbox.Mailbox.AppendUnlessPresent): in one session, look for its
// Message-ID, then APPEND it. search is the time up to the SEARCH answer
// (connect and LOGIN included), app the rest.
func (b *sendBench) rawSentCopy(ctx context.Context, id string, msg []byte) (search, app time.Duration, err error) {
	t0 := time.Now()
	var t1 time.Time
	err = b.imapSession(ctx, b.sender, func(c *imapclient.Client) error {
		if _, err := c.Select(copyFolder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return err
		}
		data, err := c.UIDSearch(&imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<" + id + ">"}},
		}, nil).Wait()
		if err != nil {
			return err
		}
		if len(data.AllUIDs()) > 0 {
			return fmt.Errorf("message %s is already in %q", id, copyFolder)
		}
		t1 = time.Now()
		search = t1.Sub(t0)
		cmd := c.Append(copyFolder, int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
		if _, err := cmd.Write(msg); err != nil {
			_ = cmd.Close()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		_, err = cmd.Wait()
		return err
	})
	if t1.IsZero() {
		return time.Since(t0), 0, err
	}
	return search, time.Since(t1), err
}

// orchardSend posts one message to the send endpoint and returns the id
// of the message Orchard answers with.
func (b *sendBench) orchardSend(ctx context.Context, body []byte) (string, error) {
	out, err := b.call(ctx, "POST", "/v3/grants/"+b.grantID+"/messages/send", body, http.StatusOK)
	if err != nil {
		return "", err
	}
	var resp struct {
		GrantID string `json:"grant_id"`
		Data    struct {
			ID      string   `json:"id"`
			Folders []string `json:"folders"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return "", fmt.Errorf("answer is not JSON: %.300s", out)
	}
	if resp.GrantID != b.grantID || resp.Data.ID == "" || !slices.Contains(resp.Data.Folders, b.sent.ID) {
		return "", fmt.Errorf("unexpected answer (want the grant, a message id and the Sent folder): %.500s", out)
	}
	return resp.Data.ID, nil
}

// sendCheck is the accounting of the run's mail.
type sendCheck struct {
	sent        [numOps]int // operations done, warm-up included
	rcptInbox   int         // messages in the recipient's INBOX
	rcptRaw     int         // of them, the baseline's (by subject)
	rcptOrchard int         // of them, Orchard's
	delivery    time.Duration
	sentIMAP    int // the sender's Sent folder over IMAP
	copyIMAP    int // the baseline's copy folder over IMAP
	storeTotal  int // the Sent folder's TotalCount in the store
	storeListed int // Orchard's answered ids found in Sent in the store
	warnings    []string
}

func (c *sendCheck) problems() []string {
	var p []string
	if want := c.sent[opRawSMTP] + c.sent[opOrchard]; c.rcptInbox != want || c.rcptRaw != c.sent[opRawSMTP] || c.rcptOrchard != c.sent[opOrchard] {
		p = append(p, fmt.Sprintf("the recipient's INBOX holds %d messages (%d raw, %d Orchard), want %d (%d + %d)",
			c.rcptInbox, c.rcptRaw, c.rcptOrchard, want, c.sent[opRawSMTP], c.sent[opOrchard]))
	}
	if c.sentIMAP != c.sent[opOrchard] {
		p = append(p, fmt.Sprintf("the sender's Sent holds %d messages, want %d", c.sentIMAP, c.sent[opOrchard]))
	}
	if c.copyIMAP != c.sent[opRawCopy] {
		p = append(p, fmt.Sprintf("%q holds %d messages, want %d", copyFolder, c.copyIMAP, c.sent[opRawCopy]))
	}
	if c.storeTotal != c.sent[opOrchard] || c.storeListed != c.sent[opOrchard] {
		p = append(p, fmt.Sprintf("the store's Sent has %d messages (%d of Orchard's answers), want %d", c.storeTotal, c.storeListed, c.sent[opOrchard]))
	}
	if len(c.warnings) > 0 {
		p = append(p, fmt.Sprintf("the service logged %d warnings, the first: %s", len(c.warnings), c.warnings[0]))
	}
	return p
}

// verify counts the run's mail: delivered to the recipient (waiting for
// Postfix), filed in Sent and in the copy folder, recorded in the store.
func (b *sendBench) verify(ctx context.Context, r *sendResult) (*sendCheck, error) {
	c := &sendCheck{warnings: b.warn.all()}
	done := r.rounds + r.warm
	c.sent = [numOps]int{done, done, done}
	want := c.sent[opRawSMTP] + c.sent[opOrchard]
	deadline := time.Now().Add(b.f.deliverWait)
	count := func(cl *imapclient.Client, folder string) (int, error) {
		st, err := cl.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return 0, err
		}
		if st.NumMessages == nil {
			return 0, fmt.Errorf("STATUS %q without MESSAGES", folder)
		}
		return int(*st.NumMessages), nil
	}
	err := b.imapSession(ctx, b.rcpt, func(cl *imapclient.Client) error {
		last := -1
		for {
			n, err := count(cl, "INBOX")
			if err != nil {
				return err
			}
			c.rcptInbox = n
			if n != last {
				last = n
				logf("recipient's INBOX: %d of %d messages", n, want)
			}
			if n >= want || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		c.delivery = time.Since(r.lastSend)
		if _, err := cl.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return err
		}
		for _, k := range []struct {
			what string
			n    *int
		}{{"raw", &c.rcptRaw}, {"api", &c.rcptOrchard}} {
			data, err := cl.UIDSearch(&imap.SearchCriteria{
				Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "orchard-bench " + b.tag + " " + k.what + " #"}},
			}, nil).Wait()
			if err != nil {
				return err
			}
			*k.n = len(data.AllUIDs())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recipient's mailbox: %w", err)
	}
	err = b.imapSession(ctx, b.sender, func(cl *imapclient.Client) error {
		var err error
		if c.sentIMAP, err = count(cl, b.sent.Name); err != nil {
			return err
		}
		c.copyIMAP, err = count(cl, copyFolder)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sender's mailbox: %w", err)
	}
	fs, err := b.st.ListFolders(ctx, b.grantID)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		if f.ID == b.sent.ID {
			c.storeTotal = f.TotalCount
		}
	}
	msgs, err := b.st.ListMessages(ctx, store.MessageQuery{GrantID: b.grantID, FolderIDs: []string{b.sent.ID}})
	if err != nil {
		return nil, err
	}
	answered := map[string]bool{}
	for _, id := range r.ids {
		answered[id] = true
	}
	for _, m := range msgs {
		if answered[m.ID] {
			c.storeListed++
		}
	}
	return c, nil
}

type latStats struct {
	p50, p95, mean, max time.Duration
	cpu                 time.Duration // mean
}

func statsOf(ds []time.Duration, cpus []time.Duration) latStats {
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum, csum time.Duration
	for _, d := range s {
		sum += d
	}
	for _, c := range cpus {
		csum += c
	}
	st := latStats{p50: percentile(s, 50), p95: percentile(s, 95), max: s[len(s)-1], mean: sum / time.Duration(len(s))}
	if len(cpus) > 0 {
		st.cpu = csum / time.Duration(len(cpus))
	}
	return st
}

func opStats(s []opSample) latStats {
	w := make([]time.Duration, len(s))
	c := make([]time.Duration, len(s))
	for i, x := range s {
		w[i], c[i] = x.wall, x.cpu
	}
	return statsOf(w, c)
}

func reportSend(w io.Writer, b *sendBench, r *sendResult, c *sendCheck) {
	header(w, "send")
	if r.cutShort {
		fmt.Fprintf(w, "**Cut short: %d of the %d rounds asked for** fit in -timeout %s (with %s kept for delivery and cleanup).\n\n",
			r.rounds, b.f.n, b.f.timeout, b.f.deliverWait+30*time.Second)
	}
	fmt.Fprintf(w, "Each message: %d bytes as built by internal/compose (HTML body of %d bytes with its text/plain alternative, "+
		"one %d-byte attachment in base64), from a fresh Dovecot user (`%s`) to another one, through Postfix submission (STARTTLS, AUTH PLAIN) "+
		"on loopback. %d rounds (after %d warm-up rounds), each one of every path in rotating order, so that noise hits all alike "+
		"(%s in all). Paths, one message each per round:\n\n",
		len(b.raws[0]), b.htmlBytes, b.attBytes, b.sender.Email, r.rounds, r.warm, secs(r.loopWall))
	fmt.Fprintf(w, "- **raw SMTP** (baseline): `smtpx.Dialer.Submit` of the pre-built message: connect, STARTTLS, EHLO, AUTH, MAIL/RCPT/DATA, QUIT;\n")
	fmt.Fprintf(w, "- **raw Sent copy** (second baseline): what Orchard does to file its copy, with go-imap: connect, TLS, LOGIN, "+
		"SELECT, `UID SEARCH HEADER Message-ID` (not found), `APPEND` (\\Seen), LOGOUT, in one session — into a folder of its own "+
		"(`%s`) that grows like Sent;\n", copyFolder)
	fmt.Fprintf(w, "- **Orchard**: `POST /v3/grants/{id}/messages/send` with the equivalent JSON (subject, HTML body, the attachment in base64: %d bytes; "+
		"Orchard's build of it went to SMTP as %d bytes) "+
		"over loopback HTTP to httpapi.New + service.Service in this process (SQLite store in a temp dir; Sender an smtpx.Dialer, "+
		"Mailbox a mailbox.Mailbox, SentCopyWait 0; the grant connected through `/v3/connect/custom` and synced once, %d folders in %s, "+
		"sync stopped before the measurement). Each send validates, builds the MIME, reserves the quota unit in the store, submits, "+
		"looks for the Message-ID in %q, APPENDs the copy there and writes it through to the store.\n\n",
		len(b.bodies[0]), b.timedSMTP.size.Load(), b.folders, secs(b.syncWall), b.sent.Name)

	raw := opStats(r.samples[opRawSMTP])
	cp := opStats(r.samples[opRawCopy])
	orch := opStats(r.samples[opOrchard])
	both := make([]time.Duration, r.rounds)
	bothCPU := make([]time.Duration, r.rounds)
	for i := range both {
		both[i] = r.samples[opRawSMTP][i].wall + r.samples[opRawCopy][i].wall
		bothCPU[i] = r.samples[opRawSMTP][i].cpu + r.samples[opRawCopy][i].cpu
	}
	floor := statsOf(both, bothCPU)
	row := func(name string, s latStats) []string {
		return []string{name, fmt.Sprint(r.rounds), ms(s.p50), ms(s.p95), ms(s.mean), ms(s.max),
			fmt.Sprintf("%.1f", 1/s.mean.Seconds()), fmt.Sprintf("%.0f µs", float64(s.cpu.Microseconds())),
			fmt.Sprintf("%.2f×", float64(s.p50)/float64(raw.p50))}
	}
	table(w, []string{"path", "messages", "p50", "p95", "mean", "max", "messages/s", "CPU / message", "p50 / raw SMTP p50"}, [][]string{
		row("baseline: raw SMTP submission", raw),
		row("second baseline: raw Sent copy (one session: SEARCH, then APPEND)", cp),
		row("raw SMTP + raw Sent copy (per round, summed)", floor),
		row("**Orchard** `POST …/messages/send`", orch),
	})
	fmt.Fprintf(w, "messages/s = 1 / mean latency (one message at a time). CPU / message is this process's user+system CPU "+
		"(for Orchard: HTTP client and server, service, store; Postfix and Dovecot run in other processes).\n\n")
	fmt.Fprintf(w, "**Orchard / raw SMTP, p50: %.2f×** (mean %.2f×). Against the protocol work an Orchard send does "+
		"(raw SMTP + raw Sent copy): p50 %.2f×, mean %.2f×.\n\n",
		float64(orch.p50)/float64(raw.p50), float64(orch.mean)/float64(raw.mean),
		float64(orch.p50)/float64(floor.p50), float64(orch.mean)/float64(floor.mean))

	// Where an Orchard send's time goes.
	n := time.Duration(len(r.phases))
	phaseOf := func(name string) []time.Duration {
		out := make([]time.Duration, len(r.phases))
		for i, p := range r.phases {
			out[i] = p[name]
		}
		return out
	}
	var storeNames []string
	for name := range r.calls {
		if name != phaseSubmit && name != phaseFind && name != phaseAppend && name != phaseFile {
			storeNames = append(storeNames, name)
		}
	}
	storeAll := make([]time.Duration, len(r.phases))
	rest := make([]time.Duration, len(r.phases))
	for i, p := range r.phases {
		var s time.Duration
		for _, name := range storeNames {
			s += p[name]
		}
		storeAll[i] = s
		rest[i] = r.samples[opOrchard][i].wall - s - p[phaseSubmit] - p[phaseFind] - p[phaseAppend] - p[phaseFile]
	}
	meanOf := func(ds []time.Duration) time.Duration {
		var s time.Duration
		for _, d := range ds {
			s += d
		}
		return s / time.Duration(len(ds))
	}
	slices.SortFunc(storeNames, func(a, b string) int { return int(meanOf(phaseOf(b)) - meanOf(phaseOf(a))) })
	prow := func(name string, calls int, ds []time.Duration, counterpart string) []string {
		s := statsOf(ds, nil)
		perSend := ""
		if calls > 0 {
			perSend = fmt.Sprintf("%.2f", float64(calls)/float64(n))
		}
		return []string{name, perSend, ms(s.p50), ms(s.mean), pct(s.mean, orch.mean), counterpart}
	}
	searchS, appendS := statsOf(r.search, nil), statsOf(r.appendRaw, nil)
	rows := [][]string{
		prow("SMTP submission (`Sender.Submit`)", r.calls[phaseSubmit], phaseOf(phaseSubmit), "raw SMTP: "+ms(raw.mean)),
		prow("Sent: look for the Message-ID (`Mailbox.FindByMessageID`: connect, LOGIN, SELECT, SEARCH)", r.calls[phaseFind], phaseOf(phaseFind),
			"raw session to the SEARCH answer: "+ms(searchS.mean)),
		prow("Sent: APPEND the copy (`Mailbox.Append`: connect, LOGIN, APPEND)", r.calls[phaseAppend], phaseOf(phaseAppend),
			"raw APPEND in that session: "+ms(appendS.mean)),
		prow("Sent: look for the copy, else APPEND it, in one session (`Mailbox.AppendUnlessPresent`)", r.calls[phaseFile], phaseOf(phaseFile),
			"raw SEARCH + APPEND session: "+ms(searchS.mean+appendS.mean)),
	}
	for _, name := range storeNames {
		rows = append(rows, prow("store."+name, r.calls[name], phaseOf(name), ""))
	}
	var storeCalls int
	for _, name := range storeNames {
		storeCalls += r.calls[name]
	}
	rows = append(rows,
		prow("**all store calls**", storeCalls, storeAll, ""),
		prow("**the rest**: HTTP and JSON (base64) both ways, validation, compose.Build ×2, MIME parse of the copy, threading, response", 0, rest, ""),
		[]string{"**total** (client-side latency)", "", ms(orch.p50), ms(orch.mean), "100 %", "raw SMTP + Sent copy: " + ms(floor.mean)})
	fmt.Fprintf(w, "Where an Orchard send's time goes, timed around each call the service makes (wrappers of its Sender, Mailbox and store; "+
		"per send: calls, p50, mean, share of the mean; the rest is the request's wall time minus those):\n\n")
	table(w, []string{"step", "calls / send", "p50", "mean", "share", "raw counterpart (mean)"}, rows)
	extra := orch.mean - raw.mean
	sentCopy := meanOf(phaseOf(phaseFind)) + meanOf(phaseOf(phaseAppend)) + meanOf(phaseOf(phaseFile))
	fmt.Fprintf(w, "Orchard's extra time over raw SMTP (mean %s per message): the Sent copy %s (%s), store calls %s (%s), the rest %s (%s), "+
		"and the SMTP submission inside Orchard %s against the raw one's %s.\n\n",
		ms(extra), ms(sentCopy), pct(sentCopy, extra), ms(meanOf(storeAll)), pct(meanOf(storeAll), extra),
		ms(meanOf(rest)), pct(meanOf(rest), extra), ms(meanOf(phaseOf(phaseSubmit))), ms(raw.mean))

	mark := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**NO**"
	}
	fmt.Fprintf(w, "Mail accounted for (warm-up included):\n\n")
	table(w, []string{"check", "found", "want", "ok"}, [][]string{
		{fmt.Sprintf("recipient's INBOX over IMAP (Postfix done %s after the last send)", secs(c.delivery)), fmt.Sprint(c.rcptInbox),
			fmt.Sprint(c.sent[opRawSMTP] + c.sent[opOrchard]), mark(c.rcptInbox == c.sent[opRawSMTP]+c.sent[opOrchard])},
		{"… of them raw SMTP (by subject)", fmt.Sprint(c.rcptRaw), fmt.Sprint(c.sent[opRawSMTP]), mark(c.rcptRaw == c.sent[opRawSMTP])},
		{"… of them Orchard (by subject)", fmt.Sprint(c.rcptOrchard), fmt.Sprint(c.sent[opOrchard]), mark(c.rcptOrchard == c.sent[opOrchard])},
		{fmt.Sprintf("sender's %q over IMAP", b.sent.Name), fmt.Sprint(c.sentIMAP), fmt.Sprint(c.sent[opOrchard]), mark(c.sentIMAP == c.sent[opOrchard])},
		{fmt.Sprintf("sender's %q over IMAP (raw copies)", copyFolder), fmt.Sprint(c.copyIMAP), fmt.Sprint(c.sent[opRawCopy]), mark(c.copyIMAP == c.sent[opRawCopy])},
		{"store: Sent folder's message count", fmt.Sprint(c.storeTotal), fmt.Sprint(c.sent[opOrchard]), mark(c.storeTotal == c.sent[opOrchard])},
		{"store: Orchard's answered message ids in Sent", fmt.Sprint(c.storeListed), fmt.Sprint(c.sent[opOrchard]), mark(c.storeListed == c.sent[opOrchard])},
		{"service warnings (a Sent copy not filed or not recorded)", strconv.Itoa(len(c.warnings)), "0", mark(len(c.warnings) == 0)},
	})
	for _, m := range c.warnings[:min(len(c.warnings), 5)] {
		fmt.Fprintf(w, "- warning: `%s`\n", m)
	}
	if len(c.warnings) > 0 {
		fmt.Fprintln(w)
	}
}
