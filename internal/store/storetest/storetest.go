// Package storetest is the conformance suite that every store.Store dialect
// runs, so that SQLite and PostgreSQL behave the same to the rest of Orchard.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// Run runs the suite. open must return a fresh, empty, migrated store on
// every call and close it when t ends; subtests call it for their own store
// so that they can run in parallel without seeing each other's rows.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"MigrateTwice", testMigrateTwice},
		{"Ping", testPing},
		{"Applications", testApplications},
		{"APIKeys", testAPIKeys},
		{"RedirectURIs", testRedirectURIs},
		{"Connectors", testConnectors},
		{"ListConnectorsPaging", testListConnectorsPaging},
		{"Grants", testGrants},
		{"GrantEmailCaseInsensitive", testGrantEmailCase},
		{"ListGrants", testListGrants},
		{"TenantIsolation", testTenantIsolation},
		{"MissingApplication", testMissingApplication},
		{"Timestamps", testTimestamps},
		{"GeneratedIDs", testGeneratedIDs},
		{"InvalidSettings", testInvalidSettings},
		{"ConcurrentCreateGrant", testConcurrentCreateGrant},
	}
	tests = append(tests, mailTests...)
	tests = append(tests, sendTests...)
	tests = append(tests, idempotencyTests...)
	tests = append(tests, calendarTests...)
	tests = append(tests, webhookTests...)
	tests = append(tests, authTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// --- helpers ---------------------------------------------------------------

func ok(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func isErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func same(t *testing.T, got, want any, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// at returns a time with nanoseconds and a non-UTC zone, so that round
// trips prove both the precision and the conversion to UTC.
func at(minutes int) time.Time {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	return time.Date(2024, 3, 1, 12, 0, 0, 123456789, zone).Add(time.Duration(minutes) * time.Minute)
}

func newApp(t *testing.T, s store.Store, id string) *store.Application {
	t.Helper()
	app := &store.Application{ID: id, Name: "app " + id, Settings: []byte(`{"branding":{"name":"` + id + `"}}`)}
	ok(t, s.CreateApplication(t.Context(), app), "create application "+id)
	return app
}

func newGrant(id, appID, email string) *store.Grant {
	return &store.Grant{
		ID:            id,
		ApplicationID: appID,
		Provider:      "icloud",
		Email:         email,
		Name:          "Name of " + id,
		Status:        "valid",
		Scope:         []string{"mail", "calendar"},
		Settings:      []byte(`{"imap_host":"imap.example.com","imap_port":993}`),
		Credentials:   []byte{0x00, 0xff, 0x10, 'x'},
		State:         "state-" + id,
		IP:            "192.0.2.1",
		UserAgent:     "test-agent/1.0",
	}
}

func grantIDs(gs []store.Grant) []string {
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	return ids
}

// --- tests -----------------------------------------------------------------

func testMigrateTwice(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "app-1")
	ok(t, s.Migrate(ctx), "second migrate")
	ok(t, s.Migrate(ctx), "third migrate")
	n, err := s.CountApplications(ctx)
	ok(t, err, "count")
	if n != 1 {
		t.Fatalf("after migrating again: %d applications, want 1", n)
	}
}

func testPing(t *testing.T, s store.Store) {
	ok(t, s.Ping(t.Context()), "ping")
}

func testApplications(t *testing.T, s store.Store) {
	ctx := t.Context()
	n, err := s.CountApplications(ctx)
	ok(t, err, "count empty")
	if n != 0 {
		t.Fatalf("fresh store has %d applications", n)
	}

	app := &store.Application{
		ID:        "app-1",
		Name:      "First",
		Settings:  []byte(`{"a": [1, 2, {"b": null}],  "unicode": "ünï"}`), // odd spacing must survive
		CreatedAt: at(0),
		UpdatedAt: at(5),
	}
	ok(t, s.CreateApplication(ctx, app), "create")
	got, err := s.GetApplication(ctx, app.ID)
	ok(t, err, "get")
	same(t, got, app, "round trip")

	isErr(t, s.CreateApplication(ctx, &store.Application{ID: "app-1", Name: "again"}), store.ErrConflict, "duplicate id")
	_, err = s.GetApplication(ctx, "nope")
	isErr(t, err, store.ErrNotFound, "get missing")

	// Empty settings are stored as an empty object.
	bare := &store.Application{ID: "app-2", Name: "Bare"}
	ok(t, s.CreateApplication(ctx, bare), "create bare")
	got, err = s.GetApplication(ctx, bare.ID)
	ok(t, err, "get bare")
	if string(got.Settings) != "{}" {
		t.Fatalf("nil settings came back as %q, want {}", got.Settings)
	}
	if got.CreatedAt.IsZero() || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Fatalf("zero timestamps not filled: created %v updated %v", got.CreatedAt, got.UpdatedAt)
	}

	n, err = s.CountApplications(ctx)
	ok(t, err, "count")
	if n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}

	before := time.Now().Add(-time.Second)
	app.Name = "Renamed"
	app.Settings = []byte(`{"x":1}`)
	ok(t, s.UpdateApplication(ctx, app), "update")
	if app.UpdatedAt.Before(before) {
		t.Fatalf("update left UpdatedAt at %v", app.UpdatedAt)
	}
	got, err = s.GetApplication(ctx, app.ID)
	ok(t, err, "get updated")
	same(t, got, app, "after update")
	if !got.CreatedAt.Equal(normalized(at(0))) {
		t.Fatalf("update changed CreatedAt to %v", got.CreatedAt)
	}

	isErr(t, s.UpdateApplication(ctx, &store.Application{ID: "nope", Name: "x"}), store.ErrNotFound, "update missing")
}

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newApp(t, s, "app-a")
	b := newApp(t, s, "app-b")

	k1 := &store.APIKey{ID: "key-1", ApplicationID: a.ID, Name: "one", Prefix: "ork_aaaa", Hash: bytes.Repeat([]byte{0xab}, 32), CreatedAt: at(0)}
	k2 := &store.APIKey{ID: "key-2", ApplicationID: a.ID, Name: "two", Prefix: "ork_aaaa", Hash: bytes.Repeat([]byte{0x01}, 32), CreatedAt: at(1)}
	k3 := &store.APIKey{ID: "key-3", ApplicationID: b.ID, Name: "three", Prefix: "ork_bbbb", Hash: bytes.Repeat([]byte{0x00}, 32), CreatedAt: at(2)}
	for _, k := range []*store.APIKey{k1, k2, k3} {
		ok(t, s.CreateAPIKey(ctx, k), "create "+k.ID)
	}
	isErr(t, s.CreateAPIKey(ctx, &store.APIKey{ID: "key-1", ApplicationID: a.ID, Prefix: "p", Hash: []byte{1}}), store.ErrConflict, "duplicate id")

	got, err := s.APIKeysByPrefix(ctx, "ork_aaaa")
	ok(t, err, "by prefix")
	same(t, got, []store.APIKey{*k1, *k2}, "by prefix")
	got, err = s.APIKeysByPrefix(ctx, "ork_none")
	ok(t, err, "by unknown prefix")
	if len(got) != 0 {
		t.Fatalf("unknown prefix returned %d keys", len(got))
	}

	// A revocation in the future (rotation grace period) does not hide
	// the key yet; one in the past does.
	ok(t, s.RevokeAPIKey(ctx, a.ID, k2.ID, time.Now().Add(time.Hour)), "revoke later")
	got, err = s.APIKeysByPrefix(ctx, "ork_aaaa")
	ok(t, err, "by prefix")
	same(t, keyIDs(got), []string{"key-1", "key-2"}, "keys with future revocation")

	revokedAt := normalized(at(10))
	ok(t, s.RevokeAPIKey(ctx, a.ID, k2.ID, revokedAt), "revoke")
	got, err = s.APIKeysByPrefix(ctx, "ork_aaaa")
	ok(t, err, "by prefix after revoke")
	same(t, keyIDs(got), []string{"key-1"}, "revoked key hidden")

	// Revoking again with a later time keeps the earlier revocation.
	ok(t, s.RevokeAPIKey(ctx, a.ID, k2.ID, at(20)), "revoke again")

	list, err := s.ListAPIKeys(ctx, a.ID)
	ok(t, err, "list")
	if len(list) != 2 || list[0].ID != "key-1" || list[1].ID != "key-2" {
		t.Fatalf("list = %v, want key-1, key-2 (revoked keys included)", keyIDs(list))
	}
	if list[0].RevokedAt != nil {
		t.Fatalf("key-1 revoked at %v", list[0].RevokedAt)
	}
	if list[1].RevokedAt == nil || !list[1].RevokedAt.Equal(revokedAt) || list[1].RevokedAt.Location() != time.UTC {
		t.Fatalf("key-2 RevokedAt = %v, want %v in UTC", list[1].RevokedAt, revokedAt)
	}
	want := *k2
	want.RevokedAt = list[1].RevokedAt
	same(t, list[1], want, "revoked key round trip")

	isErr(t, s.RevokeAPIKey(ctx, a.ID, "nope", at(0)), store.ErrNotFound, "revoke missing")

	// A key created already revoked round-trips its revocation.
	past := at(-10)
	k4 := &store.APIKey{ID: "key-4", ApplicationID: b.ID, Name: "four", Prefix: "ork_bbbb", Hash: []byte{4}, CreatedAt: at(3), RevokedAt: &past}
	ok(t, s.CreateAPIKey(ctx, k4), "create revoked")
	list, err = s.ListAPIKeys(ctx, b.ID)
	ok(t, err, "list b")
	same(t, list, []store.APIKey{*k3, *k4}, "list b")
	got, err = s.APIKeysByPrefix(ctx, "ork_bbbb")
	ok(t, err, "by prefix b")
	same(t, got, []store.APIKey{*k3}, "created-revoked key hidden")
}

