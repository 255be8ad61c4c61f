package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// Address kinds, a bit set in message_addresses.kinds.
const (
	kindFrom = 1 << iota
	kindTo
	kindCc
	kindBcc
	kindAny = kindFrom | kindTo | kindCc | kindBcc
)

// preparedBatch is a validated copy of a MailBatch: the caller's batch is
// never modified. Rows upserted twice are reduced to their last version,
// which is what applying them in order would leave, and which PostgreSQL
// needs (one multi-row upsert may not touch a row twice).
type preparedBatch struct {
	grantID        string
	folders        []store.Folder
	deletedFolders []string
	clearFolders   []string
	messages       []store.Message
	locations      []store.Location
	removed        []store.LocationKey
	flags          []store.FlagUpdate
	deleteOrphans  bool
	changes        []store.Change
}

func lastByKey[T any, K comparable](in []T, key func(T) K) []T {
	idx := make(map[K]int, len(in))
	out := make([]T, 0, len(in))
	for _, v := range in {
		k := key(v)
		if i, ok := idx[k]; ok {
			out[i] = v
			continue
		}
		idx[k] = len(out)
		out = append(out, v)
	}
	return out
}

func prepareBatch(b *store.MailBatch) (*preparedBatch, error) {
	if b.GrantID == "" {
		return nil, errors.New("store: apply mail batch: no grant id")
	}
	g := b.GrantID
	// belongs reports whether a row's GrantID is the batch's; an empty
	// one is taken as the batch's.
	belongs := func(id string) bool { return id == "" || id == g }
	p := &preparedBatch{grantID: g, deleteOrphans: b.DeleteOrphans,
		deletedFolders: b.DeletedFolders, clearFolders: b.ClearFolders, removed: b.RemovedLocations}
	at := now()

	for _, f := range b.Folders {
		if !belongs(f.GrantID) {
			return nil, fmt.Errorf("store: apply mail batch for grant %s: folder %s belongs to grant %s", g, f.ID, f.GrantID)
		}
		if f.ID == "" || f.Name == "" {
			return nil, fmt.Errorf("store: apply mail batch: folder without id or name (%q, %q)", f.ID, f.Name)
		}
		f.GrantID = g
		stampUpsert(&f.CreatedAt, &f.UpdatedAt, at)
		f.LastSyncAt = normTime(f.LastSyncAt)
		p.folders = append(p.folders, f)
	}
	p.folders = lastByKey(p.folders, func(f store.Folder) string { return f.ID })

	for _, m := range b.Messages {
		if !belongs(m.GrantID) {
			return nil, fmt.Errorf("store: apply mail batch for grant %s: message %s belongs to grant %s", g, m.ID, m.GrantID)
		}
		if m.ID == "" || m.IdentityKey == "" {
			return nil, fmt.Errorf("store: apply mail batch: message without id or identity key (%q)", m.ID)
		}
		m.GrantID = g
		stampUpsert(&m.CreatedAt, &m.UpdatedAt, at)
		m.Date, m.SentAt = normTime(m.Date), normTime(m.SentAt)
		p.messages = append(p.messages, m)
	}
	p.messages = lastByKey(p.messages, func(m store.Message) string { return m.ID })

	for _, l := range b.Locations {
		if l.FolderID == "" || l.MessageID == "" {
			return nil, fmt.Errorf("store: apply mail batch: location without folder or message (%q, %q)", l.FolderID, l.MessageID)
		}
	}
	p.locations = lastByKey(b.Locations, func(l store.Location) store.LocationKey {
		return store.LocationKey{FolderID: l.FolderID, UID: l.UID}
	})
	p.flags = lastByKey(b.FlagUpdates, func(f store.FlagUpdate) store.LocationKey {
		return store.LocationKey{FolderID: f.FolderID, UID: f.UID}
	})

	for _, c := range b.Changes {
		if !belongs(c.GrantID) {
			return nil, fmt.Errorf("store: apply mail batch for grant %s: change of %s %s belongs to grant %s", g, c.ObjectType, c.ObjectID, c.GrantID)
		}
		c.GrantID = g
		if c.CreatedAt.IsZero() {
			c.CreatedAt = at
		}
		p.changes = append(p.changes, c)
	}
	return p, nil
}

