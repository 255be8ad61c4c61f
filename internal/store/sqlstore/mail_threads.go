package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// threadChunk is how many threads are recomputed per round of queries.
const threadChunk = 200

// updateThreads recomputes every thread the batch touched from its
// messages as they are now, and deletes the threads left without any.
func (bt *batchTx) updateThreads() error {
	return chunks(bt.threads.list, threadChunk, bt.recomputeThreads)
}

// threadAgg accumulates one thread's aggregates over its messages, read
// oldest first.
type threadAgg struct {
	t       store.Thread
	emails  map[string]int // lower-cased email -> index in t.Participants
	folders map[string]bool
}

func (a *threadAgg) addParticipants(ps []store.Participant) {
	for _, p := range ps {
		e := emailKey(strings.TrimSpace(p.Email))
		if e == "" {
			continue
		}
		if i, ok := a.emails[e]; ok {
			// The first name anyone gave the address wins.
			if a.t.Participants[i].Name == "" {
				a.t.Participants[i].Name = p.Name
			}
			continue
		}
		a.emails[e] = len(a.t.Participants)
		a.t.Participants = append(a.t.Participants, p)
	}
}

func (bt *batchTx) recomputeThreads(ids []string) error {
	g := bt.p.grantID
	aggs := make(map[string]*threadAgg, len(ids))
	err := func() error {
		rows, err := bt.query(`
			SELECT thread_id, id, subject, subject_key, date, snippet, unread, starred, has_attachment,
			       folders, from_list, to_list, cc_list, bcc_list
			FROM messages WHERE grant_id = $1 AND thread_id IN (`+placeholders(2, len(ids))+`)
			ORDER BY thread_id, date, id`, anys([]any{g}, ids)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				thread, id, subject, key, snippet string
				date                              int64
				unread, starred, att              int
				folders                           string
				lists                             [4]string
			)
			if err := rows.Scan(&thread, &id, &subject, &key, &date, &snippet, &unread, &starred, &att,
				&folders, &lists[0], &lists[1], &lists[2], &lists[3]); err != nil {
				return err
			}
			a := aggs[thread]
			if a == nil {
				// The oldest message names the thread.
				a = &threadAgg{emails: map[string]int{}, t: store.Thread{ID: thread, GrantID: g,
					Subject: subject, SubjectKey: key, EarliestMessageAt: fromMicros(date),
					MessageIDs: []string{}, Folders: []string{}, Participants: []store.Participant{}}}
				aggs[thread] = a
				a.folders = map[string]bool{}
			}
			a.t.MessageIDs = append(a.t.MessageIDs, id)
			a.t.LatestMessageID, a.t.LatestMessageAt, a.t.Snippet = id, fromMicros(date), snippet
			a.t.Unread = a.t.Unread || unread == 1
			a.t.Starred = a.t.Starred || starred == 1
			a.t.HasAttachments = a.t.HasAttachments || att == 1
			if folders != "[]" {
				var fs []string
				if err := json.Unmarshal([]byte(folders), &fs); err != nil {
					return fmt.Errorf("decode folders of message %s: %w", id, err)
				}
				for _, f := range fs {
					a.folders[f] = true
				}
			}
			for _, l := range lists {
				if l == "[]" {
					continue
				}
				var ps []store.Participant
				if err := json.Unmarshal([]byte(l), &ps); err != nil {
					return fmt.Errorf("decode participants of message %s: %w", id, err)
				}
				a.addParticipants(ps)
			}
		}
		return rows.Err()
	}()
	if err != nil {
		return err
	}
	var gone, live []string
	for _, id := range ids {
		a := aggs[id]
		if a == nil {
			gone = append(gone, id)
			continue
		}
		live = append(live, id)
		for f := range a.folders {
			a.t.Folders = append(a.t.Folders, f)
		}
		slices.Sort(a.t.Folders)
	}
	// Folder and address rows cascade from a deleted thread; a live
	// thread's are rewritten.
	if err := bt.deleteByIDs(`DELETE FROM threads WHERE grant_id = $1 AND id IN `, gone); err != nil {
		return err
	}
	if err := bt.deleteByIDs(`DELETE FROM thread_folders WHERE grant_id = $1 AND thread_id IN `, live); err != nil {
		return err
	}
	if err := bt.deleteByIDs(`DELETE FROM thread_addresses WHERE grant_id = $1 AND thread_id IN `, live); err != nil {
		return err
	}
	var threadRows, folderRows, addrRows []any
	for _, id := range live {
		t := &aggs[id].t
		msgIDs, err := jsonText(t.MessageIDs)
		if err != nil {
			return err
		}
		folders, err := jsonText(t.Folders)
		if err != nil {
			return err
		}
		parts, err := jsonText(t.Participants)
		if err != nil {
			return err
		}
		latest := micros(t.LatestMessageAt)
		threadRows = append(threadRows, g, t.ID, latest, b2i(t.Unread), b2i(t.Starred), b2i(t.HasAttachments),
			strings.ToLower(t.Subject), t.SubjectKey, t.Subject, micros(t.EarliestMessageAt), t.LatestMessageID,
			t.Snippet, msgIDs, folders, parts)
		for _, f := range t.Folders {
			folderRows = append(folderRows, g, t.ID, f, latest)
		}
		for e := range aggs[id].emails {
			addrRows = append(addrRows, g, t.ID, e, latest)
		}
	}
	if err := bt.insertRows(`INSERT INTO threads (grant_id, id, latest_message_at, unread, starred, has_attachments, subject_lower,
		                      subject_key, subject, earliest_message_at, latest_message_id, snippet,
		                      message_ids, folders, participants)`,
		`ON CONFLICT (grant_id, id) DO UPDATE SET latest_message_at = excluded.latest_message_at,
		    unread = excluded.unread, starred = excluded.starred, has_attachments = excluded.has_attachments,
		    subject_lower = excluded.subject_lower, subject_key = excluded.subject_key, subject = excluded.subject,
		    earliest_message_at = excluded.earliest_message_at, latest_message_id = excluded.latest_message_id,
		    snippet = excluded.snippet, message_ids = excluded.message_ids, folders = excluded.folders,
		    participants = excluded.participants`,
		15, threadRows); err != nil {
		return err
	}
	if err := bt.insertRows(`INSERT INTO thread_folders (grant_id, thread_id, folder_id, latest_message_at)`,
		``, 4, folderRows); err != nil {
		return err
	}
	return bt.insertRows(`INSERT INTO thread_addresses (grant_id, thread_id, email_lower, latest_message_at)`,
		``, 4, addrRows)
}