func keyIDs(ks []store.APIKey) []string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	return ids
}

func testRedirectURIs(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newApp(t, s, "app-a")
	b := newApp(t, s, "app-b")

	r1 := &store.RedirectURI{ID: "r-1", ApplicationID: a.ID, URL: "https://a.example/cb", Platform: "web", Settings: []byte(`{"origin":"https://a.example"}`), CreatedAt: at(0), UpdatedAt: at(1)}
	r2 := &store.RedirectURI{ID: "r-2", ApplicationID: a.ID, URL: "http://localhost:3000/cb", Platform: "desktop", CreatedAt: at(2)}
	ok(t, s.CreateRedirectURI(ctx, r1), "create r1")
	ok(t, s.CreateRedirectURI(ctx, r2), "create r2")

	got, err := s.GetRedirectURI(ctx, a.ID, r1.ID)
	ok(t, err, "get")
	same(t, got, r1, "round trip")
	got, err = s.GetRedirectURI(ctx, a.ID, r2.ID)
	ok(t, err, "get r2")
	if string(got.Settings) != "{}" {
		t.Fatalf("nil settings came back as %q", got.Settings)
	}

	isErr(t, s.CreateRedirectURI(ctx, &store.RedirectURI{ID: "r-3", ApplicationID: a.ID, URL: r1.URL, Platform: "web"}), store.ErrConflict, "duplicate url")
	isErr(t, s.CreateRedirectURI(ctx, &store.RedirectURI{ID: "r-1", ApplicationID: a.ID, URL: "https://other", Platform: "web"}), store.ErrConflict, "duplicate id")
	// Another application may register the same URL.
	ok(t, s.CreateRedirectURI(ctx, &store.RedirectURI{ID: "r-b", ApplicationID: b.ID, URL: r1.URL, Platform: "web"}), "same url, other app")

	list, err := s.ListRedirectURIs(ctx, a.ID)
	ok(t, err, "list")
	r2.Settings = []byte("{}")
	same(t, list, []store.RedirectURI{*r1, *r2}, "list")

	r1.URL = "https://a.example/callback"
	r1.Platform = "js"
	r1.Settings = []byte(`{"origin":"https://b.example"}`)
	ok(t, s.UpdateRedirectURI(ctx, r1), "update")
	got, err = s.GetRedirectURI(ctx, a.ID, r1.ID)
	ok(t, err, "get updated")
	same(t, got, r1, "after update")

	r2.URL = r1.URL
	isErr(t, s.UpdateRedirectURI(ctx, r2), store.ErrConflict, "update to duplicate url")
	isErr(t, s.UpdateRedirectURI(ctx, &store.RedirectURI{ID: "nope", ApplicationID: a.ID, URL: "x"}), store.ErrNotFound, "update missing")

	ok(t, s.DeleteRedirectURI(ctx, a.ID, r1.ID), "delete")
	_, err = s.GetRedirectURI(ctx, a.ID, r1.ID)
	isErr(t, err, store.ErrNotFound, "get deleted")
	isErr(t, s.DeleteRedirectURI(ctx, a.ID, r1.ID), store.ErrNotFound, "delete twice")
	list, err = s.ListRedirectURIs(ctx, a.ID)
	ok(t, err, "list after delete")
	if len(list) != 1 || list[0].ID != "r-2" {
		t.Fatalf("after delete: %+v", list)
	}
}

