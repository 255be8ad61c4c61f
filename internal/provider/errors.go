// Package provider holds what every mail/calendar connector shares: the
// credentials it needs and the typed error it returns, so that the HTTP layer
// and the syncer can decide what a failure means without knowing which
// protocol produced it.
package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

// ErrorKind classifies a provider failure; the HTTP layer maps it to a status
// in one place and the syncer decides from it whether to retry or to mark a
// grant invalid.
type ErrorKind int

const (
	// KindAuth: the credentials were refused (IMAP NO [AUTHENTICATIONFAILED] or
	// a plain NO to LOGIN, SMTP 535/534/530 or 5.7.8). Permanent until the
	// user re-authenticates.
	KindAuth ErrorKind = iota + 1
	// KindUnavailable: connection refused or reset, DNS failure, IMAP
	// [UNAVAILABLE]/[SERVERBUG]/[CONTACTADMIN], SMTP 4xx, server closed the
	// connection. Transient.
	KindUnavailable
	// KindTimeout: no answer within the deadline. Transient.
	KindTimeout
	// KindTLS: the TLS handshake failed (untrusted or expired certificate,
	// hostname mismatch) or the server does not offer STARTTLS. A
	// configuration problem, permanent.
	KindTLS
	// KindProtocol: an unexpected reply. Permanent.
	KindProtocol
	// KindRejected: the server understood and refused this request for good
	// (an SMTP 5xx other than an authentication failure: a recipient that
	// does not exist, a message too large, a policy). Retrying the same
	// request is pointless; a changed one may pass.
	KindRejected
)

// String names the kind the way Error() prints it.
func (k ErrorKind) String() string {
	switch k {
	case KindAuth:
		return "authentication failed"
	case KindUnavailable:
		return "service unavailable"
	case KindTimeout:
		return "timed out"
	case KindTLS:
		return "TLS failure"
	case KindProtocol:
		return "protocol error"
	case KindRejected:
		return "rejected"
	default:
		return fmt.Sprintf("error kind %d", int(k))
	}
}

// Error is the one error type that connectors return for provider failures.
type Error struct {
	Kind    ErrorKind
	Service string // "imap" | "smtp" (later "caldav")
	Addr    string // host:port
	// Text is the server's reply text or a short description. It never
	// contains the password or the AUTH payload: the protocol wrappers redact
	// both before building an Error, because errors end up in logs and API
	// responses.
	Text string
	// Hint is optional advice for the end user (iCloud: make an app-specific
	// password ...). It is not part of Error() so that logs stay short.
	Hint string
	// Err is the underlying error, may be nil.
	Err error
}

// Error renders "imap 127.0.0.1:10993: authentication failed: <text>".
func (e *Error) Error() string {
	var sb strings.Builder
	sb.WriteString(e.Service)
	if e.Addr != "" {
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(e.Addr)
	}
	if sb.Len() > 0 {
		sb.WriteString(": ")
	}
	sb.WriteString(e.Kind.String())
	text := e.Text
	if text == "" && e.Err != nil {
		text = e.Err.Error()
	}
	if text != "" {
		sb.WriteString(": ")
		sb.WriteString(text)
	}
	return sb.String()
}

// Unwrap exposes the underlying error to errors.Is/As (e.g. context.Canceled).
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying without a change of credentials or
// configuration is pointless.
func (e *Error) Permanent() bool {
	switch e.Kind {
	case KindAuth, KindTLS, KindProtocol, KindRejected:
		return true
	}
	return false
}

// KindOf returns the kind of the first *Error in err's chain, or 0 when there
// is none.
func KindOf(err error) ErrorKind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return 0
}

// Redact removes every occurrence of the given secrets from Text and from the
// message of Err, and returns e. The protocol wrappers call it on every error
// built during authentication: a server that echoes what it received, or a
// library that quotes the command it sent, must not leak a password into logs
// or API responses. Empty secrets are ignored.
func (e *Error) Redact(secrets ...string) *Error {
	if e == nil {
		return nil
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		e.Text = strings.ReplaceAll(e.Text, s, "[redacted]")
		if e.Err != nil && strings.Contains(e.Err.Error(), s) {
			// The chain is lost on purpose: keeping it would keep the secret.
			e.Err = errors.New(strings.ReplaceAll(e.Err.Error(), s, "[redacted]"))
		}
	}
	return e
}

