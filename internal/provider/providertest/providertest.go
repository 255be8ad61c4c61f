// Package providertest holds what tests of the protocol wrappers (imapx,
// smtpx) and of the connectors built on them share: the assertions they make
// about the *provider.Error they return, and dialers for the real servers of
// scripts/testenv.
package providertest

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/smtpx"
	"github.com/orchard-mail/orchard/internal/testenv"
)

// Testenv returns the running test environment of scripts/testenv (the test
// is skipped when it is not running, see testenv.Get) and an IMAP and an SMTP
// dialer that trust its CA and nothing else.
func Testenv(t testing.TB) (*testenv.Env, *imapx.Dialer, *smtpx.Dialer) {
	t.Helper()
	env := testenv.Get(t)
	tc := &tls.Config{RootCAs: env.CAPool(t)}
	return env, &imapx.Dialer{TLSConfig: tc}, &smtpx.Dialer{TLSConfig: tc}
}

// WantKind asserts that err is a *provider.Error of the given kind for
// service, and that neither its message nor its Text reveals any of secrets
// (empty ones are ignored). It returns the *provider.Error.
func WantKind(t testing.TB, err error, service string, kind provider.ErrorKind, secrets ...string) *provider.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", kind)
	}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("got %T %v, want *provider.Error", err, err)
	}
	if pe.Kind != kind {
		t.Fatalf("got kind %v (%v), want %v", pe.Kind, err, kind)
	}
	if pe.Service != service {
		t.Errorf("Service = %q, want %s", pe.Service, service)
	}
	for _, s := range secrets {
		if s != "" && (strings.Contains(err.Error(), s) || strings.Contains(pe.Text, s)) {
			t.Errorf("error reveals a secret (%q): %v", s, err)
		}
	}
	return pe
}

// WantTimeout asserts that err, returned by an operation started at start
// under a deadline, is KindTimeout for service and came no later than a
// second after the deadline.
func WantTimeout(t testing.TB, err error, service string, start time.Time, deadline time.Duration, secrets ...string) {
	t.Helper()
	WantKind(t, err, service, provider.KindTimeout, secrets...)
	if el := time.Since(start); el > deadline+time.Second {
		t.Errorf("took %v, want < %v", el, deadline+time.Second)
	}
}

// WantCancelled calls op with a context that is cancelled after 100 ms, and
// asserts that op fails within a second with KindUnavailable for service,
// keeping context.Canceled in the chain (cancellation is the caller's
// choice, not a verdict on the server).
func WantCancelled(t testing.TB, service string, op func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := op(ctx)
	WantKind(t, err, service, provider.KindUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v does not wrap context.Canceled", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("cancelled operation returned after %v", el)
	}
}

// Stalled runs two parallel subtests, name+", ctx deadline" and name+",
// dialer timeout", of an operation that the server never answers. setup
// prepares it (a server that blocks, a client dialed with a Timeout of
// deadline) and returns it; the operation must then fail with KindTimeout
// for service no later than a second after deadline, both when its context
// expires after deadline and when its context has no deadline, so that only
// the dialer's Timeout bounds it. Its error must not reveal any of secrets.
func Stalled(t *testing.T, name, service string, deadline time.Duration, setup func(t *testing.T) func(context.Context) error, secrets ...string) {
	for _, viaDialer := range []bool{false, true} {
		sub := name + ", ctx deadline"
		if viaDialer {
			sub = name + ", dialer timeout"
		}
		t.Run(sub, func(t *testing.T) {
			t.Parallel()
			op := setup(t)
			ctx := context.Background()
			if !viaDialer {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, deadline)
				defer cancel()
			}
			start := time.Now()
			WantTimeout(t, op(ctx), service, start, deadline, secrets...)
		})
	}
}
