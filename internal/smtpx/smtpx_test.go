package smtpx_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/providertest"
	"github.com/orchard-mail/orchard/internal/smtpx"
	"github.com/orchard-mail/orchard/internal/smtpx/smtpxtest"
	"github.com/orchard-mail/orchard/internal/testnet"
)

const (
	user     = "alice@example.test"
	password = "abcd-efgh-ijkl-mnop"
)

// secrets are the strings no error may contain: the password and the AUTH
// PLAIN / LOGIN payloads that carry it.
var secrets = []string{
	password,
	base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password)),
	base64.StdEncoding.EncodeToString([]byte(password)),
}

// wantKind asserts that err is a *provider.Error of the given kind for the
// smtp service, and that nothing in it reveals a secret.
func wantKind(t *testing.T, err error, kind provider.ErrorKind) *provider.Error {
	t.Helper()
	return providertest.WantKind(t, err, "smtp", kind, secrets...)
}

// dialAuth dials srv and authenticates, returning the Auth error.
func dialAuth(t *testing.T, d *smtpx.Dialer, addr, username, pass string) error {
	t.Helper()
	ctx := testnet.Context(t, 5*time.Second)
	c, err := d.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if _, ok := c.Raw().TLSConnectionState(); !ok {
		t.Error("connection not encrypted after Dial")
	}
	return c.Auth(ctx, username, pass)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	users := map[string]string{user: password}
	d := &smtpx.Dialer{TLSConfig: ca.ClientConfig(), LocalName: "orchard.test"}

	t.Run("PLAIN ok", func(t *testing.T) {
		t.Parallel()
		srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: users})
		if err := dialAuth(t, d, srv.Addr, user, password); err != nil {
			t.Fatal(err)
		}
		us, mechs, helos := srv.Auths()
		if len(us) != 1 || us[0] != user || mechs[0] != sasl.Plain {
			t.Errorf("attempts = %v %v, want one PLAIN as %s", us, mechs, user)
		}
		if helos[0] != "orchard.test" {
			t.Errorf("EHLO name after STARTTLS = %q, want the dialer's LocalName", helos[0])
		}
	})
	t.Run("LOGIN only", func(t *testing.T) {
		t.Parallel()
		srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: users, Mechanisms: []string{sasl.Login}})
		if err := dialAuth(t, d, srv.Addr, user, password); err != nil {
			t.Fatal(err)
		}
		if _, mechs, _ := srv.Auths(); len(mechs) != 1 || mechs[0] != sasl.Login {
			t.Errorf("mechanisms used = %v, want LOGIN", mechs)
		}
	})
	t.Run("LOGIN wrong password", func(t *testing.T) {
		t.Parallel()
		srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: users, Mechanisms: []string{sasl.Login}})
		wantKind(t, dialAuth(t, d, srv.Addr, user, "nope-"+password), provider.KindAuth)
	})
	t.Run("no usable mechanism", func(t *testing.T) {
		t.Parallel()
		srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: users, Mechanisms: []string{"CRAM-MD5"}})
		wantKind(t, dialAuth(t, d, srv.Addr, user, password), provider.KindProtocol)
	})

	for _, tc := range []struct {
		name  string
		reply *smtp.SMTPError
		kind  provider.ErrorKind
		text  string
	}{
		{"535 wrong password", nil, provider.KindAuth, "535 5.7.8 Authentication failed"},
		{"534 web login required", &smtp.SMTPError{Code: 534, EnhancedCode: smtp.EnhancedCode{5, 7, 9}, Message: "Please log in with your web browser"}, provider.KindAuth, "534 5.7.9 Please log in with your web browser"},
		{"530 auth required", &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}, provider.KindAuth, ""},
		{"5.7.8 under another code", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Error: authentication failed"}, provider.KindAuth, ""},
		{"454 temporary", &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}, provider.KindUnavailable, "454 4.7.0 Temporary authentication failure"},
		{"421 closing", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down"}, provider.KindUnavailable, ""},
		{"550 policy", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Access denied"}, provider.KindRejected, "550 5.7.1 Access denied"},
		{"echo", &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad " + password + " " + secrets[1]}, provider.KindAuth, "535 5.7.8 bad [redacted] [redacted]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), AuthReply: tc.reply})
			err := dialAuth(t, d, srv.Addr, user, password)
			pe := wantKind(t, err, tc.kind)
			if tc.text != "" && pe.Text != tc.text {
				t.Errorf("Text = %q, want %q", pe.Text, tc.text)
			}
			if got, want := pe.Permanent(), tc.kind != provider.KindUnavailable; got != want {
				t.Errorf("Permanent() = %v, want %v", got, want)
			}
		})
	}
}