func testConnectors(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newApp(t, s, "app-a")

	c := &store.Connector{
		ApplicationID: a.ID,
		Provider:      "icloud",
		Name:          "iCloud",
		Settings:      []byte(`{"imap_addr":"imap.mail.me.com:993"}`),
		Scope:         []string{"email.read_only", "calendar"},
		CreatedAt:     at(0),
		UpdatedAt:     at(3),
	}
	ok(t, s.CreateConnector(ctx, c), "create")
	got, err := s.GetConnector(ctx, a.ID, "icloud")
	ok(t, err, "get")
	same(t, got, c, "round trip")

	isErr(t, s.CreateConnector(ctx, &store.Connector{ApplicationID: a.ID, Provider: "icloud", Name: "again"}), store.ErrConflict, "duplicate provider")
	_, err = s.GetConnector(ctx, a.ID, "imap")
	isErr(t, err, store.ErrNotFound, "get missing")

	// Nil scope and settings read back empty, never nil.
	bare := &store.Connector{ApplicationID: a.ID, Provider: "imap", Name: "IMAP"}
	ok(t, s.CreateConnector(ctx, bare), "create bare")
	got, err = s.GetConnector(ctx, a.ID, "imap")
	ok(t, err, "get bare")
	if got.Scope == nil || len(got.Scope) != 0 || string(got.Settings) != "{}" {
		t.Fatalf("bare connector: scope %#v settings %q", got.Scope, got.Settings)
	}

	c.Name = "Apple"
	c.Settings = []byte(`{}`)
	c.Scope = nil
	ok(t, s.UpdateConnector(ctx, c), "update")
	got, err = s.GetConnector(ctx, a.ID, "icloud")
	ok(t, err, "get updated")
	c.Scope = []string{}
	same(t, got, c, "after update")

	isErr(t, s.UpdateConnector(ctx, &store.Connector{ApplicationID: a.ID, Provider: "gmail"}), store.ErrNotFound, "update missing")
	ok(t, s.DeleteConnector(ctx, a.ID, "icloud"), "delete")
	_, err = s.GetConnector(ctx, a.ID, "icloud")
	isErr(t, err, store.ErrNotFound, "get deleted")
	isErr(t, s.DeleteConnector(ctx, a.ID, "icloud"), store.ErrNotFound, "delete twice")
}

func testListConnectorsPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newApp(t, s, "app-a")
	b := newApp(t, s, "app-b")
	providers := []string{"icloud", "imap", "zeta", "alpha"}
	for i, p := range providers {
		ok(t, s.CreateConnector(ctx, &store.Connector{ApplicationID: a.ID, Provider: p, Name: p, CreatedAt: at(i)}), "create "+p)
	}
	ok(t, s.CreateConnector(ctx, &store.Connector{ApplicationID: b.ID, Provider: "icloud", Name: "b"}), "create b")

	names := func(cs []store.Connector) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.Provider
		}
		return out
	}
	for _, tc := range []struct {
		limit, offset int
		want          []string
	}{
		{0, 0, providers},
		{2, 0, providers[:2]},
		{2, 2, providers[2:]},
		{10, 3, providers[3:]},
		{0, 1, providers[1:]},
		{2, 10, []string{}},
	} {
		page, total, err := s.ListConnectors(ctx, a.ID, tc.limit, tc.offset)
		ok(t, err, "list")
		if total != len(providers) {
			t.Fatalf("limit %d offset %d: total %d, want %d", tc.limit, tc.offset, total, len(providers))
		}
		same(t, names(page), tc.want, fmt.Sprintf("limit %d offset %d", tc.limit, tc.offset))
	}
}

