package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// --- folders ---------------------------------------------------------------

const folderColumns = `grant_id, id, name, delimiter, attributes, role, total_count, unread_count,
	uid_validity, uid_next, highest_modseq, initial_low_uid, initial_done, last_sync_at, created_at, updated_at`

func scanFolder(sc rowScanner) (store.Folder, error) {
	var (
		f                                 store.Folder
		attrs                             string
		validity, next, modseq, low, sync int64
		done                              int
		created, updated                  int64
	)
	if err := sc.Scan(&f.GrantID, &f.ID, &f.Name, &f.Delimiter, &attrs, &f.Role, &f.TotalCount, &f.UnreadCount,
		&validity, &next, &modseq, &low, &done, &sync, &created, &updated); err != nil {
		return f, err
	}
	f.UIDValidity, f.UIDNext, f.HighestModSeq, f.InitialLowUID = uint32(validity), uint32(next), uint64(modseq), uint32(low)
	f.InitialDone = done == 1
	f.LastSyncAt, f.CreatedAt, f.UpdatedAt = fromMicros(sync), fromMicros(created), fromMicros(updated)
	f.Attributes = []string{}
	if err := json.Unmarshal([]byte(attrs), &f.Attributes); err != nil {
		return f, fmt.Errorf("decode attributes of folder %s: %w", f.ID, err)
	}
	return f, nil
}

// ListFolders reads the counts ApplyMailBatch maintains: no counting here.
func (s *Store) ListFolders(ctx context.Context, grantID string) ([]store.Folder, error) {
	rows, err := s.query(ctx, `SELECT `+folderColumns+` FROM folders WHERE grant_id = $1 ORDER BY name`, grantID)
	if err != nil {
		return nil, s.wrap("list folders", err)
	}
	defer rows.Close()
	out := []store.Folder{}
	for rows.Next() {
		f, err := scanFolder(rows)
		if err != nil {
			return nil, s.wrap("list folders", err)
		}
		out = append(out, f)
	}
	return out, s.wrap("list folders", rows.Err())
}

func (s *Store) GetFolder(ctx context.Context, grantID, id string) (*store.Folder, error) {
	f, err := scanFolder(s.queryRow(ctx, `SELECT `+folderColumns+` FROM folders WHERE grant_id = $1 AND id = $2`, grantID, id))
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get folder %s", id), err)
	}
	return &f, nil
}

func (s *Store) FolderUIDs(ctx context.Context, grantID, folderID string) ([]uint32, error) {
	rows, err := s.query(ctx, `SELECT uid FROM locations WHERE grant_id = $1 AND folder_id = $2 ORDER BY uid`, grantID, folderID)
	if err != nil {
		return nil, s.wrap("folder uids", err)
	}
	defer rows.Close()
	out := []uint32{}
	for rows.Next() {
		var uid int64
		if err := rows.Scan(&uid); err != nil {
			return nil, s.wrap("folder uids", err)
		}
		out = append(out, uint32(uid))
	}
	return out, s.wrap("folder uids", rows.Err())
}

// --- messages --------------------------------------------------------------

// messageColumns reads m (messages) and b (message_bodies).
const messageColumns = `m.grant_id, m.id, m.thread_id, m.identity_key, m.message_id_header, m.in_reply_to, m.refs,
	m.subject, m.subject_key, m.from_list, m.to_list, m.cc_list, m.bcc_list, m.reply_to_list, m.date, m.sent_at,
	m.unread, m.starred, m.snippet, b.body, m.attachments, b.headers, m.size, m.created_at, m.updated_at, m.folders`

