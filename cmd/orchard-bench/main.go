// Command orchard-bench measures Orchard against the loopback test
// environment (scripts/testenv/up.sh) and prints Markdown tables. Every
// figure comes with a baseline measured in the same run, because these
// machines are noisy: compare the ratios, not the absolute numbers.
//
//	orchard-bench sync [-n 10000] [-db sqlite|postgres[://…]] [-cpuprofile FILE]
//	orchard-bench list [-n 100000] [-r 2000]
//	orchard-bench idle [-grants 1000]
//	orchard-bench send [-n 200] [-size 20000]
//	orchard-bench webhook [-grants 20] [-n 200] [-folder-n 20]
//
// See README.md next to this file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "sync":
		err = runSync(ctx, args)
	case "list":
		err = runList(ctx, args)
	case "idle":
		err = runIdle(ctx, args)
	case "send":
		err = runSend(ctx, args)
	case "webhook":
		err = runWebhook(ctx, args)
	case "-h", "-help", "--help", "help":
		usage(os.Stdout)
		return
	default:
		fmt.Fprintf(os.Stderr, "orchard-bench: unknown command %q\n", cmd)
		usage(os.Stderr)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "orchard-bench:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: orchard-bench <command> [flags]

commands (each prints a Markdown report; -h after a command lists its flags):
  sync   initial IMAP sync of a seeded mailbox vs a raw UID FETCH of it
  list   GET /v3/grants/{id}/messages latency on a large store vs GET /healthz
  idle   memory per grant with many grants connected and IDLEing
  send   POST /v3/grants/{id}/messages/send latency vs a raw SMTP submission
  webhook  delivery-to-webhook latency of new mail vs Dovecot's own IDLE notice

The test environment must be running and loaded: . /tmp/orchard-testenv/env
`)
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("orchard-bench "+name, flag.ContinueOnError)
	return fs
}

// logf reports progress on stderr, so that stdout is only the report.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// cleanups runs registered functions in reverse order, also when the run
// fails or is interrupted (the context given to them is a fresh one).
type cleanups struct{ fns []func(context.Context) }

func (c *cleanups) add(f func(context.Context)) { c.fns = append(c.fns, f) }

func (c *cleanups) run() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, f := range slices.Backward(c.fns) {
		f(ctx)
	}
	c.fns = nil
}

// header prints the report's title, the exact command and the machine.
func header(w io.Writer, title string) {
	fmt.Fprintf(w, "## orchard-bench %s\n\n", title)
	fmt.Fprintf(w, "Command: `%s`\n\n", commandLine())
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
				if len(rev) > 12 {
					rev = rev[:12]
				}
			}
			if s.Key == "vcs.modified" && s.Value == "true" {
				rev += "+dirty"
			}
		}
	}
	if rev == "unknown" {
		rev = gitRevision()
	}
	host, _ := os.Hostname()
	fmt.Fprintf(w, "Run %s on %s: %s, %s/%s, %d CPUs (GOMAXPROCS %d), revision %s; load average at the start %s, at the end %s.\n\n",
		startedAt.UTC().Format("2006-01-02 15:04 UTC"), host, runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.GOMAXPROCS(0), rev, startLoad, loadAvg())
}

// gitRevision describes the working tree the command runs in, for
// binaries built without VCS stamping: "abc123 + 3 modified files".
func gitRevision() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		if n := len(strings.Fields(strings.ReplaceAll(string(st), " ", "_"))); n > 0 {
			rev += fmt.Sprintf(" + %d modified files (working tree)", n)
		}
	}
	return rev
}

var (
	startedAt = time.Now()
	startLoad = loadAvg()
)

// loadAvg is the 1-minute load average: how busy the machine was (other
// processes compete with the benchmark for the CPUs).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

func commandLine() string {
	args := make([]string, 0, len(os.Args))
	args = append(args, "orchard-bench")
	for _, a := range os.Args[1:] {
		if a == "" || strings.ContainsAny(a, " \t'\"$&|;<>*?()[]{}\\`") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

// table prints a Markdown table.
func table(w io.Writer, head []string, rows [][]string) {
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---"
		if i > 0 {
			sep[i] = "---:"
		}
	}
	fmt.Fprintln(w, "| "+strings.Join(sep, " | ")+" |")
	for _, r := range rows {
		fmt.Fprintln(w, "| "+strings.Join(r, " | ")+" |")
	}
	fmt.Fprintln(w)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// median of a copy of ds.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// percentile by nearest rank of sorted ds.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
