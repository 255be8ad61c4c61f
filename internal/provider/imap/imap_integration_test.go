package imap_test

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/imap"
	"github.com/orchard-mail/orchard/internal/smtpx"
	"github.com/orchard-mail/orchard/internal/testenv"
)

func TestVerifyAgainstTestenv(t *testing.T) {
	t.Parallel()
	env := testenv.Get(t)
	bob := env.User(t, 1)
	tc := &tls.Config{RootCAs: env.CAPool(t)}
	v := &imap.Verifier{IMAP: &imapx.Dialer{TLSConfig: tc}, SMTP: &smtpx.Dialer{TLSConfig: tc}}
	good := provider.Credentials{
		IMAPAddr: env.IMAPAddr, IMAPUsername: bob.Email, IMAPPassword: bob.Password,
		SMTPAddr: env.SMTPAddr, SMTPUsername: bob.Email, SMTPPassword: bob.Password,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.SMTPPassword = "wxyz-wxyz-wxyz-wxyz"
	err := v.Verify(ctx, bad)
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.KindAuth || pe.Service != "smtp" {
		t.Fatalf("wrong SMTP password: got %v, want smtp KindAuth", err)
	}
}
