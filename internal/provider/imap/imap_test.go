package imap_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/imapx/imapxtest"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/imap"
	"github.com/orchard-mail/orchard/internal/smtpx"
	"github.com/orchard-mail/orchard/internal/smtpx/smtpxtest"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	ca := imapxtest.NewCA(t)
	imapAddr := imapxtest.MemServer(t, ca, map[string]string{"imap-user": "imap-pass"})
	srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: map[string]string{"smtp-user": "smtp-pass"}})
	v := &imap.Verifier{IMAP: &imapx.Dialer{TLSConfig: ca.ClientConfig()}, SMTP: &smtpx.Dialer{TLSConfig: ca.ClientConfig()}}
	good := provider.Credentials{
		IMAPAddr: imapAddr, IMAPUsername: "imap-user", IMAPPassword: "imap-pass",
		SMTPAddr: srv.Addr, SMTPUsername: "smtp-user", SMTPPassword: "smtp-pass",
	}
	for _, tc := range []struct {
		name    string
		mod     func(*provider.Credentials)
		service string
		kind    provider.ErrorKind
	}{
		{"good", func(*provider.Credentials) {}, "", 0},
		{"wrong IMAP password", func(c *provider.Credentials) { c.IMAPPassword = "imap-wrong" }, "imap", provider.KindAuth},
		{"wrong SMTP password", func(c *provider.Credentials) { c.SMTPPassword = "smtp-wrong" }, "smtp", provider.KindAuth},
		{"SMTP down", func(c *provider.Credentials) { c.SMTPAddr = imapxtest.ClosedAddr(t) }, "smtp", provider.KindUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tc.mod(&c)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := v.Verify(ctx, c)
			if tc.kind == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Service != tc.service {
				t.Fatalf("got %v, want %s %v", err, tc.service, tc.kind)
			}
			if pe.Hint != "" {
				t.Errorf("generic IMAP error has an iCloud hint: %q", pe.Hint)
			}
			for _, p := range []string{c.IMAPPassword, c.SMTPPassword} {
				if strings.Contains(err.Error(), p) {
					t.Errorf("error reveals a password: %v", err)
				}
			}
		})
	}
}
