package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/orchard-mail/orchard/internal/caldavx"
	"github.com/orchard-mail/orchard/internal/config"
	"github.com/orchard-mail/orchard/internal/httpapi"
	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/mailbox"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/icloud"
	imapprov "github.com/orchard-mail/orchard/internal/provider/imap"
	"github.com/orchard-mail/orchard/internal/secret"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/smtpx"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
	"github.com/orchard-mail/orchard/internal/syncer"
	"github.com/orchard-mail/orchard/internal/testenv"
	"github.com/orchard-mail/orchard/internal/webhook"
)

type webhookFlags struct {
	grants, n, folderN, history int
	poll, folderPoll            time.Duration
	interval                    time.Duration
	via, lmtpAddr               string
	seed                        uint64
	drain, settle               time.Duration
	timeout                     time.Duration
	verbose                     bool
}

func runWebhook(ctx context.Context, args []string) error {
	return webhookCommand(ctx, args, os.Stdout)
}

// webhookCommand is runWebhook writing its report to out (the test reads
// it).
func webhookCommand(ctx context.Context, args []string, out io.Writer) error {
	var f webhookFlags
	fs := newFlags("webhook")
	fs.IntVar(&f.grants, "grants", 20, "grants, each a Dovecot user of its own connected to Orchard")
	fs.IntVar(&f.n, "n", 200, "messages delivered into the grants' INBOXes, round-robin over the grants")
	fs.IntVar(&f.folderN, "folder-n", 20, "messages APPENDed into the grants' Archive folders, round-robin (0: skip that part)")
	fs.IntVar(&f.history, "history", 5, "messages in each INBOX before the grant is connected: the initial sync finds them, and no notification may come of them")
	fs.DurationVar(&f.poll, "poll", 60*time.Second, "the sync's poll interval (ORCHARD_SYNC_POLL_INTERVAL) while INBOX mail is measured; production default 60s")
	fs.DurationVar(&f.folderPoll, "folder-poll", 5*time.Second, "the sync's poll interval while Archive mail is measured (the sync is restarted with it)")
	fs.DurationVar(&f.interval, "interval", 100*time.Millisecond, "time between the starts of two INBOX deliveries")
	fs.StringVar(&f.via, "via", "lmtp", "how INBOX mail arrives: lmtp (straight into Dovecot's LMTP listener) or postfix (SMTP to Postfix's inject port; Postfix delivers by LMTP)")
	fs.StringVar(&f.lmtpAddr, "lmtp", "", "Dovecot's LMTP address (default: read from its configuration with doveconf)")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed of the mail and of the Archive APPEND times")
	fs.DurationVar(&f.drain, "drain", 90*time.Second, "how long to wait after a part's last message for its notifications")
	fs.DurationVar(&f.settle, "settle", 2*time.Second, "how long to keep listening after a part's last notification arrived (late duplicates)")
	fs.DurationVar(&f.timeout, "timeout", 4*time.Minute+30*time.Second, "give up after this long")
	fs.BoolVar(&f.verbose, "v", false, "log Orchard (service, syncer, dispatcher) to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case f.grants < 1 || f.n < 1 || f.folderN < 0 || f.history < 0:
		return errors.New("webhook: want -grants ≥ 1, -n ≥ 1, -folder-n ≥ 0, -history ≥ 0")
	case f.poll < time.Second || f.folderPoll < time.Second:
		return errors.New("webhook: -poll and -folder-poll must be at least 1s")
	case f.via != "lmtp" && f.via != "postfix":
		return fmt.Errorf("webhook: -via %q: want lmtp or postfix", f.via)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var cl cleanups
	defer cl.run()

	b, err := setupWebhook(ctx, &cl, f)
	if err != nil {
		return err
	}
	inbox, err := b.runInbox(ctx)
	if err != nil {
		return err
	}
	var folder *hookPart
	if f.folderN > 0 {
		if folder, err = b.runFolder(ctx); err != nil {
			return err
		}
	}
	r := b.result(inbox, folder)
	reportWebhook(out, b, r)
	if p := r.problems(); len(p) > 0 {
		return fmt.Errorf("webhook: notifications missing, duplicated or wrong: %s", strings.Join(p, "; "))
	}
	return nil
}

// hookBench is the set-up benchmark: an in-process Orchard with its
// grants connected and synced, a receiver, and the bench's own IMAP
// connections.
type hookBench struct {
	f         webhookFlags
	env       *testenv.Env
	cfg       config.Config
	tls       *tls.Config
	users     []testenv.User
	grants    []hookGrant
	st        store.Store
	times     *hookTimes
	warn      *warnLog
	rcv       *hookReceiver
	srv       *httptest.Server
	client    *http.Client
	apiKey    string
	sync      *switchSyncer
	newSup    func(poll time.Duration) *syncer.Supervisor
	dispPoll  time.Duration
	watchers  []*idleWatcher
	tag       string
	corpus    *corpus
	me        person
	lmtpAddr  string
	logPath   string
	logOffset int64
	idleCheck string // Dovecot's mailbox_idle_check_interval
	syncWall  time.Duration
	userWall  time.Duration
}

type hookGrant struct {
	id          string
	inboxID     string
	archiveID   string
	archiveName string // the Archive folder's IMAP name
}

// hookMsg is one message the run delivers and expects one notification
// of.
type hookMsg struct {
	seq     int
	grant   int // index into hookBench.grants
	folder  string
	subject string
	raw     []byte
	pos     int       // INBOX only: 1-based among the run's deliveries to this grant
	submit  time.Time // the delivery (LMTP/SMTP transaction, APPEND) started
	stored  time.Time // the server answered it
}

func setupWebhook(ctx context.Context, cl *cleanups, f webhookFlags) (*hookBench, error) {
	b := &hookBench{f: f}
	env, err := testenv.Load()
	if err != nil {
		return nil, err
	}
	b.env = env
	b.logPath = dovecotSetting(env.DovecotConf, "log_path")
	if b.logPath == "" {
		b.logPath = filepath.Join(env.Root, "dovecot", "dovecot.log")
	}
	b.logOffset = fileSize(b.logPath)
	b.idleCheck = dovecotSetting(env.DovecotConf, "mailbox_idle_check_interval")
	if f.via == "lmtp" {
		b.lmtpAddr = f.lmtpAddr
		if b.lmtpAddr == "" {
			host := dovecotSetting(env.DovecotConf, "service/lmtp/inet_listener/lmtp/address")
			port := dovecotSetting(env.DovecotConf, "service/lmtp/inet_listener/lmtp/port")
			if port == "" || port == "0" {
				return nil, errors.New("webhook: Dovecot has no LMTP inet listener in its configuration: give -lmtp host:port or use -via postfix")
			}
			if host == "" || host == "*" {
				host = "127.0.0.1"
			}
			b.lmtpAddr = net.JoinHostPort(strings.Fields(strings.ReplaceAll(host, ",", " "))[0], port)
		}
	}
	var tag [4]byte
	rng := rand.New(rand.NewPCG(f.seed, uint64(time.Now().UnixNano())))
	for i := range tag {
		tag[i] = byte(rng.UintN(256))
	}
	b.tag = hex.EncodeToString(tag[:])

	// The grants' mailboxes. Postfix accepts mail only for testenv.NewUser's
	// t<12 hex>@example.test names (one passwd-file edit, about a second,
	// each); Dovecot's LMTP takes any user, so AddUsers makes them all in
	// one edit.
	t0 := time.Now()
	if f.via == "postfix" {
		tb := &benchTB{cl: cl}
		for range f.grants {
			u := env.NewUser(tb)
			if tb.err != nil {
				break
			}
			b.users = append(b.users, u)
		}
		// NewUser's cleanups leave the users' home directories: RemoveUsers
		// takes them (it runs first, then the NewUser cleanups find the
		// users gone).
		users := b.users
		cl.add(func(context.Context) {
			if err := env.RemoveUsers(users); err != nil {
				logf("cleanup: %v", err)
			}
		})
		if tb.err != nil {
			return nil, tb.err
		}
	} else {
		users, err := env.AddUsers("bench-hook", f.grants)
		if err != nil {
			return nil, err
		}
		b.users = users
		cl.add(func(context.Context) {
			if err := env.RemoveUsers(users); err != nil {
				logf("cleanup: %v", err)
			}
		})
	}
	b.userWall = time.Since(t0)
	logf("%d Dovecot users (%s) in %s", len(b.users), b.users[0].Email, b.userWall.Round(time.Millisecond))

	// History: mail that is in every INBOX before Orchard sees the grant.
	b.me = person{"Bench Recipient", "recipient@example.test"}
	b.corpus = newCorpus(f.seed, b.me, 24*time.Hour, time.Now().Add(-time.Hour))
	if f.history > 0 {
		hist := b.mails(f.history*f.grants, "history")
		for g, u := range b.users {
			seed := make([]testenv.SeedMessage, f.history)
			for i := range seed {
				m := &hist[g*f.history+i]
				m.to = []person{{"Bench Grant", u.Email}}
				seed[i] = testenv.SeedMessage{Raw: m.raw(), Received: m.date, Seen: m.seen}
			}
			if err := env.WriteMaildir(u, "INBOX", seed); err != nil {
				return nil, err
			}
		}
	}

	// An Orchard wired as cmd/orchard/serve.go wires one, from the same
	// configuration defaults.
	dir, err := os.MkdirTemp("", "orchard-bench-webhook-")
	if err != nil {
		return nil, err
	}
	cl.add(func(context.Context) { _ = os.RemoveAll(dir) })
	vars := map[string]string{
		config.EnvDataDir: dir, config.EnvCAFile: env.CAFile, config.EnvSyncPoll: f.poll.String(),
		config.EnvICloudIMAPAddr: env.IMAPAddr, config.EnvICloudSMTPAddr: env.SMTPAddr, config.EnvICloudCalDAVURL: env.CalDAVURL,
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		return nil, err
	}
	b.cfg = cfg
	sqlst, err := sqlite.Open(ctx, filepath.Join(dir, "orchard.db"))
	if err != nil {
		return nil, err
	}
	cl.add(func(context.Context) { sqlst.Close() })
	if err := sqlst.Migrate(ctx); err != nil {
		return nil, err
	}
	b.times = newHookTimes()
	b.st = hookStore{Store: sqlst, t: b.times}
	key, err := secret.LoadOrCreateKey(dir)
	if err != nil {
		return nil, err
	}
	box, err := secret.New(key)
	if err != nil {
		return nil, err
	}
	b.warn = &warnLog{verbose: f.verbose}
	log := slog.New(b.warn)

	b.tls = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	imapDialer := &imapx.Dialer{TLSConfig: b.tls, Timeout: cfg.ProviderTimeout}
	smtpDialer := &smtpx.Dialer{TLSConfig: b.tls, Timeout: cfg.ProviderTimeout}
	calDAV := caldavx.New(caldavx.Options{TLSConfig: b.tls, Timeout: cfg.ProviderTimeout})
	cl.add(func(context.Context) { calDAV.CloseIdleConnections() })
	var svc *service.Service
	hooks := &webhook.Late{}
	hookClient := &http.Client{Transport: &http.Transport{TLSClientConfig: b.tls.Clone(), Proxy: http.ProxyFromEnvironment}}
	b.newSup = func(poll time.Duration) *syncer.Supervisor {
		return syncer.New(syncer.Options{
			Store: b.st, Dialer: imapDialer, Logger: log.With("component", "syncer"),
			WindowDays: cfg.SyncWindowDays, PollInterval: poll,
			CalDAV: calDAV, CalDAVURL: cfg.ICloudCalDAVURL, CalendarInterval: cfg.CalendarSyncInterval,
			Credentials: func(g *store.Grant) (provider.Credentials, error) { return svc.Credentials(g) },
			Changed:     hooks.Notify,
			LoginRefused: func(ctx context.Context, grantID string) {
				if err := svc.ExpireGrant(ctx, grantID); err != nil {
					log.Warn("expire grant", "grant_id", grantID, "error", err)
				}
			},
		})
	}
	b.sync = &switchSyncer{}
	svc = service.New(service.Deps{
		Store: b.st, Box: box, Logger: log, ProviderTimeout: cfg.ProviderTimeout,
		Mailbox: &mailbox.Mailbox{Dialer: imapDialer}, Syncer: b.sync,
		Sender: smtpDialer, SendLimits: cfg.SendLimits,
		CalDAV: calDAV, ICloudCalDAVURL: cfg.ICloudCalDAVURL,
		Webhooks: hooks, WebhookClient: hookClient,
		SentCopyWait:   map[string]time.Duration{"icloud": cfg.ICloudSentCopyWait},
		ICloudIMAPAddr: cfg.ICloudIMAPAddr, ICloudSMTPAddr: cfg.ICloudSMTPAddr,
		ICloud: &icloud.Verifier{IMAP: imapDialer, SMTP: smtpDialer, IMAPAddr: cfg.ICloudIMAPAddr, SMTPAddr: cfg.ICloudSMTPAddr},
		IMAP:   &imapprov.Verifier{IMAP: imapDialer, SMTP: smtpDialer},
	})
	dopts := webhook.Options{Store: b.st, Renderer: svc, OpenSecret: svc.WebhookSecret,
		Client: hookClient, Logger: log.With("component", "webhook"),
		AttemptTimeout: cfg.WebhookTimeout, Lease: 3 * cfg.WebhookTimeout}
	dispatcher, err := webhook.New(dopts)
	if err != nil {
		return nil, err
	}
	hooks.D = dispatcher
	b.dispPoll = 250 * time.Millisecond // webhook.Options.PollInterval's default, which serve.go keeps
	b.srv = httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Logger: log, MaxBodyBytes: cfg.MaxBodyBytes, MaxSendBodyBytes: cfg.MaxSendBytes}))
	cl.add(func(context.Context) { b.srv.Close() })
	b.client = &http.Client{Timeout: 60 * time.Second}
	cl.add(func(context.Context) { b.client.CloseIdleConnections() })

	// The receiver outlives the dispatcher (cleanups run backwards).
	b.rcv = newHookReceiver()
	cl.add(func(context.Context) { b.rcv.srv.Close() })

	b.sync.start(b.newSup(f.poll), f.poll)
	cl.add(func(context.Context) { b.sync.halt() })
	hookCtx, stopHooks := context.WithCancel(context.Background())
	hooked := make(chan struct{})
	go func() {
		defer close(hooked)
		_ = dispatcher.Run(hookCtx)
	}()
	// The dispatcher stops before the sync (registered after it).
	cl.add(func(context.Context) { stopHooks(); <-hooked })

	// The application, its connector, the webhook, the grants: through the
	// API, as an application sets them up.
	_, apiKey, err := svc.CreateApplication(ctx, "bench")
	if err != nil {
		return nil, err
	}
	b.apiKey = apiKey
	if _, err := b.call(ctx, "POST", "/v3/connectors", `{"provider":"imap"}`, http.StatusOK, http.StatusCreated); err != nil {
		return nil, err
	}
	hookBody, _ := json.Marshal(map[string]any{"description": "orchard-bench webhook", "trigger_types": []string{"message.created"}, "webhook_url": b.rcv.srv.URL})
	out, err := b.call(ctx, "POST", "/v3/webhooks", string(hookBody), http.StatusOK, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	var created struct {
		Data struct {
			ID     string `json:"id"`
			Secret string `json:"webhook_secret"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &created); err != nil || created.Data.ID == "" || created.Data.Secret == "" {
		return nil, fmt.Errorf("POST /v3/webhooks answered %.300s", out)
	}
	b.rcv.setSecret(created.Data.Secret)

	t0 = time.Now()
	imapHost, imapPort, _ := net.SplitHostPort(env.IMAPAddr)
	smtpHost, smtpPort, _ := net.SplitHostPort(env.SMTPAddr)
	for _, u := range b.users {
		body, _ := json.Marshal(map[string]any{"provider": "imap", "settings": map[string]any{
			"imap_username": u.Email, "imap_password": u.Password,
			"imap_host": imapHost, "imap_port": imapPort, "smtp_host": smtpHost, "smtp_port": smtpPort,
		}})
		out, err := b.call(ctx, "POST", "/v3/connect/custom", string(body), http.StatusOK, http.StatusCreated)
		if err != nil {
			return nil, err
		}
		var grant struct {
			Data struct{ ID string } `json:"data"`
		}
		if err := json.Unmarshal(out, &grant); err != nil || grant.Data.ID == "" {
			return nil, fmt.Errorf("connect/custom answered %.300s", out)
		}
		b.grants = append(b.grants, hookGrant{id: grant.Data.ID})
	}
	logf("webhook %s and %d grants connected in %s; waiting for their initial sync", created.Data.ID, len(b.grants), time.Since(t0).Round(time.Millisecond))
	if err := b.waitSynced(ctx); err != nil {
		return nil, err
	}
	b.syncWall = time.Since(t0)
	for i := range b.grants {
		g := &b.grants[i]
		fs, err := b.st.ListFolders(ctx, g.id)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			switch f.Role {
			case store.RoleInbox:
				g.inboxID = f.ID
			case store.RoleArchive:
				g.archiveID, g.archiveName = f.ID, f.Name
			}
		}
		if g.inboxID == "" || (f.folderN > 0 && g.archiveID == "") {
			return nil, fmt.Errorf("grant %s has no INBOX or no Archive folder after its initial sync", g.id)
		}
	}
	logf("initial sync of %d grants (%d messages each) done %s after the first connect", len(b.grants), f.history, b.syncWall.Round(time.Millisecond))

	// The baseline: the bench's own IDLE on every grant's INBOX.
	for _, u := range b.users {
		w, err := b.dialWatcher(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("baseline IDLE client of %s: %w", u.Email, err)
		}
		cl.add(func(context.Context) { w.close() })
		if w.base != uint32(f.history) {
			return nil, fmt.Errorf("INBOX of %s holds %d messages, want %d", u.Email, w.base, f.history)
		}
		b.watchers = append(b.watchers, w)
	}
	return b, nil
}

// waitSynced waits until the current Supervisor reports every grant idle
// (initial sync of every folder done, IDLE on INBOX next).
func (b *hookBench) waitSynced(ctx context.Context) error {
	for {
		idle := 0
		for _, g := range b.grants {
			s, ok := b.sync.Status(g.id)
			if ok && s.State == "retrying" && s.Retries > 2 {
				return fmt.Errorf("sync of grant %s keeps failing: %s", g.id, s.LastError)
			}
			if ok && s.State == "idle" {
				idle++
			}
		}
		if idle == len(b.grants) {
			for _, g := range b.grants {
				fs, err := b.st.ListFolders(ctx, g.id)
				if err != nil {
					return err
				}
				if i := slices.IndexFunc(fs, func(f store.Folder) bool { return !f.InitialDone }); i >= 0 {
					return fmt.Errorf("grant %s is idle, but its folder %q is not synced", g.id, fs[i].Name)
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the sync (%d of %d grants idle): %w", idle, len(b.grants), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// call makes an API request and wants one of the statuses.
func (b *hookBench) call(ctx context.Context, method, path, body string, want ...int) ([]byte, error) {
	return apiCall(ctx, b.client, b.srv.URL, b.apiKey, method, path, []byte(body), want...)
}

// mails generates n messages of the corpus addressed to nobody yet, each
// received by the grant (never sent by it).
func (b *hookBench) mails(n int, what string) []mail {
	ms := b.corpus.generate(n)
	for i := range ms {
		m := &ms[i]
		if m.from == b.me {
			m.from = b.corpus.person()
		}
		m.cc = nil
		m.subject = fmt.Sprintf("orchard-bench webhook %s %s #%d: %s", b.tag, what, i, m.subject)
	}
	return ms
}

// runMsgs builds n messages of the run for folder, round-robin over the
// grants, dated now.
func (b *hookBench) runMsgs(n int, folder string) []*hookMsg {
	ms := b.mails(n, strings.ToLower(folder))
	out := make([]*hookMsg, n)
	for i := range ms {
		m := &ms[i]
		g := i % len(b.grants)
		m.to = []person{{"Bench Grant", b.users[g].Email}}
		m.date = time.Now().Truncate(time.Second)
		m.msgID = fmt.Sprintf("%s.%s.%d@orchard-bench.example", b.tag, strings.ToLower(folder), i)
		m.inReplyTo, m.refs = "", nil
		out[i] = &hookMsg{seq: i, grant: g, folder: folder, subject: m.subject, raw: m.raw(), pos: i/len(b.grants) + 1}
	}
	return out
}

// hookPart is one measured part of the run.
type hookPart struct {
	folder string
	poll   time.Duration
	msgs   []*hookMsg
	window time.Duration // first submission to last
}

// runInbox delivers -n messages into the INBOXes, one every -interval,
// and waits for their notifications.
func (b *hookBench) runInbox(ctx context.Context) (*hookPart, error) {
	p := &hookPart{folder: "INBOX", poll: b.f.poll, msgs: b.runMsgs(b.f.n, "INBOX")}
	d, err := b.dialDeliverer(ctx)
	if err != nil {
		return nil, err
	}
	defer d.close()
	// A moment for every worker to be in IDLE (its status turns idle just
	// before it SELECTs INBOX and starts IDLE).
	if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
		return nil, err
	}
	logf("delivering %d messages into %d INBOXes via %s, one every %s", len(p.msgs), len(b.grants), b.f.via, b.f.interval)
	start := time.Now()
	for i, m := range p.msgs {
		if err := sleepCtx(ctx, time.Until(start.Add(time.Duration(i)*b.f.interval))); err != nil {
			return nil, err
		}
		m.submit = time.Now()
		if err := d.deliver(b.me.email, b.users[m.grant].Email, m.raw); err != nil {
			return nil, fmt.Errorf("delivering message %d to %s: %w", i, b.users[m.grant].Email, err)
		}
		m.stored = time.Now()
		if (i+1)%50 == 0 {
			logf("delivered %d; %d notified so far", i+1, b.rcv.notified(p.msgs))
		}
	}
	last := p.msgs[len(p.msgs)-1].submit
	p.window = last.Sub(p.msgs[0].submit)
	b.waitNotified(ctx, p, true)
	for _, w := range b.watchers {
		if err := w.stopIdle(); err != nil {
			return nil, fmt.Errorf("ending the baseline IDLE: %w", err)
		}
	}
	return p, nil
}

// runFolder restarts the sync with -folder-poll, APPENDs -folder-n
// messages into the grants' Archive folders at random times over two poll
// intervals, and waits for their notifications.
func (b *hookBench) runFolder(ctx context.Context) (*hookPart, error) {
	p := &hookPart{folder: "Archive", poll: b.f.folderPoll, msgs: b.runMsgs(b.f.folderN, "Archive")}
	logf("restarting the sync with poll interval %s", b.f.folderPoll)
	b.sync.halt()
	b.sync.start(b.newSup(b.f.folderPoll), b.f.folderPoll)
	if err := b.waitSynced(ctx); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(b.f.seed, 0xa5c4))
	offsets := make([]time.Duration, len(p.msgs))
	for i := range offsets {
		offsets[i] = time.Duration(rng.Int64N(int64(2 * b.f.folderPoll)))
	}
	slices.Sort(offsets)
	logf("APPENDing %d messages into Archive folders over %s", len(p.msgs), 2*b.f.folderPoll)
	start := time.Now()
	for i, m := range p.msgs {
		if err := sleepCtx(ctx, time.Until(start.Add(offsets[i]))); err != nil {
			return nil, err
		}
		w := b.watchers[m.grant]
		m.submit = time.Now()
		if err := w.append(b.grants[m.grant].archiveName, m.raw); err != nil {
			return nil, fmt.Errorf("APPEND to %s of %s: %w", b.grants[m.grant].archiveName, b.users[m.grant].Email, err)
		}
		m.stored = time.Now()
	}
	last := p.msgs[len(p.msgs)-1].submit
	p.window = last.Sub(p.msgs[0].submit)
	b.waitNotified(ctx, p, false)
	return p, nil
}

// waitNotified waits until every message of p has a notification (and,
// with baseline, an EXISTS at its grant's watcher), or -drain passes;
// then it keeps listening for -settle. It reports whether all came.
func (b *hookBench) waitNotified(ctx context.Context, p *hookPart, baseline bool) bool {
	deadline := time.Now().Add(b.f.drain)
	lastLog := time.Now()
	for {
		n := b.rcv.notified(p.msgs)
		seen := len(p.msgs)
		if baseline {
			seen = b.baselineSeen(p.msgs)
		}
		if n == len(p.msgs) && seen == len(p.msgs) {
			logf("%s: all %d notified, %s after the last delivery", p.folder, n, time.Since(p.msgs[len(p.msgs)-1].submit).Round(time.Millisecond))
			_ = sleepCtx(ctx, b.f.settle)
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			logf("%s: gave up waiting: %d of %d notified (baseline saw %d)", p.folder, n, len(p.msgs), seen)
			return false
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			logf("%s: %d of %d notified (baseline saw %d)", p.folder, n, len(p.msgs), seen)
		}
		select {
		case <-ctx.Done():
		case <-b.rcv.arrived:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *hookBench) baselineSeen(msgs []*hookMsg) int {
	n := 0
	for _, m := range msgs {
		if _, ok := b.watchers[m.grant].existsAt(m.pos); ok {
			n++
		}
	}
	return n
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// --- Orchard's wiring -------------------------------------------------------

// switchSyncer is the service's Syncer: the Supervisor running now (the
// run restarts the sync with another poll interval for its second part).
type switchSyncer struct {
	mu   sync.Mutex
	cur  *syncer.Supervisor
	poll time.Duration
	stop context.CancelFunc
	done chan struct{}
}

func (s *switchSyncer) start(sup *syncer.Supervisor, poll time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sup.Run(ctx)
	}()
	s.mu.Lock()
	s.cur, s.poll, s.stop, s.done = sup, poll, cancel, done
	s.mu.Unlock()
}

// halt stops the running Supervisor and waits for its workers.
func (s *switchSyncer) halt() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

func (s *switchSyncer) get() *syncer.Supervisor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *switchSyncer) GrantChanged(id string) { s.get().GrantChanged(id) }

func (s *switchSyncer) Status(id string) (syncer.Status, bool) { return s.get().Status(id) }

func (s *switchSyncer) BeginCalendarWrite(id string) func() { return s.get().BeginCalendarWrite(id) }

// hookTimes records when each message's batch was stored and when each
// notification was enqueued and claimed, from a wrapper around the store
// that the syncer and the dispatcher share.
type hookTimes struct {
	mu       sync.Mutex
	batch    map[string][2]time.Time // message id → its creating ApplyMailBatch's start and end
	enqueued map[string]time.Time    // notification id → EnqueueDeliveries returned
	claimed  map[string]time.Time    // notification id → first ClaimDeliveries returned
}

func newHookTimes() *hookTimes {
	return &hookTimes{batch: map[string][2]time.Time{}, enqueued: map[string]time.Time{}, claimed: map[string]time.Time{}}
}

type hookStore struct {
	store.Store
	t *hookTimes
}

func (s hookStore) ApplyMailBatch(ctx context.Context, b *store.MailBatch) error {
	start := time.Now()
	err := s.Store.ApplyMailBatch(ctx, b)
	end := time.Now()
	if err == nil {
		s.t.mu.Lock()
		for _, ch := range b.Changes {
			if _, ok := s.t.batch[ch.ObjectID]; !ok && ch.ObjectType == "message" && ch.Action == "created" {
				s.t.batch[ch.ObjectID] = [2]time.Time{start, end}
			}
		}
		s.t.mu.Unlock()
	}
	return err
}

func (s hookStore) EnqueueDeliveries(ctx context.Context, from, to int64, ds []store.Delivery) error {
	err := s.Store.EnqueueDeliveries(ctx, from, to, ds)
	if err == nil {
		now := time.Now()
		s.t.mu.Lock()
		for _, d := range ds {
			s.t.enqueued[d.ID] = now
		}
		s.t.mu.Unlock()
	}
	return err
}

func (s hookStore) ClaimDeliveries(ctx context.Context, now time.Time, n int, lease time.Duration) ([]store.Delivery, error) {
	ds, err := s.Store.ClaimDeliveries(ctx, now, n, lease)
	at := time.Now()
	s.t.mu.Lock()
	for _, d := range ds {
		if _, ok := s.t.claimed[d.ID]; !ok {
			s.t.claimed[d.ID] = at
		}
	}
	s.t.mu.Unlock()
	return ds, err
}

// --- the receiver -------------------------------------------------------------

// hookReceiver is the application's webhook endpoint: it answers the
// challenge, checks every signature with its own HMAC and timestamps each
// notification when its body has been read.
type hookReceiver struct {
	srv     *httptest.Server
	arrived chan struct{} // a wake-up per notification, at most one pending
	mu      sync.Mutex
	secret  []byte
	posts   []hookPost
	badSig  int
	badBody int
}

type hookPost struct {
	id, typ  string
	attempt  int
	at       time.Time
	objectID string
	grantID  string
	subject  string
	folders  []string
}

func newHookReceiver() *hookReceiver {
	r := &hookReceiver{arrived: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *hookReceiver) setSecret(s string) {
	r.mu.Lock()
	r.secret = []byte(s)
	r.mu.Unlock()
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet {
		if c := req.URL.Query().Get("challenge"); c != "" {
			_, _ = io.WriteString(w, c)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(req.Body)
	at := time.Now()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	mac := hmac.New(sha256.New, r.secret)
	mac.Write(body)
	if !hmac.Equal([]byte(req.Header.Get("X-Nylas-Signature")), []byte(hex.EncodeToString(mac.Sum(nil)))) {
		r.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var n struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Attempt int    `json:"webhook_delivery_attempt"`
		Data    struct {
			Object struct {
				ID      string   `json:"id"`
				GrantID string   `json:"grant_id"`
				Subject string   `json:"subject"`
				Folders []string `json:"folders"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &n); err != nil || n.ID == "" {
		r.badBody++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	o := n.Data.Object
	r.posts = append(r.posts, hookPost{id: n.ID, typ: n.Type, attempt: n.Attempt, at: at,
		objectID: o.ID, grantID: o.GrantID, subject: o.Subject, folders: o.Folders})
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

// notified counts the messages of msgs with at least one notification.
func (r *hookReceiver) notified(msgs []*hookMsg) int {
	r.mu.Lock()
	subjects := make(map[string]bool, len(r.posts))
	for _, p := range r.posts {
		subjects[p.subject] = true
	}
	r.mu.Unlock()
	n := 0
	for _, m := range msgs {
		if subjects[m.subject] {
			n++
		}
	}
	return n
}

func (r *hookReceiver) snapshot() (posts []hookPost, badSig, badBody int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.posts), r.badSig, r.badBody
}

// --- the bench's own IMAP and LMTP clients --------------------------------------

// idleWatcher is the baseline: an IDLE of the bench's own on a grant's
// INBOX, noting when Dovecot's EXISTS first counts each new message.
type idleWatcher struct {
	c    *imapclient.Client
	idle *imapclient.IdleCommand
	mu   sync.Mutex
	base uint32      // messages at SELECT
	seen uint32      // the highest EXISTS since
	at   []time.Time // at[k-1]: when EXISTS first reached base+k
}

func (b *hookBench) dialWatcher(ctx context.Context, u testenv.User) (*idleWatcher, error) {
	w := &idleWatcher{}
	ready := false
	c, err := imapclient.DialTLS(b.env.IMAPAddr, &imapclient.Options{TLSConfig: b.tls.Clone(),
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages == nil {
					return
				}
				at := time.Now()
				w.mu.Lock()
				defer w.mu.Unlock()
				if !ready {
					return
				}
				for ; w.seen < *d.NumMessages; w.seen++ {
					w.at = append(w.at, at)
				}
			},
		}})
	if err != nil {
		return nil, err
	}
	w.c = c
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Login(u.Email, u.Password).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		c.Close()
		return nil, err
	}
	w.mu.Lock()
	w.base, w.seen, ready = sel.NumMessages, sel.NumMessages, true
	w.mu.Unlock()
	if w.idle, err = c.Idle(); err != nil {
		c.Close()
		return nil, err
	}
	return w, nil
}

