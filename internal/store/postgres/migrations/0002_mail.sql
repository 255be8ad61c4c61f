-- Mail of the grants (store.MailStore), written only through ApplyMailBatch.
--
-- Every table is keyed by grant_id first and cascades from grants, so that
-- deleting a grant removes its folders, messages, threads and the change
-- rows not yet dispatched (they could no longer be attributed to an
-- application). Booleans are 0/1 integers in both dialects so that the
-- shared queries can use the same literals. Times are Unix microseconds.
--
-- Text that takes part in an ORDER BY or a keyset comparison (ids, folder
-- names) is COLLATE "C": byte order, as in SQLite and Go, whatever the
-- database's default collation.
--
-- Several columns are copies kept in step by ApplyMailBatch, so that every
-- listing is one ordered index range scan: locations.date and
-- message_addresses.date (the message's date), thread_folders and
-- thread_addresses (the thread's folders and participants with its
-- latest_message_at), messages.unread/starred/located/folders (derived from
-- the locations) and folders.total_count/unread_count.

CREATE TABLE folders (
    grant_id        TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    id              TEXT COLLATE "C" NOT NULL,
    name            TEXT COLLATE "C" NOT NULL,
    delimiter       TEXT NOT NULL,
    attributes      TEXT NOT NULL DEFAULT '[]',
    role            TEXT NOT NULL,
    total_count     BIGINT NOT NULL DEFAULT 0,
    unread_count    BIGINT NOT NULL DEFAULT 0,
    uid_validity    BIGINT NOT NULL,
    uid_next        BIGINT NOT NULL,
    highest_modseq  BIGINT NOT NULL,
    initial_low_uid BIGINT NOT NULL,
    initial_done    SMALLINT NOT NULL,
    last_sync_at    BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (grant_id, id),
    UNIQUE (grant_id, name)
);

-- Body and raw headers live in message_bodies, as in SQLite, so that
-- scanning messages (subject search) never reads them.
CREATE TABLE messages (
    grant_id          TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    id                TEXT COLLATE "C" NOT NULL,
    thread_id         TEXT COLLATE "C" NOT NULL,
    date              BIGINT NOT NULL,
    unread            SMALLINT NOT NULL,
    starred           SMALLINT NOT NULL,
    has_attachment    SMALLINT NOT NULL,
    located           SMALLINT NOT NULL, -- 1 while some location holds a copy
    folders           TEXT NOT NULL, -- JSON array of the folder ids holding a copy, ascending
    subject_lower     TEXT NOT NULL,
    identity_key      TEXT NOT NULL,
    message_id_header TEXT NOT NULL,
    in_reply_to       TEXT NOT NULL,
    refs              TEXT NOT NULL, -- JSON array
    subject           TEXT NOT NULL,
    subject_key       TEXT NOT NULL,
    from_list         TEXT NOT NULL, -- JSON arrays of participants
    to_list           TEXT NOT NULL,
    cc_list           TEXT NOT NULL,
    bcc_list          TEXT NOT NULL,
    reply_to_list     TEXT NOT NULL,
    sent_at           BIGINT NOT NULL,
    snippet           TEXT NOT NULL,
    attachments       TEXT NOT NULL, -- JSON array
    size              BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (grant_id, id),
    UNIQUE (grant_id, identity_key)
);
-- subject_lower makes the index covering for a subject search, which has
-- to look at every subject until the page is full: the rows themselves
-- are read only for matches.
CREATE INDEX messages_date ON messages (grant_id, date, id, subject_lower);
CREATE INDEX messages_thread ON messages (grant_id, thread_id, date, id);
CREATE INDEX messages_unread ON messages (grant_id, unread, date, id);
CREATE INDEX messages_starred ON messages (grant_id, starred, date, id);
CREATE INDEX messages_attachment ON messages (grant_id, has_attachment, date, id);
-- DeleteOrphans reads only this (normally empty) index.
CREATE INDEX messages_orphans ON messages (grant_id) WHERE located = 0;

CREATE TABLE message_bodies (
    grant_id   TEXT NOT NULL,
    message_id TEXT COLLATE "C" NOT NULL,
    body       TEXT NOT NULL,
    headers    BYTEA NOT NULL,
    PRIMARY KEY (grant_id, message_id),
    FOREIGN KEY (grant_id, message_id) REFERENCES messages (grant_id, id) ON DELETE CASCADE
);

-- One row per distinct lower-cased address of a message; kinds is a bit set
-- (1 from, 2 to, 4 cc, 8 bcc), so a message is found once per address.
CREATE TABLE message_addresses (
    grant_id    TEXT NOT NULL,
    message_id  TEXT COLLATE "C" NOT NULL,
    email_lower TEXT NOT NULL,
    kinds       BIGINT NOT NULL,
    date        BIGINT NOT NULL,
    PRIMARY KEY (grant_id, message_id, email_lower),
    FOREIGN KEY (grant_id, message_id) REFERENCES messages (grant_id, id) ON DELETE CASCADE
);
CREATE INDEX message_addresses_email ON message_addresses (grant_id, email_lower, date, message_id, kinds);

-- Message-ID header (own = 1), In-Reply-To and References of each message,
-- for ThreadIDByMessageIDs.
CREATE TABLE message_refs (
    grant_id   TEXT NOT NULL,
    message_id TEXT COLLATE "C" NOT NULL,
    ref        TEXT NOT NULL,
    own        SMALLINT NOT NULL,
    PRIMARY KEY (grant_id, message_id, ref),
    FOREIGN KEY (grant_id, message_id) REFERENCES messages (grant_id, id) ON DELETE CASCADE
);
CREATE INDEX message_refs_ref ON message_refs (grant_id, ref);

CREATE TABLE locations (
    grant_id   TEXT NOT NULL,
    folder_id  TEXT COLLATE "C" NOT NULL,
    uid        BIGINT NOT NULL,
    message_id TEXT COLLATE "C" NOT NULL,
    flags      TEXT NOT NULL, -- JSON array, as given
    seen       SMALLINT NOT NULL, -- flags has \Seen
    flagged    SMALLINT NOT NULL, -- flags has \Flagged
    modseq     BIGINT NOT NULL,
    date       BIGINT NOT NULL,
    PRIMARY KEY (grant_id, folder_id, uid),
    FOREIGN KEY (grant_id, folder_id) REFERENCES folders (grant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (grant_id, message_id) REFERENCES messages (grant_id, id) ON DELETE CASCADE
);
CREATE INDEX locations_message ON locations (grant_id, message_id);
CREATE INDEX locations_folder_date ON locations (grant_id, folder_id, date, message_id);

CREATE TABLE threads (
    grant_id            TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    id                  TEXT COLLATE "C" NOT NULL,
    latest_message_at   BIGINT NOT NULL,
    unread              SMALLINT NOT NULL,
    starred             SMALLINT NOT NULL,
    has_attachments     SMALLINT NOT NULL,
    subject_lower       TEXT NOT NULL,
    subject_key         TEXT NOT NULL,
    subject             TEXT NOT NULL,
    earliest_message_at BIGINT NOT NULL,
    latest_message_id   TEXT COLLATE "C" NOT NULL,
    snippet             TEXT NOT NULL,
    message_ids         TEXT NOT NULL, -- JSON arrays
    folders             TEXT NOT NULL,
    participants        TEXT NOT NULL,
    PRIMARY KEY (grant_id, id)
);
CREATE INDEX threads_latest ON threads (grant_id, latest_message_at, id);
CREATE INDEX threads_unread ON threads (grant_id, unread, latest_message_at, id);
CREATE INDEX threads_starred ON threads (grant_id, starred, latest_message_at, id);
CREATE INDEX threads_subject_key ON threads (grant_id, subject_key, latest_message_at, id);

CREATE TABLE thread_folders (
    grant_id          TEXT NOT NULL,
    thread_id         TEXT COLLATE "C" NOT NULL,
    folder_id         TEXT COLLATE "C" NOT NULL,
    latest_message_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, thread_id, folder_id),
    FOREIGN KEY (grant_id, thread_id) REFERENCES threads (grant_id, id) ON DELETE CASCADE
);
CREATE INDEX thread_folders_folder ON thread_folders (grant_id, folder_id, latest_message_at, thread_id);

CREATE TABLE thread_addresses (
    grant_id          TEXT NOT NULL,
    thread_id         TEXT COLLATE "C" NOT NULL,
    email_lower       TEXT NOT NULL,
    latest_message_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, thread_id, email_lower),
    FOREIGN KEY (grant_id, thread_id) REFERENCES threads (grant_id, id) ON DELETE CASCADE
);
CREATE INDEX thread_addresses_email ON thread_addresses (grant_id, email_lower, latest_message_at, thread_id);

-- Ids come from a sequence, so they are never reused. Sequence values are
-- taken in commit order because ApplyMailBatch inserts change rows last,
-- under a transaction-scoped advisory lock (see postgres.lockChanges): a
-- dispatcher reading "id > cursor" never misses a row committed late.
CREATE TABLE changes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grant_id    TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX changes_grant ON changes (grant_id);
