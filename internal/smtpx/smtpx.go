// Package smtpx is a thin wrapper over go-smtp's client for message
// submission: it insists on STARTTLS with a verified certificate, bounds every
// operation by a context, and classifies failures into *provider.Error.
package smtpx

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/orchard-mail/orchard/internal/opconn"
	"github.com/orchard-mail/orchard/internal/provider"
)

const (
	service = "smtp"
	// DefaultTimeout bounds an operation whose context has no deadline.
	DefaultTimeout = opconn.DefaultTimeout
	// quitTimeout bounds the courtesy QUIT in Close.
	quitTimeout = 2 * time.Second
	// DefaultLocalName is the EHLO name when Dialer.LocalName is empty, as in
	// go-smtp and net/smtp.
	DefaultLocalName = "localhost"
)

// Dialer opens SMTP submission connections: plain TCP, EHLO, STARTTLS
// (required), EHLO again. The zero value is usable.
type Dialer struct {
	// TLSConfig is cloned for each connection; ServerName defaults to the
	// host of the address. Nil means system roots.
	TLSConfig *tls.Config
	// Timeout bounds each operation whose context has no deadline; default
	// DefaultTimeout.
	Timeout time.Duration
	// LocalName is the name sent with EHLO after STARTTLS (default
	// DefaultLocalName). The EHLO before STARTTLS always says "localhost":
	// go-smtp sends it before any option can be set, and it travels in the
	// clear anyway.
	LocalName string
}

// Client is one SMTP connection, TLS established, not yet authenticated.
type Client struct {
	raw *smtp.Client
	// conn serialises and bounds operations. It sits below TLS, so it bounds
	// the handshake too, and its first I/O error is the transport's own.
	conn *opconn.Conn
	addr string
}

// Dial connects to addr, reads the greeting, says EHLO, upgrades with
// STARTTLS and verifies the certificate, then says EHLO again. A server that
// does not offer STARTTLS gets KindTLS: credentials are never sent in the
// clear. Errors are *provider.Error.
func (d *Dialer) Dial(ctx context.Context, addr string) (*Client, error) {
	if d == nil {
		d = &Dialer{}
	}
	return opconn.Dial(ctx, service, addr, d.TLSConfig, d.Timeout, func(ctx context.Context, tcp net.Conn, cfg *tls.Config) (*Client, error) {
		// The deadline wrapper sits below TLS, so it bounds the handshake too.
		cn := opconn.New(tcp, d.Timeout)
		end := cn.Begin(ctx)
		defer end()

		// NewClientStartTLS reads the greeting, sends EHLO, checks that
		// STARTTLS is offered and sends it; the TLS handshake itself happens
		// lazily with the next command.
		raw, err := smtp.NewClientStartTLS(cn, cfg)
		if err != nil {
			_ = tcp.Close()
			if isNoStartTLS(err) {
				return nil, &provider.Error{Kind: provider.KindTLS, Service: service, Addr: addr,
					Text: "server does not offer STARTTLS", Err: err}
			}
			return nil, classify(ctx, addr, "greeting/STARTTLS", err, cn)
		}
		localName := DefaultLocalName
		if d.LocalName != "" {
			localName = d.LocalName
		}
		// EHLO again over TLS (RFC 3207 §4.2: forget what was said in the
		// clear). This runs the handshake.
		if err := raw.Hello(localName); err != nil {
			e := classify(ctx, addr, "EHLO after STARTTLS", err, cn)
			if st, _ := raw.TLSConnectionState(); !st.HandshakeComplete && e.Kind == provider.KindProtocol {
				// An untyped handshake failure (e.g. no common protocol
				// version): whatever it was, it was not an SMTP reply.
				e.Kind = provider.KindTLS
			}
			_ = raw.Close()
			return nil, e
		}
		if _, ok := raw.TLSConnectionState(); !ok {
			// Cannot happen with go-smtp v0.25.1; guards against a change
			// that would silently drop TLS.
			_ = raw.Close()
			return nil, &provider.Error{Kind: provider.KindTLS, Service: service, Addr: addr,
				Text: "connection is not encrypted after STARTTLS"}
		}
		return &Client{raw: raw, conn: cn, addr: addr}, nil
	})
}

