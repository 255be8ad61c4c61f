package imap_test

import (
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/imapx/imapxtest"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/imap"
	"github.com/orchard-mail/orchard/internal/provider/providertest"
	"github.com/orchard-mail/orchard/internal/smtpx"
	"github.com/orchard-mail/orchard/internal/smtpx/smtpxtest"
	"github.com/orchard-mail/orchard/internal/testnet"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
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
		{"SMTP down", func(c *provider.Credentials) { c.SMTPAddr = testnet.ClosedAddr(t) }, "smtp", provider.KindUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tc.mod(&c)
			err := v.Verify(testnet.Context(t, 5*time.Second), c)
			if tc.kind == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			pe := providertest.WantKind(t, err, tc.service, tc.kind, c.IMAPPassword, c.SMTPPassword)
			if pe.Hint != "" {
				t.Errorf("generic IMAP error has an iCloud hint: %q", pe.Hint)
			}
		})
	}
}
