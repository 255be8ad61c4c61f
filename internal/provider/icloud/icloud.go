// Package icloud checks Apple iCloud mail credentials: an Apple ID email and
// an app-specific password, against iCloud's IMAP and SMTP servers.
package icloud

import (
	"context"
	"errors"
	"strings"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/smtpx"
)

// AuthHint is attached to every credential refusal: iCloud answers a wrong
// password, the Apple ID password instead of an app-specific one, and a wrong
// username form with the same reply (icloud.md §B.1), and by far the most
// common cause is the Apple ID password.
const AuthHint = "Apple refused this password. Use an app-specific password, not your Apple ID password: sign in at https://appleid.apple.com, open Sign-In and Security > App-Specific Passwords, create one for this app, and enter it here (it looks like xxxx-xxxx-xxxx-xxxx)."

// Default server addresses (DESIGN.md §3.2); tests and air-gapped users
// override them through the Verifier's fields.
const (
	DefaultIMAPAddr = "imap.mail.me.com:993"
	DefaultSMTPAddr = "smtp.mail.me.com:587"
)

// Verifier checks iCloud credentials. Nil dialers and empty addresses mean
// the defaults.
type Verifier struct {
	IMAP               *imapx.Dialer
	SMTP               *smtpx.Dialer
	IMAPAddr, SMTPAddr string
}

// Verify logs in to IMAP and then authenticates to SMTP, and returns the
// Credentials that worked. For IMAP it tries the full address first and,
// only after a credential refusal (KindAuth) and when the address has a local
// part, the local part, as icloud.md §B.1 recommends (Thunderbird's ISPDB
// uses the local part; most accounts accept both). SMTP always uses the full
// address. No other retries: every refusal counts towards Apple's unpublished
// lockout threshold. A KindAuth error carries Hint = AuthHint; all errors are
// *provider.Error.
func (v *Verifier) Verify(ctx context.Context, email, password string) (provider.Credentials, error) {
	email = strings.TrimSpace(email)
	creds := provider.SameLogin(v.imapAddr(), v.smtpAddr(), email, password)

	err := imapLogin(ctx, v.IMAP, creds.IMAPAddr, email, password)
	if local, _, ok := strings.Cut(email, "@"); ok && local != "" && provider.KindOf(err) == provider.KindAuth {
		if err2 := imapLogin(ctx, v.IMAP, creds.IMAPAddr, local, password); err2 == nil {
			creds.IMAPUsername = local
			err = nil
		} else if provider.KindOf(err2) != provider.KindAuth {
			// The second answer is not a verdict on the password (a timeout,
			// an outage): report that rather than a refusal that may be wrong
			// for the local-part form.
			err = err2
		}
	}
	if err != nil {
		return provider.Credentials{}, withHint(err)
	}

	if err := smtpAuth(ctx, v.SMTP, creds.SMTPAddr, email, password); err != nil {
		return provider.Credentials{}, withHint(err)
	}
	return creds, nil
}

func (v *Verifier) imapAddr() string {
	if v.IMAPAddr != "" {
		return v.IMAPAddr
	}
	return DefaultIMAPAddr
}

func (v *Verifier) smtpAddr() string {
	if v.SMTPAddr != "" {
		return v.SMTPAddr
	}
	return DefaultSMTPAddr
}

// imapLogin opens a fresh connection for each attempt: after a refusal a
// server may drop the connection, and a clean one keeps the attempts alike.
func imapLogin(ctx context.Context, d *imapx.Dialer, addr, username, password string) error {
	if d == nil {
		d = &imapx.Dialer{}
	}
	c, err := d.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Login(ctx, username, password)
}

func smtpAuth(ctx context.Context, d *smtpx.Dialer, addr, username, password string) error {
	if d == nil {
		d = &smtpx.Dialer{}
	}
	c, err := d.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Auth(ctx, username, password)
}

// withHint sets AuthHint on a credential refusal.
func withHint(err error) error {
	var pe *provider.Error
	if errors.As(err, &pe) && pe.Kind == provider.KindAuth {
		pe.Hint = AuthHint
	}
	return err
}
