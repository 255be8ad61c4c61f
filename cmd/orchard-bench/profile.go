package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The CPU profile is summarized with the Go toolchain's own pprof
// (`go tool pprof -traces`), so that the module needs no
// profile-parsing dependency.

// cpuGroup attributes a sample to itself when any frame of the sample's
// stack matches; the first matching group of a list wins.
type cpuGroup struct {
	name string
	re   *regexp.Regexp
}

// syncGroups are for the sync: reading the socket counts as IMAP read even
// when the MIME parser pulled the bytes through go-imap's literal reader.
var syncGroups = []cpuGroup{
	{"benchmark harness (polling the store)", regexp.MustCompile(`^main\.(orchardSync|runSync)$`)},
	{"IMAP read: TLS decryption and socket", regexp.MustCompile(`^crypto/|^net\.\(\*conn\)\.Read|^internal/poll\.\(\*FD\)\.Read`)},
	{"store: SQLite/PostgreSQL (queries and writes)", regexp.MustCompile(`^modernc\.org/|^database/sql|/internal/store/|^github\.com/jackc/`)},
	{"MIME parse (mimeconv)", regexp.MustCompile(`/internal/mimeconv\.`)},
	{"IMAP protocol decoding (go-imap, imapx)", regexp.MustCompile(`emersion/go-imap|/internal/imapx\.|/internal/opconn\.`)},
	{"syncer (threading, ids, batches)", regexp.MustCompile(`/internal/syncer\.`)},
	{gcGroup, gcRE},
}

// listGroups are for the message listing: client and server run in this
// process.
var listGroups = []cpuGroup{
	{"benchmark client (building requests, reading responses)", regexp.MustCompile(`^main\.`)},
	{"store: SQLite queries, scanning rows (JSON columns included)", regexp.MustCompile(`^modernc\.org/|^database/sql|/internal/store/`)},
	{"JSON encoding of the response", regexp.MustCompile(`^encoding/json\.`)},
	{"handler and service (auth, filters, wire types)", regexp.MustCompile(`/internal/httpapi\.|/internal/service\.`)},
	{"HTTP transport (net/http, sockets)", regexp.MustCompile(`^net/http\.|^net\.|^internal/poll\.|^bufio\.`)},
	{gcGroup, gcRE},
}

const gcGroup = "GC and runtime background work"

var gcRE = regexp.MustCompile(`^runtime\.(gcBgMarkWorker|bgsweep|bgscavenge|gcStart|forEachP|sysmon|mstart|schedule|findRunnable)`)

const otherGroup = "other"

type profileGroup struct {
	name  string
	value time.Duration
}

type topFunc struct {
	fn     string
	cum    time.Duration
	cumPct string
	group  string
}

type profileSummary struct {
	total  time.Duration
	groups []profileGroup
	top    []topFunc // Orchard's own functions by cumulative CPU
	flat   []topFunc // any function by flat CPU
}

func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	//lint:ignore SA1019 a fallback only: the toolchain that built this binary
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no go command on PATH to read the profile")
}

func summarizeProfile(file string, groups []cpuGroup) (*profileSummary, error) {
	goCmd, err := goTool()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, goCmd, "tool", "pprof", "-traces", file).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -traces: %w", err)
	}
	return summarizeTraces(out, groups, 10), nil
}