// isNoStartTLS recognises go-smtp's error for a server without STARTTLS. It is
// a plain errors.New in v0.25.1; the unit test without STARTTLS pins it.
func isNoStartTLS(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return false
	}
	if _, ok := provider.NetErrorKind(err); ok {
		return false
	}
	return strings.Contains(err.Error(), "STARTTLS")
}

// Auth authenticates with AUTH PLAIN, or AUTH LOGIN when the server offers
// only that. Errors are *provider.Error and contain neither the password nor
// the base64 AUTH payload.
func (c *Client) Auth(ctx context.Context, username, password string) error {
	return c.run(ctx, func(ctx context.Context, raw *smtp.Client) error {
		var (
			mech    sasl.Client
			secrets = []string{password}
		)
		switch {
		case raw.SupportsAuth(sasl.Plain):
			mech = sasl.NewPlainClient("", username, password)
			payload := "\x00" + username + "\x00" + password
			secrets = append(secrets,
				base64.StdEncoding.EncodeToString([]byte(payload)),
				base64.RawStdEncoding.EncodeToString([]byte(payload)))
		case raw.SupportsAuth(sasl.Login):
			mech = sasl.NewLoginClient(username, password)
			secrets = append(secrets,
				base64.StdEncoding.EncodeToString([]byte(password)),
				base64.RawStdEncoding.EncodeToString([]byte(password)))
		default:
			return &provider.Error{Kind: provider.KindProtocol, Service: service, Addr: c.addr,
				Text: "server offers neither AUTH PLAIN nor AUTH LOGIN"}
		}
		if err := raw.Auth(mech); err != nil {
			return classify(ctx, c.addr, "AUTH", err, c.conn).Redact(secrets...)
		}
		return nil
	})
}

// Raw returns the underlying go-smtp client. Calls made on it directly are
// bounded only by go-smtp's own timeouts; wrap them in Run.
func (c *Client) Raw() *smtp.Client { return c.raw }

// Run calls fn with the underlying client while bounding all I/O by ctx (or
// the dialer's Timeout) and classifies its error (a *provider.Error returned
// by fn is passed through). Operations on one Client are serialised; fn must
// not call Run or Auth.
func (c *Client) Run(ctx context.Context, fn func(*smtp.Client) error) error {
	return c.run(ctx, func(ctx context.Context, raw *smtp.Client) error {
		return provider.Classify(fn(raw), func(err error) *provider.Error {
			return classify(ctx, c.addr, "command", err, c.conn)
		})
	})
}

// run bounds fn by an operation context derived from ctx; fn must
// classify with the context it is given, whose deadline is the one enforced.
func (c *Client) run(ctx context.Context, fn func(context.Context, *smtp.Client) error) error {
	return c.conn.Do(ctx, func(ctx context.Context) error {
		err := fn(ctx, c.raw)
		if err != nil && (ctx.Err() != nil || c.conn.LastErr() != nil) {
			// No reply, or half of one: a late answer would be read as the
			// reply to the next command, so the connection cannot be used
			// again.
			_ = c.conn.Close()
		}
		return err
	})
}

// Close sends QUIT (best effort, short deadline) and closes the connection.
// It always returns nil: a failed QUIT changes nothing for the caller.
func (c *Client) Close() error {
	// Skip QUIT while an operation runs (closing is what ends it) and after
	// an I/O failure (the connection is gone or out of step).
	c.conn.Courtesy(quitTimeout, func() {
		if c.conn.LastErr() == nil {
			_ = c.raw.Quit()
		}
	})
	_ = c.raw.Close()
	return nil
}

