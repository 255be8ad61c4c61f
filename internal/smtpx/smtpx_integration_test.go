package smtpx_test

import (
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/providertest"
	"github.com/orchard-mail/orchard/internal/smtpx"
	"github.com/orchard-mail/orchard/internal/testnet"
)

// Against the real Postfix submission service of scripts/testenv, which
// checks passwords through Dovecot (skipped when it is not running).
func TestPostfix(t *testing.T) {
	t.Parallel()
	env, _, d := providertest.Testenv(t)
	d.LocalName = "orchard.test"
	alice := env.User(t, 0)

	t.Run("good AUTH", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		if err := dialAuth(t, d, env.SMTPAddr, alice.Email, alice.Password); err != nil {
			t.Fatal(err)
		}
		t.Logf("connect+STARTTLS+EHLO+AUTH OK in %v", time.Since(start))
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		err := dialAuth(t, d, env.SMTPAddr, alice.Email, "wrong-"+password)
		pe := wantKind(t, err, provider.KindAuth)
		if !strings.HasPrefix(pe.Text, "535 5.7.8") {
			t.Errorf("Text = %q, want Postfix's 535 5.7.8 reply", pe.Text)
		}
		t.Logf("refused in %v: %v", time.Since(start), pe)
	})
	t.Run("no CA", func(t *testing.T) {
		t.Parallel()
		_, err := (&smtpx.Dialer{}).Dial(testnet.Context(t, 10*time.Second), env.SMTPAddr)
		wantKind(t, err, provider.KindTLS)
	})
}
