package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/caldavx"
	"github.com/orchard-mail/orchard/internal/config"
	"github.com/orchard-mail/orchard/internal/dashboard"
	"github.com/orchard-mail/orchard/internal/hostedauth"
	"github.com/orchard-mail/orchard/internal/httpapi"
	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/mailbox"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/provider/icloud"
	"github.com/orchard-mail/orchard/internal/provider/imap"
	"github.com/orchard-mail/orchard/internal/secret"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/smtpx"
	"github.com/orchard-mail/orchard/internal/store"
	"github.com/orchard-mail/orchard/internal/store/postgres"
	"github.com/orchard-mail/orchard/internal/store/sqlite"
	"github.com/orchard-mail/orchard/internal/syncer"
	"github.com/orchard-mail/orchard/internal/webhook"
	"github.com/orchard-mail/orchard/internal/webui"
)

// shutdownGrace is how long in-flight requests get after SIGTERM.
const shutdownGrace = 20 * time.Second

func serve(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)

	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()

	key := cfg.SecretKey
	if key == nil {
		if key, err = secret.LoadOrCreateKey(cfg.DataDir); err != nil {
			return err
		}
	}
	box, err := secret.New(key)
	if err != nil {
		return err
	}

	tlsConfig := &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	imapDialer := &imapx.Dialer{TLSConfig: tlsConfig, Timeout: cfg.ProviderTimeout}
	smtpDialer := &smtpx.Dialer{TLSConfig: tlsConfig, Timeout: cfg.ProviderTimeout}
	calDAV := caldavx.New(caldavx.Options{TLSConfig: tlsConfig, Timeout: cfg.ProviderTimeout})
	defer calDAV.CloseIdleConnections()
	var svc *service.Service
	hooks := &webhook.Late{}
	hookClient := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig.Clone(), Proxy: http.ProxyFromEnvironment}}
	sup := syncer.New(syncer.Options{
		Store: st, Dialer: imapDialer, Logger: log.With("component", "syncer"),
		WindowDays: cfg.SyncWindowDays, PollInterval: cfg.SyncPollInterval,
		CalDAV: calDAV, CalDAVURL: cfg.ICloudCalDAVURL, CalendarInterval: cfg.CalendarSyncInterval,
		Credentials: func(g *store.Grant) (provider.Credentials, error) { return svc.Credentials(g) },
		Changed:     hooks.Notify,
		LoginRefused: func(ctx context.Context, grantID string) {
			if err := svc.ExpireGrant(ctx, grantID); err != nil {
				log.Warn("expire grant", "grant_id", grantID, "error", err)
			}
		},
	})
	svc = service.New(service.Deps{
		Store: st, Box: box, Logger: log, ProviderTimeout: cfg.ProviderTimeout,
		Mailbox: &mailbox.Mailbox{Dialer: imapDialer}, Syncer: sup,
		Sender: smtpDialer, SendLimits: cfg.SendLimits,
		CalDAV: calDAV, ICloudCalDAVURL: cfg.ICloudCalDAVURL,
		Webhooks: hooks, WebhookClient: hookClient,
		SentCopyWait:   map[string]time.Duration{"icloud": cfg.ICloudSentCopyWait},
		ICloudIMAPAddr: cfg.ICloudIMAPAddr, ICloudSMTPAddr: cfg.ICloudSMTPAddr,
		ICloud:     &icloud.Verifier{IMAP: imapDialer, SMTP: smtpDialer, IMAPAddr: cfg.ICloudIMAPAddr, SMTPAddr: cfg.ICloudSMTPAddr},
		IMAP:       &imap.Verifier{IMAP: imapDialer, SMTP: smtpDialer},
		IDTokenKey: secret.Derive(key, "id-token"), Issuer: cfg.PublicURL,
	})

	dispatcher, err := webhook.New(webhook.Options{Store: st, Renderer: svc, OpenSecret: svc.WebhookSecret,
		Client: hookClient, Logger: log.With("component", "webhook"),
		AttemptTimeout: cfg.WebhookTimeout, Lease: 3 * cfg.WebhookTimeout})
	if err != nil {
		return err
	}
	hooks.D = dispatcher

	if err := bootstrap(ctx, svc, stdout); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler: httpapi.New(httpapi.Options{Service: svc, Logger: log, MaxBodyBytes: cfg.MaxBodyBytes, MaxSendBodyBytes: cfg.MaxSendBytes,
			Pages: pages(cfg, svc, key, log)}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("orchard serving", "version", version, "listen", ln.Addr().String(), "public_url", cfg.PublicURL,
		"database", dialectOf(cfg))

	syncCtx, stopSync := context.WithCancel(context.Background())
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		_ = sup.Run(syncCtx)
	}()
	// However serve ends, the sync workers stop and are waited for.
	defer func() {
		stopSync()
		<-synced
	}()
	hookCtx, stopHooks := context.WithCancel(context.Background())
	hooked := make(chan struct{})
	go func() {
		defer close(hooked)
		_ = dispatcher.Run(hookCtx)
	}()
	// The dispatcher stops after the sync (whose last batches it may
	// still deliver on the next start: they are in the store).
	defer func() {
		stopHooks()
		<-hooked
	}()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: no new requests, waiting for in-flight ones", "grace", shutdownGrace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("in-flight requests cut off at the end of the grace period", "error", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	stopSync()
	<-synced
	stopHooks()
	<-hooked
	log.Info("stopped")
	return nil
}

// bootstrap creates the "default" application on an empty database and
// prints its credentials once: the only time the key is ever visible.
func bootstrap(ctx context.Context, svc *service.Service, stdout io.Writer) error {
	n, err := svc.CountApplications(ctx)
	if err != nil || n > 0 {
		return err
	}
	app, key, err := svc.CreateApplication(ctx, "default")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created application \"default\" on this empty database.\n  application id: %s\n  API key:        %s\nThe key is shown only now: store it safely.\n", app.ID, key)
	return nil
}

func openStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	dialect, target, err := config.SplitDatabaseURL(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	var st store.Store
	switch dialect {
	case "postgres":
		st, err = postgres.Open(ctx, target)
	default:
		st, err = sqlite.Open(ctx, target)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate %s database: %w", dialect, err)
	}
	return st, nil
}

func dialectOf(cfg config.Config) string {
	d, _, _ := config.SplitDatabaseURL(cfg.DatabaseURL)
	return d
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// pages builds the browser-facing handlers: hosted authentication and the
// dashboard, protected by keys derived from the installation's secret.
func pages(cfg config.Config, svc *service.Service, key []byte, log *slog.Logger) httpapi.Pages {
	secure := strings.HasPrefix(cfg.PublicURL, "https://")
	csrf := webui.NewCSRF(secret.Derive(key, "csrf"), secure)
	return httpapi.Pages{
		HostedAuth: hostedauth.New(hostedauth.Options{Backend: svc, CSRF: csrf, Logger: log.With("component", "hostedauth")}),
		Dashboard: dashboard.New(dashboard.Options{
			Backend: svc, CSRF: csrf, Signer: webui.NewSigner(secret.Derive(key, "dashboard"), nil),
			SignInLimiter: webui.NewLimiter(10, 15*time.Minute, nil), AdminPassword: cfg.AdminPassword,
			PublicURL: cfg.PublicURL, SecureCookies: secure, Logger: log.With("component", "dashboard"),
		}),
		Static: webui.Static(),
	}
}
