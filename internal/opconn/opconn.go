// Package opconn bounds the I/O of a protocol library that has no context
// support (go-imap's imapclient, go-smtp) by the context of one operation at
// a time. Conn wraps the connection the library reads and writes, clamps
// every deadline the library sets to the deadline of the operation in
// progress, closes the connection when that operation's context is
// cancelled, and records the first I/O error, whose type the libraries tend
// to lose and classification needs.
package opconn

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/orchard-mail/orchard/internal/provider"
)

// DefaultTimeout bounds an operation whose context has no deadline when no
// (positive) timeout is given.
const DefaultTimeout = 30 * time.Second

// Context gives ctx a deadline when it has none, so that every operation is
// bounded: the libraries' own read timeouts only apply while a reply is being
// parsed, not while waiting for it to start. A deadline of ctx always wins
// over timeout; a timeout that is not positive means DefaultTimeout.
func Context(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, orDefault(timeout))
}

func orDefault(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return DefaultTimeout
	}
	return timeout
}

// Dial sets up a connection to addr (host:port) for service ("imap", "smtp")
// as one operation: it opens a TCP connection and calls setup with it and the
// client TLS configuration for it (a clone of tlsConfig, nil meaning system
// roots, whose ServerName defaults to the host of addr), all bounded by an
// operation context derived from ctx (Context with timeout), which setup
// gets and must classify its errors with. Errors from opening the connection
// are *provider.Error; setup's are returned as they are, and setup must close
// the connection when it fails.
func Dial[T any](ctx context.Context, service, addr string, tlsConfig *tls.Config, timeout time.Duration,
	setup func(ctx context.Context, nc net.Conn, cfg *tls.Config) (T, error)) (T, error) {
	var zero T
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return zero, &provider.Error{Kind: provider.KindProtocol, Service: service, Addr: addr,
			Text: "invalid address (want host:port)", Err: err}
	}
	ctx, cancel := Context(ctx, timeout)
	defer cancel()
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return zero, provider.TransportError(ctx, service, addr, "connect", err, nil)
	}
	var cfg *tls.Config
	if tlsConfig != nil {
		cfg = tlsConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return setup(ctx, nc, cfg)
}

// Conn sits between a protocol library and the network connection. Between
// operations (when a library's reader goroutine waits for unsolicited data)
// the library's own deadlines apply; during one, they are clamped to the
// operation's.
type Conn struct {
	net.Conn
	timeout time.Duration // bounds an operation whose context has no deadline

	// opMu serialises operations: the deadline of the connection belongs to
	// one operation at a time.
	opMu sync.Mutex

	mu     sync.Mutex
	op     time.Time // deadline of the running operation; zero between operations
	rd, wd time.Time // deadlines the library asked for
	ioErr  error     // first read/write error
}

// New wraps nc; timeout bounds each operation (see Do) whose context has no
// deadline, as in Context.
func New(nc net.Conn, timeout time.Duration) *Conn {
	return &Conn{Conn: nc, timeout: orDefault(timeout)}
}

func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.noteErr(err)
	}
	return n, err
}

func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.noteErr(err)
	}
	return n, err
}

func (c *Conn) noteErr(err error) {
	c.mu.Lock()
	if c.ioErr == nil {
		c.ioErr = err
	}
	c.mu.Unlock()
}

// LastErr returns the first I/O error seen on the connection, if any.
func (c *Conn) LastErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ioErr
}

func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rd = t
	return c.Conn.SetReadDeadline(earlier(t, c.op))
}

func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wd = t
	return c.Conn.SetWriteDeadline(earlier(t, c.op))
}

// Begin bounds all I/O by ctx until the returned function is called: the
// connection deadlines are clamped to ctx's deadline, and the connection is
// closed if ctx is cancelled (a deadline alone cannot express cancellation).
// ctx must have a deadline (see Context). Begin does not serialise; Do does.
func (c *Conn) Begin(ctx context.Context) (end func()) {
	d, _ := ctx.Deadline()
	c.mu.Lock()
	c.op = d
	// Errors here mean the connection is already closed; the operation will
	// find that out on its first read or write.
	_ = c.Conn.SetReadDeadline(earlier(c.rd, d))
	_ = c.Conn.SetWriteDeadline(earlier(c.wd, d))
	c.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { _ = c.Conn.Close() })
	return func() {
		stop()
		c.mu.Lock()
		c.op = time.Time{}
		_ = c.Conn.SetReadDeadline(c.rd)
		_ = c.Conn.SetWriteDeadline(c.wd)
		c.mu.Unlock()
	}
}

// Do runs fn as one operation: after any operation in progress, with all I/O
// bounded by an operation context derived from ctx (Context with the
// connection's timeout). fn gets that context and must classify its errors
// with it, because its deadline is the one enforced.
func (c *Conn) Do(ctx context.Context, fn func(context.Context) error) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	ctx, cancel := Context(ctx, c.timeout)
	defer cancel()
	end := c.Begin(ctx)
	defer end()
	return fn(ctx)
}

// Courtesy runs fn (a LOGOUT, a QUIT) bounded by limit, or by the
// connection's timeout when that is shorter, unless an operation is in
// progress: closing the connection is what ends that one, and a courtesy
// must not wait for it.
func (c *Conn) Courtesy(limit time.Duration, fn func()) {
	if !c.opMu.TryLock() {
		return
	}
	defer c.opMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), min(limit, c.timeout))
	defer cancel()
	end := c.Begin(ctx)
	defer end()
	fn()
}

// earlier returns the earlier of two deadlines, where zero means none.
func earlier(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}
