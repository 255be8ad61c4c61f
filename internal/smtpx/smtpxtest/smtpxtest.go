// Package smtpxtest runs go-smtp's server on loopback for tests of the SMTP
// wrapper and of the connectors built on it.
package smtpxtest

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/orchard-mail/orchard/internal/testnet"
)

// Options configure a test server.
type Options struct {
	// TLSConfig enables STARTTLS; nil means the server does not offer it
	// (and, for the test, allows AUTH in the clear so that only the missing
	// STARTTLS makes a client fail).
	TLSConfig *tls.Config
	// Users maps usernames to passwords.
	Users map[string]string
	// Mechanisms offered (default PLAIN and LOGIN).
	Mechanisms []string
	// AuthReply, if set, is the answer to every AUTH attempt instead of
	// checking Users (e.g. 454 4.7.0).
	AuthReply *smtp.SMTPError
	// AuthHook, if set, runs before each AUTH attempt is answered (a test
	// can block in it to simulate a stalled server).
	AuthHook func()
	// RcptReply, if set, answers RCPT TO for the address (nil: accept).
	RcptReply func(to string) *smtp.SMTPError
	// DataReply, if set, answers the end of DATA instead of accepting the
	// message (nil: accept).
	DataReply func() *smtp.SMTPError
	// DataHook, if set, runs after the message was read and before the
	// end of DATA is answered (a test can block in it).
	DataHook func()
}

// Mail is one message the server accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
}

// Server is a running test server.
type Server struct {
	Addr string

	mu    sync.Mutex
	auths []string // usernames of AUTH attempts, in order
	mechs []string // mechanism of each attempt
	helos []string // EHLO name in effect at each attempt
	mails []Mail
}

// Mails returns the messages accepted so far.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, opts: &opts, conn: c}, nil
	}))
	srv.Domain = "smtp.example.test"
	srv.TLSConfig = opts.TLSConfig
	srv.AllowInsecureAuth = opts.TLSConfig == nil
	logger := testnet.NewLogger(t, "smtp server:")
	srv.ErrorLog = logger
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		logger.Stop()
		_ = srv.Close()
		<-done
	})
	return s
}

// Auths returns, for each AUTH attempt so far, the username, the mechanism
// and the EHLO name the client had given.
func (s *Server) Auths() (users, mechs, helos []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...), append([]string(nil), s.mechs...), append([]string(nil), s.helos...)
}

func (s *Server) record(user, mech, helo string) {
	s.mu.Lock()
	s.auths = append(s.auths, user)
	s.mechs = append(s.mechs, mech)
	s.helos = append(s.helos, helo)
	s.mu.Unlock()
}

type session struct {
	srv  *Server
	opts *Options
	conn *smtp.Conn
	mail Mail
}

func (s *session) AuthMechanisms() []string {
	if s.opts.Mechanisms != nil {
		return s.opts.Mechanisms
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) check(mech, user, pass string) error {
	s.srv.record(user, mech, s.conn.Hostname())
	if s.opts.AuthHook != nil {
		s.opts.AuthHook()
	}
	if s.opts.AuthReply != nil {
		return s.opts.AuthReply
	}
	if want, ok := s.opts.Users[user]; ok && want == pass {
		return nil
	}
	return smtp.ErrAuthFailed // 535 5.7.8
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			return s.check(mech, user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: func(user, pass string) error { return s.check(mech, user, pass) }}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of AUTH LOGIN, which go-sasl lacks.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if response != nil {
			// Initial response carries the username.
			l.user = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.user, string(response))
	}
	return nil, false, errors.New("unexpected response")
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.mail = Mail{From: from}
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.opts.RcptReply != nil {
		if e := s.opts.RcptReply(to); e != nil {
			return e
		}
	}
	s.mail.To = append(s.mail.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.opts.DataHook != nil {
		s.opts.DataHook()
	}
	if s.opts.DataReply != nil {
		if e := s.opts.DataReply(); e != nil {
			return e
		}
	}
	s.mail.Data = data
	s.srv.mu.Lock()
	s.srv.mails = append(s.srv.mails, s.mail)
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.mail = Mail{} }
func (s *session) Logout() error { return nil }
