-- Timestamps are Unix microseconds (UTC). JSON documents are kept as text,
-- verbatim. Every tenant table cascades from applications. STRICT makes
-- SQLite refuse values of the wrong type, as PostgreSQL would.

CREATE TABLE applications (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    settings   TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    prefix         TEXT NOT NULL,
    hash           BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER
) STRICT;
CREATE INDEX api_keys_prefix ON api_keys (prefix);
CREATE INDEX api_keys_application ON api_keys (application_id, created_at);

CREATE TABLE redirect_uris (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    url            TEXT NOT NULL,
    platform       TEXT NOT NULL,
    settings       TEXT NOT NULL DEFAULT '{}',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (application_id, url)
) STRICT;

CREATE TABLE connectors (
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    name           TEXT NOT NULL,
    settings       TEXT NOT NULL DEFAULT '{}',
    scope          TEXT NOT NULL DEFAULT '[]',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (application_id, provider)
) STRICT;

-- email_lower is filled by Orchard (Go's strings.ToLower) so that SQLite and
-- PostgreSQL agree on which emails collide.
CREATE TABLE grants (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    email          TEXT NOT NULL,
    email_lower    TEXT NOT NULL,
    name           TEXT NOT NULL,
    status         TEXT NOT NULL,
    scope          TEXT NOT NULL DEFAULT '[]',
    settings       TEXT NOT NULL DEFAULT '{}',
    credentials    BLOB NOT NULL,
    state          TEXT NOT NULL,
    ip             TEXT NOT NULL,
    user_agent     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (application_id, email_lower)
) STRICT;
CREATE INDEX grants_created ON grants (application_id, created_at, id);
CREATE INDEX grants_updated ON grants (application_id, updated_at, id);
