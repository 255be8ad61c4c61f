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
	bySubj  map[string]string // subject key → thread id
}

func newThreader(st Store, grantID string) *threader {
	return &threader{st: st, grantID: grantID, byMsgID: map[string]string{}, bySubj: map[string]string{}}
}

// assign finds the thread of m from its Message-ID, In-Reply-To and
// References (in this batch, then in the store: a stored child that
// references m counts too), then, only for a reply-looking subject, from
// a recent thread with the same subject; else m starts a thread.
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
	if id == "" && subjectKey != "" && mimeconv.IsReplySubject(m.Subject) {
		if tid, ok := t.bySubj[subjectKey]; ok {
			id = tid
		} else if id, err = t.st.ThreadIDBySubject(ctx, t.grantID, subjectKey, m.Date.Add(-subjectFallbackWindow)); err != nil {
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
		t.bySubj[subjectKey] = id
	}
	return id, nil
}
