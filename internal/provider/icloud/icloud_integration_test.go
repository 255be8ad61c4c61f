package icloud_test

import (
	"context"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/icloud"
	"github.com/orchard-mail/orchard/internal/provider/providertest"
)

// The iCloud connector pointed at the real Dovecot and Postfix of
// scripts/testenv, as ORCHARD_ICLOUD_*_ADDR would (skipped when not running).
func TestVerifierAgainstTestenv(t *testing.T) {
	t.Parallel()
	env, id, sd := providertest.Testenv(t)
	alice := env.User(t, 0)
	v := &icloud.Verifier{IMAP: id, SMTP: sd, IMAPAddr: env.IMAPAddr, SMTPAddr: env.SMTPAddr}

	t.Run("good", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		creds, err := v.Verify(ctx, alice.Email, alice.Password)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("good verification (IMAP + SMTP) in %v", time.Since(start))
		want := provider.SameLogin(env.IMAPAddr, env.SMTPAddr, alice.Email, alice.Password)
		if creds != want {
			t.Errorf("creds = %v, want %v", creds, want)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		// Dovecot knows only full addresses, so the local-part retry is
		// refused too: two refusals of ~0.5 s each (testenv.md gotcha 4).
		_, err := v.Verify(ctx, alice.Email, "wxyz-wxyz-wxyz-wxyz")
		t.Logf("bad verification in %v: %v", time.Since(start), err)
		wantErr(t, err, "imap", provider.KindAuth, true)
	})
	t.Run("no CA", func(t *testing.T) {
		t.Parallel()
		v := &icloud.Verifier{IMAPAddr: env.IMAPAddr, SMTPAddr: env.SMTPAddr}
		_, err := v.Verify(context.Background(), alice.Email, alice.Password)
		wantErr(t, err, "imap", provider.KindTLS, false)
	})
}
