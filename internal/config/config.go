// Package config reads Orchard's configuration from the environment
// (DESIGN.md §3.2), applies defaults and reports every problem at once.
package config

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/quota"
)

// Config is the whole runtime configuration. Zero values are never used:
// Load fills every field with its default first.
type Config struct {
	Listen          string
	PublicURL       string
	DataDir         string
	DatabaseURL     string
	SecretKey       []byte // 32 bytes, or nil to use/generate the data-dir key
	ICloudIMAPAddr  string
	ICloudSMTPAddr  string
	ICloudCalDAVURL string
	CAFile          string
	RootCAs         *x509.CertPool // system roots plus CAFile; nil means system roots only
	SyncWindowDays  int
	// SyncPollInterval is how often folders other than INBOX (watched
	// with IDLE) are checked for changes.
	SyncPollInterval time.Duration
	LogFormat        string
	// ProviderTimeout bounds one credential check or provider call.
	ProviderTimeout time.Duration
	// MaxBodyBytes is the largest request body accepted by JSON endpoints.
	MaxBodyBytes int64
	// MaxSendBytes is the largest body of a send or draft request, which
	// carries attachments.
	MaxSendBytes int64
	// SendLimits are the sending limits per provider: quota's defaults
	// with ORCHARD_SEND_LIMITS applied.
	SendLimits map[string]quota.Limits
	// WebhookTimeout bounds one webhook POST (Nylas: 10 s); a claimed
	// delivery is a node's for three times that.
	WebhookTimeout time.Duration
	// CalendarSyncInterval is how often iCloud calendars are synced
	// (besides right after Orchard's own writes).
	CalendarSyncInterval time.Duration
	// ICloudSentCopyWait is how long a send through iCloud waits for
	// Apple to file its own copy in Sent before Orchard appends one.
	ICloudSentCopyWait time.Duration
	// AdminPassword signs operators in to the dashboard with every
	// application in reach; empty: only API keys sign in (one application).
	AdminPassword string
}

// Variable names, in the order the README documents them.
const (
	EnvListen          = "ORCHARD_LISTEN"
	EnvPublicURL       = "ORCHARD_PUBLIC_URL"
	EnvDataDir         = "ORCHARD_DATA_DIR"
	EnvDatabaseURL     = "ORCHARD_DATABASE_URL"
	EnvSecretKey       = "ORCHARD_SECRET_KEY"
	EnvICloudIMAPAddr  = "ORCHARD_ICLOUD_IMAP_ADDR"
	EnvICloudSMTPAddr  = "ORCHARD_ICLOUD_SMTP_ADDR"
	EnvICloudCalDAVURL = "ORCHARD_ICLOUD_CALDAV_URL"
	EnvCAFile          = "ORCHARD_CA_FILE"
	EnvSyncWindowDays  = "ORCHARD_SYNC_WINDOW_DAYS"
	EnvLogFormat       = "ORCHARD_LOG_FORMAT"
	EnvSyncPoll        = "ORCHARD_SYNC_POLL_INTERVAL"
	EnvProviderTimeout = "ORCHARD_PROVIDER_TIMEOUT"
	EnvMaxBodyBytes    = "ORCHARD_MAX_BODY_BYTES"
	EnvMaxSendBytes    = "ORCHARD_MAX_SEND_BYTES"
	EnvSendLimits      = "ORCHARD_SEND_LIMITS"
	EnvICloudSentWait  = "ORCHARD_ICLOUD_SENT_COPY_WAIT"
	EnvCalendarSync    = "ORCHARD_CALENDAR_SYNC_INTERVAL"
	EnvWebhookTimeout  = "ORCHARD_WEBHOOK_TIMEOUT"
	EnvAdminPassword   = "ORCHARD_ADMIN_PASSWORD"
)

