package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/postgres"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
	"github.com/orchard-mail/orchard/internal/syncer"
	"github.com/orchard-mail/orchard/internal/testenv"
)

type syncFlags struct {
	n            int
	db           string
	cpuprofile   string
	batch        int
	baselineRuns int
	runs         int
	seed         uint64
	timeout      time.Duration
	verbose      bool
}

func runSync(ctx context.Context, args []string) error {
	var f syncFlags
	fs := newFlags("sync")
	fs.IntVar(&f.n, "n", 10000, "messages to seed into the mailbox")
	fs.StringVar(&f.db, "db", "sqlite", `store: "sqlite" (fresh file in a temp dir), "postgres" (fresh database on ORCHARD_TEST_POSTGRES_URL) or a postgres:// admin URL`)
	fs.StringVar(&f.cpuprofile, "cpuprofile", "", "write a CPU profile of the (first) Orchard sync to this file and summarize it")
	fs.IntVar(&f.batch, "batch", 0, "syncer BatchSize (0: the syncer's default)")
	fs.IntVar(&f.baselineRuns, "baseline-runs", 3, "timed raw FETCH runs (the median is reported)")
	fs.IntVar(&f.runs, "runs", 1, "Orchard sync runs, each into a fresh store (the median is reported)")
	fs.Uint64Var(&f.seed, "seed", 1, "corpus random seed")
	fs.DurationVar(&f.timeout, "timeout", 4*time.Minute, "give up after this long")
	fs.BoolVar(&f.verbose, "v", false, "log the syncer to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.n < 1 || f.runs < 1 || f.baselineRuns < 1 {
		return errors.New("sync: -n, -runs and -baseline-runs must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var cl cleanups
	defer cl.run()

	env, err := testenv.Load()
	if err != nil {
		return err
	}
	pool, err := env.RootCAs()
	if err != nil {
		return err
	}
	users, err := env.AddUsers("bench-sync", 1)
	if err != nil {
		return err
	}
	cl.add(func(context.Context) {
		if err := env.RemoveUsers(users); err != nil {
			logf("cleanup: %v", err)
		}
	})
	u := users[0]

	// Seed.
	t0 := time.Now()
	c := newCorpus(f.seed, person{"Bench User", u.Email}, 80*24*time.Hour, time.Now())
	mails := c.generate(f.n)
	seed := make([]testenv.SeedMessage, len(mails))
	var total int64
	shapes := [3]int{}
	for i := range mails {
		raw := mails[i].raw()
		total += int64(len(raw))
		shapes[mails[i].shape]++
		seed[i] = testenv.SeedMessage{Raw: raw, Received: mails[i].date, Seen: mails[i].seen}
	}
	if err := env.WriteMaildir(u, "INBOX", seed); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	seed = nil
	logf("seeded %d messages (%s, avg %.0f B) for %s in %s", f.n, mib(total), float64(total)/float64(f.n), u.Email, time.Since(t0).Round(time.Millisecond))

	// Baseline: warm Dovecot up with exactly what the syncer asks for,
	// then time raw fetches of every body.
	if _, err := rawFetch(ctx, env.IMAPAddr, pool, u, true); err != nil {
		return fmt.Errorf("warm-up fetch: %w", err)
	}
	var base []rawResult
	for i := range f.baselineRuns {
		r, err := rawFetch(ctx, env.IMAPAddr, pool, u, false)
		if err != nil {
			return fmt.Errorf("raw fetch: %w", err)
		}
		if r.messages != f.n {
			return fmt.Errorf("raw fetch returned %d messages, want %d", r.messages, f.n)
		}
		logf("raw fetch %d: %d messages, %s in %s (session %s)", i+1, r.messages, mib(r.bytes), r.fetch.Round(time.Millisecond), r.session.Round(time.Millisecond))
		base = append(base, r)
	}

	// Orchard.
	var runs []syncResult
	for i := range f.runs {
		profile := ""
		if i == 0 {
			profile = f.cpuprofile
		}
		r, err := orchardSync(ctx, env, pool, u, f, profile)
		if err != nil {
			return err
		}
		logf("orchard sync %d: %d messages in %s (CPU %s)", i+1, r.stored, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond))
		runs = append(runs, r)
	}
	// A raw run after Orchard's too: if the machine got slower meanwhile,
	// it shows.
	if r, err := rawFetch(ctx, env.IMAPAddr, pool, u, false); err == nil {
		logf("raw fetch (after): %s", r.fetch.Round(time.Millisecond))
		base = append(base, r)
	}

	reportSync(os.Stdout, f, total, shapes, base, runs)
	return nil
}

type rawResult struct {
	session, fetch time.Duration
	messages       int
	bytes          int64
	cpu            time.Duration
}

// rawFetch runs UID FETCH 1:* (BODY.PEEK[]) on a fresh connection and
// reads every literal to the end without parsing it. warm asks for the
// syncer's items instead (and searches like it), to fill Dovecot's cache.
func rawFetch(ctx context.Context, addr string, pool *x509.CertPool, u testenv.User, warm bool) (rawResult, error) {
	var r rawResult
	cpu0 := cpuTime()
	start := time.Now()
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool}})
	if err != nil {
		return r, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Login(u.Email, u.Password).Wait(); err != nil {
		return r, err
	}
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true, CondStore: warm}).Wait(); err != nil {
		return r, err
	}
	opts := &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
	if warm {
		if _, err := c.UIDSearch(&imap.SearchCriteria{Since: time.Now().AddDate(0, 0, -90)}, nil).Wait(); err != nil {
			return r, err
		}
		opts.UID, opts.Flags, opts.InternalDate, opts.RFC822Size, opts.ModSeq = true, true, true, true, true
	}
	fetchStart := time.Now()
	cmd := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, opts)
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		for item := m.Next(); item != nil; item = m.Next() {
			if b, ok := item.(imapclient.FetchItemDataBodySection); ok && b.Literal != nil {
				n, err := io.Copy(io.Discard, b.Literal)
				if err != nil {
					cmd.Close()
					return r, err
				}
				r.bytes += n
			}
		}
		r.messages++
	}
	if err := cmd.Close(); err != nil {
		return r, err
	}
	r.fetch = time.Since(fetchStart)
	_ = c.Logout().Wait()
	r.session = time.Since(start)
	r.cpu = cpuTime() - cpu0
	return r, nil
}

