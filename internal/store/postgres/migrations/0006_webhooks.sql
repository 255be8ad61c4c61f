-- Webhooks (store.WebhookStore): the destinations of an application, the
-- queue of deliveries to them, the log of their attempts, and the
-- dispatcher's cursor into the changes table (0002).
--
-- Webhooks cascade from applications; deliveries cascade from their webhook
-- and attempts from their delivery, so deleting a webhook or an application
-- removes everything. The composite foreign key (webhook_id, application_id)
-- keeps a delivery in its webhook's application, which GetDelivery and
-- RetryDelivery scope by. grant_id has no foreign key on purpose: a
-- grant.deleted notification must outlive its grant. Times are Unix
-- microseconds; a zero time.Time is 0 (claimed_until 0: not claimed);
-- finished_at is NULL while a delivery is pending. String lists are JSON
-- arrays, booleans 0/1.

CREATE TABLE webhooks (
    id                  TEXT PRIMARY KEY,
    application_id      TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    url                 TEXT NOT NULL,
    description         TEXT NOT NULL,
    trigger_types       TEXT NOT NULL DEFAULT '[]',
    status              TEXT NOT NULL,
    notification_emails TEXT NOT NULL DEFAULT '[]',
    secret              BYTEA NOT NULL,
    compressed_delivery SMALLINT NOT NULL,
    status_updated_at   BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (id, application_id)
);
CREATE INDEX webhooks_application ON webhooks (application_id, created_at, id);

-- seq is the queue order: "oldest first" and the order of one webhook's
-- notifications. Only EnqueueDeliveries inserts, and it updates the cursor
-- row (its compare-and-set) before inserting, so enqueueing transactions
-- run one at a time and seq values are taken in commit order.
CREATE TABLE webhook_deliveries (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    webhook_id      TEXT NOT NULL,
    application_id  TEXT NOT NULL,
    grant_id        TEXT NOT NULL,
    type            TEXT NOT NULL,
    payload         BYTEA NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT NOT NULL,
    last_status     INTEGER NOT NULL,
    last_error      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    FOREIGN KEY (webhook_id, application_id) REFERENCES webhooks (id, application_id) ON DELETE CASCADE
);
-- The claim goes webhook by webhook (there are few webhooks and possibly
-- many pending deliveries, e.g. behind a receiver that is down): the head
-- of a webhook's queue is its first pending delivery (one probe of
-- webhook_deliveries_head), and a live claim anywhere in the queue (after an
-- operator replay the in-flight delivery need not be the head) is one range
-- probe of webhook_deliveries_claimed. Neither depends on the length of the
-- backlog, as scanning every due delivery by (state, next_attempt_at)
-- would.
CREATE INDEX webhook_deliveries_head ON webhook_deliveries (webhook_id, seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_claimed ON webhook_deliveries (webhook_id, claimed_until) WHERE state = 'pending';
-- RecentDeliveries (newest first) and the cascade from webhooks.
-- application_id comes first so that the head lookup (by webhook_id alone)
-- cannot take this index, which would walk the webhook's finished
-- deliveries before reaching its first pending one.
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (application_id, webhook_id, seq);
-- PurgeDeliveries.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE finished_at IS NOT NULL;

-- One row per finished attempt. webhook_id is copied from the delivery so
-- that WebhookOutcomes counts a webhook's recent attempts in one index
-- range.
CREATE TABLE webhook_delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n           INTEGER NOT NULL,
    webhook_id  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    status      INTEGER NOT NULL,
    latency_ns  BIGINT NOT NULL,
    error       TEXT NOT NULL,
    PRIMARY KEY (delivery_id, n)
);
CREATE INDEX webhook_delivery_attempts_webhook ON webhook_delivery_attempts (webhook_id, at);

-- The id of the last change row turned into deliveries; one row. A
-- database that already has change rows starts after them: no webhook
-- existed to want them.
CREATE TABLE webhook_dispatch_cursor (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    change_id BIGINT NOT NULL
);
INSERT INTO webhook_dispatch_cursor (id, change_id) SELECT 1, COALESCE(MAX(id), 0) FROM changes;