func TestDialFailures(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	d := &smtpx.Dialer{TLSConfig: ca.ClientConfig()}

	t.Run("no STARTTLS", func(t *testing.T) {
		t.Parallel()
		srv := smtpxtest.Start(t, smtpxtest.Options{Users: map[string]string{user: password}})
		_, err := d.Dial(testnet.Context(t, 5*time.Second), srv.Addr)
		pe := wantKind(t, err, provider.KindTLS)
		if !strings.Contains(pe.Text, "STARTTLS") {
			t.Errorf("Text = %q, want it to mention STARTTLS", pe.Text)
		}
		if us, _, _ := srv.Auths(); len(us) != 0 {
			t.Errorf("credentials were sent in the clear: %v", us)
		}
	})
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"untrusted", testnet.NewCA(t).ClientConfig()},
		{"system roots", nil},
		{"hostname mismatch", &tls.Config{RootCAs: ca.Pool, ServerName: "smtp.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t)})
			d := &smtpx.Dialer{TLSConfig: tc.cfg}
			_, err := d.Dial(testnet.Context(t, 5*time.Second), srv.Addr)
			wantKind(t, err, provider.KindTLS)
		})
	}
	t.Run("no common TLS version", func(t *testing.T) {
		t.Parallel()
		scfg := ca.ServerConfig(t)
		scfg.MaxVersion = tls.VersionTLS12
		srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: scfg})
		d := &smtpx.Dialer{TLSConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS13}}
		_, err := d.Dial(testnet.Context(t, 5*time.Second), srv.Addr)
		wantKind(t, err, provider.KindTLS)
	})
	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		_, err := d.Dial(testnet.Context(t, 5*time.Second), testnet.ClosedAddr(t))
		wantKind(t, err, provider.KindUnavailable)
	})
	t.Run("bad address", func(t *testing.T) {
		t.Parallel()
		_, err := d.Dial(testnet.Context(t, time.Second), "no-port")
		wantKind(t, err, provider.KindProtocol)
	})
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	const deadline = 300 * time.Millisecond
	check := func(t *testing.T, start time.Time, err error) {
		t.Helper()
		providertest.WantTimeout(t, err, "smtp", start, deadline, secrets...)
	}
	t.Run("no greeting", func(t *testing.T) {
		t.Parallel()
		addr := testnet.Silent(t, ca, false)
		d := &smtpx.Dialer{TLSConfig: ca.ClientConfig()}
		start := time.Now()
		_, err := d.Dial(testnet.Context(t, deadline), addr)
		check(t, start, err)
	})
	t.Run("dialer timeout without ctx deadline", func(t *testing.T) {
		t.Parallel()
		addr := testnet.Silent(t, ca, false)
		d := &smtpx.Dialer{TLSConfig: ca.ClientConfig(), Timeout: deadline}
		start := time.Now()
		_, err := d.Dial(context.Background(), addr)
		check(t, start, err)
	})
	providertest.Stalled(t, "stalled AUTH", "smtp", deadline, func(t *testing.T) func(context.Context) error {
		block := make(chan struct{})
		srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: map[string]string{user: password},
			AuthHook: func() { <-block }})
		t.Cleanup(func() { close(block) }) // before the server's cleanup waits for it
		d := &smtpx.Dialer{TLSConfig: ca.ClientConfig(), Timeout: deadline}
		c, err := d.Dial(testnet.Context(t, 5*time.Second), srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return func(ctx context.Context) error { return c.Auth(ctx, user, password) }
	}, secrets...)
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		addr := testnet.Silent(t, ca, false)
		d := &smtpx.Dialer{TLSConfig: ca.ClientConfig()}
		providertest.WantCancelled(t, "smtp", func(ctx context.Context) error {
			_, err := d.Dial(ctx, addr)
			return err
		})
	})
}
