package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/orchard-mail/orchard/internal/store"
)

// endlessMicros is calendar_objects.end_at of an endless series
// (CalendarObject.End zero): larger than any real end, so the overlap test
// "end_at > start" needs no special case (see migration 0005).
const endlessMicros = math.MaxInt64

func endIn(o store.CalendarObject) int64 {
	if o.End.IsZero() {
		return endlessMicros
	}
	return micros(o.End)
}

// preparedCalendarBatch is a validated copy of a CalendarBatch, like
// preparedBatch: the caller's batch is never modified, and rows upserted
// twice are reduced to their last version (one PostgreSQL multi-row upsert
// may not touch a row twice).
type preparedCalendarBatch struct {
	grantID          string
	calendars        []store.Calendar
	deletedCalendars []string
	objects          []store.CalendarObject
	deletedObjects   []store.CalendarObjectKey
	changes          []store.Change
}

func prepareCalendarBatch(b *store.CalendarBatch) (*preparedCalendarBatch, error) {
	if b.GrantID == "" {
		return nil, errors.New("store: apply calendar batch: no grant id")
	}
	g := b.GrantID
	belongs := func(id string) bool { return id == "" || id == g }
	p := &preparedCalendarBatch{grantID: g, deletedCalendars: b.DeletedCalendars, deletedObjects: b.DeletedObjects}
	at := now()

	for _, c := range b.Calendars {
		if !belongs(c.GrantID) {
			return nil, fmt.Errorf("store: apply calendar batch for grant %s: calendar %s belongs to grant %s", g, c.ID, c.GrantID)
		}
		if c.ID == "" {
			return nil, errors.New("store: apply calendar batch: calendar without id")
		}
		c.GrantID = g
		stampUpsert(&c.CreatedAt, &c.UpdatedAt, at)
		p.calendars = append(p.calendars, c)
	}
	p.calendars = lastByKey(p.calendars, func(c store.Calendar) string { return c.ID })

	for _, o := range b.Objects {
		if !belongs(o.GrantID) {
			return nil, fmt.Errorf("store: apply calendar batch for grant %s: object %s/%s belongs to grant %s", g, o.CalendarID, o.ID, o.GrantID)
		}
		if o.CalendarID == "" || o.ID == "" {
			return nil, fmt.Errorf("store: apply calendar batch: object without calendar or id (%q, %q)", o.CalendarID, o.ID)
		}
		o.GrantID = g
		stampUpsert(&o.CreatedAt, &o.UpdatedAt, at)
		o.Start, o.End = normTime(o.Start), normTime(o.End)
		p.objects = append(p.objects, o)
	}
	p.objects = lastByKey(p.objects, func(o store.CalendarObject) store.CalendarObjectKey {
		return store.CalendarObjectKey{CalendarID: o.CalendarID, ID: o.ID}
	})

	for _, c := range b.Changes {
		if !belongs(c.GrantID) {
			return nil, fmt.Errorf("store: apply calendar batch for grant %s: change of %s %s belongs to grant %s", g, c.ObjectType, c.ObjectID, c.GrantID)
		}
		c.GrantID = g
		if c.CreatedAt.IsZero() {
			c.CreatedAt = at
		} else {
			c.CreatedAt = normTime(c.CreatedAt)
		}
		p.changes = append(p.changes, c)
	}
	return p, nil
}

// ApplyCalendarBatch applies b in one transaction on the write pool: its
// parts in field order, then the change rows. See store.CalendarBatch.
//
// It takes the dialect's grant lock first, as ApplyMailBatch does, so that
// two nodes syncing one grant for a moment apply their batches one after
// the other rather than interleaved. An object's calendar is checked by the
// foreign key, which the dialect reports as store.ErrNotFound.
func (s *Store) ApplyCalendarBatch(ctx context.Context, b *store.CalendarBatch) error {
	p, err := prepareCalendarBatch(b)
	if err != nil {
		return err
	}
	err = inTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		if s.d.LockGrant != nil {
			if err := s.d.LockGrant(ctx, tx, p.grantID); err != nil {
				return fmt.Errorf("lock grant: %w", err)
			}
		}
		steps := []struct {
			name string
			fn   func() error
		}{
			{"upsert calendars", func() error { return s.upsertCalendars(ctx, tx, p) }},
			{"delete calendars", func() error {
				return s.deleteGrantIDs(ctx, tx, `DELETE FROM calendars WHERE grant_id = $1 AND id IN `, p.grantID, p.deletedCalendars)
			}},
			{"upsert objects", func() error { return s.upsertCalendarObjects(ctx, tx, p) }},
			{"delete objects", func() error { return s.deleteCalendarObjects(ctx, tx, p) }},
			{"record changes", func() error { return s.insertChanges(ctx, tx, p.changes) }},
		}
		for _, st := range steps {
			if err := st.fn(); err != nil {
				return fmt.Errorf("%s: %w", st.name, err)
			}
		}
		return nil
	})
	return s.wrapBatch("calendar", p.grantID, err)
}

