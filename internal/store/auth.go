package store

import (
	"context"
	"time"
)

// AuthStore keeps hosted authentication's authorization codes and OAuth
// tokens. Only SHA-256 hashes of codes and tokens are stored.
//
// Lookups go by hash alone, not by application: a code or token is a
// secret of 256 bits of hash space, and holding it is what identifies the
// application and grant it was issued for. Writes keep a code or token in
// its grant's application: a grant of another application is ErrNotFound.
type AuthStore interface {
	// CreateAuthCode inserts c (CreatedAt zero → now) and writes the stored
	// times back. A duplicate hash is ErrConflict; a missing application or
	// grant, or a grant of another application, is ErrNotFound. An empty
	// Hash or a zero ExpiresAt is an error.
	CreateAuthCode(ctx context.Context, c *AuthCode) error
	// TakeAuthCode deletes the code with that hash and returns it, in one
	// statement (DELETE ... RETURNING), so that of concurrent callers
	// exactly one gets it and the others get ErrNotFound. Expired codes are
	// returned too: the caller tells "expired" from "unknown".
	TakeAuthCode(ctx context.Context, hash []byte) (*AuthCode, error)
	// CreateToken inserts t (CreatedAt zero → now) and writes the stored
	// times back. Duplicate hash → ErrConflict; missing application or
	// grant, or a grant of another application → ErrNotFound. A Kind other
	// than TokenAccess or TokenRefresh, or an empty Hash, is an error.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash returns the token with that hash, expired or not;
	// ErrNotFound when absent.
	TokenByHash(ctx context.Context, hash []byte) (*Token, error)
	// DeleteTokenFamily deletes every token of the family (an access token
	// and the refresh token it came with, and access tokens minted from
	// that refresh token) and returns how many rows went.
	DeleteTokenFamily(ctx context.Context, family string) (int, error)
	// PurgeAuth deletes codes whose ExpiresAt is before `before`, and
	// tokens whose ExpiresAt is non-zero and before `before`; returns how
	// many rows went in all.
	PurgeAuth(ctx context.Context, before time.Time) (int, error)
}

// Token kinds.
const (
	TokenAccess  = "access"
	TokenRefresh = "refresh"
)

// AuthCode is an issued, not yet exchanged authorization code.
type AuthCode struct {
	Hash                []byte // SHA-256 of the code; primary key
	ApplicationID       string
	GrantID             string
	RedirectURI         string
	CodeChallenge       string // empty: no PKCE
	CodeChallengeMethod string // "", "plain" or "s256" (lower case)
	Offline             bool   // access_type=offline: the exchange also returns a refresh token
	CreatedAt           time.Time
	ExpiresAt           time.Time
}

// Token is an access or refresh token issued by the token endpoint.
type Token struct {
	Hash          []byte // SHA-256 of the token; primary key
	Kind          string // TokenAccess | TokenRefresh (anything else is an error from CreateToken)
	FamilyID      string // tokens issued together, and revoked together
	ApplicationID string
	GrantID       string
	CreatedAt     time.Time
	ExpiresAt     time.Time // zero: does not expire (refresh tokens)
}