// summarizeTraces reads `go tool pprof -traces` output: after a header,
// samples separated by "-----------+---…" lines, each a value and the leaf
// function ("      10ms   leaf.Func"), then one caller per line
// ("             caller.Func (inline)"), root last.
func summarizeTraces(out []byte, groups []cpuGroup, topN int) *profileSummary {
	type sample struct {
		value time.Duration
		stack []string
	}
	var samples []sample
	var cur *sample
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			if cur != nil && len(cur.stack) > 0 {
				samples = append(samples, *cur)
			}
			cur = &sample{}
			continue
		}
		fields := strings.Fields(line)
		if cur == nil || len(fields) == 0 || strings.HasSuffix(fields[0], ":") {
			continue // header, blank or label line
		}
		if len(cur.stack) == 0 && len(fields) >= 2 {
			if d, err := parseDur(fields[0]); err == nil {
				cur.value = d
				cur.stack = append(cur.stack, fields[1])
			}
			continue
		}
		if len(cur.stack) > 0 {
			cur.stack = append(cur.stack, fields[0])
		}
	}
	if cur != nil && len(cur.stack) > 0 {
		samples = append(samples, *cur)
	}

	sum := &profileSummary{}
	byGroup := map[string]time.Duration{}
	cum := map[string]map[string]time.Duration{} // function → group → value
	flat := map[string]time.Duration{}
	for _, s := range samples {
		flat[s.stack[0]] += s.value
		g := groupOf(groups, s.stack)
		byGroup[g] += s.value
		sum.total += s.value
		seen := map[string]bool{}
		for _, fn := range s.stack {
			if seen[fn] {
				continue // recursion counts once
			}
			seen[fn] = true
			if cum[fn] == nil {
				cum[fn] = map[string]time.Duration{}
			}
			cum[fn][g] += s.value
		}
	}
	for _, g := range groups {
		if v := byGroup[g.name]; v > 0 {
			sum.groups = append(sum.groups, profileGroup{g.name, v})
		}
	}
	if v := byGroup[otherGroup]; v > 0 {
		sum.groups = append(sum.groups, profileGroup{otherGroup, v})
	}

	for fn, gs := range cum {
		if scaffolding.MatchString(fn) || !ownCode.MatchString(fn) {
			continue
		}
		t := topFunc{fn: fn}
		var best time.Duration
		for g, v := range gs {
			t.cum += v
			if v > best {
				best, t.group = v, g
			}
		}
		if t.cum > 0 && best < t.cum {
			t.group += fmt.Sprintf(" (%.0f %%)", 100*float64(best)/float64(t.cum))
		}
		sum.top = append(sum.top, t)
	}
	slices.SortFunc(sum.top, func(a, b topFunc) int {
		if a.cum != b.cum {
			return int(b.cum - a.cum)
		}
		return strings.Compare(a.fn, b.fn)
	})
	sum.top = sum.top[:min(topN, len(sum.top))]
	for i := range sum.top {
		sum.top[i].cumPct = fmt.Sprintf("%.1f %%", 100*float64(sum.top[i].cum)/float64(sum.total))
	}
	for fn, v := range flat {
		sum.flat = append(sum.flat, topFunc{fn: fn, cum: v, cumPct: fmt.Sprintf("%.1f %%", 100*float64(v)/float64(sum.total))})
	}
	slices.SortFunc(sum.flat, func(a, b topFunc) int {
		if a.cum != b.cum {
			return int(b.cum - a.cum)
		}
		return strings.Compare(a.fn, b.fn)
	})
	sum.flat = sum.flat[:min(5, len(sum.flat))]
	return sum
}

// ownCode is Orchard's code and the IMAP client it drives: the functions
// whose cumulative time says which step of the sync costs what.
var ownCode = regexp.MustCompile(`^github\.com/orchard-mail/orchard/|^github\.com/emersion/go-imap`)

func groupOf(groups []cpuGroup, stack []string) string {
	for _, g := range groups {
		if slices.ContainsFunc(stack, g.re.MatchString) {
			return g.name
		}
	}
	return otherGroup
}

// scaffolding are frames that only pass the work on (goroutine roots, the
// syncer's session loop, database/sql's locking): left out of the top list.
var scaffolding = regexp.MustCompile(`^runtime\.(goexit|main|mcall|park_m|schedule|findRunnable|systemstack|mstart.*)$|^main\.|` +
	`/internal/syncer\.\(\*(Supervisor|worker)\)\.|/internal/syncer\.\(\*syncSession\)\.(fullPass|syncFolder)|/internal/syncer\..*Chunk|` +
	`^database/sql\.(withLock|\(\*DB\)\.(retry|query|queryDC|QueryContext|ExecContext|exec|execDC|BeginTx|begin)|ctxDriver)|` +
	`/internal/store/sqlstore\.(inTx|chunks\[.*\]|\(\*Store\)\.(ApplyMailBatch\.func1|execOn|queryRow)|\(\*batchTx\)\.(apply|insertRows|updateThreads|exec))$|` +
	`/internal/httpapi\.New\.|/internal/httpapi\.\(\*server\)\.routes\.|` +
	`/internal/imapx\.\(\*Client\)\.(Run|run)|/internal/opconn\.\(\*Conn\)\.Do$|/internal/syncer\.\(\*syncSession\)\.fetchAndStore\.func1$`)

// parseDur reads pprof's durations ("10ms", "1.50s", "0", "100us").
func parseDur(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	if v, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64); err == nil && strings.HasSuffix(s, "s") {
		return time.Duration(v * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("not a duration: %q", s)
}
