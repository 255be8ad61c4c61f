package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/httpapi"
	"github.com/orchard-mail/orchard/internal/mimeconv"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/secret"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
)

type listFlags struct {
	n, r, batch, pages int
	seed               uint64
	caseBudget         time.Duration
	fillBudget         time.Duration
	timeout            time.Duration
	fillProfile        string
	cpuProfile         string
}

// Verifiers that are never called: the benchmark connects no account.
type nopICloud struct{}

func (nopICloud) Verify(context.Context, string, string) (provider.Credentials, error) {
	return provider.Credentials{}, errors.New("bench: no provider")
}

type nopIMAP struct{}

func (nopIMAP) Verify(context.Context, provider.Credentials) error {
	return errors.New("bench: no provider")
}

func runList(ctx context.Context, args []string) error {
	var f listFlags
	fs := newFlags("list")
	fs.IntVar(&f.n, "n", 100000, "messages in the store")
	fs.IntVar(&f.r, "r", 2000, "timed requests per case (sequential)")
	fs.IntVar(&f.batch, "batch", 1000, "messages per ApplyMailBatch while filling the store")
	fs.IntVar(&f.pages, "pages", 100, "depth of the deep-page case (pages of 50 followed by next_cursor)")
	fs.Uint64Var(&f.seed, "seed", 1, "corpus random seed")
	fs.DurationVar(&f.caseBudget, "case-budget", 30*time.Second, "stop a case early after this long (the report says so)")
	fs.DurationVar(&f.fillBudget, "fill-budget", 160*time.Second, "stop filling the store after this long and measure what is there (the report says so)")
	fs.DurationVar(&f.timeout, "timeout", 4*time.Minute+40*time.Second, "give up after this long")
	fs.StringVar(&f.fillProfile, "fillprofile", "", "write a CPU profile of filling the store to this file")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the requests (server and client: one process) to this file and summarize it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.n < 1000 || f.r < 1 || f.batch < 1 || f.pages < 1 {
		return errors.New("list: want -n ≥ 1000, -r ≥ 1, -batch ≥ 1, -pages ≥ 1")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var cl cleanups
	defer cl.run()

	dir, err := os.MkdirTemp("", "orchard-bench-list-")
	if err != nil {
		return err
	}
	cl.add(func(context.Context) { _ = os.RemoveAll(dir) })
	dbPath := filepath.Join(dir, "orchard.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	cl.add(func(context.Context) { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	var key [32]byte
	copy(key[:], "orchard-bench-list-not-a-secret!")
	box, err := secret.New(key[:])
	if err != nil {
		return err
	}
	svc := service.New(service.Deps{Store: st, Box: box, ICloud: nopICloud{}, IMAP: nopIMAP{}, Logger: slog.New(slog.DiscardHandler)})
	app, apiKey, err := svc.CreateApplication(ctx, "bench")
	if err != nil {
		return err
	}
	me := person{"Bench User", "bench.user@example.test"}
	g := &store.Grant{ApplicationID: app.ID, Provider: "imap", Email: me.email, Status: "valid", Credentials: []byte("x")}
	if err := st.CreateGrant(ctx, g); err != nil {
		return err
	}

	if f.fillProfile != "" {
		pf, err := os.Create(f.fillProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			pf.Close()
			return err
		}
	}
	fill, err := fillStore(ctx, st, g.ID, me, f)
	if f.fillProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	var dbBytes int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(dbPath + suffix); err == nil {
			dbBytes += fi.Size()
		}
	}

	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Logger: slog.New(slog.DiscardHandler), MaxBodyBytes: 1 << 20}))
	cl.add(func(context.Context) { srv.Close() })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: 30 * time.Second}
	cl.add(func(context.Context) { client.CloseIdleConnections() })
	b := &lister{ctx: ctx, client: client, base: srv.URL, key: apiKey}

	msgs := "/v3/grants/" + g.ID + "/messages?limit=50"
	deep, err := b.followPages(msgs, f.pages)
	if err != nil {
		return err
	}
	cases := []listCase{
		{name: "baseline: `GET /healthz` (HTTP floor)", path: "/healthz", auth: false},
		{name: "no filter", path: msgs, matches: fill.stored},
		{name: "`in=` INBOX (folder id)", path: msgs + "&in=" + fill.inboxID, matches: fill.inbox},
		{name: "`unread=true`", path: msgs + "&unread=true", matches: fill.unread},
		{name: "`from=` " + fill.from, path: msgs + "&from=" + url.QueryEscape(fill.from), matches: fill.fromCount},
		{name: "`subject=` " + fill.subject, path: msgs + "&subject=" + url.QueryEscape(fill.subject), matches: fill.subjectCount},
		{name: "`any_email=` " + fill.anyEmail, path: msgs + "&any_email=" + url.QueryEscape(fill.anyEmail), matches: fill.anyCount},
		{name: fmt.Sprintf("deep page: page %d via `page_token`", f.pages+1), path: msgs + "&page_token=" + deep, matches: fill.stored - 50*f.pages},
		{name: "extra: `subject=` with no match (scans every message)", path: msgs + "&subject=no-such-subject-xyzzy", matches: 0,
			budget: 10 * time.Second},
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			pf.Close()
			return err
		}
		cl.add(func(context.Context) { pprof.StopCPUProfile(); pf.Close() })
	}
	deadline, _ := ctx.Deadline()
	for i := range cases {
		c := &cases[i]
		// Keep the whole run inside -timeout: share what is left.
		budget := min(f.caseBudget, (time.Until(deadline)-10*time.Second)/time.Duration(len(cases)-i))
		if c.budget > 0 {
			budget = min(budget, c.budget)
		}
		if budget < 2*time.Second {
			budget = 2 * time.Second
		}
		if err := b.run(c, f.r, budget); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		logf("%-60s %5d requests  p50 %s  p99 %s  (%d items, %.1f KiB)", c.name, len(c.lat), ms(percentile(c.lat, 50)), ms(percentile(c.lat, 99)), c.items, c.bytes/1024)
	}
	var prof *profileSummary
	if f.cpuProfile != "" {
		pprof.StopCPUProfile()
		if prof, err = summarizeProfile(f.cpuProfile, listGroups); err != nil {
			logf("profile summary: %v (view it with: go tool pprof -top -cum %s)", err, f.cpuProfile)
		}
	}
	reportList(os.Stdout, f, fill, dbBytes, cases, prof)
	return nil
}

