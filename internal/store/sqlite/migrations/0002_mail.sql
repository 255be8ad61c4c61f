-- Mail of the grants (store.MailStore), written only through ApplyMailBatch.
--
-- Every table is keyed by grant_id first and cascades from grants, so that
-- deleting a grant removes its folders, messages, threads and the change
-- rows not yet dispatched (they could no longer be attributed to an
-- application). Booleans are 0/1 integers in both dialects so that the
-- shared queries can use the same literals. Times are Unix microseconds.
--
-- Several columns are copies kept in step by ApplyMailBatch, so that every
-- listing is one ordered index range scan: locations.date and
-- message_addresses.date (the message's date), thread_folders and
-- thread_addresses (the thread's folders and participants with its
-- latest_message_at), messages.unread/starred/located/folders (derived from
-- the locations) and folders.total_count/unread_count.

CREATE TABLE folders (
    grant_id        TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    delimiter       TEXT NOT NULL,
    attributes      TEXT NOT NULL DEFAULT '[]',
    role            TEXT NOT NULL,
    total_count     INTEGER NOT NULL DEFAULT 0,
    unread_count    INTEGER NOT NULL DEFAULT 0,
    uid_validity    INTEGER NOT NULL,
    uid_next        INTEGER NOT NULL,
    highest_modseq  INTEGER NOT NULL,
    initial_low_uid INTEGER NOT NULL,
    initial_done    INTEGER NOT NULL,
    last_sync_at    INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (grant_id, id),
    UNIQUE (grant_id, name)
) STRICT;

-- The columns that filters read come first: SQLite reads a row only up to
-- the last column it needs. Body and raw headers live in message_bodies so
-- that scanning messages (subject search) never reads them.
CREATE TABLE messages (
    grant_id          TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    id                TEXT NOT NULL,
    thread_id         TEXT NOT NULL,
    date              INTEGER NOT NULL,
    unread            INTEGER NOT NULL,
    starred           INTEGER NOT NULL,
    has_attachment    INTEGER NOT NULL,
    located           INTEGER NOT NULL, -- 1 while some location holds a copy
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
    sent_at           INTEGER NOT NULL,
    snippet           TEXT NOT NULL,
    attachments       TEXT NOT NULL, -- JSON array
    size              INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (grant_id, id),
    UNIQUE (grant_id, identity_key)
) STRICT;
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
    message_id TEXT NOT NULL,
    body       TEXT NOT NULL,
    headers    BLOB NOT NULL,
    PRIMARY KEY (grant_id, message_id),
    FOREIGN KEY (grant_id, message_id) REFERENCES messages (grant_id, id) ON DELETE CASCADE
) STRICT;

