package icloud_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/imapx/imapxtest"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/icloud"
	"github.com/orchard-mail/orchard/internal/provider/providertest"
	"github.com/orchard-mail/orchard/internal/smtpx"
	"github.com/orchard-mail/orchard/internal/smtpx/smtpxtest"
	"github.com/orchard-mail/orchard/internal/testnet"
)

const (
	email    = "alice@icloud.test"
	local    = "alice"
	password = "abcd-efgh-ijkl-mnop"
)

// fakeICloud answers LOGIN with OK for the usernames in accept and with
// reply (default: iCloud's refusal) for everyone else.
func fakeICloud(t *testing.T, ca *testnet.CA, reply string, accept ...string) *imapxtest.Fake {
	if reply == "" {
		reply = "NO [AUTHENTICATIONFAILED] Authentication failed"
	}
	return imapxtest.NewFake(t, ca,
		"* OK [CAPABILITY XAPPLEPUSHSERVICE IMAP4 IMAP4rev1 SASL-IR AUTH=ATOKEN AUTH=PLAIN] (2313B20-3ff771b405ab) mr36p00im-tygg11191201.me.com",
		func(tag, cmd, args string) []string {
			switch cmd {
			case "LOGIN":
				u := loginUser(args)
				for _, a := range accept {
					if u == a {
						return []string{tag + " OK user " + local + " logged in"}
					}
				}
				return []string{tag + " " + reply}
			case "CAPABILITY":
				return []string{"* CAPABILITY XAPPLEPUSHSERVICE IMAP4 IMAP4rev1 IDLE CONDSTORE ", tag + " OK CAPABILITY completed"}
			}
			return nil
		})
}

// loginUser extracts the username from LOGIN's arguments (atom or quoted).
func loginUser(args string) string {
	if strings.HasPrefix(args, `"`) {
		u, _, _ := strings.Cut(args[1:], `"`)
		return u
	}
	u, _, _ := strings.Cut(args, " ")
	return u
}

// logins returns the usernames of the LOGIN commands f received.
func logins(f *imapxtest.Fake) []string {
	var us []string
	for _, l := range f.Lines() {
		_, rest, _ := strings.Cut(l, " ")
		if cmd, args, _ := strings.Cut(rest, " "); strings.EqualFold(cmd, "LOGIN") {
			us = append(us, loginUser(args))
		}
	}
	return us
}

type setup struct {
	imap *imapxtest.Fake
	smtp *smtpxtest.Server
	v    *icloud.Verifier
}

func newSetup(t *testing.T, imapReply string, smtpUsers map[string]string, accept ...string) *setup {
	t.Helper()
	ca := testnet.NewCA(t)
	f := fakeICloud(t, ca, imapReply, accept...)
	s := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: smtpUsers})
	return &setup{imap: f, smtp: s, v: &icloud.Verifier{
		IMAP:     &imapx.Dialer{TLSConfig: ca.ClientConfig()},
		SMTP:     &smtpx.Dialer{TLSConfig: ca.ClientConfig()},
		IMAPAddr: f.Addr, SMTPAddr: s.Addr,
	}}
}

func verify(t *testing.T, s *setup, user string) (provider.Credentials, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	creds, err := s.v.Verify(ctx, user, password)
	if err != nil {
		if strings.Contains(err.Error(), password) {
			t.Errorf("error reveals the password: %v", err)
		}
		if creds != (provider.Credentials{}) {
			t.Errorf("credentials returned with an error: %v", creds)
		}
	}
	return creds, err
}

func wantErr(t *testing.T, err error, service string, kind provider.ErrorKind, hint bool) {
	t.Helper()
	pe := providertest.WantKind(t, err, service, kind)
	if got := pe.Hint == icloud.AuthHint; got != hint {
		t.Errorf("Hint = %q, want AuthHint: %v", pe.Hint, hint)
	}
}