type fillResult struct {
	wall                                     time.Duration
	stored                                   int
	inboxID                                  string
	inbox, unread, withAtt, threads          int
	from, subject, anyEmail                  string
	fromCount, subjectCount, anyCount, bytes int
}

// fillStore writes n messages the way the syncer would store them: each
// rendered to RFC 5322, parsed by mimeconv, spread over three folders.
func fillStore(ctx context.Context, st store.Store, grantID string, me person, f listFlags) (fillResult, error) {
	var r fillResult
	start := time.Now()
	folders := []store.Folder{
		{ID: "f-inbox", Name: "INBOX", Role: store.RoleInbox, Delimiter: "/", UIDValidity: 1},
		{ID: "f-sent", Name: "Sent Messages", Role: store.RoleSent, Delimiter: "/", UIDValidity: 1},
		{ID: "f-archive", Name: "Archive", Role: store.RoleArchive, Delimiter: "/", UIDValidity: 1},
	}
	r.inboxID = folders[0].ID
	c := newCorpus(f.seed, me, 2*365*24*time.Hour, time.Now())
	mails := c.generate(f.n)
	fromCounts := map[string]int{}
	anyCounts := map[string]int{}
	threadOf := make([]string, len(mails))
	threads := map[string]bool{}
	uids := map[string]uint32{}
	last := time.Now()
	var b *store.MailBatch
	for i := range mails {
		m := &mails[i]
		if b == nil {
			b = &store.MailBatch{GrantID: grantID}
			if i == 0 {
				b.Folders = folders
			}
		}
		raw := m.raw()
		r.bytes += len(raw)
		p, err := mimeconv.Parse(bytes.NewReader(raw), mimeconv.Limits{})
		if err != nil {
			return r, err
		}
		ikey := mimeconv.IdentityKey(p)
		id := hashID(grantID, "message", ikey)
		if m.root == m.seq {
			threadOf[i] = hashID(grantID, "thread", ikey)
		} else {
			threadOf[i] = threadOf[m.root]
		}
		threads[threadOf[i]] = true
		atts := make([]store.Attachment, len(p.Attachments))
		for j, a := range p.Attachments {
			a.ID = hashID(id, "attachment", a.Part)
			atts[j] = a
		}
		b.Messages = append(b.Messages, store.Message{
			ID: id, GrantID: grantID, ThreadID: threadOf[i], IdentityKey: ikey,
			MessageIDHeader: p.MessageID, InReplyTo: p.InReplyTo, References: p.References,
			Subject: p.Subject, SubjectKey: mimeconv.SubjectKey(p.Subject),
			From: p.From, To: p.To, Cc: p.Cc, Bcc: p.Bcc, ReplyTo: p.ReplyTo,
			Date: m.date.UTC(), SentAt: p.Date, Snippet: p.Snippet, Body: p.Body, Attachments: atts,
			Headers: p.Header, Size: int64(len(raw)),
		})
		folder := "f-inbox"
		switch {
		case m.from == me:
			folder = "f-sent"
		case c.rng.IntN(4) == 0:
			folder = "f-archive"
		}
		uids[folder]++
		var flags []string
		if m.seen || m.from == me {
			flags = append(flags, `\Seen`)
		} else {
			r.unread++
		}
		if m.flagged {
			flags = append(flags, `\Flagged`)
		}
		if folder == "f-inbox" {
			r.inbox++
		}
		if m.att != nil {
			r.withAtt++
		}
		b.Locations = append(b.Locations, store.Location{MessageID: id, FolderID: folder, UID: uids[folder], Flags: flags, ModSeq: uint64(i + 1)})
		fromCounts[strings.ToLower(m.from.email)]++
		seen := map[string]bool{}
		for _, p := range slices.Concat([]person{m.from}, m.to, m.cc) {
			if e := strings.ToLower(p.email); !seen[e] {
				seen[e] = true
				anyCounts[e]++
			}
		}
		if len(b.Messages) == f.batch || i == len(mails)-1 {
			if err := st.ApplyMailBatch(ctx, b); err != nil {
				return r, err
			}
			b = nil
			r.stored = i + 1
			if time.Since(last) > 10*time.Second {
				last = time.Now()
				logf("stored %d of %d messages (%s, %.0f messages/s)", i+1, f.n, time.Since(start).Round(time.Millisecond), float64(i+1)/time.Since(start).Seconds())
			}
			if time.Since(start) > f.fillBudget && r.stored < f.n {
				logf("fill budget (%s) hit: measuring with %d of %d messages", f.fillBudget, r.stored, f.n)
				break
			}
		}
	}
	mails = mails[:r.stored]
	r.threads = len(threads)
	// Filters of a realistic selectivity: an address in about 1 % of the
	// mail (not the user's own, which is in all of it).
	r.from, r.fromCount = pickNear(fromCounts, r.stored/100, me.email)
	r.anyEmail, r.anyCount = pickNear(anyCounts, r.stored/100, me.email)
	r.subject = "offsite"
	for _, m := range mails {
		if strings.Contains(strings.ToLower(m.subject), r.subject) {
			r.subjectCount++
		}
	}
	r.wall = time.Since(start)
	logf("filled the store: %d messages, %d threads in %s", r.stored, r.threads, r.wall.Round(time.Millisecond))
	return r, nil
}

