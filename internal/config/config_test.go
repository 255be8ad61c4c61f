package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/quota"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080", DataDir: "./orchard-data",
		DatabaseURL: "sqlite://orchard-data/orchard.db", ICloudIMAPAddr: "imap.mail.me.com:993",
		ICloudSMTPAddr: "smtp.mail.me.com:587", ICloudCalDAVURL: "https://caldav.icloud.com",
		SyncWindowDays: 90, LogFormat: "text", ProviderTimeout: 30 * time.Second, MaxBodyBytes: 1 << 20,
	}
	if c.Listen != want.Listen || c.PublicURL != want.PublicURL || c.DataDir != want.DataDir ||
		c.DatabaseURL != want.DatabaseURL || c.ICloudIMAPAddr != want.ICloudIMAPAddr ||
		c.ICloudSMTPAddr != want.ICloudSMTPAddr || c.ICloudCalDAVURL != want.ICloudCalDAVURL ||
		c.SyncWindowDays != 90 || c.LogFormat != "text" || c.ProviderTimeout != want.ProviderTimeout ||
		c.MaxBodyBytes != want.MaxBodyBytes || c.SecretKey != nil || c.RootCAs != nil {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	d, target, err := SplitDatabaseURL(c.DatabaseURL)
	if d != "sqlite" || target != "orchard-data/orchard.db" || err != nil {
		t.Fatalf("SplitDatabaseURL = %q %q %v", d, target, err)
	}
}

func TestDerivedDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{EnvListen: "0.0.0.0:9000", EnvDataDir: "/var/lib/orchard"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "http://0.0.0.0:9000" || c.DatabaseURL != "sqlite:///var/lib/orchard/orchard.db" {
		t.Fatalf("derived: %q %q", c.PublicURL, c.DatabaseURL)
	}
}

// Every bad variable is reported in one error, each on its own line.
func TestAllProblemsReported(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{
		EnvListen:          "nonsense",
		EnvPublicURL:       "ftp://x",
		EnvDatabaseURL:     "mysql://u:hunter2@db/x",
		EnvSecretKey:       "c2hvcnQ=",
		EnvICloudIMAPAddr:  "imap.example.com",
		EnvICloudSMTPAddr:  "smtp.example.com:port",
		EnvICloudCalDAVURL: "caldav.example.com",
		EnvCAFile:          "/nonexistent/ca.pem",
		EnvSyncWindowDays:  "-3",
		EnvLogFormat:       "xml",
		EnvProviderTimeout: "soon",
		EnvMaxBodyBytes:    "12",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, name := range []string{EnvListen, EnvPublicURL, EnvDatabaseURL, EnvSecretKey, EnvICloudIMAPAddr,
		EnvICloudSMTPAddr, EnvICloudCalDAVURL, EnvCAFile, EnvSyncWindowDays, EnvLogFormat, EnvProviderTimeout, EnvMaxBodyBytes} {
		if !strings.Contains(msg, name+":") {
			t.Errorf("error does not mention %s:\n%s", name, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error echoes the database password:\n%s", msg)
	}
	if got := strings.Count(msg, "\n"); got != 12 {
		t.Errorf("want 12 problem lines, got %d:\n%s", got, msg)
	}
}

func TestSecretKeyAndCAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, selfSignedPEM(t), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{
		EnvSecretKey: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", EnvCAFile: ca,
		EnvDatabaseURL: "postgres://orchard:pw@127.0.0.1:5432/orchard", EnvSyncWindowDays: "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SecretKey) != 32 || c.SecretKey[31] != 31 || c.RootCAs == nil || c.SyncWindowDays != 0 {
		t.Fatalf("got key %v roots %v window %d", c.SecretKey, c.RootCAs, c.SyncWindowDays)
	}
	if d, target, _ := SplitDatabaseURL(c.DatabaseURL); d != "postgres" || target != c.DatabaseURL {
		t.Fatalf("postgres URL split as %q %q", d, target)
	}
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(env(map[string]string{EnvCAFile: ca})); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("garbage CA file: %v", err)
	}
}

// selfSignedPEM makes a throwaway CA certificate for the CA-file checks.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestSendSettings(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SendLimits["icloud"] != quota.ICloud || c.SendLimits["imap"] != (quota.Limits{}) || c.ICloudSentCopyWait != 2*time.Second || c.MaxSendBytes != 36<<20 {
		t.Fatalf("defaults: %+v wait %v max %d", c.SendLimits, c.ICloudSentCopyWait, c.MaxSendBytes)
	}
	c, err = Load(env(map[string]string{EnvSendLimits: "imap=10/20/5/1000, icloud=1/2/3/4", EnvICloudSentWait: "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SendLimits["imap"] != (quota.Limits{MessagesPerDay: 10, RecipientsPerDay: 20, RecipientsPerMessage: 5, MaxMessageBytes: 1000}) ||
		c.SendLimits["icloud"] != (quota.Limits{MessagesPerDay: 1, RecipientsPerDay: 2, RecipientsPerMessage: 3, MaxMessageBytes: 4}) || c.ICloudSentCopyWait != 0 {
		t.Fatalf("configured: %+v wait %v", c.SendLimits, c.ICloudSentCopyWait)
	}
	for _, bad := range []string{"icloud", "icloud=1/2/3", "icloud=1/2/3/x", "=1/2/3/4", "icloud=-1/2/3/4"} {
		if _, err := Load(env(map[string]string{EnvSendLimits: bad})); err == nil || !strings.Contains(err.Error(), EnvSendLimits+":") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
