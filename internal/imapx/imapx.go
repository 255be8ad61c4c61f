// Package imapx is a thin wrapper over go-imap v2's client that adds what the
// library lacks and Orchard needs: context deadlines and cancellation on every
// operation, classification of failures into *provider.Error, and tolerance
// for iCloud's protocol quirks.
package imapx

import (
	"context"
	"crypto/tls"
	"errors"
	"maps"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/internal/opconn"
	"github.com/orchard-mail/orchard/internal/provider"
)

const (
	service = "imap"
	// DefaultTimeout bounds an operation whose context has no deadline.
	DefaultTimeout = opconn.DefaultTimeout
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

// Client is one authenticated (or about to be) IMAP connection.
type Client struct {
	raw  *imapclient.Client
	conn *conn // serialises and bounds operations
	addr string

	mu   sync.Mutex
	caps imap.CapSet // post-login capabilities
}

// Dial connects to addr (host:port) with implicit TLS and waits for the
// greeting. The connection is closed if ctx is cancelled or its deadline
// passes before the greeting arrives. Errors are *provider.Error.
func (d *Dialer) Dial(ctx context.Context, addr string) (*Client, error) {
	return d.DialWith(ctx, addr, nil)
}

// DialWith is Dial for a long-lived connection that wants the server's
// unsolicited data (EXISTS, EXPUNGE, FETCH during IDLE): h is called from
// the connection's reader goroutine and must not block.
func (d *Dialer) DialWith(ctx context.Context, addr string, h *imapclient.UnilateralDataHandler) (*Client, error) {
	if d == nil {
		d = &Dialer{}
	}
	return opconn.Dial(ctx, service, addr, d.TLSConfig, d.Timeout, func(ctx context.Context, tcp net.Conn, cfg *tls.Config) (*Client, error) {
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

		cn := &conn{Conn: opconn.New(tc, d.Timeout)}
		end := cn.Begin(ctx)
		raw := imapclient.New(cn, &imapclient.Options{UnilateralDataHandler: h})
		err := raw.WaitGreeting()
		end()
		if err != nil {
			_ = raw.Close()
			var ie *imap.Error
			if !errors.As(err, &ie) {
				if bye, ok := byeGreeting(cn.firstLine()); ok {
					err = bye
				}
			}
			return nil, classify(ctx, addr, "greeting", err, cn.LastErr(), false)
		}
		return &Client{raw: raw, conn: cn, addr: addr}, nil
	})
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
			return classify(ctx, c.addr, "LOGIN", err, c.conn.LastErr(), true).Redact(password)
		}
		// Ask explicitly: go-imap drops its capability cache when LOGIN
		// completes, but there is a window in which Caps() still returns the
		// pre-login set.
		caps, err := raw.Capability().Wait()
		if err != nil {
			return classify(ctx, c.addr, "CAPABILITY", err, c.conn.LastErr(), false)
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
		return provider.Classify(fn(raw), func(err error) *provider.Error {
			return classify(ctx, c.addr, "command", err, c.conn.LastErr(), false)
		})
	})
}

// run bounds fn by an operation context derived from ctx; fn must
// classify with the context it is given, whose deadline is the one enforced.
func (c *Client) run(ctx context.Context, fn func(context.Context, *imapclient.Client) error) error {
	return c.conn.Do(ctx, func(ctx context.Context) error { return fn(ctx, c.raw) })
}

// Close logs out (best effort, bounded by a short deadline; iCloud answers
// with a bare "* BYE", which go-imap accepts) and closes the connection. It
// always returns nil: a failed LOGOUT changes nothing for the caller.
func (c *Client) Close() error {
	// If an operation is still running, do not wait for it: closing the
	// connection is what ends it.
	c.conn.Courtesy(logoutTimeout, func() {
		if st := c.raw.State(); st == imap.ConnStateNotAuthenticated || st == imap.ConnStateAuthenticated || st == imap.ConnStateSelected {
			_ = c.raw.Logout().Wait()
		}
	})
	// raw.Close reports why its reader stopped (EOF after BYE, a timeout, a
	// parse error); none of that matters to a caller that is done with the
	// connection, and the socket is closed either way.
	_ = c.raw.Close()
	return nil
}

// classify turns an error from a phase of the IMAP conversation into a
// *provider.Error. ioErr is the first I/O error on the connection (nil before
// the connection exists): imapclient formats transport errors with %v,
// losing their type, and the connection kept the original. login selects the
// LOGIN rules, where a plain NO means the credentials were refused.
func classify(ctx context.Context, addr, phase string, err, ioErr error, login bool) *provider.Error {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return &provider.Error{Kind: statusKind(ie, login), Service: service, Addr: addr, Text: statusText(ie), Err: err}
	}
	return provider.TransportError(ctx, service, addr, phase, err, ioErr)
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