const threadColumns = `t.grant_id, t.id, t.subject, t.subject_key, t.message_ids, t.folders, t.participants,
	t.unread, t.starred, t.has_attachments, t.snippet, t.latest_message_id, t.earliest_message_at, t.latest_message_at`

func scanThread(sc rowScanner) (store.Thread, error) {
	var (
		t                      store.Thread
		msgIDs, folders, parts string
		unread, starred, att   int
		earliest, latest       int64
	)
	if err := sc.Scan(&t.GrantID, &t.ID, &t.Subject, &t.SubjectKey, &msgIDs, &folders, &parts,
		&unread, &starred, &att, &t.Snippet, &t.LatestMessageID, &earliest, &latest); err != nil {
		return t, err
	}
	t.Unread, t.Starred, t.HasAttachments = unread == 1, starred == 1, att == 1
	t.EarliestMessageAt, t.LatestMessageAt = fromMicros(earliest), fromMicros(latest)
	t.MessageIDs, t.Folders, t.Participants = []string{}, []string{}, []store.Participant{}
	for _, d := range []struct {
		src string
		dst any
	}{{msgIDs, &t.MessageIDs}, {folders, &t.Folders}, {parts, &t.Participants}} {
		if err := json.Unmarshal([]byte(d.src), d.dst); err != nil {
			return t, fmt.Errorf("decode thread %s: %w", t.ID, err)
		}
	}
	return t, nil
}

func (s *Store) GetThread(ctx context.Context, grantID, id string) (*store.Thread, error) {
	t, err := scanThread(s.queryRow(ctx, `SELECT `+threadColumns+` FROM threads t WHERE t.grant_id = $1 AND t.id = $2`, grantID, id))
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get thread %s", id), err)
	}
	return &t, nil
}

// ThreadIDBySubject: an empty key matches nothing, or every message
// without a subject would end up in one thread.
func (s *Store) ThreadIDBySubject(ctx context.Context, grantID, subjectKey string, since time.Time) (string, error) {
	if subjectKey == "" {
		return "", nil
	}
	var id string
	err := s.queryRow(ctx, `
		SELECT id FROM threads WHERE grant_id = $1 AND subject_key = $2 AND latest_message_at > $3
		ORDER BY latest_message_at DESC, id DESC LIMIT 1`, grantID, subjectKey, micros(since)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, s.wrap("thread by subject", err)
}

// ThreadIDByMessageIDs tries msgIDs in order; for one of them, the message
// that has it as its own Message-ID wins over those that only refer to it,
// then the oldest. One small indexed query per id: callers pass a few, and
// the first usually hits.
func (s *Store) ThreadIDByMessageIDs(ctx context.Context, grantID string, msgIDs []string) (string, error) {
	tried := map[string]bool{}
	for _, ref := range msgIDs {
		if ref == "" || tried[ref] {
			continue
		}
		tried[ref] = true
		var id string
		err := s.queryRow(ctx, `
			SELECT m.thread_id FROM message_refs r
			JOIN messages m ON m.grant_id = r.grant_id AND m.id = r.message_id
			WHERE r.grant_id = $1 AND r.ref = $2 AND m.thread_id <> ''
			ORDER BY r.own DESC, m.date, m.id LIMIT 1`, grantID, ref).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return "", s.wrap("thread by message ids", err)
		}
		return id, nil
	}
	return "", nil
}

