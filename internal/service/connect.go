package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/store"
)

// CustomAuthInput is the body of POST /v3/connect/custom.
type CustomAuthInput struct {
	Provider string                     `json:"provider"`
	Settings map[string]json.RawMessage `json:"settings"`
	Scope    []string                   `json:"scope"`
	State    string                     `json:"state"`
}

// account is what a grant's settings say about the mailbox.
type account struct {
	email string
	creds provider.Credentials // addresses are empty for iCloud: they come from configuration
	// public is the part of the settings shown back in the grant.
	public map[string]any
}

// ConnectCustom checks credentials against the provider and creates the
// grant, or re-authenticates the grant of the same address (same id).
func (s *Service) ConnectCustom(ctx context.Context, appID string, in CustomAuthInput, client ClientInfo) (*api.Grant, error) {
	if err := checkProvider(in.Provider); err != nil {
		return nil, err
	}
	if _, err := s.store.GetConnector(ctx, appID, in.Provider); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalid("this application has no %s connector: add it first with POST /v3/connectors {\"provider\":%q}", in.Provider, in.Provider)
		}
		return nil, err
	}
	if in.Settings == nil {
		return nil, invalid("settings is required")
	}
	acct, err := parseAccountSettings(in.Provider, in.Settings)
	if err != nil {
		return nil, err
	}
	creds, err := s.verify(ctx, in.Provider, acct)
	if err != nil {
		s.log.InfoContext(ctx, "credential check failed", "provider", in.Provider, "email", acct.email, "error", err)
		return nil, err
	}
	scope := in.Scope
	if scope == nil {
		scope = []string{}
	}
	now := s.now()
	for attempt := 0; attempt < 2; attempt++ {
		g, err := s.store.GetGrantByEmail(ctx, appID, acct.email)
		switch {
		case errors.Is(err, store.ErrNotFound):
			g = &store.Grant{ID: newID(), ApplicationID: appID, Email: acct.email, CreatedAt: now}
		case err != nil:
			return nil, err
		}
		isNew := g.UpdatedAt.IsZero()
		if !isNew && !sameAccount(g, in.Provider, acct) {
			return nil, conflict("a grant for %s already exists for another mailbox account (provider, server or username differ); delete it first with DELETE /v3/grants/%s", acct.email, g.ID)
		}
		g.Provider, g.Status, g.Scope, g.State, g.UpdatedAt = in.Provider, GrantValid, scope, in.State, now
		g.IP, g.UserAgent = client.IP, client.UserAgent
		if err := s.setCredentials(g, acct, creds); err != nil {
			return nil, err
		}
		if isNew {
			err = s.store.CreateGrant(ctx, g)
			if errors.Is(err, store.ErrConflict) {
				continue // a concurrent request created it: re-authenticate that one
			}
		} else {
			err = s.store.UpdateGrant(ctx, g)
		}
		if err != nil {
			return nil, storeErr(err, "grant")
		}
		s.log.InfoContext(ctx, "grant authenticated", "grant_id", g.ID, "provider", g.Provider, "new", isNew)
		action := "updated" // a re-authentication revives the same grant
		if isNew {
			action = "created"
		}
		s.recordGrantChange(ctx, g.ID, action)
		s.grantChanged(g.ID)
		w := GrantWire(g)
		return &w, nil
	}
	return nil, conflict("grant for %s is being created by another request; retry", acct.email)
}

// sameAccount tells whether acct is the account g was made for, so that a
// re-authentication can never hand an existing grant (and its id, which
// applications key their data on) to another mailbox that merely claims
// the same address. An iCloud login proves the address itself; an IMAP
// login proves only the server and username.
func sameAccount(g *store.Grant, providerName string, acct account) bool {
	if g.Provider != providerName {
		return false
	}
	if providerName == ProviderICloud {
		return true
	}
	var old map[string]any
	if json.Unmarshal(g.Settings, &old) != nil {
		return false
	}
	return strings.EqualFold(fmt.Sprint(old["imap_host"]), fmt.Sprint(acct.public["imap_host"])) &&
		fmt.Sprint(old["imap_username"]) == fmt.Sprint(acct.public["imap_username"])
}

// verify checks the account against its provider within the provider
// timeout and returns the credentials that worked.
func (s *Service) verify(ctx context.Context, providerName string, acct account) (provider.Credentials, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if providerName == ProviderICloud {
		return s.icloud.Verify(ctx, acct.email, acct.creds.IMAPPassword)
	}
	return acct.creds, s.imap.Verify(ctx, acct.creds)
}