type syncResult struct {
	wall, cpu time.Duration
	stored    int
	folders   int
	calls     map[string]*callStat
	profile   *profileSummary
	dialect   string
}

// orchardSync runs a Supervisor with one grant on a fresh store until
// every folder's initial sync is done.
func orchardSync(ctx context.Context, env *testenv.Env, pool *x509.CertPool, u testenv.User, f syncFlags, profile string) (syncResult, error) {
	var cl cleanups
	defer cl.run()
	r := syncResult{dialect: "SQLite"}
	var st store.Store
	if f.db == "sqlite" {
		dir, err := os.MkdirTemp("", "orchard-bench-sync-")
		if err != nil {
			return r, err
		}
		cl.add(func(context.Context) { _ = os.RemoveAll(dir) })
		s, err := sqlite.Open(ctx, filepath.Join(dir, "orchard.db"))
		if err != nil {
			return r, err
		}
		st = s
	} else if f.db == "postgres" || strings.HasPrefix(f.db, "postgres://") || strings.HasPrefix(f.db, "postgresql://") {
		admin := ""
		if f.db != "postgres" {
			admin = f.db
		}
		url, drop, err := env.CreatePostgresDB(ctx, admin)
		if err != nil {
			return r, err
		}
		cl.add(func(ctx context.Context) {
			if err := drop(ctx); err != nil {
				logf("cleanup: dropping the benchmark database: %v", err)
			}
		})
		s, err := postgres.Open(ctx, url)
		if err != nil {
			return r, err
		}
		st = s
		r.dialect = "PostgreSQL"
	} else {
		return r, fmt.Errorf("sync: -db %q: want sqlite, postgres or a postgres:// URL", f.db)
	}
	cl.add(func(context.Context) { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		return r, err
	}
	app := &store.Application{Name: "bench"}
	if err := st.CreateApplication(ctx, app); err != nil {
		return r, err
	}
	g := &store.Grant{ApplicationID: app.ID, Provider: "imap", Email: u.Email, Status: "valid", Credentials: []byte("x")}
	if err := st.CreateGrant(ctx, g); err != nil {
		return r, err
	}
	creds := provider.Credentials{IMAPAddr: env.IMAPAddr, IMAPUsername: u.Email, IMAPPassword: u.Password}
	timed := &timedStore{Store: st, calls: map[string]*callStat{}}
	logger := slog.New(slog.DiscardHandler)
	if f.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	sup := syncer.New(syncer.Options{
		Store:       timed,
		Dialer:      &imapx.Dialer{TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Timeout: 30 * time.Second},
		Credentials: func(*store.Grant) (provider.Credentials, error) { return creds, nil },
		Logger:      logger,
		WindowDays:  90,
		BatchSize:   f.batch,
	})

	var prof *os.File
	if profile != "" {
		var err error
		if prof, err = os.Create(profile); err != nil {
			return r, err
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			prof.Close()
			return r, err
		}
	}
	runCtx, stopSup := context.WithCancel(ctx)
	done := make(chan struct{})
	cpu0 := cpuTime()
	start := time.Now()
	go func() { defer close(done); _ = sup.Run(runCtx) }()
	defer func() { stopSup(); <-done }()

	var waitErr error
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for waitErr == nil {
		fs, err := st.ListFolders(ctx, g.ID)
		if err != nil {
			waitErr = err
			break
		}
		if len(fs) > 0 && !slices.ContainsFunc(fs, func(f store.Folder) bool { return !f.InitialDone }) {
			r.folders = len(fs)
			for _, f := range fs {
				r.stored += f.TotalCount
			}
			break
		}
		if s, ok := sup.Status(g.ID); ok && s.State == "retrying" {
			waitErr = fmt.Errorf("sync failed: %s", s.LastError)
			break
		}
		select {
		case <-ctx.Done():
			waitErr = fmt.Errorf("sync not done: %w", ctx.Err())
		case <-tick.C:
		}
	}
	r.wall = time.Since(start)
	r.cpu = cpuTime() - cpu0
	if prof != nil {
		pprof.StopCPUProfile()
		prof.Close()
	}
	if waitErr != nil {
		return r, waitErr
	}
	if r.stored != f.n {
		return r, fmt.Errorf("sync stored %d messages in its folders, want %d", r.stored, f.n)
	}
	r.calls = timed.snapshot()
	if profile != "" {
		p, err := summarizeProfile(profile, syncGroups)
		if err != nil {
			logf("profile summary: %v (view it with: go tool pprof -top -cum %s)", err, profile)
		}
		r.profile = p
	}
	return r, nil
}

// timedStore measures the wall time the syncer spends in each store call.
type timedStore struct {
	store.Store
	mu    sync.Mutex
	calls map[string]*callStat
}

type callStat struct {
	n    int
	wall time.Duration
}

func (t *timedStore) since(name string, start time.Time) {
	d := time.Since(start)
	t.mu.Lock()
	c := t.calls[name]
	if c == nil {
		c = &callStat{}
		t.calls[name] = c
	}
	c.n++
	c.wall += d
	t.mu.Unlock()
}

func (t *timedStore) snapshot() map[string]*callStat {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]*callStat, len(t.calls))
	for k, v := range t.calls {
		c := *v
		out[k] = &c
	}
	return out
}

