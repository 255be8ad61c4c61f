package testenv

// Helpers without a testing.TB, for commands that drive the test
// environment outside `go test` (cmd/orchard-bench). They return errors
// instead of failing a test, and the caller cleans up.

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Load is Get for programs: it reads the ORCHARD_TEST_* variables and
// reports what is missing as an error.
func Load() (*Env, error) {
	if os.Getenv("ORCHARD_TEST_IMAP_ADDR") == "" {
		return nil, errors.New("test environment not running (ORCHARD_TEST_IMAP_ADDR is unset): start it with scripts/testenv/up.sh and load it with `. /tmp/orchard-testenv/env`")
	}
	var missing []string
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	}
	e := &Env{
		Root:             get("ORCHARD_TESTENV_ROOT"),
		CAFile:           get("ORCHARD_TEST_CA_FILE"),
		IMAPAddr:         get("ORCHARD_TEST_IMAP_ADDR"),
		IMAPStartTLSAddr: get("ORCHARD_TEST_IMAP_STARTTLS_ADDR"),
		SMTPAddr:         get("ORCHARD_TEST_SMTP_ADDR"),
		SMTPInjectAddr:   get("ORCHARD_TEST_SMTP_INJECT_ADDR"),
		CalDAVURL:        get("ORCHARD_TEST_CALDAV_URL"),
		PostgresURL:      os.Getenv("ORCHARD_TEST_POSTGRES_URL"), // optional for programs
		DovecotConf:      get("ORCHARD_TEST_DOVECOT_CONF"),
		DovecotUsers:     get("ORCHARD_TEST_DOVECOT_USERS"),
		RadicaleUsers:    get("ORCHARD_TEST_RADICALE_USERS"),
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("testenv: ORCHARD_TEST_IMAP_ADDR is set but these are not: %s (source $ROOT/env again)", strings.Join(missing, ", "))
	}
	return e, nil
}

// RootCAs returns a pool holding only the test CA.
func (e *Env) RootCAs() (*x509.CertPool, error) {
	pem, err := os.ReadFile(e.CAFile)
	if err != nil {
		return nil, fmt.Errorf("testenv: reading CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("testenv: no certificate found in %s", e.CAFile)
	}
	return pool, nil
}

// AddUsers adds n Dovecot users named <prefix>-<random tag>-<i>@example.test
// in one edit of the passwd-file (so one wait for Dovecot's once-per-second
// reread, however many users). Remove them with RemoveUsers.
func (e *Env) AddUsers(prefix string, n int) ([]User, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	tag := hex.EncodeToString(b[:])
	users := make([]User, n)
	var add []byte
	for i := range users {
		var p [6]byte
		_, _ = rand.Read(p[:])
		ph := hex.EncodeToString(p[:])
		users[i] = User{
			Email:    fmt.Sprintf("%s-%s-%d@example.test", prefix, tag, i),
			Password: ph[:4] + "-" + ph[4:8] + "-" + ph[8:] + "xx-bench",
		}
		add = append(add, users[i].Email+":{PLAIN}"+users[i].Password+"::::::\n"...)
	}
	err := e.editDovecotUsers(func(lines [][]byte) [][]byte {
		if k := len(lines); k > 0 && len(lines[k-1]) == 0 {
			lines = lines[:k-1]
		}
		return append(lines, add)
	})
	if err != nil {
		return nil, fmt.Errorf("testenv: adding %d users: %w", n, err)
	}
	return users, nil
}

// RemoveUsers removes users from the passwd-file in one edit and deletes
// their mail (the whole home directory).
func (e *Env) RemoveUsers(users []User) error {
	if len(users) == 0 {
		return nil
	}
	gone := make(map[string]bool, len(users))
	for _, u := range users {
		gone[u.Email] = true
	}
	err := e.editDovecotUsers(func(lines [][]byte) [][]byte {
		out := lines[:0]
		for _, l := range lines {
			if email, _, ok := strings.Cut(string(l), ":"); ok && gone[email] {
				continue
			}
			out = append(out, l)
		}
		return out
	})
	for _, u := range users {
		if rerr := os.RemoveAll(filepath.Dir(e.maildirRoot(u.Email))); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("testenv: removing %d users: %w", len(users), err)
	}
	return nil
}

// WriteMaildir is SeedMaildir for programs: it writes msgs straight into
// u's Maildir folder ("" or "INBOX" for the inbox) with each file's mtime
// as its INTERNALDATE, and hands the tree to the vmail user.
func (e *Env) WriteMaildir(u User, folder string, msgs []SeedMessage) error {
	dir := e.maildirRoot(u.Email)
	if folder != "" && folder != "INBOX" {
		dir = filepath.Join(dir, filepath.FromSlash(folder))
	}
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	pid := os.Getpid()
	for i, m := range msgs {
		info := ":2,"
		if m.Seen {
			info += "S"
		}
		name := fmt.Sprintf("%d.M%dP%d.seed,S=%d%s", m.Received.Unix(), i, pid, len(m.Raw), info)
		p := filepath.Join(dir, "cur", name)
		if err := os.WriteFile(p, m.Raw, 0o600); err != nil {
			return err
		}
		if err := os.Chtimes(p, m.Received, m.Received); err != nil {
			return err
		}
	}
	return chownTree(e.maildirRoot(u.Email))
}

// CreatePostgresDB creates an empty database on the server of admin (a
// PostgreSQL URL; "" means ORCHARD_TEST_POSTGRES_URL) and returns its URL
// and a function that drops it.
func (e *Env) CreatePostgresDB(ctx context.Context, admin string) (string, func(context.Context) error, error) {
	if admin == "" {
		admin = e.PostgresURL
	}
	if admin == "" {
		return "", nil, errors.New("testenv: no PostgreSQL URL (ORCHARD_TEST_POSTGRES_URL is unset)")
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("testenv: PostgreSQL URL: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "orchard_bench_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("testenv: connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("testenv: create database: %w", err)
	}
	drop := func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}
