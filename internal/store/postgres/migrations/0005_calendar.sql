-- Calendars of the grants (store.CalendarStore), written only through
-- ApplyCalendarBatch. Change rows go to the mail's changes table (0002),
-- whose object_type is free text, so "calendar" and "event" need nothing
-- new.
--
-- Keyed by grant_id first like the mail tables: calendars cascade from
-- grants and calendar objects from their calendar, so deleting a grant
-- removes everything, and deleting a calendar removes its objects. The
-- composite foreign key (grant_id, calendar_id) also keeps an object from
-- landing in another grant's calendar. Booleans are 0/1 integers in both
-- dialects so that the shared queries can use the same literals. Times are
-- Unix microseconds.
--
-- Text that takes part in an ORDER BY (ids, calendar names) is
-- COLLATE "C": byte order, as in SQLite and Go, whatever the database's
-- default collation.
--
-- calendar_objects.end_at of an endless series (CalendarObject.End zero) is
-- the sentinel 9223372036854775807 (the largest BIGINT) rather than NULL:
-- the overlap test "end_at > start" then holds for it without an OR, and
-- the range index below can apply it.

CREATE TABLE calendars (
    grant_id    TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    id          TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    href        TEXT NOT NULL,
    description TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    color       TEXT NOT NULL,
    read_only   SMALLINT NOT NULL,
    is_owned    SMALLINT NOT NULL,
    is_primary  SMALLINT NOT NULL,
    ctag        TEXT NOT NULL,
    sync_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (grant_id, id)
);
CREATE INDEX calendars_name ON calendars (grant_id, name, id);

CREATE TABLE calendar_objects (
    grant_id    TEXT NOT NULL,
    calendar_id TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    start_at    BIGINT NOT NULL,
    end_at      BIGINT NOT NULL, -- 9223372036854775807: endless
    updated_at  BIGINT NOT NULL,
    uid         TEXT NOT NULL,
    href        TEXT NOT NULL,
    etag        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    data        BYTEA NOT NULL,
    PRIMARY KEY (grant_id, calendar_id, id),
    FOREIGN KEY (grant_id, calendar_id) REFERENCES calendars (grant_id, id) ON DELETE CASCADE
);
-- The range listing: start_at bounds the scan and gives the order (start,
-- then id); end_at is tested in the index, so objects that ended before the
-- window are skipped without reading their row.
CREATE INDEX calendar_objects_start ON calendar_objects (grant_id, calendar_id, start_at, id, end_at);
-- A UID lookup: the index also gives the listing's order, so the planner
-- has no reason to prefer walking the whole calendar in start order.
CREATE INDEX calendar_objects_uid ON calendar_objects (grant_id, calendar_id, uid, start_at, id);
