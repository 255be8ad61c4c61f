package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/orchard-mail/orchard/internal/testenv"
)

// These tests run the real binary as a user would: built once, started
// as a process, stopped with SIGTERM.

var buildOnce struct {
	sync.Once
	path string
	err  error
}

func orchardBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "orchard-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "orchard")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// baseEnv is a minimal environment: no ORCHARD_* leaks in from the caller.
func baseEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	return append(env, extra...)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	bin := orchardBinary(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "orchard ") {
		t.Fatalf("version: %q %v", out, err)
	}
	cmd := exec.Command(bin, "frobnicate")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), "unknown command") {
		t.Fatalf("unknown command: %v %q", err, stderr.String())
	}
}

// A bad configuration stops start-up with one message naming every problem.
func TestBadConfigStopsStartup(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(orchardBinary(t), "serve")
	cmd.Env = baseEnv("ORCHARD_LISTEN=nope", "ORCHARD_SYNC_WINDOW_DAYS=many", "ORCHARD_SECRET_KEY=short",
		"ORCHARD_DATA_DIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	msg := stderr.String()
	for _, v := range []string{"ORCHARD_LISTEN", "ORCHARD_SYNC_WINDOW_DAYS", "ORCHARD_SECRET_KEY"} {
		if !strings.Contains(msg, v) {
			t.Errorf("message does not name %s: %q", v, msg)
		}
	}
	if n := strings.Count(msg, "invalid configuration"); n != 1 {
		t.Errorf("want one message, got %d: %q", n, msg)
	}
}

func TestAppCreateJSON(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(orchardBinary(t), "app", "create", "--name", "Acme", "--json")
	cmd.Env = baseEnv("ORCHARD_DATA_DIR=" + t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(out), "\n") != 1 {
		t.Fatalf("stdout is not one line: %q", out)
	}
	var v map[string]string
	if err := json.Unmarshal(out, &v); err != nil || v["application_id"] == "" || !strings.HasPrefix(v["api_key"], "ork_") || len(v) != 2 {
		t.Fatalf("stdout %q: %v", out, err)
	}
	cmd = exec.Command(orchardBinary(t), "app", "create")
	cmd.Env = baseEnv("ORCHARD_DATA_DIR=" + t.TempDir())
	if err := cmd.Run(); err == nil {
		t.Fatal("app create without --name succeeded")
	}
}

// server is one running `orchard serve` process.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	stdout *syncBuffer // written by a copying goroutine while the test reads it
	logs   *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	addr := freeAddr(t)
	s := &server{t: t, url: "http://" + addr, stdout: &syncBuffer{}, logs: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(orchardBinary(t), "serve")
	s.cmd.Env = baseEnv(append([]string{"ORCHARD_LISTEN=" + addr, "ORCHARD_PROVIDER_TIMEOUT=5s"}, env...)...)
	stdout, _ := s.cmd.StdoutPipe()
	s.cmd.Stderr = s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() { io.Copy(s.stdout, bufio.NewReader(stdout)); close(copied) }()
	go func() { <-copied; s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v\n%s", err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// stop sends SIGTERM and expects a clean exit.
func (s *server) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Fatalf("exit after SIGTERM: %v\n%s", err, s.logs.String())
		}
	case <-time.After(15 * time.Second):
		s.t.Fatalf("no exit 15 s after SIGTERM\n%s", s.logs.String())
	}
	if !strings.Contains(s.logs.String(), "stopped") {
		s.t.Errorf("log does not show a clean stop:\n%s", s.logs.String())
	}
}

func (s *server) call(method, path, key, body string) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &v); err != nil {
		s.t.Fatalf("%s %s: not JSON: %q", method, path, raw)
	}
	return resp.StatusCode, v
}

var defaultKeyRe = regexp.MustCompile(`API key:\s+(ork_\S+)`)

