// Package testenv gives tests access to the real servers started by
// scripts/testenv/up.sh: Dovecot (IMAP), Postfix (SMTP submission and
// injection), Radicale (CalDAV) and PostgreSQL, all on loopback, with TLS
// certificates from a throwaway test CA.
//
// Start the environment and load its variables before running tests:
//
//	sudo scripts/testenv/up.sh            # prints /tmp/orchard-testenv/env
//	. /tmp/orchard-testenv/env
//	go test ./...
//
// Without the variables, Get skips the test, unless ORCHARD_TESTENV_REQUIRED=1
// (as in CI), in which case it fails.
package testenv

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Env describes a running test environment. Fields hold the values of the
// ORCHARD_TEST_* variables written by up.sh into $ROOT/env.
type Env struct {
	Root             string // ORCHARD_TESTENV_ROOT
	CAFile           string // ORCHARD_TEST_CA_FILE: PEM of the test CA that signed every server certificate
	IMAPAddr         string // ORCHARD_TEST_IMAP_ADDR: IMAPS (implicit TLS)
	IMAPStartTLSAddr string // ORCHARD_TEST_IMAP_STARTTLS_ADDR: IMAP + STARTTLS
	SMTPAddr         string // ORCHARD_TEST_SMTP_ADDR: submission, STARTTLS required, AUTH PLAIN/LOGIN
	SMTPInjectAddr   string // ORCHARD_TEST_SMTP_INJECT_ADDR: plain SMTP without auth, for injecting mail
	CalDAVURL        string // ORCHARD_TEST_CALDAV_URL
	PostgresURL      string // ORCHARD_TEST_POSTGRES_URL
	DovecotConf      string // ORCHARD_TEST_DOVECOT_CONF: for doveadm -c
	DovecotUsers     string // ORCHARD_TEST_DOVECOT_USERS: Dovecot passwd-file
	RadicaleUsers    string // ORCHARD_TEST_RADICALE_USERS: Radicale htpasswd (plain)
	Users            []User // ORCHARD_TEST_USERS
}

// User is a mailbox account, the same in Dovecot, Postfix and Radicale.
type User struct {
	Email    string
	Password string
}

// Get returns the environment described by the ORCHARD_TEST_* variables.
// When ORCHARD_TEST_IMAP_ADDR is unset it skips the test, or fails it if
// ORCHARD_TESTENV_REQUIRED=1.
func Get(t testing.TB) *Env {
	t.Helper()
	if os.Getenv("ORCHARD_TEST_IMAP_ADDR") == "" {
		notRunning(t, "ORCHARD_TEST_IMAP_ADDR is unset")
	}
	e, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if e.PostgresURL == "" {
		t.Fatal("testenv: ORCHARD_TEST_POSTGRES_URL is unset (source $ROOT/env again)")
	}
	for _, f := range strings.Fields(os.Getenv("ORCHARD_TEST_USERS")) {
		email, pass, ok := strings.Cut(f, ":")
		if !ok || email == "" || pass == "" {
			t.Fatalf("testenv: bad entry %q in ORCHARD_TEST_USERS (want email:password)", f)
		}
		e.Users = append(e.Users, User{Email: email, Password: pass})
	}
	if len(e.Users) == 0 {
		t.Fatal("testenv: ORCHARD_TEST_USERS is unset (source $ROOT/env again)")
	}
	return e
}

// notRunning skips the test, or fails it when ORCHARD_TESTENV_REQUIRED=1
// (CI), because the test environment's variables are missing.
func notRunning(t testing.TB, why string) {
	t.Helper()
	msg := "test environment not running (" + why + "): start it with scripts/testenv/up.sh and load it with `. $ROOT/env` (default ROOT /tmp/orchard-testenv)"
	if os.Getenv("ORCHARD_TESTENV_REQUIRED") == "1" {
		t.Fatal(msg + " (ORCHARD_TESTENV_REQUIRED=1)")
	}
	t.Skip(msg)
}

// User returns the i-th test user (0: alice, 1: bob, 2: carol).
func (e *Env) User(t testing.TB, i int) User {
	t.Helper()
	if i < 0 || i >= len(e.Users) {
		t.Fatalf("testenv: user %d requested, only %d users in ORCHARD_TEST_USERS", i, len(e.Users))
	}
	return e.Users[i]
}

