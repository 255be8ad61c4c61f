package smtpx_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/smtpx"
	"github.com/orchard-mail/orchard/internal/smtpx/smtpxtest"
	"github.com/orchard-mail/orchard/internal/testnet"
)

const testMessage = "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nhello\r\n"

// sendVia dials srv, authenticates and sends testMessage to rcpts.
func sendVia(t *testing.T, d *smtpx.Dialer, srv *smtpxtest.Server, rcpts []string, timeout time.Duration) (bool, error) {
	t.Helper()
	ctx := testnet.Context(t, 5*time.Second)
	c, err := d.Dial(ctx, srv.Addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if err := c.Auth(ctx, user, password); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	ctx = testnet.Context(t, timeout)
	return c.Send(ctx, user, rcpts, []byte(testMessage))
}

func TestSend(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	users := map[string]string{user: password}
	d := &smtpx.Dialer{TLSConfig: ca.ClientConfig()}
	rcpts := []string{"bob@example.test", "carol@example.test"}

	t.Run("accepted", func(t *testing.T) {
		t.Parallel()
		srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: users})
		if uncertain, err := sendVia(t, d, srv, rcpts, 5*time.Second); err != nil || uncertain {
			t.Fatalf("Send = %v, %v", uncertain, err)
		}
		mails := srv.Mails()
		if len(mails) != 1 || mails[0].From != user || !slices.Equal(mails[0].To, rcpts) ||
			!bytes.Equal(mails[0].Data, []byte(testMessage)) {
			t.Fatalf("server got %+v", mails)
		}
	})
	t.Run("one recipient refused sends nothing", func(t *testing.T) {
		t.Parallel()
		srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: users,
			RcptReply: func(to string) *smtp.SMTPError {
				if to == "carol@example.test" {
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
				}
				return nil
			}})
		uncertain, err := sendVia(t, d, srv, rcpts, 5*time.Second)
		pe := wantKind(t, err, provider.KindRejected)
		if uncertain || !strings.Contains(pe.Text, "carol@example.test") || !strings.Contains(pe.Text, "550 5.1.1 User unknown") {
			t.Fatalf("uncertain=%v text=%q", uncertain, pe.Text)
		}
		if n := len(srv.Mails()); n != 0 {
			t.Fatalf("%d messages accepted after a refused recipient", n)
		}
	})
	t.Run("data refused permanently", func(t *testing.T) {
		t.Parallel()
		srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: users,
			DataReply: func() *smtp.SMTPError {
				return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too big"}
			}})
		uncertain, err := sendVia(t, d, srv, rcpts, 5*time.Second)
		pe := wantKind(t, err, provider.KindRejected)
		if uncertain || pe.Text != "552 5.3.4 Message too big" {
			t.Fatalf("uncertain=%v text=%q", uncertain, pe.Text)
		}
	})
	t.Run("data deferred", func(t *testing.T) {
		t.Parallel()
		srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: users,
			DataReply: func() *smtp.SMTPError {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
			}})
		uncertain, err := sendVia(t, d, srv, rcpts, 5*time.Second)
		wantKind(t, err, provider.KindUnavailable)
		if uncertain {
			t.Fatal("a 4xx reply is certain: nothing was accepted")
		}
	})
	t.Run("no reply after data is uncertain", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv := smtpxtest.Start(t, smtpxtest.Options{TLSConfig: ca.ServerConfig(t), Users: users,
			DataHook: func() { <-release }})
		defer close(release)
		uncertain, err := sendVia(t, d, srv, rcpts, 300*time.Millisecond)
		wantKind(t, err, provider.KindTimeout)
		if !uncertain {
			t.Fatal("a message transmitted without a reply must be reported as uncertain")
		}
	})
}
