// Package imapxtest provides in-process IMAP servers for tests of the IMAP
// wrapper and of the connectors built on it: go-imap's in-memory server over
// TLS, and a scripted fake server for replies that real servers rarely
// produce on demand (iCloud's quirks, BAD [UNAVAILABLE]). Certificates, silent
// servers and closed ports come from testnet. Everything listens on
// 127.0.0.1.
package imapxtest

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/orchard-mail/orchard/internal/testnet"
)

// MemServer starts go-imap's in-memory server with implicit TLS and the
// given users (username -> password), and returns its address.
func MemServer(t testing.TB, ca *testnet.CA, users map[string]string) string {
	t.Helper()
	logger := testnet.NewLogger(t, "imapserver:")
	mem := imapmemserver.New()
	for u, p := range users {
		user := imapmemserver.NewUser(u, p)
		if err := user.Create("INBOX", nil); err != nil {
			t.Fatal(err)
		}
		mem.AddUser(user)
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:   imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIdle: {}},
		Logger: logger,
	})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { logger.Stop(); _ = srv.Close() })
	return ln.Addr().String()
}

// Handler answers one command of a scripted session. It gets the tag, the
// command name in upper case and the rest of the line, and returns the
// complete reply lines (without CRLF). Returning nil closes the connection.
type Handler func(tag, cmd, args string) []string

// Fake is a scripted IMAP server with implicit TLS.
type Fake struct {
	Addr string

	mu    sync.Mutex
	lines []string // every command line received, in order
	conns int
}

// NewFake starts a scripted server that sends greeting (a full line without
// CRLF) and then answers each command with handle. LOGOUT is answered with a
// bare "* BYE" as iCloud does unless handle is given it.
func NewFake(t testing.TB, ca *testnet.CA, greeting string, handle Handler) *Fake {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	f := &Fake{Addr: ln.Addr().String()}
	testnet.Serve(t, ln, func(c net.Conn) {
		f.mu.Lock()
		f.conns++
		f.mu.Unlock()
		f.serve(c, greeting, handle)
	})
	return f
}

func (f *Fake) serve(c net.Conn, greeting string, handle Handler) {
	defer c.Close()
	// A test that forgets to close its client must not hang the cleanup.
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	w := bufio.NewWriter(c)
	send := func(lines []string) bool {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		return w.Flush() == nil
	}
	if !send([]string{greeting}) {
		return
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		f.mu.Lock()
		f.lines = append(f.lines, line)
		f.mu.Unlock()
		tag, rest, _ := strings.Cut(line, " ")
		cmd, args, _ := strings.Cut(rest, " ")
		cmd = strings.ToUpper(cmd)
		reply := handle(tag, cmd, args)
		if reply == nil && cmd == "LOGOUT" {
			reply = []string{"* BYE", tag + " OK LOGOUT completed"}
		}
		if reply == nil {
			return
		}
		if !send(reply) {
			return
		}
		if cmd == "LOGOUT" {
			return
		}
	}
}

// Lines returns the command lines received so far.
func (f *Fake) Lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

// Conns returns how many connections were accepted.
func (f *Fake) Conns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}