// setCredentials seals creds into g, bound to the grant id, and records
// the public settings.
func (s *Service) setCredentials(g *store.Grant, acct account, creds provider.Credentials) error {
	secret := creds
	secret.IMAPAddr, secret.SMTPAddr = "", ""
	if g.Provider == ProviderIMAP {
		secret.IMAPAddr, secret.SMTPAddr = creds.IMAPAddr, creds.SMTPAddr
	}
	plain, err := json.Marshal(secret)
	if err != nil {
		return err
	}
	if g.Credentials, err = s.box.Seal(plain, []byte(g.ID)); err != nil {
		return err
	}
	public := acct.public
	if g.Provider == ProviderICloud {
		public = map[string]any{"username": acct.email, "imap_username": creds.IMAPUsername, "smtp_username": creds.SMTPUsername}
	}
	g.Settings, err = json.Marshal(public)
	return err
}

// parseAccountSettings validates the provider settings of custom auth and
// grant updates. Messages name the setting so an SDK user can fix it.
func parseAccountSettings(providerName string, raw map[string]json.RawMessage) (account, error) {
	p := settingsParser{raw: raw}
	var a account
	switch providerName {
	case ProviderICloud:
		a.email = p.str("username", true)
		a.creds.IMAPPassword = p.str("password", true)
		a.creds.SMTPPassword = a.creds.IMAPPassword
		a.creds.IMAPUsername, a.creds.SMTPUsername = a.email, a.email
		if p.err == nil && !isEmail(a.email) {
			p.fail("settings.username must be the iCloud email address (e.g. name@icloud.com)")
		}
	case ProviderIMAP:
		c := &a.creds
		c.IMAPUsername = p.str("imap_username", true)
		c.IMAPPassword = p.str("imap_password", true)
		imapHost := p.host("imap_host")
		imapPort := p.port("imap_port")
		smtpHost := p.host("smtp_host")
		smtpPort := p.port("smtp_port")
		c.SMTPUsername = p.str("smtp_username", false)
		c.SMTPPassword = p.str("smtp_password", false)
		a.email = p.str("email", false)
		if p.err != nil {
			break
		}
		if c.SMTPUsername == "" {
			c.SMTPUsername = c.IMAPUsername
		}
		if c.SMTPPassword == "" {
			c.SMTPPassword = c.IMAPPassword
		}
		c.IMAPAddr = net.JoinHostPort(imapHost, strconv.Itoa(imapPort))
		c.SMTPAddr = net.JoinHostPort(smtpHost, strconv.Itoa(smtpPort))
		switch {
		case a.email != "" && !isEmail(a.email):
			p.fail("settings.email must be an email address")
		case a.email == "" && isEmail(c.IMAPUsername):
			a.email = c.IMAPUsername
		case a.email == "":
			p.fail("settings.imap_username is not an email address: add settings.email with the mailbox's address")
		}
		a.public = map[string]any{
			"imap_host": imapHost, "imap_port": imapPort, "imap_username": c.IMAPUsername,
			"smtp_host": smtpHost, "smtp_port": smtpPort, "smtp_username": c.SMTPUsername,
		}
	}
	return a, p.err
}

type settingsParser struct {
	raw map[string]json.RawMessage
	err error
}

func (p *settingsParser) fail(msg string) {
	if p.err == nil {
		p.err = invalid("%s", msg)
	}
}

func (p *settingsParser) str(name string, required bool) string {
	v, ok := p.raw[name]
	if !ok || string(v) == "null" {
		if required {
			p.fail("settings." + name + " is required")
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		p.fail("settings." + name + " must be a string")
		return ""
	}
	s = strings.TrimSpace(s)
	if s == "" && required {
		p.fail("settings." + name + " must not be empty")
	}
	return s
}

func (p *settingsParser) host(name string) string {
	h := p.str(name, true)
	if h != "" && (strings.ContainsAny(h, " /:@?#") && net.ParseIP(h) == nil) {
		p.fail("settings." + name + " must be a host name or IP address, without scheme or port")
	}
	return h
}

// port accepts a JSON number or a numeric string (the OpenAPI examples
// send "993").
func (p *settingsParser) port(name string) int {
	v, ok := p.raw[name]
	if !ok || string(v) == "null" {
		p.fail("settings." + name + " is required")
		return 0
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		var s string
		if json.Unmarshal(v, &s) != nil {
			p.fail("settings." + name + " must be a port number between 1 and 65535")
			return 0
		}
		n = json.Number(strings.TrimSpace(s))
	}
	port, err := strconv.Atoi(n.String())
	if err != nil || port < 1 || port > 65535 {
		p.fail("settings." + name + " must be a port number between 1 and 65535")
		return 0
	}
	return port
}

func isEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s, "@")
}
