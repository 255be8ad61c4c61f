package testenv

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIMAPGreeting(t *testing.T) {
	e := Get(t)
	conn, err := tls.Dial("tcp", e.IMAPAddr, &tls.Config{RootCAs: e.CAPool(t), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS dial %s: %v", e.IMAPAddr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reading greeting: %v", err)
	}
	if !strings.HasPrefix(line, "* OK") {
		t.Fatalf("greeting = %q, want * OK ...", line)
	}
}

// authOK runs doveadm auth test, which exits non-zero when the login fails.
func authOK(t *testing.T, e *Env, email, password string) bool {
	t.Helper()
	out, err := exec.Command("doveadm", "-c", e.DovecotConf, "auth", "test", email, password).CombinedOutput()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatalf("doveadm: %v", err)
	}
	t.Logf("doveadm auth test %s: %s", email, strings.TrimSpace(string(out)))
	return err == nil
}

func TestSetDovecotPassword(t *testing.T) {
	e := Get(t)
	if _, err := exec.LookPath("doveadm"); err != nil {
		t.Skip("doveadm not on PATH")
	}
	u := e.User(t, 2)
	newPass := "test-pass-word-" + fmt.Sprint(time.Now().UnixNano()%10000)

	t.Run("changed", func(t *testing.T) {
		e.SetDovecotPassword(t, u.Email, newPass)
		if !authOK(t, e, u.Email, newPass) {
			t.Error("new password rejected")
		}
		if authOK(t, e, u.Email, u.Password) {
			t.Error("old password still accepted")
		}
	})
	// The subtest's cleanup has restored the original password.
	if !authOK(t, e, u.Email, u.Password) {
		t.Error("original password not restored")
	}
	if authOK(t, e, u.Email, newPass) {
		t.Error("temporary password still accepted after cleanup")
	}
}

func TestDeliver(t *testing.T) {
	e := Get(t)
	bob := e.User(t, 1)
	id := fmt.Sprintf("testenv-%d@example.test", time.Now().UnixNano())
	msg := "From: Alice <" + e.User(t, 0).Email + ">\r\nTo: Bob <" + bob.Email + ">\r\n" +
		"Subject: testenv deliver\r\nMessage-ID: <" + id + ">\r\n\r\nhello\r\n"
	e.Deliver(t, e.User(t, 0).Email, []string{bob.Email}, []byte(msg))

	// Look for the message in bob's Maildir (layout from up.sh: mail/DOMAIN/USER/Maildir).
	local, domain, _ := strings.Cut(bob.Email, "@")
	maildir := filepath.Join(e.Root, "mail", domain, local, "Maildir")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, sub := range []string{"new", "cur"} {
			files, _ := filepath.Glob(filepath.Join(maildir, sub, "*"))
			for _, f := range files {
				if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), id) {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("message %s not delivered to %s within 10 s", id, maildir)
}