func (t *timedStore) GrantsWithStatus(ctx context.Context, status string) ([]store.Grant, error) {
	defer t.since("GrantsWithStatus", time.Now())
	return t.Store.GrantsWithStatus(ctx, status)
}

func (t *timedStore) GrantByID(ctx context.Context, id string) (*store.Grant, error) {
	defer t.since("GrantByID", time.Now())
	return t.Store.GrantByID(ctx, id)
}

func (t *timedStore) ApplyMailBatch(ctx context.Context, b *store.MailBatch) error {
	defer t.since("ApplyMailBatch", time.Now())
	return t.Store.ApplyMailBatch(ctx, b)
}

func (t *timedStore) ListFolders(ctx context.Context, grantID string) ([]store.Folder, error) {
	defer t.since("ListFolders", time.Now())
	return t.Store.ListFolders(ctx, grantID)
}

func (t *timedStore) FolderUIDs(ctx context.Context, grantID, folderID string) ([]uint32, error) {
	defer t.since("FolderUIDs", time.Now())
	return t.Store.FolderUIDs(ctx, grantID, folderID)
}

func (t *timedStore) MessageIDsAt(ctx context.Context, grantID, folderID string, uids []uint32) ([]string, error) {
	defer t.since("MessageIDsAt", time.Now())
	return t.Store.MessageIDsAt(ctx, grantID, folderID, uids)
}

