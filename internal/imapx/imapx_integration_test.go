package imapx_test

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/providertest"
	"github.com/orchard-mail/orchard/internal/testnet"
)

// Against the real Dovecot of scripts/testenv (skipped when it is not running).
func TestDovecot(t *testing.T) {
	t.Parallel()
	env, d, _ := providertest.Testenv(t)
	alice := env.User(t, 0)

	t.Run("good login", func(t *testing.T) {
		t.Parallel()
		ctx := testnet.Context(t, 10*time.Second)
		start := time.Now()
		c := dial(t, ctx, d, env.IMAPAddr)
		if err := c.Login(ctx, alice.Email, alice.Password); err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		// CONDSTORE and MOVE appear only after LOGIN on Dovecot (testenv.md §3),
		// so seeing them proves the capabilities were read after login.
		for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIdle, imap.CapCondStore, imap.CapMove} {
			if !c.Caps().Has(want) {
				t.Errorf("post-login caps lack %v: %v", want, c.Caps())
			}
		}
		if err := c.Run(ctx, func(raw *imapclient.Client) error {
			_, err := raw.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("dial+TLS+LOGIN+CAPABILITY OK in %v", elapsed)
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		ctx := testnet.Context(t, 10*time.Second)
		start := time.Now()
		c := dial(t, ctx, d, env.IMAPAddr)
		err := c.Login(ctx, alice.Email, "wrong-"+password)
		pe := wantKind(t, err, provider.KindAuth)
		t.Logf("refused in %v: %v", time.Since(start), pe)
	})
	t.Run("no CA", func(t *testing.T) {
		t.Parallel()
		_, err := (&imapx.Dialer{}).Dial(testnet.Context(t, 10*time.Second), env.IMAPAddr)
		wantKind(t, err, provider.KindTLS)
	})
}