// classify turns an error from a phase of the SMTP conversation into a
// *provider.Error. cn may be nil before the connection exists; its first I/O
// error is classified when err does not carry a transport error itself (the
// error above TLS says more than the one below it).
func classify(ctx context.Context, addr, phase string, err error, cn *opconn.Conn) *provider.Error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return &provider.Error{Kind: replyKind(se), Service: service, Addr: addr, Text: replyText(se), Err: err}
	}
	var ioErr error
	if _, ok := provider.NetErrorKind(err); !ok && cn != nil {
		ioErr = cn.LastErr()
	}
	return provider.TransportError(ctx, service, addr, phase, err, ioErr)
}

// replyKind maps an SMTP reply to a kind. 535 (credentials invalid), 534
// (mechanism too weak / web login required), 530 (authentication required)
// and the enhanced code 5.7.8 mean the credentials were refused; any 4xx is
// transient (454 4.7.0 is a temporary authentication failure, 421 a closing
// server); any other 5xx refuses the request for good.
func replyKind(se *smtp.SMTPError) provider.ErrorKind {
	switch {
	case se.Code == 535 || se.Code == 534 || se.Code == 530:
		return provider.KindAuth
	case se.EnhancedCode == smtp.EnhancedCode{5, 7, 8}:
		return provider.KindAuth
	case se.Code/100 == 4:
		return provider.KindUnavailable
	case se.Code/100 == 5:
		return provider.KindRejected
	}
	return provider.KindProtocol
}

// replyText renders a reply the way the server sent it: "535 5.7.8 text".
func replyText(se *smtp.SMTPError) string {
	s := fmt.Sprintf("%d", se.Code)
	if ec := se.EnhancedCode; ec != smtp.EnhancedCodeNotSet && ec != smtp.NoEnhancedCode {
		s += fmt.Sprintf(" %d.%d.%d", ec[0], ec[1], ec[2])
	}
	if se.Message != "" {
		s += " " + strings.ReplaceAll(se.Message, "\n", " ")
	}
	return s
}

// Send submits one message: MAIL FROM, RCPT TO for each recipient, DATA.
// Every recipient must be accepted, or nothing is sent (DATA never starts):
// a message that reaches only some of its recipients is worse than a clear
// error. Errors are *provider.Error; uncertain is true when the whole
// message was transmitted but no reply came (the server may have accepted
// it), so the caller must not report it as unsent.
func (c *Client) Send(ctx context.Context, from string, rcpts []string, msg []byte) (uncertain bool, err error) {
	err = c.run(ctx, func(ctx context.Context, raw *smtp.Client) error {
		fail := func(phase string, err error) *provider.Error {
			return classify(ctx, c.addr, phase, err, c.conn)
		}
		if err := raw.Mail(from, &smtp.MailOptions{Size: int64(len(msg))}); err != nil {
			return fail("MAIL FROM", err)
		}
		for _, r := range rcpts {
			if err := raw.Rcpt(r, nil); err != nil {
				e := fail("RCPT TO", err)
				if e.Kind == provider.KindRejected && !strings.Contains(e.Text, r) {
					e.Text = "recipient " + r + ": " + e.Text
				}
				_ = raw.Reset() // leave the connection usable; the error says enough
				return e
			}
		}
		w, err := raw.Data()
		if err != nil {
			return fail("DATA", err)
		}
		if _, err := w.Write(msg); err != nil {
			_ = w.Close()
			return fail("DATA", err)
		}
		if err := w.Close(); err != nil {
			e := fail("end of DATA", err)
			var se *smtp.SMTPError
			uncertain = !errors.As(err, &se) // no reply: it may have gone out
			return e
		}
		return nil
	})
	return uncertain, err
}

// Submit sends one message with the account's SMTP credentials on a
// connection of its own: dial, STARTTLS, AUTH, Send, QUIT. See Send for
// uncertain.
func (d *Dialer) Submit(ctx context.Context, c provider.Credentials, from string, rcpts []string, msg []byte) (uncertain bool, err error) {
	cl, err := d.Dial(ctx, c.SMTPAddr)
	if err != nil {
		return false, err
	}
	defer cl.Close()
	if err := cl.Auth(ctx, c.SMTPUsername, c.SMTPPassword); err != nil {
		return false, err
	}
	return cl.Send(ctx, from, rcpts, msg)
}
