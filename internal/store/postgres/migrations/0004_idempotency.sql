-- One row per Idempotency-Key a client sent with a request of a grant
-- (POST .../messages/send), so that a retry gets the first response back
-- instead of running again. status is 0 and finished_at NULL while the
-- request is in progress. Old rows are purged by created_at; all of a
-- grant's rows go with it.
CREATE TABLE idempotency_keys (
    grant_id     TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    status       INTEGER NOT NULL,
    response     BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    PRIMARY KEY (grant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
