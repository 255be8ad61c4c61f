package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

var authTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"AuthCodeRoundTrip", testAuthCodeRoundTrip},
	{"AuthCodeExpiredTaken", testAuthCodeExpiredTaken},
	{"AuthCodeConcurrentTake", testAuthCodeConcurrentTake},
	{"AuthConflict", testAuthConflict},
	{"AuthMissingParents", testAuthMissingParents},
	{"TokenRoundTrip", testTokenRoundTrip},
	{"TokenBadKind", testTokenBadKind},
	{"DeleteTokenFamily", testDeleteTokenFamily},
	{"PurgeAuth", testPurgeAuth},
	{"AuthGrantDeleteCascades", testAuthGrantDeleteCascades},
	{"ListApplications", testListApplications},
}

// --- helpers ---------------------------------------------------------------

func newCode(t *testing.T, s store.Store, appID, grantID, code string, expires time.Time) *store.AuthCode {
	t.Helper()
	c := &store.AuthCode{
		Hash:          reqHash("code " + code),
		ApplicationID: appID,
		GrantID:       grantID,
		RedirectURI:   "https://app.example/callback?x=" + code,
		ExpiresAt:     expires,
	}
	ok(t, s.CreateAuthCode(t.Context(), c), "create code "+code)
	return c
}

func newToken(t *testing.T, s store.Store, appID, grantID, token, kind, family string, expires time.Time) *store.Token {
	t.Helper()
	tk := &store.Token{
		Hash:          reqHash("token " + token),
		Kind:          kind,
		FamilyID:      family,
		ApplicationID: appID,
		GrantID:       grantID,
		ExpiresAt:     expires,
	}
	ok(t, s.CreateToken(t.Context(), tk), "create token "+token)
	return tk
}

// hasToken reports whether the token is stored, failing on any error but
// ErrNotFound.
func hasToken(t *testing.T, s store.Store, token string) bool {
	t.Helper()
	_, err := s.TokenByHash(t.Context(), reqHash("token "+token))
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	ok(t, err, "get token "+token)
	return true
}

// hasCode takes the code and reports whether it was there (taking it
// deletes it: use it last).
func hasCode(t *testing.T, s store.Store, code string) bool {
	t.Helper()
	_, err := s.TakeAuthCode(t.Context(), reqHash("code "+code))
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	ok(t, err, "take code "+code)
	return true
}

func utcMicro(t *testing.T, tm time.Time, what string) {
	t.Helper()
	if tm.Location() != time.UTC || tm.Nanosecond()%1000 != 0 {
		t.Fatalf("%s = %v, want UTC with microsecond precision", what, tm)
	}
}

// --- tests -----------------------------------------------------------------

func testAuthCodeRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")

	c := &store.AuthCode{
		Hash:                reqHash("code-1"),
		ApplicationID:       "app",
		GrantID:             g,
		RedirectURI:         "https://app.example/cb?state=ünï&x=1",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "s256",
		Offline:             true,
		CreatedAt:           at(0),
		ExpiresAt:           at(10),
	}
	ok(t, s.CreateAuthCode(ctx, c), "create")
	// The stored times are written back: UTC, to the microsecond.
	if !c.CreatedAt.Equal(normalized(at(0))) || !c.ExpiresAt.Equal(normalized(at(10))) {
		t.Fatalf("written-back times %v, %v", c.CreatedAt, c.ExpiresAt)
	}
	utcMicro(t, c.CreatedAt, "written-back CreatedAt")
	utcMicro(t, c.ExpiresAt, "written-back ExpiresAt")

	got, err := s.TakeAuthCode(ctx, reqHash("code-1"))
	ok(t, err, "take")
	same(t, got, c, "taken code")
	utcMicro(t, got.CreatedAt, "CreatedAt")
	utcMicro(t, got.ExpiresAt, "ExpiresAt")

	// Taken means gone.
	_, err = s.TakeAuthCode(ctx, reqHash("code-1"))
	isErr(t, err, store.ErrNotFound, "take twice")
	_, err = s.TakeAuthCode(ctx, reqHash("never issued"))
	isErr(t, err, store.ErrNotFound, "take unknown")
	_, err = s.TakeAuthCode(ctx, nil)
	isErr(t, err, store.ErrNotFound, "take nil hash")

	// No PKCE, not offline, CreatedAt stamped from the store's clock.
	before := time.Now().Add(-time.Second)
	plain := &store.AuthCode{Hash: reqHash("code-2"), ApplicationID: "app", GrantID: g, RedirectURI: "http://localhost/cb",
		ExpiresAt: time.Now().Add(10 * time.Minute)}
	ok(t, s.CreateAuthCode(ctx, plain), "create plain")
	if plain.CreatedAt.Before(before) || plain.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("stamped CreatedAt %v, want about now", plain.CreatedAt)
	}
	utcMicro(t, plain.CreatedAt, "stamped CreatedAt")
	got, err = s.TakeAuthCode(ctx, reqHash("code-2"))
	ok(t, err, "take plain")
	same(t, got, plain, "taken plain code")

	// A code always expires, and has a hash.
	if err := s.CreateAuthCode(ctx, &store.AuthCode{Hash: reqHash("code-3"), ApplicationID: "app", GrantID: g}); err == nil {
		t.Fatal("code with zero ExpiresAt accepted")
	}
	if err := s.CreateAuthCode(ctx, &store.AuthCode{ApplicationID: "app", GrantID: g, ExpiresAt: at(10)}); err == nil {
		t.Fatal("code with no hash accepted")
	}
	_, err = s.TakeAuthCode(ctx, reqHash("code-3"))
	isErr(t, err, store.ErrNotFound, "take refused code")
}

