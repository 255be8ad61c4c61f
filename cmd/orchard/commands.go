package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/orchard-mail/orchard/internal/config"
	"github.com/orchard-mail/orchard/internal/service"
	"github.com/orchard-mail/orchard/internal/store"
)

func migrate(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	st, err := loadAndOpenStore(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func appCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usageError("usage: orchard app create --name NAME [--json]")
	}
	fs := flag.NewFlagSet("app create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "application name")
	asJSON := fs.Bool("json", false, `print {"application_id","api_key"} as one JSON line`)
	if err := fs.Parse(args[1:]); err != nil {
		return usageError("usage: orchard app create --name NAME [--json]")
	}
	if *name == "" {
		return usageError("app create needs --name NAME")
	}
	st, err := loadAndOpenStore(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := service.New(service.Deps{Store: st})
	app, key, err := svc.CreateApplication(ctx, *name)
	if err != nil {
		var se *service.Error
		if errors.As(err, &se) {
			return usageError(se.Message)
		}
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{"application_id": app.ID, "api_key": key})
	}
	fmt.Fprintf(stdout, "application %q created\n  application id: %s\n  API key:        %s\n(the key is shown only now: store it safely)\n", app.Name, app.ID, key)
	return nil
}

// loadAndOpenStore is the start of every command that only needs the
// database: configuration, then the migrated store.
func loadAndOpenStore(ctx context.Context, getenv func(string) string) (store.Store, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	return openStore(ctx, cfg)
}