func scanMessage(sc rowScanner) (store.Message, error) {
	var (
		m                            store.Message
		refs, atts, folders          string
		lists                        [5]string
		date, sent, created, updated int64
		unread, starred              int
	)
	if err := sc.Scan(&m.GrantID, &m.ID, &m.ThreadID, &m.IdentityKey, &m.MessageIDHeader, &m.InReplyTo, &refs,
		&m.Subject, &m.SubjectKey, &lists[0], &lists[1], &lists[2], &lists[3], &lists[4], &date, &sent,
		&unread, &starred, &m.Snippet, &m.Body, &atts, &m.Headers, &m.Size, &created, &updated, &folders); err != nil {
		return m, err
	}
	m.Date, m.SentAt = fromMicros(date), fromMicros(sent)
	m.CreatedAt, m.UpdatedAt = fromMicros(created), fromMicros(updated)
	m.Unread, m.Starred = unread == 1, starred == 1
	m.Headers = blobOut(m.Headers)
	// Slices come back non-nil (JSON "[]"), like Scope elsewhere.
	m.References, m.Attachments, m.Folders = []string{}, []store.Attachment{}, []string{}
	m.From, m.To, m.Cc, m.Bcc, m.ReplyTo = []store.Participant{}, []store.Participant{}, []store.Participant{},
		[]store.Participant{}, []store.Participant{}
	for _, d := range []struct {
		src string
		dst any
	}{{refs, &m.References}, {atts, &m.Attachments}, {folders, &m.Folders}, {lists[0], &m.From}, {lists[1], &m.To},
		{lists[2], &m.Cc}, {lists[3], &m.Bcc}, {lists[4], &m.ReplyTo}} {
		if d.src == "[]" {
			continue // most lists are empty; decoding is the costly part of a listing
		}
		if err := json.Unmarshal([]byte(d.src), d.dst); err != nil {
			return m, fmt.Errorf("decode message %s: %w", m.ID, err)
		}
	}
	return m, nil
}

// queryMessages runs a query selecting messageColumns.
func (s *Store) queryMessages(ctx context.Context, op, query string, args ...any) ([]store.Message, error) {
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	out := []store.Message{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, m)
	}
	return out, s.wrap(op, rows.Err())
}

const messageFrom = ` FROM messages m JOIN message_bodies b ON b.grant_id = m.grant_id AND b.message_id = m.id`

func (s *Store) GetMessage(ctx context.Context, grantID, id string) (*store.Message, error) {
	m, err := scanMessage(s.queryRow(ctx, `SELECT `+messageColumns+messageFrom+` WHERE m.grant_id = $1 AND m.id = $2`, grantID, id))
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get message %s", id), err)
	}
	return &m, nil
}

