package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
	"github.com/orchard-mail/orchard/internal/syncer"
	"github.com/orchard-mail/orchard/internal/testenv"
)

type idleFlags struct {
	grants  int
	wait    time.Duration
	settle  time.Duration
	timeout time.Duration
	retry   bool
	json    bool
}

func runIdle(ctx context.Context, args []string) error {
	var f idleFlags
	fs := newFlags("idle")
	fs.IntVar(&f.grants, "grants", 1000, "grants (each its own Dovecot user and IMAP connection)")
	fs.DurationVar(&f.wait, "wait", 100*time.Second, "how long to wait for every worker to reach IDLE")
	fs.DurationVar(&f.settle, "settle", 3*time.Second, "pause between the last worker reaching IDLE and the measurement")
	fs.DurationVar(&f.timeout, "timeout", 4*time.Minute+30*time.Second, "give up after this long")
	fs.BoolVar(&f.retry, "retry", true, "when not every worker reaches IDLE, run again (in a fresh process) with as many grants as did")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON instead of a report (used by -retry)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.grants < 1 {
		return errors.New("idle: -grants must be positive")
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
	limits := dovecotLimits(env.DovecotConf)
	t0 := time.Now()
	users, err := env.AddUsers("bench-idle", f.grants)
	if err != nil {
		return err
	}
	cl.add(func(context.Context) {
		t := time.Now()
		if err := env.RemoveUsers(users); err != nil {
			logf("cleanup: %v", err)
			return
		}
		logf("removed %d users in %s", len(users), time.Since(t).Round(time.Millisecond))
	})
	logf("added %d Dovecot users in one passwd-file edit (%s)", f.grants, time.Since(t0).Round(time.Millisecond))

	r, err := idleRun(ctx, env, pool, users, f)
	if err != nil {
		return err
	}
	if f.json {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	attempts := []idleResult{r}
	if r.Idle < r.Grants && f.retry && r.Idle > 0 && ctx.Err() == nil {
		// As many as made it, less a little headroom for whatever else
		// uses the server (other test runs), in a fresh process so that
		// the first attempt's memory does not blur the second's.
		cl.run() // the first attempt's users go first
		g := max(1, r.Idle*95/100)
		logf("only %d of %d reached IDLE; running again with %d grants in a fresh process", r.Idle, r.Grants, g)
		time.Sleep(3 * time.Second) // let Dovecot's processes of the first attempt exit
		r2, err := idleChild(ctx, g, f)
		if err != nil {
			return fmt.Errorf("second attempt: %w", err)
		}
		attempts = append(attempts, r2)
	}
	reportIdle(os.Stdout, f, limits, attempts)
	return nil
}

// idleChild runs `orchard-bench idle -json` with g grants and reads its
// result; its progress goes to our stderr.
func idleChild(ctx context.Context, g int, f idleFlags) (idleResult, error) {
	var r idleResult
	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	deadline, _ := ctx.Deadline()
	cmd := exec.CommandContext(ctx, exe, "idle", "-json", "-retry=false", "-grants", strconv.Itoa(g),
		"-wait", f.wait.String(), "-settle", f.settle.String(), "-timeout", (time.Until(deadline) - 10*time.Second).String())
	cmd.Stderr = os.Stderr
	// Interrupt rather than kill, so that the child removes its users.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return r, err
	}
	err = json.Unmarshal(out, &r)
	return r, err
}

// idleResult is one attempt (exported fields: it travels as JSON from a
// child process).
type idleResult struct {
	Grants, Idle  int
	RampUp        time.Duration
	States        map[string]int
	Errors        map[string]int
	Before, After memSample
	DovecotLog    []string
	DovecotProcs  map[string]int
	DovecotPss    int64
}

type memSample struct {
	HeapInuse, Sys, RSS int64
	Goroutines          int
}

func sampleMem() memSample {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{HeapInuse: int64(m.HeapInuse), Sys: int64(m.Sys), RSS: procKB("self", "status", "VmRSS:"),
		Goroutines: runtime.NumGoroutine()}
}

// procKB reads a "Key: N kB" line of /proc/<pid>/<file>, in bytes (0 when
// unreadable).
func procKB(pid, file, key string) int64 {
	f, err := os.Open("/proc/" + pid + "/" + file)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			if fs := strings.Fields(v); len(fs) > 0 {
				kb, _ := strconv.ParseInt(fs[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// dovecotProcs counts Dovecot's imap and imap-login processes and sums
// their proportional set size (shared pages split between processes).
func dovecotProcs() (map[string]int, int64) {
	counts := map[string]int{}
	var pss int64
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil {
			continue
		}
		switch name := strings.TrimSpace(string(comm)); name {
		case "imap", "imap-login":
			counts[name]++
			pss += procKB(filepath.Base(d), "smaps_rollup", "Pss:")
		}
	}
	return counts, pss
}

// portRE anonymizes the client port in error texts, so that equal errors
// group.
var portRE = regexp.MustCompile(`:\d+->`)

// sessionRE matches the user and session part of a Dovecot log line.
var sessionRE = regexp.MustCompile(`^([a-z-]+)\([^)]*\)(<[^>]*>)*:`)

func idleRun(ctx context.Context, env *testenv.Env, pool *x509.CertPool, users []testenv.User, f idleFlags) (idleResult, error) {
	var cl cleanups
	defer cl.run()
	r := idleResult{Grants: len(users), States: map[string]int{}, Errors: map[string]int{}}
	logPath := dovecotSetting(env.DovecotConf, "log_path")
	if logPath == "" {
		logPath = filepath.Join(env.Root, "dovecot", "dovecot.log")
	}
	logOffset := fileSize(logPath)

	dir, err := os.MkdirTemp("", "orchard-bench-idle-")
	if err != nil {
		return r, err
	}
	cl.add(func(context.Context) { _ = os.RemoveAll(dir) })
	st, err := sqlite.Open(ctx, filepath.Join(dir, "orchard.db"))
	if err != nil {
		return r, err
	}
	cl.add(func(context.Context) { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		return r, err
	}
	app := &store.Application{Name: "bench"}
	if err := st.CreateApplication(ctx, app); err != nil {
		return r, err
	}
	creds := map[string]provider.Credentials{}
	ids := make([]string, len(users))
	for i, u := range users {
		g := &store.Grant{ApplicationID: app.ID, Provider: "imap", Email: u.Email, Status: "valid", Credentials: []byte("x")}
		if err := st.CreateGrant(ctx, g); err != nil {
			return r, err
		}
		ids[i] = g.ID
		creds[g.ID] = provider.Credentials{IMAPAddr: env.IMAPAddr, IMAPUsername: u.Email, IMAPPassword: u.Password}
	}
	sup := syncer.New(syncer.Options{
		Store:       st,
		Dialer:      &imapx.Dialer{TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Timeout: 30 * time.Second},
		Credentials: func(g *store.Grant) (provider.Credentials, error) { return creds[g.ID], nil },
		Logger:      slog.New(slog.DiscardHandler),
		WindowDays:  90,
	})

	r.Before = sampleMem()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); _ = sup.Run(runCtx) }()
	cl.add(func(context.Context) { stop(); <-done })

	lastLog, lastChange, lastIdle := time.Now(), time.Now(), -1
	for {
		clear(r.States)
		clear(r.Errors)
		r.Idle = 0
		for _, id := range ids {
			s, ok := sup.Status(id)
			state := s.State
			if !ok {
				state = "not started"
			}
			r.States[state]++
			if state == "idle" {
				r.Idle++
			}
			if s.LastError != "" {
				r.Errors[portRE.ReplaceAllString(s.LastError, ":*->")]++
			}
		}
		if r.Idle != lastIdle {
			lastIdle, lastChange = r.Idle, time.Now()
		}
		if r.Idle == len(ids) {
			r.RampUp = time.Since(start)
			break
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			logf("%d grants: %v", len(ids), r.States)
		}
		// Give up at -wait, or earlier once nothing moved for 40 s while
		// some workers are failing (their retries back off for longer).
		stuck := time.Since(lastChange) > 40*time.Second && r.States["retrying"] > 0
		if time.Since(start) > f.wait || stuck || ctx.Err() != nil {
			r.RampUp = time.Since(start)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	logf("%d of %d workers idle after %s: %v", r.Idle, len(ids), r.RampUp.Round(time.Millisecond), r.States)
	time.Sleep(f.settle)
	r.After = sampleMem()
	r.DovecotProcs, r.DovecotPss = dovecotProcs()
	r.DovecotLog = dovecotLogSince(logPath, logOffset)
	return r, nil
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// dovecotLogSince returns the distinct warnings and errors Dovecot logged
// after offset, with their counts.
func dovecotLogSince(p string, offset int64) []string {
	fh, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer fh.Close()
	if _, err := fh.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	counts := map[string]int{}
	var order []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "Warning:") && !strings.Contains(line, "Error:") && !strings.Contains(line, "Fatal:") {
			continue
		}
		// "Nov 29 02:10:03 master: Warning: …": drop the timestamp.
		if f := strings.Fields(line); len(f) > 3 && strings.Count(f[2], ":") == 2 {
			line = strings.Join(f[3:], " ")
		}
		// "imap(user)<pid><session>: …" → "imap(…): …", so that equal
		// warnings of different sessions group.
		line = sessionRE.ReplaceAllString(line, "$1(…):")
		if len(line) > 220 {
			line = line[:220] + "…"
		}
		if counts[line] == 0 {
			order = append(order, line)
		}
		counts[line]++
	}
	out := make([]string, 0, len(order))
	for _, l := range order {
		out = append(out, fmt.Sprintf("%d× %s", counts[l], l))
	}
	return out
}

// dovecotSetting returns one setting of Dovecot's effective configuration
// ("" when doveconf fails).
func dovecotSetting(conf, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "doveconf", "-c", conf, "-h", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

type dovecotLimit struct{ name, value string }

// dovecotLimits reads the settings that bound concurrent IMAP connections
// from Dovecot's effective configuration.
func dovecotLimits(conf string) []dovecotLimit {
	keys := []string{"default_process_limit", "default_client_limit", "service/imap-login/service_count",
		"service/imap-login/process_limit", "service/imap-login/client_limit", "service/imap/process_limit",
		"service/imap/client_limit"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "doveconf", append([]string{"-c", conf}, keys...)...).Output()
	if err != nil {
		return []dovecotLimit{{"doveconf", "failed: " + err.Error()}}
	}
	var ls []dovecotLimit
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, " = "); ok {
			ls = append(ls, dovecotLimit{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return ls
}

func reportIdle(w io.Writer, f idleFlags, limits []dovecotLimit, attempts []idleResult) {
	header(w, "idle")
	fmt.Fprintf(w, "One Supervisor (poll interval 60 s, IDLE on INBOX) over a fresh SQLite store; each grant is its own Dovecot user "+
		"with an empty mailbox (6 folders), reached over IMAPS on loopback. Memory is read after runtime.GC and debug.FreeOSMemory, "+
		"in the same process before the Supervisor starts and %s after its last worker reported \"idle\"; each attempt is a fresh process.\n\n", f.settle)
	var rows [][]string
	for i, a := range attempts {
		g := float64(a.Grants)
		per := func(d int64) string { return kib(float64(d) / g) }
		label := fmt.Sprintf("attempt %d: %d grants", i+1, a.Grants)
		if a.Idle < a.Grants {
			label += fmt.Sprintf(" (**only %d reached IDLE**)", a.Idle)
		}
		rows = append(rows, []string{label, fmt.Sprint(a.Idle), secs(a.RampUp),
			mib(a.Before.RSS) + " → " + mib(a.After.RSS), per(a.After.RSS - a.Before.RSS),
			mib(a.Before.HeapInuse) + " → " + mib(a.After.HeapInuse), per(a.After.HeapInuse - a.Before.HeapInuse),
			mib(a.Before.Sys) + " → " + mib(a.After.Sys), per(a.After.Sys - a.Before.Sys),
			fmt.Sprintf("%d → %d", a.Before.Goroutines, a.After.Goroutines),
			fmt.Sprintf("%.2f", float64(a.After.Goroutines-a.Before.Goroutines)/g)})
	}
	table(w, []string{"run", "idle", "ramp-up", "VmRSS", "RSS / grant", "HeapInuse", "heap / grant", "Sys", "Sys / grant",
		"goroutines", "goroutines / grant"}, rows)
	if attempts[0].Idle < attempts[0].Grants {
		fmt.Fprintf(w, "Per-grant figures divide by all the grants of the run: where not every worker reached IDLE they mix "+
			"connected workers with workers still waiting for a greeting or backing off, so only a run in which all are idle measures idle grants.\n\n")
	}

	last := attempts[len(attempts)-1]
	if n := last.DovecotProcs["imap"]; n > 0 {
		fmt.Fprintf(w, "Dovecot's side at the last measurement (every client of the server, not only this run): %d imap and %d imap-login processes, "+
			"%s PSS in total, %s per IMAPS connection (one imap and one imap-login process each).\n\n",
			n, last.DovecotProcs["imap-login"], mib(last.DovecotPss), mib(last.DovecotPss/int64(n)))
	}

	fmt.Fprintf(w, "Dovecot limits in effect (`doveconf -c $ORCHARD_TEST_DOVECOT_CONF …`; a process_limit of 0 means default_process_limit):\n\n")
	rows = nil
	for _, l := range limits {
		rows = append(rows, []string{"`" + l.name + "`", l.value})
	}
	table(w, []string{"setting", "value"}, rows)

	for i, a := range attempts {
		if a.Idle == a.Grants && len(a.DovecotLog) == 0 {
			continue
		}
		fmt.Fprintf(w, "Attempt %d: worker states %v.\n\n", i+1, a.States)
		if len(a.Errors) > 0 {
			fmt.Fprintf(w, "Workers' last errors:\n\n")
			errs := make([]string, 0, len(a.Errors))
			for e := range a.Errors {
				errs = append(errs, e)
			}
			slices.SortFunc(errs, func(x, y string) int {
				if a.Errors[x] != a.Errors[y] {
					return a.Errors[y] - a.Errors[x]
				}
				return strings.Compare(x, y)
			})
			for _, e := range errs[:min(len(errs), 5)] {
				fmt.Fprintf(w, "- %d× `%s`\n", a.Errors[e], e)
			}
			fmt.Fprintln(w)
		}
		if len(a.DovecotLog) > 0 {
			fmt.Fprintf(w, "Dovecot's log during the attempt (warnings and errors):\n\n")
			for _, l := range a.DovecotLog[:min(len(a.DovecotLog), 8)] {
				fmt.Fprintf(w, "- `%s`\n", l)
			}
			fmt.Fprintln(w)
		}
	}
}