-- One row per distinct lower-cased address of a message; kinds is a bit set
-- (1 from, 2 to, 4 cc, 8 bcc), so a message is found once per address.
CREATE TABLE message_addresses (
    grant_id    TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    email_lower TEXT NOT NULL,
    kinds       INTEGER NOT NULL,
    date        INTEGER NOT NULL,
    PRIMARY KEY (grant_id, message_id, email_lower),
    FOREIGN KEY (grant_id, message_id) REFERENCES messages (grant_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX message_addresses_email ON message_addresses (grant_id, email_lower, date, message_id, kinds);

-- Message-ID header (own = 1), In-Reply-To and References of each message,
-- for ThreadIDByMessageIDs.
CREATE TABLE message_refs (
    grant_id   TEXT NOT NULL,
    message_id TEXT NOT NULL,
    ref        TEXT NOT NULL,
    own        INTEGER NOT NULL,
    PRIMARY KEY (grant_id, message_id, ref),
    FOREIGN KEY (grant_id, message_id) REFERENCES messages (grant_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX message_refs_ref ON message_refs (grant_id, ref);

CREATE TABLE locations (
    grant_id   TEXT NOT NULL,
    folder_id  TEXT NOT NULL,
    uid        INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    flags      TEXT NOT NULL, -- JSON array, as given
    seen       INTEGER NOT NULL, -- flags has \Seen
    flagged    INTEGER NOT NULL, -- flags has \Flagged
    modseq     INTEGER NOT NULL,
    date       INTEGER NOT NULL,
    PRIMARY KEY (grant_id, folder_id, uid),
    FOREIGN KEY (grant_id, folder_id) REFERENCES folders (grant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (grant_id, message_id) REFERENCES messages (grant_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX locations_message ON locations (grant_id, message_id);
CREATE INDEX locations_folder_date ON locations (grant_id, folder_id, date, message_id);

CREATE TABLE threads (
    grant_id            TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    id                  TEXT NOT NULL,
    latest_message_at   INTEGER NOT NULL,
    unread              INTEGER NOT NULL,
    starred             INTEGER NOT NULL,
    has_attachments     INTEGER NOT NULL,
    subject_lower       TEXT NOT NULL,
    subject_key         TEXT NOT NULL,
    subject             TEXT NOT NULL,
    earliest_message_at INTEGER NOT NULL,
    latest_message_id   TEXT NOT NULL,
    snippet             TEXT NOT NULL,
    message_ids         TEXT NOT NULL, -- JSON arrays
    folders             TEXT NOT NULL,
    participants        TEXT NOT NULL,
    PRIMARY KEY (grant_id, id)
) STRICT;
CREATE INDEX threads_latest ON threads (grant_id, latest_message_at, id);
CREATE INDEX threads_unread ON threads (grant_id, unread, latest_message_at, id);
CREATE INDEX threads_starred ON threads (grant_id, starred, latest_message_at, id);
CREATE INDEX threads_subject_key ON threads (grant_id, subject_key, latest_message_at, id);

CREATE TABLE thread_folders (
    grant_id          TEXT NOT NULL,
    thread_id         TEXT NOT NULL,
    folder_id         TEXT NOT NULL,
    latest_message_at INTEGER NOT NULL,
    PRIMARY KEY (grant_id, thread_id, folder_id),
    FOREIGN KEY (grant_id, thread_id) REFERENCES threads (grant_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX thread_folders_folder ON thread_folders (grant_id, folder_id, latest_message_at, thread_id);

CREATE TABLE thread_addresses (
    grant_id          TEXT NOT NULL,
    thread_id         TEXT NOT NULL,
    email_lower       TEXT NOT NULL,
    latest_message_at INTEGER NOT NULL,
    PRIMARY KEY (grant_id, thread_id, email_lower),
    FOREIGN KEY (grant_id, thread_id) REFERENCES threads (grant_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX thread_addresses_email ON thread_addresses (grant_id, email_lower, latest_message_at, thread_id);

-- AUTOINCREMENT: ids are never reused, even after the highest rows are
-- deleted (a grant's deletion), so a dispatcher's "after id" cursor never
-- skips a new row.
CREATE TABLE changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    grant_id    TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX changes_grant ON changes (grant_id);

-- Query planner statistics. Without them SQLite assumes that an equality on
-- an index's first column selects about ten rows, so "grant_id = ?" looks
-- selective, and it would scan a whole grant's locations to join a handful
-- of messages. These describe the real shape instead: a grant of 100,000
-- messages (about what ANALYZE reports for one), so that the grant prefix
-- selects everything and only the columns after it narrow the search.
-- Fixed numbers keep plans the same on every database, however full;
-- ANALYZE, if ever run, replaces them with measured ones of the same shape.
-- "ANALYZE sqlite_schema" creates sqlite_stat1 if needed and, run last,
-- makes this connection load the rows (others load them with the schema).
ANALYZE sqlite_schema;
DELETE FROM sqlite_stat1 WHERE tbl IN ('folders', 'messages', 'message_bodies', 'message_addresses', 'message_refs',
    'locations', 'threads', 'thread_folders', 'thread_addresses', 'changes');
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('folders', 'sqlite_autoindex_folders_1', '20 20 1'),
    ('folders', 'sqlite_autoindex_folders_2', '20 20 1'),
    ('messages', 'sqlite_autoindex_messages_1', '100000 100000 1'),
    ('messages', 'sqlite_autoindex_messages_2', '100000 100000 1'),
    ('messages', 'messages_date', '100000 100000 1 1 1'),
    ('messages', 'messages_thread', '100000 100000 2 1 1'),
    ('messages', 'messages_unread', '100000 100000 50000 1 1'),
    ('messages', 'messages_starred', '100000 100000 50000 1 1'),
    ('messages', 'messages_attachment', '100000 100000 50000 1 1'),
    ('messages', 'messages_orphans', '10 10'),
    ('message_bodies', 'sqlite_autoindex_message_bodies_1', '100000 100000 1'),
    ('message_addresses', 'message_addresses', '300000 300000 3 1'),
    ('message_addresses', 'message_addresses_email', '300000 300000 100 1 1 1'),
    ('message_refs', 'message_refs', '200000 200000 2 1'),
    ('message_refs', 'message_refs_ref', '200000 200000 2'),
    ('locations', 'locations', '130000 130000 20000 1'),
    ('locations', 'locations_folder_date', '130000 130000 20000 1 1'),
    ('locations', 'locations_message', '130000 130000 1'),
    ('threads', 'sqlite_autoindex_threads_1', '50000 50000 1'),
    ('threads', 'threads_latest', '50000 50000 1 1'),
    ('threads', 'threads_unread', '50000 50000 25000 1 1'),
    ('threads', 'threads_starred', '50000 50000 25000 1 1'),
    ('threads', 'threads_subject_key', '50000 50000 2 1 1'),
    ('thread_folders', 'thread_folders', '80000 80000 2 1'),
    ('thread_folders', 'thread_folders_folder', '80000 80000 10000 1 1'),
    ('thread_addresses', 'thread_addresses', '150000 150000 3 1'),
    ('thread_addresses', 'thread_addresses_email', '150000 150000 50 1 1'),
    ('changes', 'changes_grant', '10000 10000');
ANALYZE sqlite_schema;