func testGrants(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newApp(t, s, "app-a")

	g := newGrant("grant-1", a.ID, "Alice@Example.com")
	g.CreatedAt, g.UpdatedAt = at(0), at(1)
	ok(t, s.CreateGrant(ctx, g), "create")
	got, err := s.GetGrant(ctx, a.ID, g.ID)
	ok(t, err, "get")
	same(t, got, g, "round trip")
	if got.Email != "Alice@Example.com" {
		t.Fatalf("email not stored as given: %q", got.Email)
	}

	_, err = s.GetGrant(ctx, a.ID, "nope")
	isErr(t, err, store.ErrNotFound, "get missing")
	isErr(t, s.CreateGrant(ctx, newGrant("grant-1", a.ID, "other@example.com")), store.ErrConflict, "duplicate id")

	// Empty optional fields.
	bare := &store.Grant{ID: "grant-2", ApplicationID: a.ID, Provider: "imap", Email: "bob@example.com", Status: "valid"}
	ok(t, s.CreateGrant(ctx, bare), "create bare")
	got, err = s.GetGrant(ctx, a.ID, bare.ID)
	ok(t, err, "get bare")
	if string(got.Settings) != "{}" || got.Scope == nil || len(got.Scope) != 0 || len(got.Credentials) != 0 {
		t.Fatalf("bare grant: settings %q scope %#v credentials %x", got.Settings, got.Scope, got.Credentials)
	}

	// Update replaces every mutable column.
	g.Provider = "imap"
	g.Email = "alice.new@example.com"
	g.Name = "Alice New"
	g.Status = "invalid"
	g.Scope = []string{"mail"}
	g.Settings = []byte(`{"imap_host":"mail.example.org"}`)
	g.Credentials = []byte("sealed-2")
	g.State = "s2"
	g.IP = "2001:db8::1"
	g.UserAgent = "agent/2"
	g.CreatedAt = at(-100) // must be ignored
	before := time.Now().Add(-time.Second)
	ok(t, s.UpdateGrant(ctx, g), "update")
	if g.UpdatedAt.Before(before) {
		t.Fatalf("update left UpdatedAt at %v", g.UpdatedAt)
	}
	got, err = s.GetGrant(ctx, a.ID, g.ID)
	ok(t, err, "get updated")
	g.CreatedAt = normalized(at(0))
	same(t, got, g, "after update")

	// The old email is free again, the new one is taken.
	_, err = s.GetGrantByEmail(ctx, a.ID, "alice@example.com")
	isErr(t, err, store.ErrNotFound, "old email")
	got, err = s.GetGrantByEmail(ctx, a.ID, "ALICE.NEW@example.com")
	ok(t, err, "new email")
	if got.ID != g.ID {
		t.Fatalf("by email got %s", got.ID)
	}

	bare.Email = "Alice.New@Example.com"
	isErr(t, s.UpdateGrant(ctx, bare), store.ErrConflict, "update to taken email")
	isErr(t, s.UpdateGrant(ctx, newGrant("nope", a.ID, "x@example.com")), store.ErrNotFound, "update missing")

	ok(t, s.DeleteGrant(ctx, a.ID, g.ID), "delete")
	_, err = s.GetGrant(ctx, a.ID, g.ID)
	isErr(t, err, store.ErrNotFound, "get deleted")
	isErr(t, s.DeleteGrant(ctx, a.ID, g.ID), store.ErrNotFound, "delete twice")
	// Deleting frees the email.
	ok(t, s.CreateGrant(ctx, newGrant("grant-3", a.ID, "alice.new@example.com")), "reuse email after delete")
}

