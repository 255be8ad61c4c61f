// Package imap checks the credentials of a generic IMAP + SMTP account.
package imap

import (
	"context"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/smtpx"
)

// Verifier checks generic IMAP/SMTP credentials. Nil dialers mean defaults.
type Verifier struct {
	IMAP *imapx.Dialer
	SMTP *smtpx.Dialer
}

// Verify logs in to IMAP, then authenticates to SMTP, with the usernames and
// passwords exactly as given. Errors are *provider.Error.
func (v *Verifier) Verify(ctx context.Context, c provider.Credentials) error {
	id := v.IMAP
	if id == nil {
		id = &imapx.Dialer{}
	}
	ic, err := id.Dial(ctx, c.IMAPAddr)
	if err != nil {
		return err
	}
	err = ic.Login(ctx, c.IMAPUsername, c.IMAPPassword)
	ic.Close()
	if err != nil {
		return err
	}

	sd := v.SMTP
	if sd == nil {
		sd = &smtpx.Dialer{}
	}
	sc, err := sd.Dial(ctx, c.SMTPAddr)
	if err != nil {
		return err
	}
	defer sc.Close()
	return sc.Auth(ctx, c.SMTPUsername, c.SMTPPassword)
}
