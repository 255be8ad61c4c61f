// Package imapxtest provides in-process servers for tests of the IMAP and
// SMTP wrappers and of the connectors built on them: a throwaway certificate
// authority, go-imap's in-memory server over TLS, and a scripted fake IMAP
// server for replies that real servers rarely produce on demand (iCloud's
// quirks, BAD [UNAVAILABLE], silence). Everything listens on 127.0.0.1.
package imapxtest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// CA is a throwaway certificate authority.
type CA struct {
	Pool *x509.CertPool // trusts only this CA
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA creates a CA valid for one day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "orchard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Pool: pool, cert: cert, key: key}
}

// ServerConfig returns a server TLS config with a certificate for 127.0.0.1
// and localhost signed by the CA.
func (ca *CA) ServerConfig(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// ClientConfig returns a client TLS config trusting only the CA.
func (ca *CA) ClientConfig() *tls.Config { return &tls.Config{RootCAs: ca.Pool} }

// MemServer starts go-imap's in-memory server with implicit TLS and the
// given users (username -> password), and returns its address.
func MemServer(t testing.TB, ca *CA, users map[string]string) string {
	t.Helper()
	logger := &testLogger{t: t}
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
	t.Cleanup(func() { logger.stop(); _ = srv.Close() })
	return ln.Addr().String()
}

// testLogger logs to the test until stop is called: the server's connection
// goroutines may outlive Close, and logging after a test has ended panics.
type testLogger struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (l *testLogger) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf("imapserver: "+format, args...)
	}
}

func (l *testLogger) stop() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
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
func NewFake(t testing.TB, ca *CA, greeting string, handle Handler) *Fake {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	f := &Fake{Addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.serve(c, greeting, handle)
			}()
		}
	}()
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

// Silent starts a server that accepts connections and never sends a byte.
// With tlsDone, it completes the TLS handshake first and then stays silent
// (no IMAP greeting).
func Silent(t testing.TB, ca *CA, tlsDone bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var cfg *tls.Config
	if tlsDone {
		cfg = ca.ServerConfig(t)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(done); _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if cfg != nil {
					tc := tls.Server(c, cfg)
					_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
					if err := tc.Handshake(); err != nil {
						return
					}
				}
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// ClosedAddr returns a loopback address on which nothing listens.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	return addr
}
