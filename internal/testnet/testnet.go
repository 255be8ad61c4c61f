// Package testnet provides what tests of network clients need on loopback,
// whatever the protocol: a throwaway certificate authority, a server that
// never answers, an address nobody listens on, a context with a deadline,
// and a logger for in-process servers. Everything listens on 127.0.0.1.
package testnet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
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

// Silent starts a server that accepts connections and never sends a byte.
// With tlsDone, it completes the TLS handshake first and then stays silent
// (no protocol greeting).
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
	Serve(t, ln, func(c net.Conn) {
		defer c.Close()
		if cfg != nil {
			tc := tls.Server(c, cfg)
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				return
			}
		}
		<-done
	})
	t.Cleanup(func() { close(done) }) // runs before Serve's cleanup waits
	return ln.Addr().String()
}

// Serve accepts connections on ln until the test ends and calls handle for
// each in its own goroutine. The test's cleanup closes ln and waits for every
// handle to return: a cleanup that unblocks handlers must be registered after
// Serve, so that it runs first.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) {
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
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
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

// Context returns a context that expires after d and is cancelled when the
// test ends.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Logger logs a server's messages to the test, each after prefix, until
// Stop is called: the server's connection goroutines may outlive its Close,
// and logging after a test has ended panics. It serves go-imap's imapserver
// and go-smtp's server alike.
type Logger struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	done   bool
}

// NewLogger returns a Logger for t; call Stop in the cleanup that closes the
// server, before closing it.
func NewLogger(t testing.TB, prefix string) *Logger {
	return &Logger{t: t, prefix: prefix}
}

func (l *Logger) Printf(format string, args ...any) { l.log(fmt.Sprintf(format, args...)) }

func (l *Logger) Println(args ...any) { l.log(fmt.Sprintln(args...)) }

func (l *Logger) log(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(l.prefix, strings.TrimSuffix(msg, "\n"))
	}
}

// Stop ends logging; later messages are dropped.
func (l *Logger) Stop() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}