func normalized(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

func testGrantEmailCase(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newApp(t, s, "app-a")
	b := newApp(t, s, "app-b")

	ok(t, s.CreateGrant(ctx, newGrant("g-1", a.ID, "Carol@Example.COM")), "create")
	for _, email := range []string{"carol@example.com", "CAROL@EXAMPLE.COM", "Carol@Example.COM"} {
		isErr(t, s.CreateGrant(ctx, newGrant("g-dup-"+email, a.ID, email)), store.ErrConflict, "duplicate "+email)
		got, err := s.GetGrantByEmail(ctx, a.ID, email)
		ok(t, err, "by email "+email)
		if got.ID != "g-1" || got.Email != "Carol@Example.COM" {
			t.Fatalf("by email %s: got %s %s", email, got.ID, got.Email)
		}
	}
	_, err := s.GetGrantByEmail(ctx, a.ID, "dave@example.com")
	isErr(t, err, store.ErrNotFound, "unknown email")

	// Non-ASCII letters fold the same way in every dialect.
	ok(t, s.CreateGrant(ctx, newGrant("g-2", a.ID, "ÉLODIE@example.com")), "create non-ascii")
	isErr(t, s.CreateGrant(ctx, newGrant("g-3", a.ID, "élodie@example.com")), store.ErrConflict, "non-ascii duplicate")
	got, err := s.GetGrantByEmail(ctx, a.ID, "Élodie@EXAMPLE.com")
	ok(t, err, "by non-ascii email")
	if got.ID != "g-2" {
		t.Fatalf("by non-ascii email got %s", got.ID)
	}

	// Uniqueness is per application.
	ok(t, s.CreateGrant(ctx, newGrant("g-b", b.ID, "carol@example.com")), "same email, other app")
}

func testListGrants(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newApp(t, s, "app-a")
	other := newApp(t, s, "app-other")

	type spec struct {
		id, provider, status, ip string
		created, updated         int
	}
	// b and c share created_at so that the id tie-break shows.
	specs := []spec{
		{"g-a", "icloud", "valid", "10.0.0.1", 0, 50},
		{"g-b", "imap", "invalid", "10.0.0.2", 10, 40},
		{"g-c", "icloud", "valid", "10.0.0.1", 10, 30},
		{"g-d", "imap", "valid", "10.0.0.2", 20, 20},
		{"g-e", "icloud", "invalid", "10.0.0.1", 30, 10},
	}
	// Insert in an order unrelated to any sort key.
	for _, i := range []int{3, 0, 4, 2, 1} {
		sp := specs[i]
		g := newGrant(sp.id, a.ID, sp.id+"@Example.com")
		g.Provider, g.Status, g.IP = sp.provider, sp.status, sp.ip
		g.CreatedAt, g.UpdatedAt = at(sp.created), at(sp.updated)
		ok(t, s.CreateGrant(ctx, g), "create "+sp.id)
	}
	decoy := newGrant("g-other", other.ID, "g-a@example.com")
	decoy.CreatedAt = at(15)
	ok(t, s.CreateGrant(ctx, decoy), "create decoy")

	for _, tc := range []struct {
		name string
		f    store.GrantFilter
		want []string
	}{
		{"default", store.GrantFilter{}, []string{"g-a", "g-b", "g-c", "g-d", "g-e"}},
		{"created asc", store.GrantFilter{SortBy: "created_at"}, []string{"g-a", "g-b", "g-c", "g-d", "g-e"}},
		{"created desc", store.GrantFilter{Desc: true}, []string{"g-e", "g-d", "g-c", "g-b", "g-a"}},
		{"updated asc", store.GrantFilter{SortBy: "updated_at"}, []string{"g-e", "g-d", "g-c", "g-b", "g-a"}},
		{"updated desc", store.GrantFilter{SortBy: "updated_at", Desc: true}, []string{"g-a", "g-b", "g-c", "g-d", "g-e"}},
		{"provider", store.GrantFilter{Provider: "icloud"}, []string{"g-a", "g-c", "g-e"}},
		{"status", store.GrantFilter{Status: "invalid"}, []string{"g-b", "g-e"}},
		{"ip", store.GrantFilter{IP: "10.0.0.2"}, []string{"g-b", "g-d"}},
		{"email any case", store.GrantFilter{Email: "G-C@EXAMPLE.COM"}, []string{"g-c"}},
		{"email unknown", store.GrantFilter{Email: "nobody@example.com"}, []string{}},
		{"since", store.GrantFilter{Since: at(10)}, []string{"g-b", "g-c", "g-d", "g-e"}},
		{"before", store.GrantFilter{Before: at(10)}, []string{"g-a"}},
		{"window", store.GrantFilter{Since: at(10), Before: at(30)}, []string{"g-b", "g-c", "g-d"}},
		{"combined", store.GrantFilter{Provider: "icloud", Status: "valid"}, []string{"g-a", "g-c"}},
		{"limit", store.GrantFilter{Limit: 2}, []string{"g-a", "g-b"}},
		{"limit offset", store.GrantFilter{Limit: 2, Offset: 2}, []string{"g-c", "g-d"}},
		{"last page", store.GrantFilter{Limit: 2, Offset: 4}, []string{"g-e"}},
		{"offset only", store.GrantFilter{Offset: 3}, []string{"g-d", "g-e"}},
		{"past the end", store.GrantFilter{Limit: 2, Offset: 10}, []string{}},
		{"desc paged", store.GrantFilter{Desc: true, Limit: 2, Offset: 1}, []string{"g-d", "g-c"}},
		{"filter paged", store.GrantFilter{Provider: "icloud", Desc: true, Limit: 1, Offset: 1}, []string{"g-c"}},
	} {
		got, err := s.ListGrants(ctx, a.ID, tc.f)
		ok(t, err, tc.name)
		same(t, grantIDs(got), tc.want, tc.name)
	}

	got, err := s.ListGrants(ctx, a.ID, store.GrantFilter{Email: "g-a@example.com"})
	ok(t, err, "full rows")
	if len(got) != 1 || got[0].ApplicationID != a.ID || got[0].Email != "g-a@Example.com" || !bytes.Equal(got[0].Credentials, []byte{0x00, 0xff, 0x10, 'x'}) {
		t.Fatalf("listed row incomplete: %+v", got)
	}

	for _, bad := range []string{"email", "id", "created_at; DROP TABLE grants", "CREATED_AT"} {
		if _, err := s.ListGrants(ctx, a.ID, store.GrantFilter{SortBy: bad}); err == nil {
			t.Fatalf("sort by %q accepted", bad)
		}
	}
	got, err = s.ListGrants(ctx, "nope", store.GrantFilter{})
	ok(t, err, "list unknown app")
	if got == nil || len(got) != 0 {
		t.Fatalf("unknown app: %#v, want empty non-nil", got)
	}
}

func testTenantIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newApp(t, s, "app-a")
	b := newApp(t, s, "app-b")

	g := newGrant("grant-a", a.ID, "erin@example.com")
	ok(t, s.CreateGrant(ctx, g), "grant")
	c := &store.Connector{ApplicationID: a.ID, Provider: "icloud", Name: "A's"}
	ok(t, s.CreateConnector(ctx, c), "connector")
	r := &store.RedirectURI{ID: "r-a", ApplicationID: a.ID, URL: "https://a.example/cb", Platform: "web"}
	ok(t, s.CreateRedirectURI(ctx, r), "redirect uri")
	k := &store.APIKey{ID: "key-a", ApplicationID: a.ID, Name: "k", Prefix: "ork_a", Hash: []byte{1, 2, 3}}
	ok(t, s.CreateAPIKey(ctx, k), "api key")

	// Grants.
	_, err := s.GetGrant(ctx, b.ID, g.ID)
	isErr(t, err, store.ErrNotFound, "B gets A's grant")
	_, err = s.GetGrantByEmail(ctx, b.ID, g.Email)
	isErr(t, err, store.ErrNotFound, "B gets A's grant by email")
	hijack := *g
	hijack.ApplicationID, hijack.Name = b.ID, "hijacked"
	isErr(t, s.UpdateGrant(ctx, &hijack), store.ErrNotFound, "B updates A's grant")
	isErr(t, s.DeleteGrant(ctx, b.ID, g.ID), store.ErrNotFound, "B deletes A's grant")
	gs, err := s.ListGrants(ctx, b.ID, store.GrantFilter{})
	ok(t, err, "B lists grants")
	if len(gs) != 0 {
		t.Fatalf("B lists %d grants", len(gs))
	}
	gotG, err := s.GetGrant(ctx, a.ID, g.ID)
	ok(t, err, "A still has its grant")
	same(t, gotG, g, "A's grant untouched")

	// Connectors.
	_, err = s.GetConnector(ctx, b.ID, "icloud")
	isErr(t, err, store.ErrNotFound, "B gets A's connector")
	isErr(t, s.UpdateConnector(ctx, &store.Connector{ApplicationID: b.ID, Provider: "icloud", Name: "hijacked"}), store.ErrNotFound, "B updates A's connector")
	isErr(t, s.DeleteConnector(ctx, b.ID, "icloud"), store.ErrNotFound, "B deletes A's connector")
	cs, total, err := s.ListConnectors(ctx, b.ID, 0, 0)
	ok(t, err, "B lists connectors")
	if len(cs) != 0 || total != 0 {
		t.Fatalf("B lists %d connectors (total %d)", len(cs), total)
	}
	gotC, err := s.GetConnector(ctx, a.ID, "icloud")
	ok(t, err, "A still has its connector")
	if gotC.Name != "A's" {
		t.Fatalf("A's connector renamed to %q", gotC.Name)
	}

	// Redirect URIs.
	_, err = s.GetRedirectURI(ctx, b.ID, r.ID)
	isErr(t, err, store.ErrNotFound, "B gets A's redirect uri")
	isErr(t, s.UpdateRedirectURI(ctx, &store.RedirectURI{ID: r.ID, ApplicationID: b.ID, URL: "https://evil.example/cb"}), store.ErrNotFound, "B updates A's redirect uri")
	isErr(t, s.DeleteRedirectURI(ctx, b.ID, r.ID), store.ErrNotFound, "B deletes A's redirect uri")
	rs, err := s.ListRedirectURIs(ctx, b.ID)
	ok(t, err, "B lists redirect uris")
	if len(rs) != 0 {
		t.Fatalf("B lists %d redirect uris", len(rs))
	}
	gotR, err := s.GetRedirectURI(ctx, a.ID, r.ID)
	ok(t, err, "A still has its redirect uri")
	if gotR.URL != r.URL {
		t.Fatalf("A's redirect uri changed to %q", gotR.URL)
	}

	// API keys.
	ks, err := s.ListAPIKeys(ctx, b.ID)
	ok(t, err, "B lists keys")
	if len(ks) != 0 {
		t.Fatalf("B lists %d keys", len(ks))
	}
	isErr(t, s.RevokeAPIKey(ctx, b.ID, k.ID, at(0)), store.ErrNotFound, "B revokes A's key")
	ks, err = s.APIKeysByPrefix(ctx, "ork_a")
	ok(t, err, "A's key by prefix")
	if len(ks) != 1 || ks[0].RevokedAt != nil {
		t.Fatalf("A's key after B's revoke attempt: %+v", ks)
	}
}

