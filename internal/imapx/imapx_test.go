package imapx_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/imapx/imapxtest"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/providertest"
	"github.com/orchard-mail/orchard/internal/testnet"
)

const (
	user     = "alice@example.test"
	password = "abcd-efgh-ijkl-mnop"
)

// dial connects with d and fails the test if that fails; the client is
// closed when the test ends.
func dial(t *testing.T, ctx context.Context, d *imapx.Dialer, addr string) *imapx.Client {
	t.Helper()
	c, err := d.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantKind asserts that err is a *provider.Error of the given kind for the
// imap service, and that nothing in it reveals the password.
func wantKind(t *testing.T, err error, kind provider.ErrorKind) *provider.Error {
	t.Helper()
	return providertest.WantKind(t, err, "imap", kind, password)
}

func TestMemServerLogin(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	addr := imapxtest.MemServer(t, ca, map[string]string{user: password})
	d := &imapx.Dialer{TLSConfig: ca.ClientConfig()}

	t.Run("good", func(t *testing.T) {
		t.Parallel()
		ctx := testnet.Context(t, 5*time.Second)
		c := dial(t, ctx, d, addr)
		if c.Caps() != nil {
			t.Errorf("Caps before login = %v, want nil", c.Caps())
		}
		if err := c.Login(ctx, user, password); err != nil {
			t.Fatal(err)
		}
		if !c.Caps().Has(imap.CapIMAP4rev1) || !c.Caps().Has(imap.CapIdle) {
			t.Errorf("Caps after login = %v, want IMAP4rev1 and IDLE", c.Caps())
		}
		// The client is usable afterwards, through Run.
		err := c.Run(ctx, func(raw *imapclient.Client) error {
			_, err := raw.Select("INBOX", nil).Wait()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// A NO to an ordinary command is a protocol error, not a refusal of
		// credentials.
		err = c.Run(ctx, func(raw *imapclient.Client) error {
			_, err := raw.Select("Nope", nil).Wait()
			return err
		})
		wantKind(t, err, provider.KindProtocol)
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		ctx := testnet.Context(t, 5*time.Second)
		c := dial(t, ctx, d, addr)
		err := c.Login(ctx, user, "wrong-"+password)
		pe := wantKind(t, err, provider.KindAuth)
		if !strings.Contains(pe.Text, "[AUTHENTICATIONFAILED]") {
			t.Errorf("Text = %q, want the server's [AUTHENTICATIONFAILED] reply", pe.Text)
		}
		if !pe.Permanent() {
			t.Error("auth failure not permanent")
		}
		want := "imap " + addr + ": authentication failed: [AUTHENTICATIONFAILED] Authentication failed"
		if err.Error() != want {
			t.Errorf("Error() = %q, want %q", err.Error(), want)
		}
		if c.Caps() != nil {
			t.Errorf("Caps after failed login = %v, want nil", c.Caps())
		}
	})
}

// icloudGreeting is iCloud's 2023 greeting (icloud.md §B.1).
const icloudGreeting = "* OK [CAPABILITY XAPPLEPUSHSERVICE IMAP4 IMAP4rev1 SASL-IR AUTH=ATOKEN AUTH=PLAIN] (2313B20-3ff771b405ab) mr36p00im-tygg11191201.me.com"

// loginReply returns a handler that answers LOGIN with reply (the tag is
// prepended) and everything else with OK.
func loginReply(reply ...string) imapxtest.Handler {
	return func(tag, cmd, args string) []string {
		switch cmd {
		case "LOGIN":
			out := append([]string(nil), reply...)
			out[len(out)-1] = tag + " " + out[len(out)-1]
			return out
		case "LOGOUT":
			return nil
		case "CAPABILITY":
			return []string{"* CAPABILITY IMAP4rev1", tag + " OK CAPABILITY completed"}
		}
		return []string{tag + " OK done"}
	}
}

func TestLoginReplies(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	d := &imapx.Dialer{TLSConfig: ca.ClientConfig()}
	for _, tc := range []struct {
		name  string
		reply []string
		kind  provider.ErrorKind
		text  string
	}{
		// icloud.md §B.1: iCloud's transient failure, not a bad password.
		{"BAD UNAVAILABLE", []string{"BAD [UNAVAILABLE] Service temporarily unavailable"}, provider.KindUnavailable, "BAD [UNAVAILABLE] Service temporarily unavailable"},
		{"NO UNAVAILABLE", []string{"NO [UNAVAILABLE] Temporary authentication failure"}, provider.KindUnavailable, "[UNAVAILABLE] Temporary authentication failure"},
		{"SERVERBUG", []string{"NO [SERVERBUG] Internal error"}, provider.KindUnavailable, "[SERVERBUG] Internal error"},
		{"CONTACTADMIN", []string{"NO [CONTACTADMIN] Account problem"}, provider.KindUnavailable, "[CONTACTADMIN] Account problem"},
		{"iCloud 2025 refusal", []string{"NO [AUTHENTICATIONFAILED] Authentication Failed"}, provider.KindAuth, "[AUTHENTICATIONFAILED] Authentication Failed"},
		{"plain NO", []string{"NO LOGIN failed"}, provider.KindAuth, "LOGIN failed"},
		{"NO without text", []string{"NO"}, provider.KindAuth, ""},
		{"PRIVACYREQUIRED", []string{"NO [PRIVACYREQUIRED] Plaintext authentication disallowed"}, provider.KindTLS, "[PRIVACYREQUIRED] Plaintext authentication disallowed"},
		{"BAD without code", []string{"BAD Parse Error"}, provider.KindProtocol, "BAD Parse Error"},
		{"BYE then closed", []string{"* BYE Too many connections", "NO [UNAVAILABLE] bye"}, provider.KindUnavailable, ""},
		// A server that quotes what it got must not leak the password.
		{"echo", []string{"NO [AUTHENTICATIONFAILED] Bad password " + password}, provider.KindAuth, "[AUTHENTICATIONFAILED] Bad password [redacted]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := imapxtest.NewFake(t, ca, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready", loginReply(tc.reply...))
			ctx := testnet.Context(t, 5*time.Second)
			c := dial(t, ctx, d, f.Addr)
			err := c.Login(ctx, user, password)
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

func TestICloudShapedSession(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	// Post-login CAPABILITY as iCloud sends it: server-id tokens inside the
	// list and a trailing space before CRLF (icloud.md §B.2). go-imap beta.8
	// accepts the trailing space (its issue #571); this pins that.
	postCaps := "* CAPABILITY st11p00mm-iscream009 1Q49 XAPPLEPUSHSERVICE IMAP4 IMAP4rev1 SASL-IR CONDSTORE ENABLE QRESYNC UIDPLUS IDLE X-APPLE-REMOTE-LINKS XAPPLELITERAL "
	f := imapxtest.NewFake(t, ca, icloudGreeting, func(tag, cmd, args string) []string {
		switch cmd {
		case "LOGIN":
			return []string{tag + " OK user alice logged in"}
		case "CAPABILITY":
			return []string{postCaps, tag + " OK CAPABILITY completed"}
		case "NOOP":
			return []string{tag + " OK NOOP completed"}
		}
		return nil // LOGOUT: bare "* BYE"
	})
	d := &imapx.Dialer{TLSConfig: ca.ClientConfig()}
	ctx := testnet.Context(t, 5*time.Second)
	c, err := d.Dial(ctx, f.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, user, password); err != nil {
		t.Fatal(err)
	}
	caps := c.Caps()
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapCondStore, imap.CapIdle, "XAPPLEPUSHSERVICE", "XAPPLELITERAL"} {
		if !caps.Has(want) {
			t.Errorf("post-login caps %v lack %v", caps, want)
		}
	}
	if caps.Has("AUTH=PLAIN") || caps.Has("AUTH=ATOKEN") {
		t.Errorf("post-login caps %v still hold the pre-login AUTH= entries", caps)
	}
	// The connection survived the odd CAPABILITY line.
	if err := c.Run(ctx, func(raw *imapclient.Client) error { return raw.Noop().Wait() }); err != nil {
		t.Fatalf("NOOP after login: %v", err)
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close took %v with a bare * BYE", el)
	}
	lines := f.Lines()
	if len(lines) == 0 || !strings.HasSuffix(lines[len(lines)-1], "LOGOUT") {
		t.Errorf("last command = %q, want LOGOUT", lines)
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	d := &imapx.Dialer{TLSConfig: ca.ClientConfig()}
	const deadline = 300 * time.Millisecond

	check := func(t *testing.T, start time.Time, err error) {
		t.Helper()
		providertest.WantTimeout(t, err, "imap", start, deadline, password)
	}
	for _, tc := range []struct {
		name    string
		tlsDone bool
	}{{"silent TCP", false}, {"no greeting", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := testnet.Silent(t, ca, tc.tlsDone)
			start := time.Now()
			_, err := d.Dial(testnet.Context(t, deadline), addr)
			check(t, start, err)
		})
	}
	t.Run("dialer timeout without ctx deadline", func(t *testing.T) {
		t.Parallel()
		addr := testnet.Silent(t, ca, true)
		d := &imapx.Dialer{TLSConfig: ca.ClientConfig(), Timeout: deadline}
		start := time.Now()
		_, err := d.Dial(context.Background(), addr)
		check(t, start, err)
	})
	providertest.Stalled(t, "no answer to LOGIN", "imap", deadline, func(t *testing.T) func(context.Context) error {
		block := make(chan struct{})
		f := imapxtest.NewFake(t, ca, "* OK ready", func(tag, cmd, args string) []string {
			if cmd == "LOGIN" {
				<-block
			}
			return []string{tag + " OK"}
		})
		// Registered after NewFake so that it runs before the fake's
		// cleanup waits for its handlers.
		t.Cleanup(func() { close(block) })
		d := &imapx.Dialer{TLSConfig: ca.ClientConfig(), Timeout: deadline}
		c, err := d.Dial(testnet.Context(t, 5*time.Second), f.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return func(ctx context.Context) error { return c.Login(ctx, user, password) }
	}, password)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	addr := testnet.Silent(t, ca, true)
	d := &imapx.Dialer{TLSConfig: ca.ClientConfig()}
	providertest.WantCancelled(t, "imap", func(ctx context.Context) error {
		_, err := d.Dial(ctx, addr)
		return err
	})
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	d := &imapx.Dialer{TLSConfig: ca.ClientConfig()}
	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		_, err := d.Dial(testnet.Context(t, 5*time.Second), testnet.ClosedAddr(t))
		pe := wantKind(t, err, provider.KindUnavailable)
		if pe.Permanent() {
			t.Error("closed port reported as permanent")
		}
	})
	t.Run("greeting BYE", func(t *testing.T) {
		t.Parallel()
		f := imapxtest.NewFake(t, ca, "* BYE [UNAVAILABLE] Too many connections", func(tag, cmd, args string) []string { return nil })
		_, err := d.Dial(testnet.Context(t, 5*time.Second), f.Addr)
		pe := wantKind(t, err, provider.KindUnavailable)
		if pe.Text != "BYE [UNAVAILABLE] Too many connections" {
			t.Errorf("Text = %q, want the BYE greeting", pe.Text)
		}
	})
	t.Run("closed after LOGIN", func(t *testing.T) {
		t.Parallel()
		f := imapxtest.NewFake(t, ca, "* OK ready", func(tag, cmd, args string) []string {
			if cmd == "CAPABILITY" { // go-imap asks after a greeting without them
				return []string{"* CAPABILITY IMAP4rev1", tag + " OK done"}
			}
			return nil
		})
		ctx := testnet.Context(t, 5*time.Second)
		c := dial(t, ctx, d, f.Addr)
		pe := wantKind(t, c.Login(ctx, user, password), provider.KindUnavailable)
		if !strings.Contains(pe.Text, "closed") {
			t.Errorf("Text = %q, want it to say the connection was closed", pe.Text)
		}
	})
	t.Run("bad address", func(t *testing.T) {
		t.Parallel()
		_, err := d.Dial(testnet.Context(t, time.Second), "no-port")
		wantKind(t, err, provider.KindProtocol)
	})
}

func TestTLSFailures(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	addr := imapxtest.MemServer(t, ca, map[string]string{user: password})
	other := testnet.NewCA(t)
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"untrusted", other.ClientConfig()},
		{"system roots", nil},
		{"hostname mismatch", &tls.Config{RootCAs: ca.Pool, ServerName: "imap.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := &imapx.Dialer{TLSConfig: tc.cfg}
			_, err := d.Dial(testnet.Context(t, 5*time.Second), addr)
			pe := wantKind(t, err, provider.KindTLS)
			if !pe.Permanent() {
				t.Error("TLS failure not permanent")
			}
		})
	}
	t.Run("not TLS", func(t *testing.T) {
		t.Parallel()
		// A plaintext IMAP server on the implicit-TLS port.
		addr := plainServer(t, "* OK plaintext IMAP ready\r\n")
		d := &imapx.Dialer{TLSConfig: ca.ClientConfig()}
		_, err := d.Dial(testnet.Context(t, 5*time.Second), addr)
		wantKind(t, err, provider.KindTLS)
	})
}

// plainServer accepts connections and writes greeting in the clear.
func plainServer(t *testing.T, greeting string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testnet.Serve(t, ln, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(greeting))
		buf := make([]byte, 1024)
		c.Read(buf)
	})
	return ln.Addr().String()
}