// ListThreads works like ListMessages: the threads table, or the
// thread_folders or thread_addresses index for a single folder or
// address, scanned in (latest_message_at, id) order.
func (s *Store) ListThreads(ctx context.Context, q store.ThreadQuery) ([]store.Thread, error) {
	lb := newListBuilder(q.GrantID)
	for _, l := range [][]string{q.AnyEmail, q.From, q.To, q.Cc, q.Bcc, q.FolderIDs} {
		if len(l) > maxFilterValues {
			return nil, fmt.Errorf("store: list threads: more than %d values in a filter", maxFilterValues)
		}
	}
	emails := lowerEmails(q.AnyEmail)
	var from string
	switch {
	case len(emails) == 1:
		from = `thread_addresses d CROSS JOIN threads t`
		lb.where(`d.grant_id = $1 AND d.email_lower = ` + lb.arg(emails[0]))
		lb.where(`t.grant_id = d.grant_id AND t.id = d.thread_id`)
		lb.dateCol, lb.idCol = "d.latest_message_at", "d.thread_id"
		emails = nil
	case len(q.FolderIDs) == 1:
		from = `thread_folders d CROSS JOIN threads t`
		lb.where(`d.grant_id = $1 AND d.folder_id = ` + lb.arg(q.FolderIDs[0]))
		lb.where(`t.grant_id = d.grant_id AND t.id = d.thread_id`)
		lb.dateCol, lb.idCol = "d.latest_message_at", "d.thread_id"
		q.FolderIDs = nil
	default:
		from = `threads t`
		lb.where(`t.grant_id = $1`)
		lb.dateCol, lb.idCol = "t.latest_message_at", "t.id"
	}
	if len(emails) > 0 {
		lb.where(`EXISTS (SELECT 1 FROM thread_addresses a WHERE a.grant_id = t.grant_id AND a.thread_id = t.id
			AND a.email_lower IN (` + lb.list(emails) + `))`)
	}
	if len(q.FolderIDs) > 0 {
		lb.where(`EXISTS (SELECT 1 FROM thread_folders f WHERE f.grant_id = t.grant_id AND f.thread_id = t.id
			AND f.folder_id IN (` + lb.list(q.FolderIDs) + `))`)
	}
	// Field-specific addresses are checked on the thread's messages.
	for _, f := range []struct {
		emails []string
		kinds  int
	}{{lowerEmails(q.From), kindFrom}, {lowerEmails(q.To), kindTo}, {lowerEmails(q.Cc), kindCc}, {lowerEmails(q.Bcc), kindBcc}} {
		if len(f.emails) > 0 {
			lb.where(`EXISTS (SELECT 1 FROM messages tm CROSS JOIN message_addresses a
				WHERE tm.grant_id = t.grant_id AND tm.thread_id = t.id AND a.grant_id = tm.grant_id AND a.message_id = tm.id
				AND a.email_lower IN (` + lb.list(f.emails) + `) AND (a.kinds & ` + strconv.Itoa(f.kinds) + `) <> 0)`)
		}
	}
	if q.Subject != "" {
		lb.where(`t.subject_lower LIKE ` + lb.arg(likeContains(q.Subject)) + ` ESCAPE '\'`)
	}
	lb.flag("t.has_attachments", q.HasAttachment)
	lb.flag("t.unread", q.Unread)
	lb.flag("t.starred", q.Starred)
	lb.window(q.LatestBefore, q.LatestAfter, q.AfterDate, q.AfterID)

	rows, err := s.query(ctx, lb.sql(`SELECT `+threadColumns+` FROM `+from, q.Limit), lb.args...)
	if err != nil {
		return nil, s.wrap("list threads", err)
	}
	defer rows.Close()
	out := []store.Thread{}
	for rows.Next() {
		t, err := scanThread(rows)
		if err != nil {
			return nil, s.wrap("list threads", err)
		}
		out = append(out, t)
	}
	return out, s.wrap("list threads", rows.Err())
}
