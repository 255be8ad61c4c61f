// Package imapx is a thin wrapper over go-imap v2's client that adds what the
// library lacks and Orchard needs: context deadlines and cancellation on every
// operation, classification of failures into *provider.Error, and tolerance
// for iCloud's protocol quirks.
package imapx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/internal/provider"
)

const (
	service = "imap"
	// DefaultTimeout bounds an operation whose context has no deadline.
	DefaultTimeout = 30 * time.Second
	// logoutTimeout bounds the courtesy LOGOUT in Close: a slow server must
	// not hold up shutdown or a verification that has already succeeded.
	logoutTimeout = 2 * time.Second
)

// Dialer opens IMAP connections with implicit TLS. The zero value is usable:
// system roots, DefaultTimeout.
type Dialer struct {
	// TLSConfig is cloned for each connection; ServerName defaults to the
	// host of the address. Nil means system roots.
	TLSConfig *tls.Config
	// Timeout bounds each operation whose context has no deadline; default
	// DefaultTimeout. A context deadline always wins.
	Timeout time.Duration
}

func (d *Dialer) timeout() time.Duration {
	if d == nil || d.Timeout <= 0 {
		return DefaultTimeout
	}
	return d.Timeout
}

// opContext gives ctx a deadline when it has none, so that every operation
// is bounded: imapclient's own 30 s read timeout only applies while a response
// is being parsed, not while waiting for it to start.
func opContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, timeout)
}

// Client is one authenticated (or about to be) IMAP connection.
type Client struct {
	raw     *imapclient.Client
	conn    *conn
	addr    string
	timeout time.Duration

	// opMu serialises operations: the deadline of the connection belongs to
	// one operation at a time.
	opMu sync.Mutex

	mu   sync.Mutex
	caps imap.CapSet // post-login capabilities
}

// Dial connects to addr (host:port) with implicit TLS and waits for the
// greeting. The connection is closed if ctx is cancelled or its deadline
// passes before the greeting arrives. Errors are *provider.Error.
func (d *Dialer) Dial(ctx context.Context, addr string) (*Client, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &provider.Error{Kind: provider.KindProtocol, Service: service, Addr: addr,
			Text: "invalid address (want host:port)", Err: err}
	}
	ctx, cancel := opContext(ctx, d.timeout())
	defer cancel()

	var nd net.Dialer
	tcp, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, classify(ctx, addr, "connect", err, nil, false)
	}

	var cfg *tls.Config
	if d != nil && d.TLSConfig != nil {
		cfg = d.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if cfg.NextProtos == nil {
		// As imapclient.DialTLS does: ALPN "imap" lets a server refuse a
		// connection meant for another protocol (ALPACA).
		cfg.NextProtos = []string{"imap"}
	}
	tc := tls.Client(tcp, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = tcp.Close()
		e := classify(ctx, addr, "TLS handshake", err, nil, false)
		if e.Kind == provider.KindProtocol {
			// Whatever broke the handshake, it was not an IMAP reply.
			e.Kind = provider.KindTLS
		}
		return nil, e
	}

	cn := &conn{Conn: tc}
	end := cn.begin(ctx)
	raw := imapclient.New(cn, &imapclient.Options{})
	err = raw.WaitGreeting()
	end()
	if err != nil {
		_ = raw.Close()
		var ie *imap.Error
		if !errors.As(err, &ie) {
			if bye, ok := byeGreeting(cn.firstLine()); ok {
				err = bye
			}
		}
		return nil, classify(ctx, addr, "greeting", err, cn, false)
	}
	return &Client{raw: raw, conn: cn, addr: addr, timeout: d.timeout()}, nil
}

// byeGreeting recognises a "* BYE [CODE] text" greeting, with which servers
// turn clients away when busy.
func byeGreeting(line string) (*imap.Error, bool) {
	const prefix = "* BYE"
	if len(line) < len(prefix) || !strings.EqualFold(line[:len(prefix)], prefix) {
		return nil, false
	}
	e := &imap.Error{Type: imap.StatusResponseTypeBye}
	rest := strings.TrimSpace(line[len(prefix):])
	if strings.HasPrefix(rest, "[") {
		if code, text, ok := strings.Cut(rest[1:], "]"); ok {
			name, _, _ := strings.Cut(code, " ")
			e.Code = imap.ResponseCode(strings.ToUpper(name))
			rest = strings.TrimSpace(text)
		}
	}
	e.Text = rest
	return e, true
}

// Login sends LOGIN and then reads the post-login capabilities (servers,
// iCloud included, advertise a different set after authentication). Errors
// are *provider.Error and never contain the password.
func (c *Client) Login(ctx context.Context, username, password string) error {
	return c.run(ctx, func(ctx context.Context, raw *imapclient.Client) error {
		if err := raw.Login(username, password).Wait(); err != nil {
			return classify(ctx, c.addr, "LOGIN", err, c.conn, true).Redact(password)
		}
		// Ask explicitly: go-imap drops its capability cache when LOGIN
		// completes, but there is a window in which Caps() still returns the
		// pre-login set.
		caps, err := raw.Capability().Wait()
		if err != nil {
			return classify(ctx, c.addr, "CAPABILITY", err, c.conn, false)
		}
		if caps == nil {
			caps = imap.CapSet{}
		}
		c.mu.Lock()
		c.caps = caps
		c.mu.Unlock()
		return nil
	})
}

// Caps returns the capabilities read after LOGIN (nil before a successful
// Login). The returned set is a copy.
func (c *Client) Caps() imap.CapSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.caps == nil {
		return nil
	}
	return maps.Clone(c.caps)
}