// An expired code is still returned (and deleted): the caller tells
// "expired" from "unknown".
func testAuthCodeExpiredTaken(t *testing.T, s store.Store) {
	g := mailGrant(t, s, "app", "grant-1")
	c := newCode(t, s, "app", g, "old", time.Now().Add(-time.Hour))
	got, err := s.TakeAuthCode(t.Context(), c.Hash)
	ok(t, err, "take expired")
	same(t, got, c, "expired code")
	if hasCode(t, s, "old") {
		t.Fatal("expired code still there after take")
	}
}

// Concurrent exchanges of one code: exactly one gets it.
func testAuthCodeConcurrentTake(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	for round := range 3 {
		code := newCode(t, s, "app", g, "race", time.Now().Add(time.Minute))
		const n = 8
		errs := make([]error, n)
		got := make([]*store.AuthCode, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				got[i], errs[i] = s.TakeAuthCode(ctx, code.Hash)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
				same(t, got[i], code, "code won by the race")
			case errors.Is(err, store.ErrNotFound):
			default:
				t.Fatalf("round %d, goroutine %d: %v", round, i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of %d concurrent takes got the code, want 1", round, won, n)
		}
	}
}

func testAuthConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	g1 := mailGrant(t, s, "app", "grant-1")
	g2 := mailGrant(t, s, "app", "grant-2")
	c := newCode(t, s, "app", g1, "dup", at(10))
	again := &store.AuthCode{Hash: c.Hash, ApplicationID: "app", GrantID: g2, RedirectURI: "https://other", ExpiresAt: at(20)}
	isErr(t, s.CreateAuthCode(ctx, again), store.ErrConflict, "duplicate code hash")
	got, err := s.TakeAuthCode(ctx, c.Hash)
	ok(t, err, "take")
	same(t, got, c, "first code kept")

	tk := newToken(t, s, "app", g1, "dup", store.TokenAccess, "fam-1", at(10))
	isErr(t, s.CreateToken(ctx, &store.Token{Hash: tk.Hash, Kind: store.TokenRefresh, FamilyID: "fam-2", ApplicationID: "app", GrantID: g2}),
		store.ErrConflict, "duplicate token hash")
	gotT, err := s.TokenByHash(ctx, tk.Hash)
	ok(t, err, "get token")
	same(t, gotT, tk, "first token kept")
}

func testAuthMissingParents(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app-a", "grant-a")
	mailGrant(t, s, "app-b", "grant-b")
	for _, tc := range []struct{ what, app, grant string }{
		{"unknown grant", "app-a", "no-such-grant"},
		{"unknown application", "no-such-app", g},
		{"grant of another application", "app-b", g},
	} {
		c := &store.AuthCode{Hash: reqHash("code " + tc.what), ApplicationID: tc.app, GrantID: tc.grant, RedirectURI: "https://x", ExpiresAt: at(10)}
		isErr(t, s.CreateAuthCode(ctx, c), store.ErrNotFound, "code: "+tc.what)
		_, err := s.TakeAuthCode(ctx, c.Hash)
		isErr(t, err, store.ErrNotFound, "code stored anyway: "+tc.what)

		tk := &store.Token{Hash: reqHash("token " + tc.what), Kind: store.TokenAccess, FamilyID: "f", ApplicationID: tc.app, GrantID: tc.grant, ExpiresAt: at(10)}
		isErr(t, s.CreateToken(ctx, tk), store.ErrNotFound, "token: "+tc.what)
		_, err = s.TokenByHash(ctx, tk.Hash)
		isErr(t, err, store.ErrNotFound, "token stored anyway: "+tc.what)
	}
}

func testTokenRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")

	access := &store.Token{
		Hash:          reqHash("access-1"),
		Kind:          store.TokenAccess,
		FamilyID:      "family-1",
		ApplicationID: "app",
		GrantID:       g,
		CreatedAt:     at(0),
		ExpiresAt:     at(60),
	}
	ok(t, s.CreateToken(ctx, access), "create access")
	if !access.CreatedAt.Equal(normalized(at(0))) || !access.ExpiresAt.Equal(normalized(at(60))) {
		t.Fatalf("written-back times %v, %v", access.CreatedAt, access.ExpiresAt)
	}
	utcMicro(t, access.CreatedAt, "written-back CreatedAt")
	utcMicro(t, access.ExpiresAt, "written-back ExpiresAt")
	got, err := s.TokenByHash(ctx, access.Hash)
	ok(t, err, "get access")
	same(t, got, access, "access token")
	utcMicro(t, got.CreatedAt, "CreatedAt")
	utcMicro(t, got.ExpiresAt, "ExpiresAt")
	// Reading does not consume; an expired token is still returned.
	got, err = s.TokenByHash(ctx, access.Hash)
	ok(t, err, "get access again")
	same(t, got, access, "access token read twice")

	// A refresh token that does not expire: zero in, zero out. CreatedAt
	// is stamped.
	before := time.Now().Add(-time.Second)
	refresh := &store.Token{Hash: reqHash("refresh-1"), Kind: store.TokenRefresh, FamilyID: "family-1", ApplicationID: "app", GrantID: g}
	ok(t, s.CreateToken(ctx, refresh), "create refresh")
	if refresh.CreatedAt.Before(before) || refresh.CreatedAt.After(time.Now().Add(time.Second)) || !refresh.ExpiresAt.IsZero() {
		t.Fatalf("written-back refresh token times: created %v, expires %v", refresh.CreatedAt, refresh.ExpiresAt)
	}
	got, err = s.TokenByHash(ctx, refresh.Hash)
	ok(t, err, "get refresh")
	same(t, got, refresh, "refresh token")
	if !got.ExpiresAt.IsZero() {
		t.Fatalf("non-expiring token came back expiring at %v", got.ExpiresAt)
	}

	_, err = s.TokenByHash(ctx, reqHash("never issued"))
	isErr(t, err, store.ErrNotFound, "get unknown")
	_, err = s.TokenByHash(ctx, nil)
	isErr(t, err, store.ErrNotFound, "get nil hash")
	// Codes and tokens are apart: a token's hash is no code.
	_, err = s.TakeAuthCode(ctx, access.Hash)
	isErr(t, err, store.ErrNotFound, "take a token as a code")
}

func testTokenBadKind(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := mailGrant(t, s, "app", "grant-1")
	for _, kind := range []string{"", "Access", "REFRESH", "id", "access "} {
		tk := &store.Token{Hash: reqHash("token " + kind), Kind: kind, FamilyID: "f", ApplicationID: "app", GrantID: g, ExpiresAt: at(10)}
		err := s.CreateToken(ctx, tk)
		if err == nil {
			t.Fatalf("token of kind %q accepted", kind)
		}
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			t.Fatalf("token of kind %q: %v, want a plain error", kind, err)
		}
		_, err = s.TokenByHash(ctx, tk.Hash)
		isErr(t, err, store.ErrNotFound, "token of kind "+kind+" stored anyway")
	}
	if err := s.CreateToken(ctx, &store.Token{Kind: store.TokenAccess, FamilyID: "f", ApplicationID: "app", GrantID: g}); err == nil {
		t.Fatal("token with no hash accepted")
	}
}

