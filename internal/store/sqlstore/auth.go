package sqlstore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// hashName names a code or token in error messages by the start of its
// hash: enough to tell rows apart in a log, and the hash is no secret.
func hashName(h []byte) string {
	if len(h) > 4 {
		h = h[:4]
	}
	return hex.EncodeToString(h)
}

// CreateAuthCode inserts c. The (grant_id, application_id) foreign key
// makes a grant of another application a missing parent, i.e. ErrNotFound.
func (s *Store) CreateAuthCode(ctx context.Context, c *store.AuthCode) error {
	op := fmt.Sprintf("create auth code %s", hashName(c.Hash))
	if len(c.Hash) == 0 {
		return fmt.Errorf("store: %s: empty hash", op)
	}
	if c.ExpiresAt.IsZero() {
		return fmt.Errorf("store: %s: zero ExpiresAt", op)
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now()
	} else {
		c.CreatedAt = normTime(c.CreatedAt)
	}
	c.ExpiresAt = normTime(c.ExpiresAt)
	_, err := s.write.ExecContext(ctx, `INSERT INTO auth_codes
			(hash, application_id, grant_id, redirect_uri, code_challenge, code_challenge_method, offline, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		c.Hash, c.ApplicationID, c.GrantID, c.RedirectURI, c.CodeChallenge, c.CodeChallengeMethod,
		b2i(c.Offline), micros(c.CreatedAt), micros(c.ExpiresAt))
	return s.wrap(op, err)
}

// TakeAuthCode is one DELETE ... RETURNING: SQLite runs writes one at a
// time, and in PostgreSQL a concurrent DELETE of the same row waits for the
// first to commit, then finds the row gone and returns nothing.
func (s *Store) TakeAuthCode(ctx context.Context, hash []byte) (*store.AuthCode, error) {
	var (
		c                store.AuthCode
		offline          int
		created, expires int64
	)
	err := s.write.QueryRowContext(ctx, `DELETE FROM auth_codes WHERE hash = $1
		RETURNING hash, application_id, grant_id, redirect_uri, code_challenge, code_challenge_method, offline, created_at, expires_at`,
		blobIn(hash)).Scan(&c.Hash, &c.ApplicationID, &c.GrantID, &c.RedirectURI, &c.CodeChallenge, &c.CodeChallengeMethod,
		&offline, &created, &expires)
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("take auth code %s", hashName(hash)), err)
	}
	c.Offline = offline == 1
	c.CreatedAt, c.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &c, nil
}

// CreateToken inserts t; a zero ExpiresAt is stored as NULL.
func (s *Store) CreateToken(ctx context.Context, t *store.Token) error {
	op := fmt.Sprintf("create %s token %s", t.Kind, hashName(t.Hash))
	if t.Kind != store.TokenAccess && t.Kind != store.TokenRefresh {
		return fmt.Errorf("store: %s: unknown kind %q", op, t.Kind)
	}
	if len(t.Hash) == 0 {
		return fmt.Errorf("store: %s: empty hash", op)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now()
	} else {
		t.CreatedAt = normTime(t.CreatedAt)
	}
	var expires sql.NullInt64
	if !t.ExpiresAt.IsZero() {
		t.ExpiresAt = normTime(t.ExpiresAt)
		expires = sql.NullInt64{Int64: micros(t.ExpiresAt), Valid: true}
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO oauth_tokens
			(hash, kind, family_id, application_id, grant_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.Hash, t.Kind, t.FamilyID, t.ApplicationID, t.GrantID, micros(t.CreatedAt), expires)
	return s.wrap(op, err)
}

func (s *Store) TokenByHash(ctx context.Context, hash []byte) (*store.Token, error) {
	var (
		t       store.Token
		created int64
		expires sql.NullInt64
	)
	err := s.read.QueryRowContext(ctx, `SELECT hash, kind, family_id, application_id, grant_id, created_at, expires_at
		FROM oauth_tokens WHERE hash = $1`, blobIn(hash)).
		Scan(&t.Hash, &t.Kind, &t.FamilyID, &t.ApplicationID, &t.GrantID, &created, &expires)
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get token %s", hashName(hash)), err)
	}
	t.CreatedAt = fromMicros(created)
	if expires.Valid {
		t.ExpiresAt = fromMicros(expires.Int64)
	}
	return &t, nil
}

// DeleteTokenFamily deletes through oauth_tokens_family.
func (s *Store) DeleteTokenFamily(ctx context.Context, family string) (int, error) {
	op := fmt.Sprintf("delete token family %s", family)
	res, err := s.write.ExecContext(ctx, `DELETE FROM oauth_tokens WHERE family_id = $1`, family)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.wrap(op, err)
	}
	return int(n), nil
}

// PurgeAuth deletes through the expires_at indexes, in one transaction. A
// token that does not expire has expires_at NULL, which no comparison
// matches.
func (s *Store) PurgeAuth(ctx context.Context, before time.Time) (int, error) {
	total := 0
	err := inTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		total = 0
		for _, q := range []string{
			`DELETE FROM auth_codes WHERE expires_at < $1`,
			`DELETE FROM oauth_tokens WHERE expires_at < $1`,
		} {
			res, err := tx.ExecContext(ctx, q, micros(before))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, s.wrap("purge auth codes and tokens", err)
	}
	return total, nil
}
