package provider_test

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
	"syscall"
	"testing"

	"github.com/orchard-mail/orchard/internal/provider"
)

func TestErrorString(t *testing.T) {
	t.Parallel()
	e := &provider.Error{Kind: provider.KindAuth, Service: "imap", Addr: "127.0.0.1:10993",
		Text: "[AUTHENTICATIONFAILED] Authentication failed", Hint: "use an app password"}
	if got, want := e.Error(), "imap 127.0.0.1:10993: authentication failed: [AUTHENTICATIONFAILED] Authentication failed"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// Without Text, the underlying error speaks.
	e = &provider.Error{Kind: provider.KindUnavailable, Service: "smtp", Addr: "h:587", Err: io.EOF}
	if got, want := e.Error(), "smtp h:587: service unavailable: EOF"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, io.EOF) {
		t.Error("Unwrap does not expose Err")
	}
	if provider.KindOf(fmt.Errorf("wrapped: %w", e)) != provider.KindUnavailable {
		t.Error("KindOf does not see through wrapping")
	}
	if provider.KindOf(io.EOF) != 0 {
		t.Error("KindOf of a plain error is not 0")
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	for kind, want := range map[provider.ErrorKind]bool{
		provider.KindAuth: true, provider.KindTLS: true, provider.KindProtocol: true, provider.KindRejected: true,
		provider.KindUnavailable: false, provider.KindTimeout: false,
	} {
		if got := (&provider.Error{Kind: kind}).Permanent(); got != want {
			t.Errorf("%v: Permanent() = %v, want %v", kind, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	const secret = "abcd-efgh-ijkl-mnop"
	inner := errors.New("server said " + secret)
	e := (&provider.Error{Kind: provider.KindAuth, Text: "bad " + secret, Err: inner}).Redact("", secret)
	if strings.Contains(e.Error(), secret) || strings.Contains(e.Text, secret) || strings.Contains(e.Err.Error(), secret) {
		t.Errorf("secret survived: %q / %v", e.Text, e.Err)
	}
	if e.Text != "bad [redacted]" {
		t.Errorf("Text = %q", e.Text)
	}
	// An error without the secret keeps its chain.
	e = (&provider.Error{Err: io.EOF}).Redact(secret)
	if !errors.Is(e, io.EOF) {
		t.Error("Redact dropped an unrelated chain")
	}
}

func TestNetErrorKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		kind provider.ErrorKind
		ok   bool
	}{
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, provider.KindUnavailable, true},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, provider.KindUnavailable, true},
		{"dns", &net.DNSError{Err: "no such host", Name: "imap.invalid", IsNotFound: true}, provider.KindUnavailable, true},
		{"deadline", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), provider.KindTimeout, true},
		{"ctx deadline", context.DeadlineExceeded, provider.KindTimeout, true},
		{"eof", io.EOF, provider.KindUnavailable, true},
		{"unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, provider.KindTLS, true},
		{"hostname", x509.HostnameError{Host: "x"}, provider.KindTLS, true},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired}, provider.KindTLS, true},
		{"not TLS", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, provider.KindTLS, true},
		{"remote alert", &net.OpError{Op: "remote error", Err: errors.New("tls: protocol version not supported")}, provider.KindTLS, true},
		{"parse error", errors.New("in response: expected atom"), 0, false},
	} {
		kind, ok := provider.NetErrorKind(tc.err)
		if kind != tc.kind || ok != tc.ok {
			t.Errorf("%s: NetErrorKind = %v, %v; want %v, %v", tc.name, kind, ok, tc.kind, tc.ok)
		}
	}
}

func TestCredentialsFormatting(t *testing.T) {
	t.Parallel()
	c := provider.Credentials{IMAPAddr: "i:993", IMAPUsername: "u", IMAPPassword: "imap-secret",
		SMTPAddr: "s:587", SMTPUsername: "u@x", SMTPPassword: "smtp-secret"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(f, c)
		if strings.Contains(out, "secret") {
			t.Errorf("%s prints a password: %s", f, out)
		}
	}
}