func testDeleteTokenFamily(t *testing.T, s store.Store) {
	ctx := t.Context()
	g1 := mailGrant(t, s, "app-a", "grant-1")
	g2 := mailGrant(t, s, "app-b", "grant-2")
	soon := time.Now().Add(time.Hour)
	// Family 1: an access token, its refresh token, and an access token
	// minted from the refresh token.
	newToken(t, s, "app-a", g1, "f1-access", store.TokenAccess, "family-1", soon)
	newToken(t, s, "app-a", g1, "f1-refresh", store.TokenRefresh, "family-1", time.Time{})
	newToken(t, s, "app-a", g1, "f1-access-2", store.TokenAccess, "family-1", soon)
	// Another family of the same grant, and one of another application.
	newToken(t, s, "app-a", g1, "f2-access", store.TokenAccess, "family-2", soon)
	newToken(t, s, "app-a", g1, "f2-refresh", store.TokenRefresh, "family-2", time.Time{})
	newToken(t, s, "app-b", g2, "f3-access", store.TokenAccess, "family-3", soon)
	// A code of the grant is no token.
	newCode(t, s, "app-a", g1, "c", soon)

	n, err := s.DeleteTokenFamily(ctx, "family-1")
	ok(t, err, "delete family-1")
	if n != 3 {
		t.Fatalf("deleting family-1 removed %d tokens, want 3", n)
	}
	for tok, want := range map[string]bool{
		"f1-access": false, "f1-refresh": false, "f1-access-2": false,
		"f2-access": true, "f2-refresh": true, "f3-access": true,
	} {
		if got := hasToken(t, s, tok); got != want {
			t.Fatalf("after deleting family-1: token %s present = %v, want %v", tok, got, want)
		}
	}
	n, err = s.DeleteTokenFamily(ctx, "family-1")
	ok(t, err, "delete family-1 again")
	if n != 0 {
		t.Fatalf("deleting family-1 again removed %d tokens", n)
	}
	n, err = s.DeleteTokenFamily(ctx, "no-such-family")
	ok(t, err, "delete unknown family")
	if n != 0 {
		t.Fatalf("deleting an unknown family removed %d tokens", n)
	}
	n, err = s.DeleteTokenFamily(ctx, "family-3")
	ok(t, err, "delete family-3")
	if n != 1 || hasToken(t, s, "f3-access") || !hasToken(t, s, "f2-access") {
		t.Fatalf("deleting family-3 removed %d tokens, or the wrong ones", n)
	}
	if !hasCode(t, s, "c") {
		t.Fatal("deleting token families removed a code")
	}
}

func testPurgeAuth(t *testing.T, s store.Store) {
	ctx := t.Context()
	g1 := mailGrant(t, s, "app-a", "grant-1")
	g2 := mailGrant(t, s, "app-b", "grant-2")
	newCode(t, s, "app-a", g1, "c-old", at(0))
	newCode(t, s, "app-b", g2, "c-older", at(-60))
	newCode(t, s, "app-a", g1, "c-edge", at(10)) // not before at(10)
	newCode(t, s, "app-b", g2, "c-new", at(20))
	newToken(t, s, "app-a", g1, "t-old", store.TokenAccess, "f1", at(0))
	newToken(t, s, "app-b", g2, "t-old-2", store.TokenAccess, "f2", at(9))
	newToken(t, s, "app-a", g1, "t-edge", store.TokenAccess, "f1", at(10))
	newToken(t, s, "app-b", g2, "t-new", store.TokenAccess, "f2", at(20))
	// Refresh tokens that do not expire, however old, stay; one that does
	// expire is purged like any token.
	oldRefresh := &store.Token{Hash: reqHash("token r-forever"), Kind: store.TokenRefresh, FamilyID: "f1",
		ApplicationID: "app-a", GrantID: g1, CreatedAt: at(-1000)}
	ok(t, s.CreateToken(ctx, oldRefresh), "create old refresh")
	newToken(t, s, "app-b", g2, "r-expiring", store.TokenRefresh, "f2", at(5))

	n, err := s.PurgeAuth(ctx, at(10))
	ok(t, err, "purge")
	if n != 5 {
		t.Fatalf("purge removed %d rows, want 5 (2 codes, 3 tokens)", n)
	}
	for tok, want := range map[string]bool{
		"t-old": false, "t-old-2": false, "r-expiring": false,
		"t-edge": true, "t-new": true, "r-forever": true,
	} {
		if got := hasToken(t, s, tok); got != want {
			t.Fatalf("after purge: token %s present = %v, want %v", tok, got, want)
		}
	}
	n, err = s.PurgeAuth(ctx, at(10))
	ok(t, err, "purge again")
	if n != 0 {
		t.Fatalf("second purge removed %d rows", n)
	}
	// Far in the future everything that expires goes; the refresh token
	// that does not stays.
	n, err = s.PurgeAuth(ctx, at(100000))
	ok(t, err, "purge all")
	if n != 4 {
		t.Fatalf("purging everything that expires removed %d rows, want 4", n)
	}
	if !hasToken(t, s, "r-forever") {
		t.Fatal("purge removed a refresh token that does not expire")
	}
	for _, code := range []string{"c-old", "c-older", "c-edge", "c-new"} {
		if hasCode(t, s, code) {
			t.Fatalf("code %s survived the purges", code)
		}
	}
}

func testAuthGrantDeleteCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	g1 := mailGrant(t, s, "app", "grant-1")
	g2 := mailGrant(t, s, "app", "grant-2")
	soon := time.Now().Add(time.Hour)
	newCode(t, s, "app", g1, "c1", soon)
	newCode(t, s, "app", g2, "c2", soon)
	newToken(t, s, "app", g1, "a1", store.TokenAccess, "f1", soon)
	newToken(t, s, "app", g1, "r1", store.TokenRefresh, "f1", time.Time{})
	newToken(t, s, "app", g2, "a2", store.TokenAccess, "f2", soon)
	newToken(t, s, "app", g2, "r2", store.TokenRefresh, "f2", time.Time{})

	ok(t, s.DeleteGrant(ctx, "app", g1), "delete grant")
	for tok, want := range map[string]bool{"a1": false, "r1": false, "a2": true, "r2": true} {
		if got := hasToken(t, s, tok); got != want {
			t.Fatalf("after deleting grant-1: token %s present = %v, want %v", tok, got, want)
		}
	}
	n, err := s.DeleteTokenFamily(ctx, "f1")
	ok(t, err, "delete family of the deleted grant")
	if n != 0 {
		t.Fatalf("the deleted grant still had %d tokens", n)
	}
	if hasCode(t, s, "c1") {
		t.Fatal("the deleted grant's code survived")
	}
	if !hasCode(t, s, "c2") {
		t.Fatal("the other grant's code went with the deleted grant")
	}
	// A grant created again under the same id starts with nothing.
	mailGrant(t, s, "app", "grant-1")
	if hasToken(t, s, "a1") {
		t.Fatal("a recreated grant inherited a token")
	}
}

func testListApplications(t *testing.T, s store.Store) {
	ctx := t.Context()
	apps, err := s.ListApplications(ctx)
	ok(t, err, "list empty")
	if apps == nil || len(apps) != 0 {
		t.Fatalf("fresh store: %#v, want an empty non-nil slice", apps)
	}

	// Created out of order, two at the same time (ordered by id), one
	// before 1970.
	mk := func(id string, created time.Time, settings string) *store.Application {
		app := &store.Application{ID: id, Name: "name of " + id, CreatedAt: created}
		if settings != "" {
			app.Settings = []byte(settings)
		}
		ok(t, s.CreateApplication(ctx, app), "create "+id)
		return app
	}
	c := mk("app-c", at(10), `{"b": [1, 2]}`)
	b := mk("app-b", at(0), "")
	a := mk("app-a", at(0), `{"x":"ünï"}`)
	old := mk("app-z", time.Date(1969, 7, 20, 20, 17, 40, 987654321, time.UTC), `{}`)
	b.Settings = []byte("{}") // nil settings come back as {}
	c.Name = "renamed"
	ok(t, s.UpdateApplication(ctx, c), "update c")

	apps, err = s.ListApplications(ctx)
	ok(t, err, "list")
	same(t, apps, []store.Application{*old, *a, *b, *c}, "applications")
	for _, app := range apps {
		utcMicro(t, app.CreatedAt, app.ID+" CreatedAt")
		utcMicro(t, app.UpdatedAt, app.ID+" UpdatedAt")
		got, err := s.GetApplication(ctx, app.ID)
		ok(t, err, "get "+app.ID)
		same(t, &app, got, "listed and got "+app.ID)
	}
}