// NetErrorKind classifies a transport-level error (dial, TLS, read, write)
// for the protocol wrappers. ok is false when err is not recognisably a
// transport error, in which case the caller decides (usually KindProtocol:
// the bytes arrived but made no sense).
func NetErrorKind(err error) (kind ErrorKind, ok bool) {
	if err == nil {
		return 0, false
	}
	// Certificate problems first: a verification failure is permanent even
	// though it surfaces as an ordinary handshake error.
	var (
		certErr     *tls.CertificateVerificationError
		unknownAuth x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		recordErr   tls.RecordHeaderError
		alertErr    tls.AlertError
	)
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &invalidErr), errors.As(err, &recordErr), errors.As(err, &alertErr):
		return KindTLS, true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return KindTimeout, true
	}
	// crypto/tls reports an alert from the peer (protocol version, handshake
	// failure, bad certificate...) as a *net.OpError with this Op and an
	// unexported error type: a TLS configuration mismatch, not an outage.
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "remote error" {
		return KindTLS, true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		if netErr.Timeout() {
			return KindTimeout, true
		}
		return KindUnavailable, true
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, context.Canceled):
		return KindUnavailable, true
	}
	return 0, false
}

// TransportError builds the *Error for err, a failure in the given phase of
// a conversation with service at addr that is not a protocol reply (the
// protocol wrappers recognise their replies first). ctx is the operation's
// context and decides first: when it ends, the connection is closed under
// the library, whose error then only says "use of closed connection". Then
// the transport error is classified by NetErrorKind: ioErr when it is not nil
// (the first I/O error recorded on the connection, whose type a library may
// have lost), err otherwise. Anything else is KindProtocol: the bytes arrived
// but made no sense.
func TransportError(ctx context.Context, service, addr, phase string, err, ioErr error) *Error {
	e := &Error{Service: service, Addr: addr, Err: err}
	switch ctxErr := ctx.Err(); {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		e.Kind = KindTimeout
		e.Text = phase + ": no answer before the deadline"
		return e
	case errors.Is(ctxErr, context.Canceled):
		// Cancellation is the caller's choice, not a verdict on the server:
		// report it as transient and keep context.Canceled in the chain.
		e.Kind = KindUnavailable
		e.Text = phase + ": cancelled"
		e.Err = ctxErr
		return e
	}
	cause := err
	if ioErr != nil {
		cause = ioErr
	}
	if kind, ok := NetErrorKind(cause); ok {
		e.Kind = kind
		e.Err = cause
		if errors.Is(cause, io.EOF) || errors.Is(cause, io.ErrUnexpectedEOF) {
			e.Text = phase + ": connection closed by server"
		} else {
			e.Text = fmt.Sprintf("%s: %v", phase, cause)
		}
		return e
	}
	e.Kind = KindProtocol
	e.Text = fmt.Sprintf("%s: %v", phase, err)
	return e
}

// Classify returns nil for nil, err itself when it already holds an *Error
// (a verdict made closer to the protocol passes through), and classify(err)
// otherwise.
func Classify(err error, classify func(error) *Error) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	return classify(err)
}

// Credentials are what Orchard needs to reach one mail account. Passwords are
// secrets: never log or return them.
type Credentials struct {
	IMAPAddr, IMAPUsername, IMAPPassword string // IMAPAddr host:port, implicit TLS
	SMTPAddr, SMTPUsername, SMTPPassword string // SMTPAddr host:port, STARTTLS + AUTH
}

// SameLogin returns the Credentials of an account that logs in to IMAP and
// to SMTP with the same username and password.
func SameLogin(imapAddr, smtpAddr, username, password string) Credentials {
	return Credentials{
		IMAPAddr: imapAddr, IMAPUsername: username, IMAPPassword: password,
		SMTPAddr: smtpAddr, SMTPUsername: username, SMTPPassword: password,
	}
}

// String keeps passwords out of fmt output (%v, %+v) in case a Credentials
// value ends up in a log line.
func (c Credentials) String() string {
	return fmt.Sprintf("{IMAP %s@%s SMTP %s@%s}", c.IMAPUsername, c.IMAPAddr, c.SMTPUsername, c.SMTPAddr)
}

// GoString does the same for %#v.
func (c Credentials) GoString() string { return "provider.Credentials" + c.String() }