func pickNear(counts map[string]int, want int, not string) (string, int) {
	best, bestN := "", -1
	for e, n := range counts {
		if e == not {
			continue
		}
		if bestN < 0 || abs(n-want) < abs(bestN-want) || (abs(n-want) == abs(bestN-want) && e < best) {
			best, bestN = e, n
		}
	}
	return best, bestN
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func hashID(parent, kind, key string) string {
	sum := sha256.Sum256([]byte(parent + "\x00" + kind + "\x00" + key))
	return hex.EncodeToString(sum[:13])
}

type listCase struct {
	name    string
	path    string
	auth    bool
	matches int
	budget  time.Duration // 0: the common one

	lat      []time.Duration // sorted after run
	items    int
	bytes    float64 // mean response size
	cutShort bool
}

type lister struct {
	ctx    context.Context
	client *http.Client
	base   string
	key    string
}

type listReply struct {
	Data       json.RawMessage `json:"data"`
	NextCursor string          `json:"next_cursor"`
}

func (l *lister) get(path string, auth bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(l.ctx, http.MethodGet, l.base+path, nil)
	if err != nil {
		return nil, err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+l.key)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.300s", path, resp.Status, body)
	}
	return body, nil
}

// followPages walks pages of a listing and returns the page_token of the
// page after the last one walked.
func (l *lister) followPages(path string, pages int) (string, error) {
	next := ""
	for i := 0; i < pages; i++ {
		p := path
		if next != "" {
			p += "&page_token=" + url.QueryEscape(next)
		}
		body, err := l.get(p, true)
		if err != nil {
			return "", err
		}
		var r listReply
		if err := json.Unmarshal(body, &r); err != nil {
			return "", err
		}
		if r.NextCursor == "" {
			return "", fmt.Errorf("deep page: the listing ended after %d pages", i+1)
		}
		next = r.NextCursor
	}
	return url.QueryEscape(next), nil
}

