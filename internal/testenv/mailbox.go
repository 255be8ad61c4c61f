package testenv

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// NewUser adds a user of the test's own to Dovecot and to Radicale, and
// removes it, with its mail and its calendars, when the test ends. Postfix
// delivers to it (up.sh accepts the t<12 hex>@example.test shape), it can log
// in to submit, and it can log in to Radicale at once (Radicale reads its
// htpasswd file on every login). Tests that watch a whole mailbox or
// calendar home use one so that nothing else changes it.
func (e *Env) NewUser(t testing.TB) User {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	tag := hex.EncodeToString(b[:])
	u := User{Email: "t" + tag + "@example.test", Password: tag[:4] + "-" + tag[4:8] + "-" + tag[8:] + "xx-test"}
	err := e.editDovecotUsers(func(lines [][]byte) [][]byte {
		if n := len(lines); n > 0 && len(lines[n-1]) == 0 {
			lines = lines[:n-1]
		}
		return append(lines, []byte(u.Email+":{PLAIN}"+u.Password+"::::::\n"))
	})
	if err != nil {
		t.Fatalf("testenv: adding user: %v", err)
	}
	t.Cleanup(func() {
		if err := e.removeRadicaleUser(u.Email); err != nil {
			t.Errorf("testenv: removing user %s from Radicale: %v", u.Email, err)
		}
		err := e.editDovecotUsers(func(lines [][]byte) [][]byte {
			out := lines[:0]
			for _, l := range lines {
				if !strings.HasPrefix(string(l), u.Email+":") {
					out = append(out, l)
				}
			}
			return out
		})
		if err != nil {
			t.Errorf("testenv: removing user %s: %v", u.Email, err)
		}
		_ = os.RemoveAll(e.maildirRoot(u.Email))
	})
	// After the cleanup is registered: a failure here still removes the
	// Dovecot user.
	if err := e.addRadicaleUser(u); err != nil {
		t.Fatalf("testenv: adding user to Radicale: %v", err)
	}
	return u
}

// IMAP returns a logged-in IMAP client for user, closed when the test ends;
// tests use it to change a mailbox the way another mail client would.
func (e *Env) IMAP(t testing.TB, u User) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(e.IMAPAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: e.CAPool(t)}})
	if err != nil {
		t.Fatalf("testenv: IMAP dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login(u.Email, u.Password).Wait(); err != nil {
		t.Fatalf("testenv: IMAP login as %s: %v", u.Email, err)
	}
	return c
}

// Append stores raw in folder (created if missing) with the given
// INTERNALDATE and flags, and returns its UID.
func (e *Env) Append(t testing.TB, c *imapclient.Client, folder string, raw []byte, received time.Time, flags ...imap.Flag) imap.UID {
	t.Helper()
	if folder != "INBOX" {
		_ = c.Create(folder, nil).Wait() // exists already: fine
	}
	cmd := c.Append(folder, int64(len(raw)), &imap.AppendOptions{Time: received, Flags: flags})
	if _, err := cmd.Write(raw); err != nil {
		t.Fatalf("testenv: APPEND to %s: %v", folder, err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("testenv: APPEND to %s: %v", folder, err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("testenv: APPEND to %s: %v", folder, err)
	}
	return data.UID
}

// SeedMessage is one message for SeedMaildir.
type SeedMessage struct {
	Raw      []byte
	Received time.Time // becomes the INTERNALDATE
	Seen     bool
}

// SeedMaildir writes messages straight into user's Maildir folder ("" or
// "INBOX" for the inbox), bypassing IMAP: thousands per second, for
// benchmarks. Dovecot reads each file's mtime as its INTERNALDATE the
// first time it sees it, so seed a folder before any client opens it.
func (e *Env) SeedMaildir(t testing.TB, u User, folder string, msgs []SeedMessage) {
	t.Helper()
	if err := e.WriteMaildir(u, folder, msgs); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// maildirRoot is where Dovecot keeps a user's mail (see up.sh:
// home=$ROOT/mail/%d/%n, mail_location maildir:~/Maildir).
func (e *Env) maildirRoot(email string) string {
	local, domain, _ := strings.Cut(email, "@")
	return filepath.Join(e.Root, "mail", domain, local, "Maildir")
}

// chownTree gives the mail to the vmail user Dovecot runs as (the test
// runs as root; Dovecot refuses root-owned mail dirs).
func chownTree(root string) error {
	vm, err := user.Lookup("vmail")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(vm.Uid)
	gid, _ := strconv.Atoi(vm.Gid)
	home := filepath.Dir(root)
	for d := home; d != filepath.Dir(filepath.Dir(home)); d = filepath.Dir(d) {
		_ = os.Chown(d, uid, gid)
	}
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
}