// CAPool returns a pool holding only the test CA, for tls.Config.RootCAs.
func (e *Env) CAPool(t testing.TB) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(e.CAFile)
	if err != nil {
		t.Fatalf("testenv: reading CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("testenv: no certificate found in %s", e.CAFile)
	}
	return pool
}

// SetDovecotPassword changes email's password in Dovecot's passwd-file and
// restores the previous one when the test ends. Both take effect for the next
// login (IMAP and SMTP AUTH alike): Dovecot looks at the file at most once per
// wall-clock second, so each change waits for the next second to begin (up to
// 1 s). Radicale's users are not touched.
//
// Other tests (also in other packages, which run as separate processes) that
// log in as the same user at the same time will see the new password: give
// such tests a user of their own or do not run them in parallel.
func (e *Env) SetDovecotPassword(t testing.TB, email, newPassword string) {
	t.Helper()
	if strings.ContainsAny(newPassword, ":\n") {
		t.Fatalf("testenv: password %q may not contain ':' or a newline", newPassword)
	}
	old, err := e.replaceDovecotPassword(email, newPassword)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if _, err := e.replaceDovecotPassword(email, old); err != nil {
			t.Errorf("testenv: restoring the password of %s: %v", email, err)
		}
	})
}

// replaceDovecotPassword sets email's password field ({PLAIN}pass) and returns
// the previous password.
func (e *Env) replaceDovecotPassword(email, password string) (string, error) {
	old, found := "", false
	err := e.editDovecotUsers(func(lines [][]byte) [][]byte {
		for i, line := range lines {
			user, rest, ok := strings.Cut(string(line), ":")
			if !ok || user != email {
				continue
			}
			pass, tail, _ := strings.Cut(rest, ":")
			old, found = strings.TrimPrefix(pass, "{PLAIN}"), true
			lines[i] = []byte(user + ":{PLAIN}" + password + ":" + tail)
		}
		return lines
	})
	if err == nil && !found {
		err = fmt.Errorf("user %s not found in %s", email, e.DovecotUsers)
	}
	return old, err
}

// editDovecotUsers rewrites Dovecot's passwd-file through edit (see
// editUsersFile) and returns once Dovecot is certain to see the change.
func (e *Env) editDovecotUsers(edit func(lines [][]byte) [][]byte) error {
	// Dovecot notices a change by mtime (whole seconds) and size. Passwords of
	// the same length rewritten within one second would go unnoticed, so the
	// mtime moves by at least one second each time.
	if err := editUsersFile(e.DovecotUsers, edit, true); err != nil {
		return err
	}
	// Dovecot stats the file at most once per second of its clock (and not
	// again within the second of its last look), so a change is certain to be
	// seen only from the next second on.
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond).Sub(now))
	return nil
}

// editUsersFile rewrites a users file (Dovecot's passwd-file, Radicale's
// htpasswd) through edit, which gets and returns its lines (each with its
// newline). An flock on a sibling lock file serializes writers across test
// processes; the file is replaced atomically, by rename, so that a login
// reading it meanwhile never sees half of it. bumpMtime makes the new
// file's mtime at least one second later than the old one's.
func editUsersFile(path string, edit func(lines [][]byte) [][]byte, bumpMtime bool) error {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := edit(bytes.SplitAfter(data, []byte("\n")))

	tmp, err := os.CreateTemp(filepath.Dir(path), ".users-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(bytes.Join(lines, nil)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if bumpMtime {
		mtime := time.Now().Truncate(time.Second)
		if prev := st.ModTime().Truncate(time.Second); !mtime.After(prev) {
			mtime = prev.Add(time.Second)
		}
		if err := os.Chtimes(tmp.Name(), mtime, mtime); err != nil {
			return err
		}
	}
	return os.Rename(tmp.Name(), path)
}

// Deliver injects msg over plain SMTP (no TLS, no auth) into Postfix at
// SMTPInjectAddr. Postfix delivers asynchronously (by LMTP to Dovecot, usually
// within tens of milliseconds); recipients outside example.test end up in the
// sink@example.test mailbox.
func (e *Env) Deliver(t testing.TB, from string, to []string, msg []byte) {
	t.Helper()
	if err := e.deliver(from, to, msg); err != nil {
		t.Fatalf("testenv: delivering to %v: %v", to, err)
	}
}

func (e *Env) deliver(from string, to []string, msg []byte) error {
	c, err := smtp.Dial(e.SMTPInjectAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
