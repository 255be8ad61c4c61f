package syncer

import (
	"context"
	"time"

	"github.com/orchard-mail/orchard/internal/mimeconv"
	"github.com/orchard-mail/orchard/internal/store"
)

// subjectFallbackWindow bounds how far back a reply with no usable
// references is joined to a thread by its subject alone.
const subjectFallbackWindow = 30 * 24 * time.Hour

// threader assigns threads to the new messages of one batch. It remembers
// the batch's own assignments, because a reply and its parent often
// arrive in the same batch and the store does not know either yet.
type threader struct {
	st      Store
	grantID string
	byMsgID map[string]string // Message-ID or reference → thread id
	bySubj  map[string]subjectThread
}

// subjectThread is a thread found by subject in this batch; orphanReply
// says it was started by a reply whose original is not known yet.
type subjectThread struct {
	id          string
	orphanReply bool
}

func newThreader(st Store, grantID string) *threader {
	return &threader{st: st, grantID: grantID, byMsgID: map[string]string{}, bySubj: map[string]subjectThread{}}
}

// assign finds the thread of m from its Message-ID, In-Reply-To and
// References (in this batch, then in the store: a stored child that
// references m counts too). Failing that, the subject decides, guarded: a
// reply-looking subject joins a recent thread with the same subject, and
// a plain subject joins only a thread started by such a reply (the
// initial sync goes newest first, so replies arrive before originals).
// Else m starts a thread.
func (t *threader) assign(ctx context.Context, m store.Message) (string, error) {
	refs := make([]string, 0, len(m.References)+2)
	refs = append(refs, m.References...)
	if m.InReplyTo != "" {
		refs = append(refs, m.InReplyTo)
	}
	if m.MessageIDHeader != "" {
		refs = append(refs, m.MessageIDHeader)
	}
	id := ""
	for _, r := range refs {
		if tid, ok := t.byMsgID[r]; ok {
			id = tid
			break
		}
	}
	var err error
	if id == "" && len(refs) > 0 {
		if id, err = t.st.ThreadIDByMessageIDs(ctx, t.grantID, refs); err != nil {
			return "", err
		}
	}
	subjectKey := mimeconv.SubjectKey(m.Subject)
	isReply := mimeconv.IsReplySubject(m.Subject)
	if id == "" && subjectKey != "" {
		if id, err = t.bySubject(ctx, subjectKey, isReply, m.Date); err != nil {
			return "", err
		}
	}
	if id == "" {
		id = derivedID(t.grantID, "thread", m.IdentityKey)
	}
	for _, r := range refs {
		t.byMsgID[r] = id
	}
	if subjectKey != "" {
		prev, seen := t.bySubj[subjectKey]
		t.bySubj[subjectKey] = subjectThread{id: id, orphanReply: isReply && len(refs) <= 1 && (!seen || prev.orphanReply)}
	}
	return id, nil
}

func (t *threader) bySubject(ctx context.Context, key string, isReply bool, date time.Time) (string, error) {
	if st, ok := t.bySubj[key]; ok && (isReply || st.orphanReply) {
		return st.id, nil
	}
	id, err := t.st.ThreadIDBySubject(ctx, t.grantID, key, date.Add(-subjectFallbackWindow))
	if err != nil || id == "" || isReply {
		return id, err
	}
	th, err := t.st.GetThread(ctx, t.grantID, id)
	if err != nil {
		return "", err
	}
	if mimeconv.IsReplySubject(th.Subject) {
		return id, nil
	}
	return "", nil
}