func (t *timedStore) GetMessagesByIdentity(ctx context.Context, grantID string, keys []string) ([]store.Message, error) {
	defer t.since("GetMessagesByIdentity", time.Now())
	return t.Store.GetMessagesByIdentity(ctx, grantID, keys)
}

func (t *timedStore) ThreadIDByMessageIDs(ctx context.Context, grantID string, msgIDs []string) (string, error) {
	defer t.since("ThreadIDByMessageIDs", time.Now())
	return t.Store.ThreadIDByMessageIDs(ctx, grantID, msgIDs)
}

func (t *timedStore) ThreadIDBySubject(ctx context.Context, grantID, subjectKey string, since time.Time) (string, error) {
	defer t.since("ThreadIDBySubject", time.Now())
	return t.Store.ThreadIDBySubject(ctx, grantID, subjectKey, since)
}

func reportSync(w io.Writer, f syncFlags, total int64, shapes [3]int, base []rawResult, runs []syncResult) {
	header(w, "sync")
	fmt.Fprintf(w, "Mailbox: %d messages in INBOX, %s (avg %.1f KiB): %d plain text, %d text+HTML, %d with an attachment; "+
		"INTERNALDATE over the last 80 days; sync window 90 days, syncer BatchSize %s; Dovecot IMAPS on loopback, client and server share the CPUs.\n\n",
		f.n, mib(total), float64(total)/float64(f.n)/1024, shapes[shapePlain], shapes[shapeAlternative], shapes[shapeMixed], batchText(f.batch))

	fetches := make([]time.Duration, len(base))
	sessions := make([]time.Duration, len(base))
	for i, b := range base {
		fetches[i], sessions[i] = b.fetch, b.session
	}
	rawFetchT, rawSession := median(fetches), median(sessions)
	var rawCPU time.Duration // of the median run
	for _, b := range base {
		if b.fetch == rawFetchT {
			rawCPU = b.cpu
		}
	}
	walls := make([]time.Duration, len(runs))
	for i, r := range runs {
		walls[i] = r.wall
	}
	orch := median(walls)
	var orchRun syncResult
	for _, r := range runs {
		if r.wall == orch {
			orchRun = r
		}
	}
	rate := func(d time.Duration) float64 { return float64(f.n) / d.Seconds() }
	spread := func(ds []time.Duration) string {
		if len(ds) < 2 {
			return ""
		}
		return fmt.Sprintf(" (%s–%s)", secs(slices.Min(ds)), secs(slices.Max(ds)))
	}
	table(w, []string{"path", "time (median)", "messages/s", "MB/s", "client CPU", "CPU µs/message"}, [][]string{
		{fmt.Sprintf("raw `UID FETCH 1:* (BODY.PEEK[])`, go-imap, literals discarded (%d runs)", len(base)),
			secs(rawFetchT) + spread(fetches), fmt.Sprintf("%.0f", rate(rawFetchT)),
			fmt.Sprintf("%.1f", float64(total)/1e6/rawFetchT.Seconds()), secs(rawCPU), fmt.Sprintf("%.0f", float64(rawCPU.Microseconds())/float64(f.n))},
		{"raw, whole session (connect, TLS, LOGIN, SELECT, FETCH, LOGOUT)", secs(rawSession) + spread(sessions),
			fmt.Sprintf("%.0f", rate(rawSession)), fmt.Sprintf("%.1f", float64(total)/1e6/rawSession.Seconds()), "", ""},
		{fmt.Sprintf("Orchard initial sync → %s (%d runs, %d folders)", orchRun.dialect, len(runs), orchRun.folders),
			secs(orch) + spread(walls), fmt.Sprintf("%.0f", rate(orch)), fmt.Sprintf("%.1f", float64(total)/1e6/orch.Seconds()),
			secs(orchRun.cpu), fmt.Sprintf("%.0f", float64(orchRun.cpu.Microseconds())/float64(f.n))},
	})
	ratio := rate(orch) / rate(rawSession)
	verdict := "meets"
	if ratio < 0.10 {
		verdict = "MISSES"
	}
	fmt.Fprintf(w, "**Orchard / raw = %.3f** against the raw session (%.3f against the FETCH alone); target ≥ 0.10: %s.\n\n",
		ratio, rate(orch)/rate(rawFetchT), verdict)

	// Where the wall time goes: the syncer is sequential (fetch a batch
	// while parsing it, then write it), so store time and the rest add up.
	var names []string
	var storeWall time.Duration
	for k, c := range orchRun.calls {
		names = append(names, k)
		storeWall += c.wall
	}
	slices.SortFunc(names, func(a, b string) int { return int(orchRun.calls[b].wall - orchRun.calls[a].wall) })
	var rows [][]string
	for _, k := range names {
		c := orchRun.calls[k]
		rows = append(rows, []string{"store." + k, fmt.Sprint(c.n), secs(c.wall), pct(c.wall, orch), fmt.Sprintf("%.0f µs", float64(c.wall.Microseconds())/float64(c.n))})
	}
	rows = append(rows, []string{"**all store calls**", "", secs(storeWall), pct(storeWall, orch), ""})
	rows = append(rows, []string{"**the rest**: IMAP round trips and reading, MIME parsing (streamed inside FETCH), threading, ids", "",
		secs(orch - storeWall), pct(orch-storeWall, orch), ""})
	fmt.Fprintf(w, "Wall time of the Orchard sync (%s) by store call, measured around each call the syncer makes:\n\n", secs(orch))
	table(w, []string{"where", "calls", "wall", "share", "per call"}, rows)

	p := runs[0].profile
	if p == nil {
		if f.cpuprofile == "" {
			fmt.Fprintf(w, "No CPU profile taken: add `-cpuprofile FILE` for the CPU breakdown.\n\n")
		}
		return
	}
	profileReport(w, p, f.cpuprofile, fmt.Sprintf("of the first Orchard sync (%s of wall time; Orchard's process only, Dovecot runs beside it)", secs(runs[0].wall)))
}