// GetMessagesByIdentity returns the messages newest first; unknown keys
// are left out.
func (s *Store) GetMessagesByIdentity(ctx context.Context, grantID string, keys []string) ([]store.Message, error) {
	out := []store.Message{}
	err := chunks(keys, inChunk, func(keys []string) error {
		msgs, err := s.queryMessages(ctx, "messages by identity",
			`SELECT `+messageColumns+messageFrom+` WHERE m.grant_id = $1 AND m.identity_key IN (`+
				placeholders(2, len(keys))+`)`, anys([]any{grantID}, keys)...)
		out = append(out, msgs...)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b store.Message) int {
		if c := b.Date.Compare(a.Date); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out, nil
}

func (s *Store) MessageLocations(ctx context.Context, grantID, messageID string) ([]store.Location, error) {
	rows, err := s.query(ctx, `SELECT message_id, folder_id, uid, flags, modseq FROM locations
		WHERE grant_id = $1 AND message_id = $2 ORDER BY folder_id, uid`, grantID, messageID)
	if err != nil {
		return nil, s.wrap("message locations", err)
	}
	defer rows.Close()
	out := []store.Location{}
	for rows.Next() {
		var (
			l           store.Location
			uid, modseq int64
			flags       string
		)
		if err := rows.Scan(&l.MessageID, &l.FolderID, &uid, &flags, &modseq); err != nil {
			return nil, s.wrap("message locations", err)
		}
		l.UID, l.ModSeq = uint32(uid), uint64(modseq)
		l.Flags = []string{}
		if err := json.Unmarshal([]byte(flags), &l.Flags); err != nil {
			return nil, fmt.Errorf("store: decode flags of message %s: %w", messageID, err)
		}
		out = append(out, l)
	}
	return out, s.wrap("message locations", rows.Err())
}

// MessageIDsAt returns the ids in the order of uids, each once.
func (s *Store) MessageIDsAt(ctx context.Context, grantID, folderID string, uids []uint32) ([]string, error) {
	at := make(map[uint32]string, len(uids))
	err := chunks(uids, inChunk, func(uids []uint32) error {
		rows, err := s.query(ctx, `SELECT uid, message_id FROM locations
			WHERE grant_id = $1 AND folder_id = $2 AND uid IN (`+placeholders(3, len(uids))+`)`,
			anys([]any{grantID, folderID}, uint32sToInt64(uids))...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var uid int64
			var id string
			if err := rows.Scan(&uid, &id); err != nil {
				return err
			}
			at[uint32(uid)] = id
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.wrap("message ids at uids", err)
	}
	out := []string{}
	seen := map[string]bool{}
	for _, u := range uids {
		if id, ok := at[u]; ok && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

func uint32sToInt64(in []uint32) []int64 {
	out := make([]int64, len(in))
	for i, v := range in {
		out[i] = int64(v)
	}
	return out
}

// listBuilder assembles the WHERE clause, keyset and ORDER BY of a
// listing; values always go through placeholders, column names come from
// constants only.
type listBuilder struct {
	args           []any
	conds          []string
	dateCol, idCol string
}

func newListBuilder(grantID string) *listBuilder { return &listBuilder{args: []any{grantID}} }

func (lb *listBuilder) arg(v any) string {
	lb.args = append(lb.args, v)
	return "$" + strconv.Itoa(len(lb.args))
}

func (lb *listBuilder) list(vs []string) string {
	ph := placeholders(len(lb.args)+1, len(vs))
	for _, v := range vs {
		lb.args = append(lb.args, v)
	}
	return ph
}

func (lb *listBuilder) where(cond string) { lb.conds = append(lb.conds, cond) }

// flag filters a 0/1 column; the value is a literal so that the planner
// matches the column's index as it would an equality on a constant.
func (lb *listBuilder) flag(col string, v *bool) {
	if v != nil {
		lb.where(col + " = " + strconv.Itoa(b2i(*v)))
	}
}

// window adds the date bounds and the keyset ("strictly after (date, id)"
// in descending order), on the driving table's columns so that they bound
// its index range.
//
// Stored dates are whole microseconds, bounds may not be: "date < t" is
// "date < t rounded up", "date > t" is "date > t rounded down" (micros
// rounds down), and a keyset date with a fraction is never equal to a
// stored one, so its id does not matter.
func (lb *listBuilder) window(before, after, afterDate time.Time, afterID string) {
	if !before.IsZero() {
		lb.where(lb.dateCol + " < " + lb.arg(microsUp(before)))
	}
	if !after.IsZero() {
		lb.where(lb.dateCol + " > " + lb.arg(micros(after)))
	}
	if !afterDate.IsZero() || afterID != "" {
		d := micros(afterDate)
		if afterDate.Nanosecond()%1000 != 0 {
			d, afterID = d+1, ""
		}
		lb.where("(" + lb.dateCol + ", " + lb.idCol + ") < (" + lb.arg(d) + ", " + lb.arg(afterID) + ")")
	}
}

func microsUp(t time.Time) int64 { return micros(t.Add(time.Microsecond - time.Nanosecond)) }

func (lb *listBuilder) sql(head string, limit int) string {
	return head + " WHERE " + strings.Join(lb.conds, " AND ") +
		" ORDER BY " + lb.dateCol + " DESC, " + lb.idCol + " DESC LIMIT " + lb.arg(pageLimit(limit))
}

// likeContains is a LIKE pattern (with ESCAPE '\') for a case-insensitive
// substring, matched against a column lower-cased by Go.
func likeContains(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

func lowerEmails(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, e := range in {
		out[i] = emailKey(strings.TrimSpace(e))
	}
	return out
}

// ListMessages picks the index that yields the page in order: a message
// id list or thread goes by messages' own indexes; a single address by
// message_addresses (email, date); a single folder by locations (folder,
// date); anything else by messages (grant, date) or the (grant, flag,
// date) index of a flag filter. The other filters are checked row by row
// as the scan goes, and the scan stops at the limit. CROSS JOIN keeps
// SQLite from reordering the join (PostgreSQL treats it as an inner join).
func (s *Store) ListMessages(ctx context.Context, q store.MessageQuery) ([]store.Message, error) {
	for _, l := range [][]string{q.AnyEmail, q.From, q.To, q.Cc, q.Bcc, q.FolderIDs, q.IDs} {
		if len(l) > maxFilterValues {
			return nil, fmt.Errorf("store: list messages: more than %d values in a filter", maxFilterValues)
		}
	}
	lb := newListBuilder(q.GrantID)
	emailFilters := []struct {
		emails []string
		kinds  int
	}{
		{lowerEmails(q.AnyEmail), kindAny},
		{lowerEmails(q.From), kindFrom},
		{lowerEmails(q.To), kindTo},
		{lowerEmails(q.Cc), kindCc},
		{lowerEmails(q.Bcc), kindBcc},
	}
	single := -1
	for i, f := range emailFilters {
		if len(f.emails) == 1 {
			single = i
			break
		}
	}
	folders := q.FolderIDs
	const joinM = ` CROSS JOIN messages m CROSS JOIN message_bodies b`
	var from string
	switch {
	case len(q.IDs) > 0 || q.ThreadID != "" || (single < 0 && len(folders) != 1):
		from = `messages m CROSS JOIN message_bodies b`
		lb.where(`m.grant_id = $1`)
		lb.dateCol, lb.idCol = "m.date", "m.id"
	case single >= 0:
		f := emailFilters[single]
		from = `message_addresses d` + joinM
		lb.where(`d.grant_id = $1 AND d.email_lower = ` + lb.arg(f.emails[0]) +
			` AND (d.kinds & ` + strconv.Itoa(f.kinds) + `) <> 0`)
		lb.where(`m.grant_id = d.grant_id AND m.id = d.message_id`)
		lb.dateCol, lb.idCol = "d.date", "d.message_id"
		emailFilters[single].emails = nil
	default:
		from = `locations d` + joinM
		// A folder may hold two copies of one message: only the lowest
		// UID's row counts.
		lb.where(`d.grant_id = $1 AND d.folder_id = ` + lb.arg(folders[0]) + ` AND NOT EXISTS (
			SELECT 1 FROM locations d2 WHERE d2.grant_id = d.grant_id AND d2.message_id = d.message_id
			AND d2.folder_id = d.folder_id AND d2.uid < d.uid)`)
		lb.where(`m.grant_id = d.grant_id AND m.id = d.message_id`)
		lb.dateCol, lb.idCol = "d.date", "d.message_id"
		folders = nil
	}
	lb.where(`b.grant_id = m.grant_id AND b.message_id = m.id`)

	for _, f := range emailFilters {
		if len(f.emails) > 0 {
			lb.where(`EXISTS (SELECT 1 FROM message_addresses a WHERE a.grant_id = m.grant_id AND a.message_id = m.id
				AND a.email_lower IN (` + lb.list(f.emails) + `) AND (a.kinds & ` + strconv.Itoa(f.kinds) + `) <> 0)`)
		}
	}
	if len(folders) > 0 {
		lb.where(`EXISTS (SELECT 1 FROM locations l WHERE l.grant_id = m.grant_id AND l.message_id = m.id
			AND l.folder_id IN (` + lb.list(folders) + `))`)
	}
	if len(q.IDs) > 0 {
		lb.where(`m.id IN (` + lb.list(q.IDs) + `)`)
	}
	if q.ThreadID != "" {
		lb.where(`m.thread_id = ` + lb.arg(q.ThreadID))
	}
	if q.Subject != "" {
		lb.where(`m.subject_lower LIKE ` + lb.arg(likeContains(q.Subject)) + ` ESCAPE '\'`)
	}
	lb.flag("m.unread", q.Unread)
	lb.flag("m.starred", q.Starred)
	lb.flag("m.has_attachment", q.HasAttachment)
	lb.window(q.ReceivedBefore, q.ReceivedAfter, q.AfterDate, q.AfterID)

	return s.queryMessages(ctx, "list messages", lb.sql(`SELECT `+messageColumns+` FROM `+from, q.Limit), lb.args...)
}

// --- changes ---------------------------------------------------------------

// ListChanges is not scoped by grant: the webhook dispatcher reads every
// grant's changes. limit <= 0 means no limit.
func (s *Store) ListChanges(ctx context.Context, afterID int64, limit int) ([]store.Change, error) {
	rows, err := s.query(ctx, `SELECT id, grant_id, object_type, object_id, action, created_at
		FROM changes WHERE id > $1 ORDER BY id LIMIT $2`, afterID, pageLimit(limit))
	if err != nil {
		return nil, s.wrap("list changes", err)
	}
	defer rows.Close()
	out := []store.Change{}
	for rows.Next() {
		var c store.Change
		var created int64
		if err := rows.Scan(&c.ID, &c.GrantID, &c.ObjectType, &c.ObjectID, &c.Action, &created); err != nil {
			return nil, s.wrap("list changes", err)
		}
		c.CreatedAt = fromMicros(created)
		out = append(out, c)
	}
	return out, s.wrap("list changes", rows.Err())
}