func TestFullAddressAccepted(t *testing.T) {
	t.Parallel()
	s := newSetup(t, "", map[string]string{email: password}, email)
	creds, err := verify(t, s, " "+email+" ")
	if err != nil {
		t.Fatal(err)
	}
	want := provider.SameLogin(s.imap.Addr, s.smtp.Addr, email, password)
	if creds != want {
		t.Errorf("creds = %#v, want %#v", creds, want)
	}
	if got := logins(s.imap); len(got) != 1 || got[0] != email {
		t.Errorf("IMAP logins = %q, want one with the full address", got)
	}
}

func TestLocalPartFallback(t *testing.T) {
	t.Parallel()
	s := newSetup(t, "", map[string]string{email: password}, local)
	creds, err := verify(t, s, email)
	if err != nil {
		t.Fatal(err)
	}
	if creds.IMAPUsername != local || creds.SMTPUsername != email {
		t.Errorf("usernames = IMAP %q SMTP %q, want %q and %q", creds.IMAPUsername, creds.SMTPUsername, local, email)
	}
	if got := logins(s.imap); strings.Join(got, ",") != email+","+local {
		t.Errorf("IMAP logins = %q, want full address then local part", got)
	}
	if us, _, _ := s.smtp.Auths(); len(us) != 1 || us[0] != email {
		t.Errorf("SMTP AUTH users = %q, want the full address", us)
	}
}

func TestBothRefused(t *testing.T) {
	t.Parallel()
	s := newSetup(t, "", map[string]string{email: password})
	_, err := verify(t, s, email)
	wantErr(t, err, "imap", provider.KindAuth, true)
	if got := logins(s.imap); len(got) != 2 {
		t.Errorf("IMAP logins = %q, want exactly two attempts", got)
	}
	if us, _, _ := s.smtp.Auths(); len(us) != 0 {
		t.Errorf("SMTP contacted after an IMAP refusal: %q", us)
	}
}

func TestNoLocalPart(t *testing.T) {
	t.Parallel()
	s := newSetup(t, "", nil)
	_, err := verify(t, s, "alice")
	wantErr(t, err, "imap", provider.KindAuth, true)
	if got := logins(s.imap); len(got) != 1 {
		t.Errorf("IMAP logins = %q, want one attempt for an address without '@'", got)
	}
}

func TestTransientIsNotRetriedAsLocalPart(t *testing.T) {
	t.Parallel()
	s := newSetup(t, "BAD [UNAVAILABLE] Service temporarily unavailable", nil)
	_, err := verify(t, s, email)
	wantErr(t, err, "imap", provider.KindUnavailable, false)
	if got := logins(s.imap); len(got) != 1 {
		t.Errorf("IMAP logins = %q, want no local-part attempt after a transient failure", got)
	}
}

func TestSecondAttemptTransient(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	f := imapxtest.NewFake(t, ca, "* OK [CAPABILITY IMAP4rev1] ready", func(tag, cmd, args string) []string {
		if cmd != "LOGIN" {
			return nil
		}
		if loginUser(args) == email {
			return []string{tag + " NO [AUTHENTICATIONFAILED] Authentication failed"}
		}
		return []string{tag + " NO [UNAVAILABLE] Try later"}
	})
	v := &icloud.Verifier{IMAP: &imapx.Dialer{TLSConfig: ca.ClientConfig()}, IMAPAddr: f.Addr, SMTPAddr: testnet.ClosedAddr(t)}
	_, err := v.Verify(context.Background(), email, password)
	// The outage, not the refusal: the local-part form was never judged.
	wantErr(t, err, "imap", provider.KindUnavailable, false)
}

func TestSMTPRefused(t *testing.T) {
	t.Parallel()
	s := newSetup(t, "", map[string]string{email: "another-password"}, email)
	_, err := verify(t, s, email)
	wantErr(t, err, "smtp", provider.KindAuth, true)
}

func TestSMTPUnreachable(t *testing.T) {
	t.Parallel()
	s := newSetup(t, "", nil, email)
	s.v.SMTPAddr = testnet.ClosedAddr(t)
	_, err := verify(t, s, email)
	wantErr(t, err, "smtp", provider.KindUnavailable, false)
}