// TestServeLifecycle is the quick start against the real test servers: an
// empty data dir gets a default application; iCloud custom auth checks
// credentials against Dovecot and Postfix; a restart keeps everything and
// prints no new key; SIGTERM exits cleanly; no password reaches the log.
func TestServeLifecycle(t *testing.T) {
	env := testenv.Get(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			dataDir := t.TempDir()
			vars := []string{"ORCHARD_DATA_DIR=" + dataDir, "ORCHARD_CA_FILE=" + env.CAFile,
				"ORCHARD_ICLOUD_IMAP_ADDR=" + env.IMAPAddr, "ORCHARD_ICLOUD_SMTP_ADDR=" + env.SMTPAddr}
			if dialect == "postgres" {
				vars = append(vars, "ORCHARD_DATABASE_URL="+env.FreshPostgresDB(t))
			}
			s := startServer(t, vars...)
			m := defaultKeyRe.FindStringSubmatch(s.stdout.String())
			if m == nil {
				time.Sleep(200 * time.Millisecond)
				m = defaultKeyRe.FindStringSubmatch(s.stdout.String())
			}
			if m == nil {
				t.Fatalf("no default application printed: %q", s.stdout.String())
			}
			key := m[1]
			if st, _ := s.call("GET", "/readyz", "", ""); st != 200 {
				t.Fatalf("readyz %d", st)
			}
			if st, _ := s.call("POST", "/v3/connectors", key, `{"provider":"icloud"}`); st != 201 {
				t.Fatalf("connector: %d", st)
			}
			alice := env.User(t, 0)
			good := fmt.Sprintf(`{"provider":"icloud","settings":{"username":%q,"password":%q}}`, alice.Email, alice.Password)
			st, v := s.call("POST", "/v3/connect/custom", key, good)
			if st != 201 {
				t.Fatalf("custom auth: %d %v", st, v)
			}
			grantID := v["data"].(map[string]any)["id"].(string)
			wrong := "wxyz-wxyz-wxyz-wxyz"
			st, v = s.call("POST", "/v3/connect/custom", key,
				fmt.Sprintf(`{"provider":"icloud","settings":{"username":%q,"password":%q}}`, alice.Email, wrong))
			if st != 401 || !strings.Contains(fmt.Sprint(v), "app-specific password") {
				t.Fatalf("wrong password: %d %v", st, v)
			}
			s.stop()

			// Restart: same data, no new default application.
			s2 := startServer(t, vars...)
			if strings.Contains(s2.stdout.String(), "API key") {
				t.Fatalf("restart printed a new key: %q", s2.stdout.String())
			}
			st, v = s2.call("GET", "/v3/grants/"+alice.Email, key, "")
			if st != 200 || v["data"].(map[string]any)["id"] != grantID {
				t.Fatalf("grant after restart: %d %v", st, v)
			}
			s2.stop()

			logs := s.logs.String() + s2.logs.String()
			for _, secret := range []string{alice.Password, wrong, key} {
				if strings.Contains(logs, secret) {
					t.Fatalf("log contains a secret %q:\n%s", secret, logs)
				}
			}
			if dialect == "sqlite" {
				info, err := os.Stat(filepath.Join(dataDir, "secret.key"))
				if err != nil || info.Mode().Perm() != 0o600 {
					t.Fatalf("secret.key: %v %v", info, err)
				}
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := 0; i < 2; i++ { // the second run finds nothing to do
		cmd := exec.Command(orchardBinary(t), "migrate")
		cmd.Env = baseEnv("ORCHARD_DATA_DIR=" + dir)
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "migrations applied") {
			t.Fatalf("migrate run %d: %q %v", i+1, out, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "orchard.db")); err != nil {
		t.Fatalf("no database file after migrate: %v", err)
	}
}

// TestMessageUpdateOnServer: PUT /messages/{id} changes the flags on the
// IMAP server itself, and the next read agrees.
func TestMessageUpdateOnServer(t *testing.T) {
	env := testenv.Get(t)
	u := env.NewUser(t)
	c := env.IMAP(t, u)
	env.Append(t, c, "INBOX", []byte("From: a@example.org\r\nTo: "+u.Email+"\r\nSubject: flag me\r\nMessage-ID: <flag-me@x>\r\n\r\nhi\r\n"), time.Now())
	s := startServer(t, "ORCHARD_DATA_DIR="+t.TempDir(), "ORCHARD_CA_FILE="+env.CAFile,
		"ORCHARD_ICLOUD_IMAP_ADDR="+env.IMAPAddr, "ORCHARD_ICLOUD_SMTP_ADDR="+env.SMTPAddr, "ORCHARD_SYNC_POLL_INTERVAL=1s")
	time.Sleep(200 * time.Millisecond)
	m := defaultKeyRe.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("no key printed: %q", s.stdout.String())
	}
	key := m[1]
	if st, _ := s.call("POST", "/v3/connectors", key, `{"provider":"icloud"}`); st != 201 {
		t.Fatal("connector")
	}
	st, v := s.call("POST", "/v3/connect/custom", key, fmt.Sprintf(`{"provider":"icloud","settings":{"username":%q,"password":%q}}`, u.Email, u.Password))
	if st != 201 {
		t.Fatalf("custom auth: %d %v", st, v)
	}
	grant := v["data"].(map[string]any)["id"].(string)
	var id string
	deadline := time.Now().Add(30 * time.Second)
	for id == "" {
		_, v = s.call("GET", "/v3/grants/"+grant+"/messages", key, "")
		if l, _ := v["data"].([]any); len(l) == 1 {
			id = l[0].(map[string]any)["id"].(string)
		} else if time.Now().After(deadline) {
			t.Fatalf("message never synced: %v", v)
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	st, v = s.call("PUT", "/v3/grants/"+grant+"/messages/"+id, key, `{"unread":false,"starred":true}`)
	if d, _ := v["data"].(map[string]any); st != 200 || d["unread"] != false || d["starred"] != true {
		t.Fatalf("PUT: %d %v", st, v)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch flags: %v", err)
	}
	if !slices.Contains(msgs[0].Flags, imap.FlagSeen) || !slices.Contains(msgs[0].Flags, imap.FlagFlagged) {
		t.Fatalf("flags on the server: %v", msgs[0].Flags)
	}
	_, v = s.call("GET", "/v3/grants/"+grant+"/messages/"+id, key, "")
	if d := v["data"].(map[string]any); d["unread"] != false || d["starred"] != true {
		t.Fatalf("GET after PUT: %v", v)
	}

	// Move to Archive, then delete (to Trash), then delete for good: each
	// checked on the server.
	count := func(folder string) uint32 {
		t.Helper()
		st, err := c.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return *st.NumMessages
	}
	_, v = s.call("GET", "/v3/grants/"+grant+"/folders/Archive", key, "")
	archive := v["data"].(map[string]any)["id"].(string)
	st, v = s.call("PUT", "/v3/grants/"+grant+"/messages/"+id, key, `{"folders":["`+archive+`"]}`)
	if d, _ := v["data"].(map[string]any); st != 200 || d["id"] != id || fmt.Sprint(d["folders"]) != "["+archive+"]" {
		t.Fatalf("move: %d %v", st, v)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if count("INBOX") != 0 || count("Archive") != 1 {
		t.Fatalf("after move: INBOX %d, Archive %d", count("INBOX"), count("Archive"))
	}
	if st, _ = s.call("DELETE", "/v3/grants/"+grant+"/messages/"+id, key, ""); st != 200 {
		t.Fatalf("delete: %d", st)
	}
	if count("Archive") != 0 || count("Deleted Messages") != 1 {
		t.Fatalf("after delete: Archive %d, Trash %d", count("Archive"), count("Deleted Messages"))
	}
	if st, _ = s.call("DELETE", "/v3/grants/"+grant+"/messages/"+id, key, ""); st != 200 {
		t.Fatalf("delete from Trash: %d", st)
	}
	if count("Deleted Messages") != 0 {
		t.Fatal("message still in Trash on the server")
	}
	if st, _ = s.call("GET", "/v3/grants/"+grant+"/messages/"+id, key, ""); st != 404 {
		t.Fatalf("GET after final delete: %d", st)
	}

	// Folders: create, rename, delete — each seen in the server's LIST.
	listed := func(name string) bool {
		t.Helper()
		boxes, err := c.List("", "*", nil).Collect()
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(boxes, func(b *imap.ListData) bool { return b.Mailbox == name })
	}
	st, v = s.call("POST", "/v3/grants/"+grant+"/folders", key, `{"name":"Projects"}`)
	if st != 200 || !listed("Projects") {
		t.Fatalf("create folder: %d %v", st, v)
	}
	fid := v["data"].(map[string]any)["id"].(string)
	st, v = s.call("PUT", "/v3/grants/"+grant+"/folders/"+fid, key, `{"name":"Work"}`)
	if st != 200 || v["data"].(map[string]any)["id"] != fid || !listed("Work") || listed("Projects") {
		t.Fatalf("rename folder: %d %v", st, v)
	}
	if st, _ = s.call("DELETE", "/v3/grants/"+grant+"/folders/"+fid, key, ""); st != 200 || listed("Work") {
		t.Fatalf("delete folder: %d", st)
	}
	s.stop()
}