// profileReport prints a profile summary: groups, top own functions and
// the hottest leaves.
func profileReport(w io.Writer, p *profileSummary, file, what string) {
	fmt.Fprintf(w, "CPU profile %s: `%s`, %s of samples; each sample is attributed to the first matching group along its stack:\n\n",
		what, file, secs(p.total))
	var rows [][]string
	for _, g := range p.groups {
		rows = append(rows, []string{g.name, secs(g.value), pct(g.value, p.total)})
	}
	table(w, []string{"group", "CPU", "share"}, rows)
	if len(p.top) > 0 {
		fmt.Fprintf(w, "Top %d of Orchard's own functions (and go-imap's) by cumulative CPU, without pass-through frames, "+
			"with the group most of their samples fall in (all functions: `go tool pprof -top -cum %s`):\n\n", len(p.top), file)
		rows = nil
		for _, t := range p.top {
			rows = append(rows, []string{"`" + strings.TrimPrefix(t.fn, "github.com/orchard-mail/orchard/") + "`", secs(t.cum), t.cumPct, t.group})
		}
		table(w, []string{"function", "cum", "cum %", "mostly"}, rows)
	}
	if len(p.flat) > 0 {
		var hot []string
		for _, t := range p.flat {
			hot = append(hot, fmt.Sprintf("`%s` %s", t.fn, t.cumPct))
		}
		fmt.Fprintf(w, "Hottest functions by their own (flat) CPU: %s.\n\n", strings.Join(hot, ", "))
	}
}

func batchText(n int) string {
	if n <= 0 {
		return "default (100)"
	}
	return strconv.Itoa(n)
}

func pct(part, whole time.Duration) string {
	if whole <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f %%", 100*float64(part)/float64(whole))
}
