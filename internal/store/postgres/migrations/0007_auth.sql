-- Hosted authentication (store.AuthStore): authorization codes waiting to
-- be exchanged, and the access and refresh tokens of the token endpoint.
-- Only SHA-256 hashes of codes and tokens are stored; the hash is the key.
--
-- Both cascade from their grant (deleting a grant revokes its codes and
-- tokens) and from their application. The grant's foreign key is
-- (grant_id, application_id), not grant_id alone, so that a code or token
-- cannot name a grant of another application; it needs the unique index
-- grants_id_application. Times are Unix microseconds; a token that
-- does not expire has expires_at NULL, so the purge (expires_at < t) keeps
-- it. offline is 0/1.

CREATE UNIQUE INDEX grants_id_application ON grants (id, application_id);

CREATE TABLE auth_codes (
    hash                  BYTEA NOT NULL PRIMARY KEY,
    application_id        TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    grant_id              TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    code_challenge        TEXT NOT NULL,
    code_challenge_method TEXT NOT NULL,
    offline               SMALLINT NOT NULL,
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    FOREIGN KEY (grant_id, application_id) REFERENCES grants (id, application_id) ON DELETE CASCADE
);
CREATE INDEX auth_codes_grant ON auth_codes (grant_id, application_id);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

CREATE TABLE oauth_tokens (
    hash           BYTEA NOT NULL PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    family_id      TEXT NOT NULL,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    grant_id       TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT,
    FOREIGN KEY (grant_id, application_id) REFERENCES grants (id, application_id) ON DELETE CASCADE
);
CREATE INDEX oauth_tokens_family ON oauth_tokens (family_id);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id, application_id);
CREATE INDEX oauth_tokens_expires ON oauth_tokens (expires_at);