func testMissingApplication(t *testing.T, s store.Store) {
	ctx := t.Context()
	isErr(t, s.CreateGrant(ctx, newGrant("g", "no-such-app", "x@example.com")), store.ErrNotFound, "grant")
	isErr(t, s.CreateConnector(ctx, &store.Connector{ApplicationID: "no-such-app", Provider: "icloud"}), store.ErrNotFound, "connector")
	isErr(t, s.CreateRedirectURI(ctx, &store.RedirectURI{ApplicationID: "no-such-app", URL: "https://x"}), store.ErrNotFound, "redirect uri")
	isErr(t, s.CreateAPIKey(ctx, &store.APIKey{ApplicationID: "no-such-app", Prefix: "p", Hash: []byte{1}}), store.ErrNotFound, "api key")
}

func testTimestamps(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Nanoseconds, a zone east of UTC and a date before 1970.
	in := time.Date(1969, 7, 20, 20, 17, 40, 987654321, time.FixedZone("X", -7*3600))
	app := &store.Application{ID: "app", Name: "t", Settings: []byte("{}"), CreatedAt: in, UpdatedAt: in.Add(time.Millisecond)}
	ok(t, s.CreateApplication(ctx, app), "create")
	got, err := s.GetApplication(ctx, app.ID)
	ok(t, err, "get")
	check := func(what string, got, want time.Time) {
		t.Helper()
		if got.Location() != time.UTC {
			t.Fatalf("%s: location %v, want UTC", what, got.Location())
		}
		if d := got.Sub(want).Abs(); d >= time.Microsecond {
			t.Fatalf("%s: got %v, want %v (off by %v)", what, got, want, d)
		}
	}
	check("created", got.CreatedAt, in)
	check("updated", got.UpdatedAt, in.Add(time.Millisecond))
	if !got.UpdatedAt.After(got.CreatedAt) {
		t.Fatalf("millisecond apart timestamps collapsed: %v, %v", got.CreatedAt, got.UpdatedAt)
	}
	// What Create wrote back is exactly what Get returns.
	same(t, got, app, "struct after create")

	g := newGrant("g", app.ID, "t@example.com")
	g.CreatedAt = time.Now()
	ok(t, s.CreateGrant(ctx, g), "grant")
	gg, err := s.GetGrant(ctx, app.ID, g.ID)
	ok(t, err, "get grant")
	check("grant created", gg.CreatedAt, g.CreatedAt)
	if !gg.CreatedAt.Equal(g.CreatedAt) {
		t.Fatalf("grant CreatedAt %v, written back %v", gg.CreatedAt, g.CreatedAt)
	}
}