// Raw returns the underlying go-imap client for the sync code. Calls made on
// it directly are bounded only by go-imap's own timeouts; wrap them in Run to
// get context deadlines and classified errors.
func (c *Client) Raw() *imapclient.Client { return c.raw }

// Run calls fn with the underlying client while bounding all I/O by ctx (or
// the dialer's Timeout): the connection is closed if ctx is cancelled, and
// fn's error is classified into a *provider.Error (a *provider.Error returned
// by fn is passed through). Operations on one Client are serialised; fn must
// not call Run or Login.
func (c *Client) Run(ctx context.Context, fn func(*imapclient.Client) error) error {
	return c.run(ctx, func(ctx context.Context, raw *imapclient.Client) error {
		err := fn(raw)
		if err == nil {
			return nil
		}
		var pe *provider.Error
		if errors.As(err, &pe) {
			return err
		}
		return classify(ctx, c.addr, "command", err, c.conn, false)
	})
}

// run bounds fn by an operation context derived from ctx; fn must
// classify with the context it is given, whose deadline is the one enforced.
func (c *Client) run(ctx context.Context, fn func(context.Context, *imapclient.Client) error) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	ctx, cancel := opContext(ctx, c.timeout)
	defer cancel()
	end := c.conn.begin(ctx)
	defer end()
	return fn(ctx, c.raw)
}

// Close logs out (best effort, bounded by a short deadline; iCloud answers
// with a bare "* BYE", which go-imap accepts) and closes the connection. It
// always returns nil: a failed LOGOUT changes nothing for the caller.
func (c *Client) Close() error {
	// If an operation is still running, do not wait for it: closing the
	// connection is what ends it.
	if c.opMu.TryLock() {
		if st := c.raw.State(); st == imap.ConnStateNotAuthenticated || st == imap.ConnStateAuthenticated || st == imap.ConnStateSelected {
			ctx, cancel := context.WithTimeout(context.Background(), min(logoutTimeout, c.timeout))
			end := c.conn.begin(ctx)
			_ = c.raw.Logout().Wait()
			end()
			cancel()
		}
		c.opMu.Unlock()
	}
	// raw.Close reports why its reader stopped (EOF after BYE, a timeout, a
	// parse error); none of that matters to a caller that is done with the
	// connection, and the socket is closed either way.
	_ = c.raw.Close()
	return nil
}

// classify turns an error from a phase of the IMAP conversation into a
// *provider.Error. cn may be nil before the connection exists. login selects
// the LOGIN rules, where a plain NO means the credentials were refused.
func classify(ctx context.Context, addr, phase string, err error, cn *conn, login bool) *provider.Error {
	e := &provider.Error{Service: service, Addr: addr, Err: err}

	var ie *imap.Error
	if errors.As(err, &ie) {
		e.Kind = statusKind(ie, login)
		e.Text = statusText(ie)
		return e
	}

	// The context decides first: when it ends, the connection is closed under
	// the library, whose error then only says "use of closed connection".
	switch ctxErr := ctx.Err(); {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		e.Kind = provider.KindTimeout
		e.Text = phase + ": no answer before the deadline"
		return e
	case errors.Is(ctxErr, context.Canceled):
		// Cancellation is the caller's choice, not a verdict on the server:
		// report it as transient and keep context.Canceled in the chain.
		e.Kind = provider.KindUnavailable
		e.Text = phase + ": cancelled"
		e.Err = ctxErr
		return e
	}

	// imapclient formats transport errors with %v, losing their type; the
	// connection kept the original.
	cause := err
	if cn != nil {
		if ioErr := cn.lastErr(); ioErr != nil {
			cause = ioErr
		}
	}
	if kind, ok := provider.NetErrorKind(cause); ok {
		e.Kind = kind
		e.Err = cause
		if errors.Is(cause, io.EOF) || errors.Is(cause, io.ErrUnexpectedEOF) {
			e.Text = phase + ": connection closed by server"
		} else {
			e.Text = fmt.Sprintf("%s: %v", phase, cause)
		}
		return e
	}
	e.Kind = provider.KindProtocol
	e.Text = fmt.Sprintf("%s: %v", phase, err)
	return e
}

// statusKind maps a tagged NO/BAD (or an untagged BYE) to a kind. The
// response code wins over the status: iCloud answers LOGIN with
// "BAD [UNAVAILABLE] Service temporarily unavailable" when it is having
// trouble, and that must not be taken for a wrong password (icloud.md §B.1).
func statusKind(ie *imap.Error, login bool) provider.ErrorKind {
	switch ie.Code {
	case imap.ResponseCodeUnavailable, imap.ResponseCodeServerBug, imap.ResponseCodeContactAdmin,
		imap.ResponseCodeInUse, imap.ResponseCodeLimit:
		return provider.KindUnavailable
	case imap.ResponseCodeAuthenticationFailed, imap.ResponseCodeAuthorizationFailed, imap.ResponseCodeExpired:
		return provider.KindAuth
	case imap.ResponseCodePrivacyRequired:
		return provider.KindTLS
	}
	switch ie.Type {
	case imap.StatusResponseTypeBye:
		return provider.KindUnavailable
	case imap.StatusResponseTypeNo:
		if login {
			return provider.KindAuth
		}
	}
	return provider.KindProtocol
}

func statusText(ie *imap.Error) string {
	var s string
	if ie.Type != imap.StatusResponseTypeNo {
		s = string(ie.Type) + " "
	}
	if ie.Code != "" {
		s += "[" + string(ie.Code) + "] "
	}
	if ie.Text != "" {
		s += ie.Text
	}
	if len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}