// upsertCalendars writes every field but CreatedAt, which a stored
// calendar keeps.
func (s *Store) upsertCalendars(ctx context.Context, tx *sql.Tx, p *preparedCalendarBatch) error {
	rows := make([]any, 0, 14*len(p.calendars))
	for _, c := range p.calendars {
		rows = append(rows, c.GrantID, c.ID, c.Name, c.Href, c.Description, c.Timezone, c.Color,
			b2i(c.ReadOnly), b2i(c.IsOwned), b2i(c.IsPrimary), c.CTag, c.SyncToken, micros(c.CreatedAt), micros(c.UpdatedAt))
	}
	return insertRows(ctx, s, tx, `INSERT INTO calendars (grant_id, id, name, href, description, timezone, color,
		                        read_only, is_owned, is_primary, ctag, sync_token, created_at, updated_at)`,
		`ON CONFLICT (grant_id, id) DO UPDATE SET name = excluded.name, href = excluded.href,
		    description = excluded.description, timezone = excluded.timezone, color = excluded.color,
		    read_only = excluded.read_only, is_owned = excluded.is_owned, is_primary = excluded.is_primary,
		    ctag = excluded.ctag, sync_token = excluded.sync_token, updated_at = excluded.updated_at`,
		14, rows)
}

// upsertCalendarObjects writes every field but CreatedAt, which a stored
// object keeps. The foreign key on (grant_id, calendar_id) refuses an
// object whose calendar is not the grant's.
func (s *Store) upsertCalendarObjects(ctx context.Context, tx *sql.Tx, p *preparedCalendarBatch) error {
	rows := make([]any, 0, 11*len(p.objects))
	for _, o := range p.objects {
		rows = append(rows, o.GrantID, o.CalendarID, o.ID, micros(o.Start), endIn(o), micros(o.UpdatedAt),
			o.UID, o.Href, o.ETag, micros(o.CreatedAt), blobIn(o.Data))
	}
	return insertRows(ctx, s, tx, `INSERT INTO calendar_objects (grant_id, calendar_id, id, start_at, end_at, updated_at,
		                               uid, href, etag, created_at, data)`,
		`ON CONFLICT (grant_id, calendar_id, id) DO UPDATE SET start_at = excluded.start_at,
		    end_at = excluded.end_at, updated_at = excluded.updated_at, uid = excluded.uid,
		    href = excluded.href, etag = excluded.etag, data = excluded.data`,
		11, rows)
}