// Load builds a Config from getenv (os.Getenv in production, a map in
// tests). The returned error lists every invalid variable, one per line.
func Load(getenv func(string) string) (Config, error) {
	var problems []string
	bad := func(name, format string, args ...any) {
		problems = append(problems, name+": "+fmt.Sprintf(format, args...))
	}
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}

	c := Config{
		Listen:          get(EnvListen, "127.0.0.1:8080"),
		DataDir:         get(EnvDataDir, "./orchard-data"),
		ICloudIMAPAddr:  get(EnvICloudIMAPAddr, "imap.mail.me.com:993"),
		ICloudSMTPAddr:  get(EnvICloudSMTPAddr, "smtp.mail.me.com:587"),
		ICloudCalDAVURL: get(EnvICloudCalDAVURL, "https://caldav.icloud.com"),
		CAFile:          get(EnvCAFile, ""),
		LogFormat:       get(EnvLogFormat, "text"),
		AdminPassword:   get(EnvAdminPassword, ""),
	}
	c.PublicURL = strings.TrimRight(get(EnvPublicURL, "http://"+c.Listen), "/")
	c.DatabaseURL = get(EnvDatabaseURL, "sqlite://"+filepath.Join(c.DataDir, "orchard.db"))

	if err := checkHostPort(c.Listen, true); err != nil {
		bad(EnvListen, "%v (want host:port, e.g. 127.0.0.1:8080)", err)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad(EnvPublicURL, "%q is not an absolute http(s) URL", c.PublicURL)
	}
	if _, _, err := SplitDatabaseURL(c.DatabaseURL); err != nil {
		bad(EnvDatabaseURL, "%v", err)
	}
	if v := get(EnvSecretKey, ""); v != "" {
		key, err := base64.StdEncoding.DecodeString(v)
		switch {
		case err != nil:
			bad(EnvSecretKey, "not valid base64")
		case len(key) != 32:
			bad(EnvSecretKey, "decodes to %d bytes, want 32 (generate one with: head -c 32 /dev/urandom | base64)", len(key))
		default:
			c.SecretKey = key
		}
	}
	for _, a := range []struct{ name, value string }{
		{EnvICloudIMAPAddr, c.ICloudIMAPAddr}, {EnvICloudSMTPAddr, c.ICloudSMTPAddr},
	} {
		if err := checkHostPort(a.value, false); err != nil {
			bad(a.name, "%v (want host:port)", err)
		}
	}
	if u, err := url.Parse(c.ICloudCalDAVURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad(EnvICloudCalDAVURL, "%q is not an absolute http(s) URL", c.ICloudCalDAVURL)
	}
	if c.CAFile != "" {
		pool, err := loadRoots(c.CAFile)
		if err != nil {
			bad(EnvCAFile, "%v", err)
		}
		c.RootCAs = pool
	}
	c.SyncWindowDays = parseInt(get(EnvSyncWindowDays, "90"), 0, 36500, EnvSyncWindowDays, bad)
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad(EnvLogFormat, "%q is neither text nor json", c.LogFormat)
	}
	c.ProviderTimeout = parseDuration(get(EnvProviderTimeout, "30s"), EnvProviderTimeout, bad)
	c.SyncPollInterval = parseDuration(get(EnvSyncPoll, "60s"), EnvSyncPoll, bad)
	c.CalendarSyncInterval = parseDuration(get(EnvCalendarSync, "60s"), EnvCalendarSync, bad)
	c.WebhookTimeout = parseDuration(get(EnvWebhookTimeout, "10s"), EnvWebhookTimeout, bad)
	if c.AdminPassword != "" && len(c.AdminPassword) < 12 {
		bad(EnvAdminPassword, "is shorter than 12 characters: the dashboard's admin password guards every application")
	}
	c.MaxBodyBytes = int64(parseInt(get(EnvMaxBodyBytes, strconv.Itoa(1<<20)), 1024, 1<<30, EnvMaxBodyBytes, bad))
	c.MaxSendBytes = int64(parseInt(get(EnvMaxSendBytes, strconv.Itoa(36<<20)), 1024, 1<<30, EnvMaxSendBytes, bad))
	c.SendLimits = parseSendLimits(get(EnvSendLimits, ""), bad)
	// 0 is allowed: append at once when the copy is not there.
	if v := get(EnvICloudSentWait, "2s"); v != "0" && v != "0s" {
		c.ICloudSentCopyWait = parseDuration(v, EnvICloudSentWait, bad)
	}

	if len(problems) > 0 {
		return c, errors.New("invalid configuration:\n  " + strings.Join(problems, "\n  "))
	}
	return c, nil
}

// parseSendLimits applies ORCHARD_SEND_LIMITS to quota's defaults:
// comma-separated provider=messages_per_day/recipients_per_day/
// recipients_per_message/max_message_bytes, 0 meaning no limit, e.g.
// "imap=500/500/100/10485760".
func parseSendLimits(v string, bad func(name, format string, args ...any)) map[string]quota.Limits {
	limits := quota.DefaultLimits()
	if v == "" {
		return limits
	}
	for _, entry := range strings.Split(v, ",") {
		name, spec, ok := strings.Cut(strings.TrimSpace(entry), "=")
		parts := strings.Split(spec, "/")
		if !ok || name == "" || len(parts) != 4 {
			bad(EnvSendLimits, "%q is not provider=messages/recipients/recipients_per_message/max_bytes", entry)
			continue
		}
		var n [4]int64
		valid := true
		for i, p := range parts {
			x, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
			if err != nil || x < 0 {
				bad(EnvSendLimits, "%q: %q is not a number >= 0", entry, p)
				valid = false
				break
			}
			n[i] = x
		}
		if valid {
			limits[name] = quota.Limits{MessagesPerDay: int(n[0]), RecipientsPerDay: int(n[1]), RecipientsPerMessage: int(n[2]), MaxMessageBytes: n[3]}
		}
	}
	return limits
}

// SplitDatabaseURL tells the dialect of a database URL and what its driver
// wants: a file path for sqlite, the URL itself for postgres.
func SplitDatabaseURL(raw string) (dialect, target string, err error) {
	switch {
	case strings.HasPrefix(raw, "sqlite://"):
		path := strings.TrimPrefix(raw, "sqlite://")
		if path == "" {
			return "", "", errors.New("sqlite:// needs a file path, e.g. sqlite://./orchard-data/orchard.db")
		}
		return "sqlite", path, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", errors.New("postgres URL does not parse")
		}
		return "postgres", raw, nil
	}
	return "", "", fmt.Errorf("unsupported scheme in %q: want sqlite://PATH or postgres://HOST/DB", redactURL(raw))
}

func parseInt(v string, lo, hi int, name string, bad func(string, string, ...any)) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		bad(name, "%q is not a whole number between %d and %d", v, lo, hi)
		return lo
	}
	return n
}

func parseDuration(v, name string, bad func(string, string, ...any)) time.Duration {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		bad(name, "%q is not a positive duration such as 30s", v)
		return time.Second
	}
	return d
}

func checkHostPort(addr string, allowEmptyHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	if host == "" && !allowEmptyHost {
		return fmt.Errorf("%q has no host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number 0-65535", addr)
	}
	return nil
}

func loadRoots(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA file: %v", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// redactURL drops the user info of a URL so that passwords in a database URL
// never reach a log or an error message.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.Index(raw, "@"); i >= 0 {
			return "…" + raw[i:]
		}
		return raw
	}
	u.User = url.User("…")
	return u.String()
}