// existsAt is when EXISTS first counted the pos-th message after SELECT.
func (w *idleWatcher) existsAt(pos int) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if pos < 1 || pos > len(w.at) {
		return time.Time{}, false
	}
	return w.at[pos-1], true
}

func (w *idleWatcher) stopIdle() error {
	if w.idle == nil {
		return nil
	}
	idle := w.idle
	w.idle = nil
	if err := idle.Close(); err != nil {
		return err
	}
	return idle.Wait()
}

// append APPENDs raw into folder, dated now.
func (w *idleWatcher) append(folder string, raw []byte) error {
	cmd := w.c.Append(folder, int64(len(raw)), &imap.AppendOptions{Time: time.Now()})
	if _, err := cmd.Write(raw); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

func (w *idleWatcher) close() {
	_ = w.stopIdle()
	_ = w.c.Logout().Wait()
	_ = w.c.Close()
}

// deliverer hands messages to Dovecot's LMTP (or to Postfix over SMTP) on
// one connection, one transaction per message.
type deliverer struct {
	c    *smtp.Client
	lmtp bool
}

func (b *hookBench) dialDeliverer(ctx context.Context) (*deliverer, error) {
	addr := b.env.SMTPInjectAddr
	if b.f.via == "lmtp" {
		addr = b.lmtpAddr
	}
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	d := &deliverer{lmtp: b.f.via == "lmtp"}
	if d.lmtp {
		d.c = smtp.NewClientLMTP(conn)
	} else {
		d.c = smtp.NewClient(conn)
	}
	d.c.CommandTimeout = 30 * time.Second
	d.c.SubmissionTimeout = 30 * time.Second
	if err := d.c.Hello("orchard-bench.example.test"); err != nil {
		d.c.Close()
		return nil, fmt.Errorf("%s at %s: %w", strings.ToUpper(b.f.via), addr, err)
	}
	return d, nil
}

func (d *deliverer) deliver(from, to string, msg []byte) error {
	if err := d.c.Mail(from, nil); err != nil {
		return err
	}
	if err := d.c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := d.c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if d.lmtp {
		_, err = w.CloseWithLMTPResponse()
		return err
	}
	return w.Close()
}

func (d *deliverer) close() {
	_ = d.c.Quit()
	_ = d.c.Close()
}

// --- results ------------------------------------------------------------------------

// hookOutcome is one part's figures and accounting.
type hookOutcome struct {
	part      *hookPart
	notified  int             // messages with at least one notification
	lost      []*hookMsg      // messages without any
	extraIDs  int             // notifications beyond the first, under other ids, for some message
	dupMsgs   int             // messages with more than one notification id
	wrong     int             // notifications with another grant or without the folder
	latency   []time.Duration // submission → first notification, per notified message
	baseline  []time.Duration // submission → the watcher's EXISTS (INBOX)
	diff      []time.Duration // latency − baseline, per message with both
	transact  []time.Duration // submission → the server's answer (LMTP/SMTP, APPEND)
	phases    [][]time.Duration
	phasesFor int // messages with every timestamp of the breakdown
}

// hookResult is the whole run's.
type hookResult struct {
	inbox, folder *hookOutcome
	posts         int
	redelivered   int // POSTs of a notification id received before
	retried       int // POSTs with webhook_delivery_attempt > 1
	unexpected    int // notifications of other mail (the history) or of other types
	unexpectedEg  []string
	badSig        int
	badBody       int
	warnings      []string
	dovecotLog    []string
}

func (b *hookBench) result(inbox, folder *hookPart) *hookResult {
	posts, badSig, badBody := b.rcv.snapshot()
	b.times.mu.Lock()
	defer b.times.mu.Unlock()
	r := &hookResult{posts: len(posts), badSig: badSig, badBody: badBody, warnings: b.warn.all(),
		dovecotLog: dovecotLogSince(b.logPath, b.logOffset)}
	var parts []*hookPart
	for _, p := range []*hookPart{inbox, folder} {
		if p != nil {
			parts = append(parts, p)
		}
	}
	exists := func(m *hookMsg) (time.Time, bool) {
		if m.folder != "INBOX" {
			return time.Time{}, false
		}
		return b.watchers[m.grant].existsAt(m.pos)
	}
	folderID := func(m *hookMsg) (string, string) {
		g := b.grants[m.grant]
		if m.folder == "INBOX" {
			return g.id, g.inboxID
		}
		return g.id, g.archiveID
	}
	outs := analyzeHooks(parts, posts, r, exists, folderID, b.times)
	r.inbox = outs[0]
	if folder != nil {
		r.folder = outs[1]
	}
	return r
}

// analyzeHooks matches the notifications received to the run's messages
// (by subject), counts what is missing, duplicated or wrong, and computes
// each part's latencies and their breakdown. exists gives a message's
// baseline EXISTS time; where gives the grant and folder id its
// notification must name.
func analyzeHooks(parts []*hookPart, posts []hookPost, r *hookResult, exists func(*hookMsg) (time.Time, bool),
	where func(*hookMsg) (string, string), t *hookTimes) []*hookOutcome {
	bySubject := map[string]*hookMsg{}
	for _, p := range parts {
		for _, m := range p.msgs {
			bySubject[m.subject] = m
		}
	}
	// The first POST of each notification id, and each message's ids.
	first := map[string]hookPost{}
	ids := map[*hookMsg][]string{}
	for _, p := range posts {
		if p.attempt > 1 {
			r.retried++
		}
		if _, ok := first[p.id]; ok {
			r.redelivered++
			continue
		}
		first[p.id] = p
		m := bySubject[p.subject]
		if p.typ != "message.created" || m == nil {
			r.unexpected++
			if len(r.unexpectedEg) < 3 {
				r.unexpectedEg = append(r.unexpectedEg, fmt.Sprintf("%s %q", p.typ, p.subject))
			}
			continue
		}
		ids[m] = append(ids[m], p.id)
	}
	var outs []*hookOutcome
	for _, part := range parts {
		o := &hookOutcome{part: part}
		for _, m := range part.msgs {
			if !m.submit.IsZero() && !m.stored.IsZero() {
				o.transact = append(o.transact, m.stored.Sub(m.submit))
			}
			mine := ids[m]
			if len(mine) == 0 {
				o.lost = append(o.lost, m)
				continue
			}
			o.notified++
			if len(mine) > 1 {
				o.dupMsgs++
				o.extraIDs += len(mine) - 1
			}
			grant, folder := where(m)
			// The earliest of its notifications counts.
			p := first[mine[0]]
			for _, id := range mine {
				q := first[id]
				if q.grantID != grant || !slices.Contains(q.folders, folder) {
					o.wrong++
				}
				if q.at.Before(p.at) {
					p = q
				}
			}
			lat := p.at.Sub(m.submit)
			o.latency = append(o.latency, lat)
			ex, hasEx := exists(m)
			if hasEx {
				o.baseline = append(o.baseline, ex.Sub(m.submit))
				o.diff = append(o.diff, p.at.Sub(ex))
			}
			// Where the time went: the steps in order, each from the
			// previous one's timestamp.
			bt, hasBatch := t.batch[p.objectID]
			enq, hasEnq := t.enqueued[p.id]
			cl, hasCl := t.claimed[p.id]
			if !hasBatch || !hasEnq || !hasCl || (m.folder == "INBOX" && !hasEx) {
				continue
			}
			var steps []time.Time
			if m.folder == "INBOX" {
				steps = []time.Time{m.submit, ex, bt[0], bt[1], enq, cl, p.at}
			} else {
				steps = []time.Time{m.submit, bt[0], bt[1], enq, cl, p.at}
			}
			if o.phases == nil {
				o.phases = make([][]time.Duration, len(steps)-1)
			}
			for i := 1; i < len(steps); i++ {
				o.phases[i-1] = append(o.phases[i-1], steps[i].Sub(steps[i-1]))
			}
			o.phasesFor++
		}
		outs = append(outs, o)
	}
	return outs
}

func (o *hookOutcome) checkRows(name string) [][]string {
	n := len(o.part.msgs)
	rows := [][]string{
		{name + ": messages with a notification", strconv.Itoa(o.notified), strconv.Itoa(n), yesNo(o.notified == n)},
		{name + ": messages with more than one notification id (duplicates)", fmt.Sprintf("%d (%d extra ids)", o.dupMsgs, o.extraIDs), "0", yesNo(o.dupMsgs == 0)},
		{name + ": notifications naming another grant or not the folder", strconv.Itoa(o.wrong), "0", yesNo(o.wrong == 0)},
	}
	if o.part.folder == "INBOX" {
		rows = append(rows, []string{name + ": messages the baseline IDLE client saw (EXISTS)", strconv.Itoa(len(o.baseline)), strconv.Itoa(n), yesNo(len(o.baseline) == n)})
	}
	return rows
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**NO**"
}

func (r *hookResult) problems() []string {
	var p []string
	for _, o := range []*hookOutcome{r.inbox, r.folder} {
		if o == nil {
			continue
		}
		name := o.part.folder
		if len(o.lost) > 0 {
			p = append(p, fmt.Sprintf("%s: %d of %d messages without a notification", name, len(o.lost), len(o.part.msgs)))
		}
		if o.dupMsgs > 0 {
			p = append(p, fmt.Sprintf("%s: %d messages with more than one notification id", name, o.dupMsgs))
		}
		if o.wrong > 0 {
			p = append(p, fmt.Sprintf("%s: %d notifications with the wrong grant or folder", name, o.wrong))
		}
		if name == "INBOX" && len(o.baseline) < len(o.part.msgs) {
			p = append(p, fmt.Sprintf("INBOX: the baseline IDLE client saw %d of %d messages", len(o.baseline), len(o.part.msgs)))
		}
	}
	if r.redelivered > 0 {
		p = append(p, fmt.Sprintf("%d notification ids POSTed more than once", r.redelivered))
	}
	if r.retried > 0 {
		p = append(p, fmt.Sprintf("%d POSTs were retries", r.retried))
	}
	if r.unexpected > 0 {
		p = append(p, fmt.Sprintf("%d unexpected notifications (e.g. %s)", r.unexpected, strings.Join(r.unexpectedEg, ", ")))
	}
	if r.badSig > 0 || r.badBody > 0 {
		p = append(p, fmt.Sprintf("%d POSTs with a bad signature, %d with a bad body", r.badSig, r.badBody))
	}
	if len(r.warnings) > 0 {
		p = append(p, fmt.Sprintf("Orchard logged %d warnings, the first: %s", len(r.warnings), r.warnings[0]))
	}
	return p
}

func reportWebhook(w io.Writer, b *hookBench, r *hookResult) {
	header(w, "webhook")
	f := b.f
	fmt.Fprintf(w, "Notification latency: from a message's delivery to its `message.created` webhook at the receiver. "+
		"%d grants, each a fresh Dovecot user (`%s`, …) holding %d messages in INBOX (found by the initial sync: no notification may come of them), "+
		"connected through `/v3/connect/custom` to an in-process Orchard wired like `orchard serve` with its configuration defaults: "+
		"syncer.Supervisor (IDLE on INBOX, other folders polled every %s, window %d days), webhook.Dispatcher (polls the change rows every %s; attempt timeout %s), "+
		"service, httpapi on an httptest server, SQLite store in a temp dir. "+
		"One webhook (`message.created`) created through `POST /v3/webhooks` points at an in-process receiver (httptest, loopback) that checks every "+
		"`X-Nylas-Signature` with its own HMAC-SHA256 and timestamps each notification once its body is read. "+
		"All grants connected and synced in %s; the users took %s to add.\n\n",
		len(b.grants), b.users[0].Email, f.history, human(f.poll), b.cfg.SyncWindowDays, human(b.dispPoll), human(b.cfg.WebhookTimeout),
		secs(b.syncWall), secs(b.userWall))

	row := func(name string, ds []time.Duration) []string {
		if len(ds) == 0 {
			return []string{name, "0", "–", "–", "–", "–"}
		}
		s := statsOf(ds, nil)
		return []string{name, strconv.Itoa(len(ds)), secs3(s.p50), secs3(s.p95), secs3(s.mean), secs3(s.max)}
	}
	head := []string{"latency", "messages", "p50", "p95", "mean", "max"}

	o := r.inbox
	via := fmt.Sprintf("straight into Dovecot over LMTP (%s; one connection, a transaction per message, answered after p50 %s: "+
		"the message is in the Maildir then)", b.lmtpAddr, msOf(o.transact))
	if f.via == "postfix" {
		via = fmt.Sprintf("over SMTP to Postfix's inject port (%s; accepted after p50 %s), which delivers them to Dovecot by LMTP: "+
			"the time in Postfix's queue counts for Orchard and baseline alike", b.env.SMTPInjectAddr, msOf(o.transact))
	}
	fmt.Fprintf(w, "### INBOX (IDLE)\n\n")
	fmt.Fprintf(w, "%d messages (2–4 KB, some with an attachment), one every %s round-robin over the grants (each grant gets one every %s; "+
		"%s from the first to the last), delivered %s. Latency counts from the start of each delivery. "+
		"**Baseline**, in the same run: the bench's own IMAP IDLE on every grant's INBOX (a second connection beside Orchard's), "+
		"timed when Dovecot's `EXISTS` first counts the message — how long Dovecot itself takes to announce new mail "+
		"(it watches the Maildir with inotify; `mailbox_idle_check_interval`, its fallback, is %s).\n\n",
		len(o.part.msgs), human(f.interval), human(time.Duration(len(b.grants))*f.interval), secs(o.part.window), via, orDash(b.idleCheck))
	table(w, head, [][]string{
		row("baseline: Dovecot announces it (`EXISTS` at the bench's IDLE)", o.baseline),
		row("**Orchard**: `message.created` at the receiver", o.latency),
		row("Orchard after Dovecot's announcement (per message: Orchard − baseline)", o.diff),
	})
	if len(o.latency) > 0 && len(o.baseline) > 0 {
		ol, bl := statsOf(o.latency, nil), statsOf(o.baseline, nil)
		verdict := "**met**"
		if ol.p95 >= 2*time.Second {
			verdict = "**NOT met**"
		}
		fmt.Fprintf(w, "**Orchard / Dovecot: p50 %.2f×, p95 %.2f×** (%s vs %s, %s vs %s). Target p95 < 2 s: %s (%s).\n\n",
			ratio(ol.p50, bl.p50), ratio(ol.p95, bl.p95), secs3(ol.p50), secs3(bl.p50), secs3(ol.p95), secs3(bl.p95), verdict, secs3(ol.p95))
	}
	if len(o.phases) > 0 {
		fmt.Fprintf(w, "Where the time goes, per message (%d of %d with every timestamp), each step from the end of the previous one: the baseline's `EXISTS`, "+
			"then wrappers around the store that the syncer and the dispatcher share (the `ApplyMailBatch` that created the message; "+
			"`EnqueueDeliveries` and `ClaimDeliveries` of its notification id), then the receiver:\n\n", o.phasesFor, len(o.part.msgs))
		phaseTable(w, []string{
			"Dovecot announces it (delivery → `EXISTS` at the bench's IDLE; Orchard's IDLE hears it about then)",
			"syncer: wakes, ends IDLE, SELECT, UID FETCH, parse, thread (→ `ApplyMailBatch` called)",
			"store: `ApplyMailBatch` with its change row",
			"dispatcher: notices the change row (woken by the syncer after each batch with change rows; else it polls every " + human(b.dispPoll) + "), renders, enqueues (→ `EnqueueDeliveries` returned)",
			"dispatcher: claims the delivery (→ `ClaimDeliveries` returned)",
			"POST: webhook and secret read, signed, sent, body read by the receiver",
		}, o.phases)
	}

	if fo := r.folder; fo != nil {
		fmt.Fprintf(w, "### Archive (polling)\n\n")
		fmt.Fprintf(w, "For this part the sync was restarted with **poll interval %s** (`-folder-poll`; in production, `ORCHARD_SYNC_POLL_INTERVAL` "+
			"defaults to 60 s, and mail arriving in a folder other than INBOX waits for that poll: figures scale with it). "+
			"%d messages APPENDed into the grants' `Archive` by the bench's own IMAP connections (APPEND took p50 %s), at random times over %s, "+
			"round-robin over the grants; latency counts from the start of each APPEND. Baseline: the wait for the next poll alone, "+
			"uniform over 0–%s.\n\n",
			human(fo.part.poll), len(fo.part.msgs), msOf(fo.transact), human(2*fo.part.poll), human(fo.part.poll))
		pp := fo.part.poll
		table(w, head, [][]string{
			{"baseline: the next poll, uniform over the interval (expected)", "", secs3(pp / 2), secs3(pp * 95 / 100), secs3(pp / 2), secs3(pp)},
			row(fmt.Sprintf("**Orchard**: `message.created` at the receiver (poll %s)", human(pp)), fo.latency),
		})
		if len(fo.latency) > 0 {
			s := statsOf(fo.latency, nil)
			fmt.Fprintf(w, "Orchard / poll interval: p50 %.2f, p95 %.2f, max %.2f.\n\n", ratio(s.p50, pp), ratio(s.p95, pp), ratio(s.max, pp))
		}
		if len(fo.phases) > 0 {
			fmt.Fprintf(w, "Where the time goes (%d of %d messages):\n\n", fo.phasesFor, len(fo.part.msgs))
			phaseTable(w, []string{
				"syncer: waits for the poll, then SELECT, UID FETCH, parse (APPEND → `ApplyMailBatch` called)",
				"store: `ApplyMailBatch` with its change row",
				"dispatcher: notices the change row, renders, enqueues",
				"dispatcher: claims the delivery",
				"POST to the receiver",
			}, fo.phases)
		}
	}

	fmt.Fprintf(w, "### Accounting\n\n")
	rows := o.checkRows("INBOX")
	if r.folder != nil {
		rows = append(rows, r.folder.checkRows("Archive")...)
	}
	rows = append(rows,
		[]string{"notification ids POSTed more than once", strconv.Itoa(r.redelivered), "0", yesNo(r.redelivered == 0)},
		[]string{"POSTs that were retries (`webhook_delivery_attempt` > 1)", strconv.Itoa(r.retried), "0", yesNo(r.retried == 0)},
		[]string{"notifications of other mail (the history the initial sync found) or of other types", strconv.Itoa(r.unexpected), "0", yesNo(r.unexpected == 0)},
		[]string{"POSTs with a bad signature or body", strconv.Itoa(r.badSig + r.badBody), "0", yesNo(r.badSig+r.badBody == 0)},
		[]string{"Orchard warnings logged", strconv.Itoa(len(r.warnings)), "0", yesNo(len(r.warnings) == 0)},
	)
	fmt.Fprintf(w, "%d POSTs received in all. Messages are matched to notifications by subject; each must have exactly one notification id.\n\n", r.posts)
	table(w, []string{"check", "found", "want", "ok"}, rows)
	for _, m := range o.lost[:min(len(o.lost), 5)] {
		fmt.Fprintf(w, "- INBOX message without a notification: %q (grant %s)\n", m.subject, b.grants[m.grant].id)
	}
	if r.folder != nil {
		for _, m := range r.folder.lost[:min(len(r.folder.lost), 5)] {
			fmt.Fprintf(w, "- Archive message without a notification: %q (grant %s)\n", m.subject, b.grants[m.grant].id)
		}
	}
	for _, e := range r.unexpectedEg {
		fmt.Fprintf(w, "- unexpected notification: %s\n", e)
	}
	for _, m := range r.warnings[:min(len(r.warnings), 5)] {
		fmt.Fprintf(w, "- Orchard warning: `%s`\n", m)
	}
	if len(r.dovecotLog) > 0 {
		fmt.Fprintf(w, "\nDovecot logged during the run (an inotify limit makes IDLE fall back to polling every %s):\n\n", orDash(b.idleCheck))
		for _, l := range r.dovecotLog[:min(len(r.dovecotLog), 10)] {
			fmt.Fprintf(w, "- `%s`\n", l)
		}
	}
	fmt.Fprintln(w)
}

// phaseTable prints the breakdown of a latency into consecutive steps.
func phaseTable(w io.Writer, names []string, phases [][]time.Duration) {
	var total time.Duration
	means := make([]time.Duration, len(phases))
	for i, ds := range phases {
		means[i] = statsOf(ds, nil).mean
		total += means[i]
	}
	var rows [][]string
	for i, ds := range phases {
		s := statsOf(ds, nil)
		rows = append(rows, []string{names[i], ms(s.p50), ms(s.p95), ms(s.mean), pct(s.mean, total)})
	}
	rows = append(rows, []string{"**total**", "", "", ms(total), "100 %"})
	table(w, []string{"step", "p50", "p95", "mean", "share of the mean"}, rows)
}

// human prints a setting's duration: "60 s", "250 ms", "1.50 s".
func human(d time.Duration) string {
	switch {
	case d >= time.Second && d%time.Second == 0:
		return fmt.Sprintf("%d s", d/time.Second)
	case d >= time.Second:
		return secs(d)
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%d ms", d/time.Millisecond)
	}
	return ms(d)
}

func secs3(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

func msOf(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	return ms(statsOf(ds, nil).p50)
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func orDash(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