// stampUpsert fills zero times: a new row's CreatedAt (kept by the upsert
// when the row exists) and UpdatedAt.
func stampUpsert(created, updated *time.Time, at time.Time) {
	if created.IsZero() {
		*created = at
	} else {
		*created = normTime(*created)
	}
	if updated.IsZero() {
		*updated = at
	} else {
		*updated = normTime(*updated)
	}
}

// batchTx is the state of one ApplyMailBatch transaction.
type batchTx struct {
	s   *Store
	tx  *sql.Tx
	ctx context.Context
	p   *preparedBatch
	at  time.Time

	// touched holds every message whose locations, flags or content the
	// batch may change: their derived columns, the counts of their folders
	// and their threads are recomputed from it.
	touched *idSet
	// threads holds the threads to recompute (including the old thread of
	// a message that moved).
	threads *idSet
	// existing maps the batch's messages that were already stored to
	// their date before the batch.
	existing map[string]int64
	// before is the touched messages' contribution to folder counts
	// before the batch.
	before map[string]folderCount
	// orphanChanges are the "deleted" changes of DeleteOrphans, recorded
	// before the batch's own changes.
	orphanChanges []store.Change
}

// ApplyMailBatch applies b in one transaction on the write pool: its parts
// in field order, then the derived state (messages' Unread/Starred, folder
// counts, thread aggregates), then the change rows. See store.MailBatch.
func (s *Store) ApplyMailBatch(ctx context.Context, b *store.MailBatch) error {
	p, err := prepareBatch(b)
	if err != nil {
		return err
	}
	err = inTx(ctx, s.write, nil, func(tx *sql.Tx) error {
		if s.d.LockGrant != nil {
			if err := s.d.LockGrant(ctx, tx, p.grantID); err != nil {
				return fmt.Errorf("lock grant: %w", err)
			}
		}
		bt := &batchTx{s: s, tx: tx, ctx: ctx, p: p, at: now(),
			touched: newIDSet(), threads: newIDSet(), existing: map[string]int64{}}
		return bt.apply()
	})
	return s.wrapBatch("mail", p.grantID, err)
}

