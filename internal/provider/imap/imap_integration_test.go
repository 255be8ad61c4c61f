package imap_test

import (
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/imap"
	"github.com/orchard-mail/orchard/internal/provider/providertest"
	"github.com/orchard-mail/orchard/internal/testnet"
)

func TestVerifyAgainstTestenv(t *testing.T) {
	t.Parallel()
	env, id, sd := providertest.Testenv(t)
	bob := env.User(t, 1)
	v := &imap.Verifier{IMAP: id, SMTP: sd}
	good := provider.SameLogin(env.IMAPAddr, env.SMTPAddr, bob.Email, bob.Password)
	ctx := testnet.Context(t, 10*time.Second)
	if err := v.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.SMTPPassword = "wxyz-wxyz-wxyz-wxyz"
	providertest.WantKind(t, v.Verify(ctx, bad), "smtp", provider.KindAuth, bad.SMTPPassword)
}