// deleteCalendarObjects ignores keys that are not stored.
func (s *Store) deleteCalendarObjects(ctx context.Context, tx *sql.Tx, p *preparedCalendarBatch) error {
	byCalendar := map[string][]string{}
	var order []string
	for _, k := range p.deletedObjects {
		if _, ok := byCalendar[k.CalendarID]; !ok {
			order = append(order, k.CalendarID)
		}
		byCalendar[k.CalendarID] = append(byCalendar[k.CalendarID], k.ID)
	}
	for _, cal := range order {
		err := chunks(byCalendar[cal], inChunk, func(ids []string) error {
			_, err := s.execOn(ctx, tx, `DELETE FROM calendar_objects WHERE grant_id = $1 AND calendar_id = $2 AND id IN (`+
				placeholders(3, len(ids))+`)`, anys([]any{p.grantID, cal}, ids)...)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// deleteGrantIDs runs query + "(ids)" with $1 the grant, in chunks.
func (s *Store) deleteGrantIDs(ctx context.Context, tx *sql.Tx, query, grantID string, ids []string) error {
	return chunks(ids, inChunk, func(ids []string) error {
		_, err := s.execOn(ctx, tx, query+`(`+placeholders(2, len(ids))+`)`, anys([]any{grantID}, ids)...)
		return err
	})
}

// insertChanges records change rows as the transaction's last step, under
// the dialect's LockChanges (see Dialect.LockChanges and
// batchTx.recordChanges): the lock is then held only until the commit that
// follows, and change ids follow commit order across mail and calendar
// batches alike.
func (s *Store) insertChanges(ctx context.Context, tx *sql.Tx, changes []store.Change) error {
	if len(changes) == 0 {
		return nil
	}
	if s.d.LockChanges != nil {
		if err := s.d.LockChanges(ctx, tx); err != nil {
			return err
		}
	}
	rows := make([]any, 0, 5*len(changes))
	for _, c := range changes {
		rows = append(rows, c.GrantID, c.ObjectType, c.ObjectID, c.Action, micros(c.CreatedAt))
	}
	return insertRows(ctx, s, tx, `INSERT INTO changes (grant_id, object_type, object_id, action, created_at)`,
		``, 5, rows)
}

// --- reads -----------------------------------------------------------------

const calendarColumns = `grant_id, id, href, name, description, timezone, color, read_only, is_owned, is_primary,
	ctag, sync_token, created_at, updated_at`

func scanCalendar(sc rowScanner) (store.Calendar, error) {
	var (
		c                        store.Calendar
		readOnly, owned, primary int
		created, updated         int64
	)
	if err := sc.Scan(&c.GrantID, &c.ID, &c.Href, &c.Name, &c.Description, &c.Timezone, &c.Color,
		&readOnly, &owned, &primary, &c.CTag, &c.SyncToken, &created, &updated); err != nil {
		return c, err
	}
	c.ReadOnly, c.IsOwned, c.IsPrimary = readOnly == 1, owned == 1, primary == 1
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return c, nil
}

func (s *Store) ListCalendars(ctx context.Context, grantID string) ([]store.Calendar, error) {
	rows, err := s.query(ctx, `SELECT `+calendarColumns+` FROM calendars WHERE grant_id = $1 ORDER BY name, id`, grantID)
	if err != nil {
		return nil, s.wrap("list calendars", err)
	}
	defer rows.Close()
	out := []store.Calendar{}
	for rows.Next() {
		c, err := scanCalendar(rows)
		if err != nil {
			return nil, s.wrap("list calendars", err)
		}
		out = append(out, c)
	}
	return out, s.wrap("list calendars", rows.Err())
}

func (s *Store) GetCalendar(ctx context.Context, grantID, id string) (*store.Calendar, error) {
	c, err := scanCalendar(s.queryRow(ctx, `SELECT `+calendarColumns+` FROM calendars WHERE grant_id = $1 AND id = $2`, grantID, id))
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get calendar %s", id), err)
	}
	return &c, nil
}

const calendarObjectColumns = `grant_id, calendar_id, id, href, etag, uid, data, start_at, end_at, created_at, updated_at`

func scanCalendarObject(sc rowScanner) (store.CalendarObject, error) {
	var (
		o                            store.CalendarObject
		start, end, created, updated int64
	)
	if err := sc.Scan(&o.GrantID, &o.CalendarID, &o.ID, &o.Href, &o.ETag, &o.UID, &o.Data,
		&start, &end, &created, &updated); err != nil {
		return o, err
	}
	o.Data = blobOut(o.Data)
	o.Start = fromMicros(start)
	if end != endlessMicros {
		o.End = fromMicros(end)
	}
	o.CreatedAt, o.UpdatedAt = fromMicros(created), fromMicros(updated)
	return o, nil
}

// ListCalendarObjects reads the range from calendar_objects_start: start_at
// < End bounds the index scan, end_at > Start is tested in the index, and
// the index order is the listing's. A UID filter is served by
// calendar_objects_uid instead.
func (s *Store) ListCalendarObjects(ctx context.Context, q store.CalendarObjectQuery) ([]store.CalendarObject, error) {
	const op = "list calendar objects"
	if q.CalendarID == "" {
		return nil, fmt.Errorf("store: %s: no calendar id", op)
	}
	var where strings.Builder
	args := []any{q.GrantID, q.CalendarID}
	cond := func(expr string, v any) {
		args = append(args, v)
		fmt.Fprintf(&where, ` AND %s $%d`, expr, len(args))
	}
	if !q.Start.IsZero() {
		cond(`end_at >`, micros(q.Start))
	}
	if !q.End.IsZero() {
		cond(`start_at <`, micros(q.End))
	}
	if q.UID != "" {
		cond(`uid =`, q.UID)
	}
	if !q.UpdatedAfter.IsZero() {
		cond(`updated_at >`, micros(q.UpdatedAfter))
	}
	if !q.UpdatedBefore.IsZero() {
		cond(`updated_at <`, micros(q.UpdatedBefore))
	}
	args = append(args, pageLimit(q.Limit))
	rows, err := s.query(ctx, `SELECT `+calendarObjectColumns+` FROM calendar_objects
		WHERE grant_id = $1 AND calendar_id = $2`+where.String()+`
		ORDER BY start_at, id LIMIT $`+fmt.Sprint(len(args)), args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	out := []store.CalendarObject{}
	for rows.Next() {
		o, err := scanCalendarObject(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, o)
	}
	return out, s.wrap(op, rows.Err())
}

func (s *Store) GetCalendarObject(ctx context.Context, grantID, calendarID, id string) (*store.CalendarObject, error) {
	o, err := scanCalendarObject(s.queryRow(ctx, `SELECT `+calendarObjectColumns+` FROM calendar_objects
		WHERE grant_id = $1 AND calendar_id = $2 AND id = $3`, grantID, calendarID, id))
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get calendar object %s/%s", calendarID, id), err)
	}
	return &o, nil
}

// CalendarObjectTags reads only href and etag, which come before data in
// the row. Rows come by id, so of two objects sharing an href the greater
// id's etag stays.
func (s *Store) CalendarObjectTags(ctx context.Context, grantID, calendarID string) (map[string]string, error) {
	const op = "calendar object tags"
	rows, err := s.query(ctx, `SELECT href, etag FROM calendar_objects WHERE grant_id = $1 AND calendar_id = $2 ORDER BY id`,
		grantID, calendarID)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var href, etag string
		if err := rows.Scan(&href, &etag); err != nil {
			return nil, s.wrap(op, err)
		}
		out[href] = etag
	}
	return out, s.wrap(op, rows.Err())
}