// wrapBatch is wrap for ApplyMailBatch and ApplyCalendarBatch (kind
// "mail" or "calendar"), keeping the failing step's text (but not the
// driver's error type) next to the sentinel.
func (s *Store) wrapBatch(kind, grantID string, err error) error {
	if err == nil {
		return nil
	}
	op := "apply " + kind + " batch for grant " + grantID
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if s.d.Classify != nil {
		if sentinel := s.d.Classify(err); sentinel != nil {
			return fmt.Errorf("store: %s: %w (%v)", op, sentinel, err)
		}
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

func (bt *batchTx) exec(query string, args ...any) error {
	_, err := bt.s.execOn(bt.ctx, bt.tx, query, args...)
	return err
}

func (bt *batchTx) query(query string, args ...any) (*sql.Rows, error) {
	return bt.s.queryOn(bt.ctx, bt.tx, query, args...)
}

func (bt *batchTx) insertRows(head, tail string, ncol int, rows []any) error {
	return insertRows(bt.ctx, bt.s, bt.tx, head, tail, ncol, rows)
}

func (bt *batchTx) apply() error {
	p := bt.p
	steps := []struct {
		name string
		fn   func() error
	}{
		{"read prior state", bt.collectTouched},
		{"upsert folders", bt.upsertFolders},
		{"delete folders", func() error {
			return bt.deleteByIDs(`DELETE FROM folders WHERE grant_id = $1 AND id IN `, p.deletedFolders)
		}},
		{"clear folders", func() error {
			return bt.deleteByIDs(`DELETE FROM locations WHERE grant_id = $1 AND folder_id IN `, p.clearFolders)
		}},
		{"upsert messages", bt.upsertMessages},
		{"upsert locations", bt.upsertLocations},
		{"remove locations", bt.removeLocations},
		{"update flags", bt.updateFlags},
		{"derive message state", bt.deriveMessages},
		{"delete orphans", bt.deleteOrphans},
		{"update folder counts", bt.updateFolderCounts},
		{"update threads", bt.updateThreads},
		{"record changes", bt.recordChanges},
	}
	for _, st := range steps {
		if err := st.fn(); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return nil
}

// folderCount is a contribution to a folder's counts.
type folderCount struct{ total, unread int64 }

// collectTouched finds every message the batch may affect, before
// anything changes, and measures their contribution to folder counts.
func (bt *batchTx) collectTouched() error {
	p := bt.p
	// Messages at the location keys the batch writes, removes or flags
	// (an upsert may move a key to another message).
	byFolder := map[string][]int64{}
	var folderOrder []string
	addKey := func(folder string, uid uint32) {
		if _, ok := byFolder[folder]; !ok {
			folderOrder = append(folderOrder, folder)
		}
		byFolder[folder] = append(byFolder[folder], int64(uid))
	}
	for _, l := range p.locations {
		addKey(l.FolderID, l.UID)
	}
	for _, k := range p.removed {
		addKey(k.FolderID, k.UID)
	}
	for _, f := range p.flags {
		addKey(f.FolderID, f.UID)
	}
	for _, folder := range folderOrder {
		err := chunks(byFolder[folder], inChunk, func(uids []int64) error {
			return bt.collect(`SELECT message_id FROM locations WHERE grant_id = $1 AND folder_id = $2 AND uid IN (`+
				placeholders(3, len(uids))+`)`, anys([]any{p.grantID, folder}, uids)...)
		})
		if err != nil {
			return err
		}
	}
	// Every message of a folder being deleted or cleared.
	for _, folder := range slices.Concat(p.deletedFolders, p.clearFolders) {
		if err := bt.collect(`SELECT message_id FROM locations WHERE grant_id = $1 AND folder_id = $2`, p.grantID, folder); err != nil {
			return err
		}
	}
	// The batch's messages, with the thread and date they had.
	ids := make([]string, len(p.messages))
	for i, m := range p.messages {
		ids[i] = m.ID
		bt.touched.add(m.ID)
	}
	err := chunks(ids, inChunk, func(ids []string) error {
		rows, err := bt.query(`SELECT id, thread_id, date FROM messages WHERE grant_id = $1 AND id IN (`+
			placeholders(2, len(ids))+`)`, anys([]any{p.grantID}, ids)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, thread string
			var date int64
			if err := rows.Scan(&id, &thread, &date); err != nil {
				return err
			}
			bt.existing[id] = date
			bt.threads.add(thread)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	for _, l := range p.locations {
		bt.touched.add(l.MessageID)
	}
	bt.before, err = bt.folderCounts()
	return err
}

// collect adds the message ids a query returns to touched.
func (bt *batchTx) collect(query string, args ...any) error {
	rows, err := bt.query(query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		bt.touched.add(id)
	}
	return rows.Err()
}

// folderCounts measures, per folder, how many of the touched messages it
// holds and how many of those are unread. A message counts once per
// folder however many copies the folder has.
func (bt *batchTx) folderCounts() (map[string]folderCount, error) {
	out := map[string]folderCount{}
	err := chunks(bt.touched.list, inChunk, func(ids []string) error {
		rows, err := bt.query(`
			SELECT l.folder_id, COUNT(DISTINCT l.message_id),
			       COUNT(DISTINCT CASE WHEN m.unread = 1 THEN l.message_id END)
			FROM locations l JOIN messages m ON m.grant_id = l.grant_id AND m.id = l.message_id
			WHERE l.grant_id = $1 AND l.message_id IN (`+placeholders(2, len(ids))+`)
			GROUP BY l.folder_id`, anys([]any{bt.p.grantID}, ids)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var folder string
			var c folderCount
			if err := rows.Scan(&folder, &c.total, &c.unread); err != nil {
				return err
			}
			// Each message is in one chunk only, so the chunks' distinct
			// counts add up.
			o := out[folder]
			out[folder] = folderCount{o.total + c.total, o.unread + c.unread}
		}
		return rows.Err()
	})
	return out, err
}

// deleteByIDs runs query + "(ids)" with $1 the grant.
func (bt *batchTx) deleteByIDs(query string, ids []string) error {
	return chunks(ids, inChunk, func(ids []string) error {
		return bt.exec(query+`(`+placeholders(2, len(ids))+`)`, anys([]any{bt.p.grantID}, ids)...)
	})
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func stringsOrEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func participantsOrEmpty(s []store.Participant) []store.Participant {
	if s == nil {
		return []store.Participant{}
	}
	return s
}

// upsertFolders writes every field but the counts, which the store
// maintains, and CreatedAt, which an existing folder keeps.
func (bt *batchTx) upsertFolders() error {
	var rows []any
	for _, f := range bt.p.folders {
		attrs, err := jsonText(stringsOrEmpty(f.Attributes))
		if err != nil {
			return err
		}
		rows = append(rows, f.GrantID, f.ID, f.Name, f.Delimiter, attrs, f.Role,
			int64(f.UIDValidity), int64(f.UIDNext), int64(f.HighestModSeq), int64(f.InitialLowUID),
			b2i(f.InitialDone), micros(f.LastSyncAt), micros(f.CreatedAt), micros(f.UpdatedAt))
	}
	return bt.insertRows(`INSERT INTO folders (grant_id, id, name, delimiter, attributes, role, uid_validity, uid_next,
		                      highest_modseq, initial_low_uid, initial_done, last_sync_at, created_at, updated_at)`,
		`ON CONFLICT (grant_id, id) DO UPDATE SET name = excluded.name, delimiter = excluded.delimiter,
		    attributes = excluded.attributes, role = excluded.role, uid_validity = excluded.uid_validity,
		    uid_next = excluded.uid_next, highest_modseq = excluded.highest_modseq,
		    initial_low_uid = excluded.initial_low_uid, initial_done = excluded.initial_done,
		    last_sync_at = excluded.last_sync_at, updated_at = excluded.updated_at`,
		14, rows)
}

// hasAttachment: inline parts (images of an HTML body, signatures) do not
// make a message one "with attachments".
func hasAttachment(atts []store.Attachment) bool {
	for _, a := range atts {
		if !a.IsInline {
			return true
		}
	}
	return false
}

// messageAddresses returns the message's distinct lower-cased addresses
// with the kinds (from, to, cc, bcc) they appear as.
func messageAddresses(m *store.Message) ([]string, map[string]int) {
	kinds := map[string]int{}
	var order []string
	add := func(ps []store.Participant, kind int) {
		for _, p := range ps {
			e := emailKey(strings.TrimSpace(p.Email))
			if e == "" {
				continue
			}
			if _, ok := kinds[e]; !ok {
				order = append(order, e)
			}
			kinds[e] |= kind
		}
	}
	add(m.From, kindFrom)
	add(m.To, kindTo)
	add(m.Cc, kindCc)
	add(m.Bcc, kindBcc)
	return order, kinds
}

// upsertMessages writes the messages' content and rebuilds their address
// and reference rows. Unread, Starred, folders and "located" are left to
// deriveMessages, CreatedAt of an existing message is kept.
func (bt *batchTx) upsertMessages() error {
	p := bt.p
	if len(p.messages) == 0 {
		return nil
	}
	var msgRows, bodyRows, addrRows, refRows []any
	var stale []string // existing messages: their address and ref rows go
	for i := range p.messages {
		m := &p.messages[i]
		refs, err := jsonText(stringsOrEmpty(m.References))
		if err != nil {
			return err
		}
		lists := make([]any, 0, 5)
		for _, ps := range [][]store.Participant{m.From, m.To, m.Cc, m.Bcc, m.ReplyTo} {
			j, err := jsonText(participantsOrEmpty(ps))
			if err != nil {
				return err
			}
			lists = append(lists, j)
		}
		atts := m.Attachments
		if atts == nil {
			atts = []store.Attachment{}
		}
		attsJSON, err := jsonText(atts)
		if err != nil {
			return err
		}
		msgRows = append(msgRows, p.grantID, m.ID, m.ThreadID, micros(m.Date), b2i(hasAttachment(m.Attachments)),
			strings.ToLower(m.Subject), m.IdentityKey, m.MessageIDHeader, m.InReplyTo, refs, m.Subject, m.SubjectKey)
		msgRows = append(msgRows, lists...)
		msgRows = append(msgRows, micros(m.SentAt), m.Snippet, attsJSON, m.Size, micros(m.CreatedAt), micros(m.UpdatedAt), 1, 0, 0, "[]")
		bodyRows = append(bodyRows, p.grantID, m.ID, m.Body, blobIn(m.Headers))

		if _, ok := bt.existing[m.ID]; ok {
			stale = append(stale, m.ID)
		}
		order, kinds := messageAddresses(m)
		for _, e := range order {
			addrRows = append(addrRows, p.grantID, m.ID, e, kinds[e], micros(m.Date))
		}
		seen := map[string]bool{}
		addRef := func(ref string, own bool) {
			if ref == "" || seen[ref] {
				return
			}
			seen[ref] = true
			refRows = append(refRows, p.grantID, m.ID, ref, b2i(own))
		}
		addRef(m.MessageIDHeader, true)
		addRef(m.InReplyTo, false)
		for _, r := range m.References {
			addRef(r, false)
		}
		bt.threads.add(m.ThreadID)
	}

	// New rows start unread, unstarred and without location; the real
	// values are derived once the batch's locations are in.
	if err := bt.insertRows(`INSERT INTO messages (grant_id, id, thread_id, date, has_attachment, subject_lower, identity_key,
		                       message_id_header, in_reply_to, refs, subject, subject_key, from_list, to_list,
		                       cc_list, bcc_list, reply_to_list, sent_at, snippet, attachments, size,
		                       created_at, updated_at, unread, starred, located, folders)`,
		`ON CONFLICT (grant_id, id) DO UPDATE SET thread_id = excluded.thread_id, date = excluded.date,
		    has_attachment = excluded.has_attachment, subject_lower = excluded.subject_lower,
		    identity_key = excluded.identity_key, message_id_header = excluded.message_id_header,
		    in_reply_to = excluded.in_reply_to, refs = excluded.refs, subject = excluded.subject,
		    subject_key = excluded.subject_key, from_list = excluded.from_list, to_list = excluded.to_list,
		    cc_list = excluded.cc_list, bcc_list = excluded.bcc_list, reply_to_list = excluded.reply_to_list,
		    sent_at = excluded.sent_at, snippet = excluded.snippet, attachments = excluded.attachments,
		    size = excluded.size, updated_at = excluded.updated_at`,
		messageCols, msgRows); err != nil {
		return err
	}
	if err := bt.insertRows(`INSERT INTO message_bodies (grant_id, message_id, body, headers)`,
		`ON CONFLICT (grant_id, message_id) DO UPDATE SET body = excluded.body, headers = excluded.headers`,
		4, bodyRows); err != nil {
		return err
	}
	if err := bt.deleteByIDs(`DELETE FROM message_addresses WHERE grant_id = $1 AND message_id IN `, stale); err != nil {
		return err
	}
	if err := bt.deleteByIDs(`DELETE FROM message_refs WHERE grant_id = $1 AND message_id IN `, stale); err != nil {
		return err
	}
	if err := bt.insertRows(`INSERT INTO message_addresses (grant_id, message_id, email_lower, kinds, date)`,
		``, 5, addrRows); err != nil {
		return err
	}
	if err := bt.insertRows(`INSERT INTO message_refs (grant_id, message_id, ref, own)`,
		``, 4, refRows); err != nil {
		return err
	}
	// Locations carry the message's date (for listing a folder in date
	// order): follow a message whose date changed.
	for _, m := range p.messages {
		if old, ok := bt.existing[m.ID]; ok && old != micros(m.Date) {
			if err := bt.exec(`UPDATE locations SET date = $3 WHERE grant_id = $1 AND message_id = $2`,
				p.grantID, m.ID, micros(m.Date)); err != nil {
				return err
			}
		}
	}
	return nil
}

// messageCols is the number of columns upsertMessages writes per message.
const messageCols = 27

// hasFlag compares flags case-insensitively, as IMAP does.
func hasFlag(flags []string, flag string) bool {
	for _, f := range flags {
		if strings.EqualFold(f, flag) {
			return true
		}
	}
	return false
}

// upsertLocations checks that every location's message is the grant's
// (the folder is checked by its foreign key) and writes the locations with
// their message's date.
func (bt *batchTx) upsertLocations() error {
	p := bt.p
	if len(p.locations) == 0 {
		return nil
	}
	ids := newIDSet()
	for _, l := range p.locations {
		ids.add(l.MessageID)
	}
	dates := make(map[string]int64, len(ids.list))
	err := chunks(ids.list, inChunk, func(chunk []string) error {
		rows, err := bt.query(`SELECT id, date FROM messages WHERE grant_id = $1 AND id IN (`+
			placeholders(2, len(chunk))+`)`, anys([]any{p.grantID}, chunk)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var date int64
			if err := rows.Scan(&id, &date); err != nil {
				return err
			}
			dates[id] = date
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	var rows []any
	for _, l := range p.locations {
		date, ok := dates[l.MessageID]
		if !ok {
			return fmt.Errorf("location %s/%d: message %s: %w", l.FolderID, l.UID, l.MessageID, store.ErrNotFound)
		}
		flags, err := jsonText(stringsOrEmpty(l.Flags))
		if err != nil {
			return err
		}
		rows = append(rows, p.grantID, l.FolderID, int64(l.UID), l.MessageID, flags,
			b2i(hasFlag(l.Flags, `\Seen`)), b2i(hasFlag(l.Flags, `\Flagged`)), int64(l.ModSeq), date)
	}
	return bt.insertRows(`INSERT INTO locations (grant_id, folder_id, uid, message_id, flags, seen, flagged, modseq, date)`,
		`ON CONFLICT (grant_id, folder_id, uid) DO UPDATE SET message_id = excluded.message_id,
		    flags = excluded.flags, seen = excluded.seen, flagged = excluded.flagged,
		    modseq = excluded.modseq, date = excluded.date`,
		9, rows)
}

// removeLocations ignores keys that are not stored: the syncer may learn
// of an expunge twice.
func (bt *batchTx) removeLocations() error {
	byFolder := map[string][]int64{}
	var order []string
	for _, k := range bt.p.removed {
		if _, ok := byFolder[k.FolderID]; !ok {
			order = append(order, k.FolderID)
		}
		byFolder[k.FolderID] = append(byFolder[k.FolderID], int64(k.UID))
	}
	for _, folder := range order {
		err := chunks(byFolder[folder], inChunk, func(uids []int64) error {
			return bt.exec(`DELETE FROM locations WHERE grant_id = $1 AND folder_id = $2 AND uid IN (`+
				placeholders(3, len(uids))+`)`, anys([]any{bt.p.grantID, folder}, uids)...)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// updateFlags ignores keys that are not stored, like removeLocations.
func (bt *batchTx) updateFlags() error {
	if len(bt.p.flags) == 0 {
		return nil
	}
	// Placeholders in textual order, so that rebinding keeps the
	// arguments' order for every execution of the prepared statement.
	query, _ := bt.s.rebind(`UPDATE locations SET flags = $1, seen = $2, flagged = $3, modseq = $4
		WHERE grant_id = $5 AND folder_id = $6 AND uid = $7`, make([]any, 7))
	stmt, err := bt.tx.PrepareContext(bt.ctx, query)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, f := range bt.p.flags {
		flags, err := jsonText(stringsOrEmpty(f.Flags))
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(bt.ctx, flags, b2i(hasFlag(f.Flags, `\Seen`)), b2i(hasFlag(f.Flags, `\Flagged`)),
			int64(f.ModSeq), bt.p.grantID, f.FolderID, int64(f.UID)); err != nil {
			return err
		}
	}
	return nil
}

// deriveMessages recomputes what a message's locations determine: unread
// (no copy has \Seen), starred (a copy has \Flagged), its folders and
// whether it has any copy ("located", for DeleteOrphans). Only rows that
// change are written, grouped by their new values, which few distinct
// combinations cover.
func (bt *batchTx) deriveMessages() error {
	type derived struct {
		unread, starred, located int
		folders                  string // JSON array, ascending
	}
	return chunks(bt.touched.list, inChunk, func(ids []string) error {
		cur := make(map[string]derived, len(ids))
		var order []string
		err := bt.scan(func(rows *sql.Rows) error {
			var id, thread string
			var d derived
			if err := rows.Scan(&id, &thread, &d.unread, &d.starred, &d.located, &d.folders); err != nil {
				return err
			}
			bt.threads.add(thread)
			cur[id] = d
			order = append(order, id)
			return nil
		}, `SELECT id, thread_id, unread, starred, located, folders FROM messages
			WHERE grant_id = $1 AND id IN (`+placeholders(2, len(ids))+`)`, anys([]any{bt.p.grantID}, ids)...)
		if err != nil {
			return err
		}
		type state struct {
			seen, flagged bool
			folders       []string
		}
		st := make(map[string]*state, len(ids))
		err = bt.scan(func(rows *sql.Rows) error {
			var id, folder string
			var seen, flagged int
			if err := rows.Scan(&id, &folder, &seen, &flagged); err != nil {
				return err
			}
			x := st[id]
			if x == nil {
				x = &state{}
				st[id] = x
			}
			x.seen = x.seen || seen == 1
			x.flagged = x.flagged || flagged == 1
			if n := len(x.folders); n == 0 || x.folders[n-1] != folder {
				x.folders = append(x.folders, folder) // rows come ordered by folder
			}
			return nil
		}, `SELECT message_id, folder_id, seen, flagged FROM locations
			WHERE grant_id = $1 AND message_id IN (`+placeholders(2, len(ids))+`)
			ORDER BY message_id, folder_id`, anys([]any{bt.p.grantID}, ids)...)
		if err != nil {
			return err
		}
		groups := map[derived][]string{}
		var keys []derived
		for _, id := range order {
			x := st[id]
			if x == nil {
				x = &state{}
			}
			folders, err := jsonText(stringsOrEmpty(x.folders))
			if err != nil {
				return err
			}
			want := derived{unread: 1 - b2i(x.seen), starred: b2i(x.flagged), located: b2i(len(x.folders) > 0), folders: folders}
			if want == cur[id] {
				continue
			}
			if _, ok := groups[want]; !ok {
				keys = append(keys, want)
			}
			groups[want] = append(groups[want], id)
		}
		for _, d := range keys {
			ids := groups[d]
			if err := bt.exec(`UPDATE messages SET unread = $2, starred = $3, located = $4, folders = $5
				WHERE grant_id = $1 AND id IN (`+placeholders(6, len(ids))+`)`,
				anys([]any{bt.p.grantID, d.unread, d.starred, d.located, d.folders}, ids)...); err != nil {
				return err
			}
		}
		return nil
	})
}

// scan runs a query in the batch's transaction and calls fn for each row.
func (bt *batchTx) scan(fn func(*sql.Rows) error, query string, args ...any) error {
	rows, err := bt.query(query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// deleteOrphans removes the grant's messages without any location, found
// through the partial index on located = 0 (the NOT EXISTS only guards
// against a located flag out of step, which would otherwise cascade to
// live locations).
func (bt *batchTx) deleteOrphans() error {
	if !bt.p.deleteOrphans {
		return nil
	}
	rows, err := bt.query(`
		SELECT m.id, m.thread_id FROM messages m
		WHERE m.grant_id = $1 AND m.located = 0
		  AND NOT EXISTS (SELECT 1 FROM locations l WHERE l.grant_id = m.grant_id AND l.message_id = m.id)
		ORDER BY m.id`, bt.p.grantID)
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id, thread string
		if err := rows.Scan(&id, &thread); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
		bt.threads.add(thread)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		bt.orphanChanges = append(bt.orphanChanges, store.Change{GrantID: bt.p.grantID, ObjectType: "message",
			ObjectID: id, Action: "deleted", CreatedAt: bt.at})
	}
	// Bodies, addresses and references go by cascade.
	return bt.deleteByIDs(`DELETE FROM messages WHERE grant_id = $1 AND id IN `, ids)
}

// updateFolderCounts applies, per folder, the difference between the
// touched messages' contribution after and before the batch. Messages not
// touched contribute the same before and after, so the stored counts stay
// exact without counting whole folders.
func (bt *batchTx) updateFolderCounts() error {
	after, err := bt.folderCounts()
	if err != nil {
		return err
	}
	folders := map[string]bool{}
	for f := range bt.before {
		folders[f] = true
	}
	for f := range after {
		folders[f] = true
	}
	ids := make([]string, 0, len(folders))
	for f := range folders {
		ids = append(ids, f)
	}
	slices.Sort(ids)
	for _, f := range ids {
		dt, du := after[f].total-bt.before[f].total, after[f].unread-bt.before[f].unread
		if dt == 0 && du == 0 {
			continue
		}
		// A folder deleted by the batch matches no row.
		if err := bt.exec(`UPDATE folders SET total_count = total_count + $3, unread_count = unread_count + $4
			WHERE grant_id = $1 AND id = $2`, bt.p.grantID, f, dt, du); err != nil {
			return err
		}
	}
	return nil
}

// recordChanges inserts the orphans' "deleted" changes, then the batch's
// own, last in the transaction: the dialect's LockChanges (if any) then
// holds its lock only until the commit that follows.
func (bt *batchTx) recordChanges() error {
	all := slices.Concat(bt.orphanChanges, bt.p.changes)
	if len(all) == 0 {
		return nil
	}
	if bt.s.d.LockChanges != nil {
		if err := bt.s.d.LockChanges(bt.ctx, bt.tx); err != nil {
			return err
		}
	}
	rows := make([]any, 0, 5*len(all))
	for _, c := range all {
		rows = append(rows, c.GrantID, c.ObjectType, c.ObjectID, c.Action, micros(c.CreatedAt))
	}
	return bt.insertRows(`INSERT INTO changes (grant_id, object_type, object_id, action, created_at)`,
		``, 5, rows)
}