// run warms the case up, then times up to r sequential requests.
func (l *lister) run(c *listCase, r int, budget time.Duration) error {
	auth := c.path != "/healthz"
	c.auth = auth
	for range 20 {
		if _, err := l.get(c.path, auth); err != nil {
			return err
		}
	}
	body, err := l.get(c.path, auth)
	if err != nil {
		return err
	}
	if auth {
		var lr listReply
		if err := json.Unmarshal(body, &lr); err != nil {
			return err
		}
		var items []json.RawMessage
		if err := json.Unmarshal(lr.Data, &items); err != nil {
			return err
		}
		c.items = len(items)
	}
	var total int
	start := time.Now()
	for i := 0; i < r; i++ {
		t := time.Now()
		body, err := l.get(c.path, auth)
		if err != nil {
			return err
		}
		c.lat = append(c.lat, time.Since(t))
		total += len(body)
		if time.Since(start) > budget {
			c.cutShort = i+1 < r
			break
		}
	}
	c.bytes = float64(total) / float64(len(c.lat))
	slices.Sort(c.lat)
	return nil
}

func reportList(w io.Writer, f listFlags, fill fillResult, dbBytes int64, cases []listCase, p *profileSummary) {
	header(w, "list")
	if fill.stored < f.n {
		fmt.Fprintf(w, "**Only %d of the %d messages asked for are in the store**: filling stopped at the -fill-budget of %s "+
			"(ApplyMailBatch wrote %.0f messages/s). The latencies below are for this smaller store.\n\n",
			fill.stored, f.n, f.fillBudget, float64(fill.stored)/fill.wall.Seconds())
	}
	fmt.Fprintf(w, "Store: SQLite in a fresh temp dir, one grant, %d messages over two years (%d threads; %d in INBOX, %d unread, %d with an attachment; "+
		"Sent and Archive hold the rest), rendered as RFC 5322 (avg %.1f KiB) and parsed by mimeconv like the syncer does, "+
		"written by ApplyMailBatch in batches of %d in %s (%.0f messages/s); database %s on disk.\n\n",
		fill.stored, fill.threads, fill.inbox, fill.unread, fill.withAtt, float64(fill.bytes)/float64(fill.stored)/1024, f.batch,
		secs(fill.wall), float64(fill.stored)/fill.wall.Seconds(), mib(dbBytes))
	fmt.Fprintf(w, "HTTP: the real handler (httpapi.New + service.New on that store) on an httptest server; one keep-alive client, "+
		"sequential requests over loopback with an API key; each case warmed up with 20 requests, then %d timed (time to the last body byte).\n\n", f.r)
	floor := percentile(cases[0].lat, 50)
	var rows [][]string
	for _, c := range cases {
		matches := ""
		if c.auth {
			matches = fmt.Sprint(c.matches)
		}
		n := fmt.Sprint(len(c.lat))
		if c.cutShort {
			n += " (budget hit)"
		}
		verdict := ""
		if c.auth {
			verdict = "yes"
			if percentile(c.lat, 99) >= 25*time.Millisecond {
				verdict = "**no**"
			}
		}
		items := ""
		if c.auth {
			items = fmt.Sprint(c.items)
		}
		rows = append(rows, []string{c.name, matches, items, n, ms(percentile(c.lat, 50)), ms(percentile(c.lat, 90)),
			ms(percentile(c.lat, 99)), ms(c.lat[len(c.lat)-1]), fmt.Sprintf("%.1f×", float64(percentile(c.lat, 50))/float64(floor)),
			kib(c.bytes), verdict})
	}
	table(w, []string{"GET …/messages?limit=50 with", "matching", "items", "requests", "p50", "p90", "p99", "max", "p50 / healthz p50", "response", "p99 < 25 ms"}, rows)
	if p != nil {
		profileReport(w, p, f.cpuProfile, "of the requests (server and client share this process)")
	}
}
