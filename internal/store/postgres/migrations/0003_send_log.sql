-- One row per message sent (or being sent) through Orchard, for the
-- provider's daily sending limits (internal/quota). Rows older than a
-- day are of no use; they go with their grant.
CREATE TABLE send_log (
    grant_id   TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    sent_at    BIGINT NOT NULL,
    recipients INTEGER NOT NULL,
    PRIMARY KEY (grant_id, id)
);
CREATE INDEX send_log_time ON send_log (grant_id, sent_at);