func testGeneratedIDs(t *testing.T, s store.Store) {
	ctx := t.Context()
	seen := map[string]bool{}
	for i := range 3 {
		app := &store.Application{Name: "gen"}
		ok(t, s.CreateApplication(ctx, app), "create app")
		g := &store.Grant{ApplicationID: app.ID, Provider: "icloud", Email: fmt.Sprintf("u%d@example.com", i), Status: "valid"}
		ok(t, s.CreateGrant(ctx, g), "create grant")
		r := &store.RedirectURI{ApplicationID: app.ID, URL: "https://x/cb", Platform: "web"}
		ok(t, s.CreateRedirectURI(ctx, r), "create redirect uri")
		k := &store.APIKey{ApplicationID: app.ID, Prefix: "p", Hash: []byte{1}}
		ok(t, s.CreateAPIKey(ctx, k), "create key")
		for _, id := range []string{app.ID, g.ID, r.ID, k.ID} {
			if id == "" || seen[id] {
				t.Fatalf("generated id %q empty or repeated", id)
			}
			seen[id] = true
		}
		if _, err := s.GetGrant(ctx, app.ID, g.ID); err != nil {
			t.Fatalf("get by generated id: %v", err)
		}
	}
}

func testInvalidSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	bad := []byte(`{"unterminated": `)
	if err := s.CreateApplication(ctx, &store.Application{ID: "x", Settings: bad}); err == nil {
		t.Fatal("application with invalid JSON settings accepted")
	}
	a := newApp(t, s, "app-a")
	g := newGrant("g", a.ID, "g@example.com")
	g.Settings = bad
	if err := s.CreateGrant(ctx, g); err == nil {
		t.Fatal("grant with invalid JSON settings accepted")
	}
	if err := s.CreateConnector(ctx, &store.Connector{ApplicationID: a.ID, Provider: "icloud", Settings: bad}); err == nil {
		t.Fatal("connector with invalid JSON settings accepted")
	}
}

func testConcurrentCreateGrant(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newApp(t, s, "app-a")
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			g := newGrant(fmt.Sprintf("g-%02d", i), a.ID, fmt.Sprintf("user%02d@example.com", i))
			if errs[i] = s.CreateGrant(ctx, g); errs[i] != nil {
				return
			}
			// Reads interleaved with the writes must see committed rows.
			_, errs[i] = s.GetGrant(ctx, a.ID, g.ID)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	got, err := s.ListGrants(ctx, a.ID, store.GrantFilter{})
	ok(t, err, "list")
	ids := grantIDs(got)
	slices.Sort(ids)
	if len(slices.Compact(ids)) != n {
		t.Fatalf("after %d concurrent creates: %d grants", n, len(got))
	}
}
