package syncer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/store"
)

// session is one IMAP connection's life: log in, sync everything, then
// watch INBOX with IDLE and poll the rest until an error or ctx ends.
func (w *worker) session(ctx context.Context) error {
	o := w.sup.opts
	creds, err := o.Credentials(&w.grant)
	if err != nil {
		return fmt.Errorf("open stored credentials: %w", err)
	}
	w.sup.setStatus(w.grant.ID, func(s *Status) { s.State = "connecting" })

	// The server's unsolicited news (new mail, expunges, flag changes)
	// only wakes the loop; what changed is read by the next folder sync.
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	c, err := o.Dialer.DialWith(ctx, creds.IMAPAddr, &imapclient.UnilateralDataHandler{
		Expunge: func(uint32) { poke() },
		Mailbox: func(*imapclient.UnilateralDataMailbox) { poke() },
		Fetch: func(m *imapclient.FetchMessageData) {
			_, _ = m.Collect() // it must be drained; the data itself is re-read by the sync
			poke()
		},
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(ctx, creds.IMAPUsername, creds.IMAPPassword); err != nil {
		return err
	}
	s := &syncSession{w: w, c: c, caps: c.Caps()}
	s.condstore = s.caps.Has(imap.CapCondStore) || s.caps.Has(imap.CapIMAP4rev2)

	if err := s.fullPass(ctx); err != nil {
		return err
	}
	w.sup.setStatus(w.grant.ID, func(st *Status) {
		st.State, st.LastError, st.Retries, st.SyncedAt = "idle", "", 0, o.Now()
	})

	lastPoll := time.Now()
	for ctx.Err() == nil {
		if time.Since(lastPoll) >= o.PollInterval {
			if err := s.fullPass(ctx); err != nil {
				return err
			}
			lastPoll = time.Now()
		}
		wait := min(o.IdleTimeout, o.PollInterval-time.Since(lastPoll))
		woken, err := s.idle(ctx, wait, wake)
		if err != nil {
			return err
		}
		if woken {
			if err := s.syncInbox(ctx); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// syncSession is the state of one logged-in connection.
type syncSession struct {
	w         *worker
	c         *imapx.Client
	caps      imap.CapSet
	condstore bool
	folders   []store.Folder // as of the last folder-list sync
}

// fullPass syncs the folder list and every folder, INBOX first, then
// removes messages no folder holds any more. Removing them only after all
// folders were seen is what makes a move between folders an update of one
// message instead of a deletion and a creation.
func (s *syncSession) fullPass(ctx context.Context) error {
	if err := s.syncFolderList(ctx); err != nil {
		return err
	}
	for i := range s.folders {
		if err := s.syncFolder(ctx, &s.folders[i]); err != nil {
			return err
		}
	}
	b := &store.MailBatch{GrantID: s.w.grant.ID, DeleteOrphans: true}
	if err := s.agedOut(ctx, b); err != nil {
		return err
	}
	return s.w.sup.opts.Store.ApplyMailBatch(ctx, b)
}

// pruneBatch bounds how many aged-out messages one pass removes, so that
// a long-stopped grant catches up without one giant transaction.
const pruneBatch = 1000

// agedOut adds to b the copies of messages that have left the sync
// window since they were synced: the window is rolling, and the store
// keeps only what is inside it.
func (s *syncSession) agedOut(ctx context.Context, b *store.MailBatch) error {
	o := s.w.sup.opts
	if o.WindowDays <= 0 {
		return nil
	}
	old, err := o.Store.ListMessages(ctx, store.MessageQuery{GrantID: s.w.grant.ID, Limit: pruneBatch,
		ReceivedBefore: o.Now().AddDate(0, 0, -o.WindowDays)})
	if err != nil {
		return err
	}
	for _, m := range old {
		locs, err := o.Store.MessageLocations(ctx, s.w.grant.ID, m.ID)
		if err != nil {
			return err
		}
		for _, l := range locs {
			b.RemovedLocations = append(b.RemovedLocations, store.LocationKey{FolderID: l.FolderID, UID: l.UID})
		}
	}
	if len(old) > 0 {
		s.w.log.Info("removing mail that left the sync window", "messages", len(old), "window_days", o.WindowDays)
	}
	return nil
}

func (s *syncSession) syncInbox(ctx context.Context) error {
	for i := range s.folders {
		if s.folders[i].Role == store.RoleInbox {
			return s.syncFolder(ctx, &s.folders[i])
		}
	}
	return nil
}

// idle waits on INBOX with IDLE until the server reports something, wait
// passes or ctx ends. It reports whether the server woke it.
func (s *syncSession) idle(ctx context.Context, wait time.Duration, wake <-chan struct{}) (bool, error) {
	if wait <= 0 {
		return false, nil
	}
	var inbox *store.Folder
	for i := range s.folders {
		if s.folders[i].Role == store.RoleInbox {
			inbox = &s.folders[i]
		}
	}
	if inbox == nil || !s.caps.Has(imap.CapIdle) {
		// No IDLE: just wait for the next poll.
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
			return false, nil
		}
	}
	// Drain a stale wake-up from before IDLE: the sync that follows each
	// wake-up has read that change already.
	select {
	case <-wake:
	default:
	}
	woken := false
	// The operation deadline covers the whole IDLE plus the DONE exchange.
	opCtx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	err := s.c.Run(opCtx, func(raw *imapclient.Client) error {
		sel, err := raw.Select(inbox.Name, &imap.SelectOptions{ReadOnly: true, CondStore: s.condstore}).Wait()
		if err != nil {
			return err
		}
		// IDLE reports only what happens from now on: mail that arrived
		// since INBOX was last synced (while other folders were) would
		// wait for the next poll.
		if uint32(sel.UIDNext) > inbox.UIDNext || (s.condstore && sel.HighestModSeq > inbox.HighestModSeq) {
			woken = true
			return nil
		}
		cmd, err := raw.Idle()
		if err != nil {
			return err
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-wake:
			woken = true
		case <-t.C:
		case <-ctx.Done():
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		return cmd.Wait()
	})
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return woken, err
}

// folderRole says what a mailbox is for: its attributes first (iCloud
// sends \Sent and \Trash without advertising SPECIAL-USE), then the names
// iCloud and most servers use.
func folderRole(name string, attrs []imap.MailboxAttr) string {
	if strings.EqualFold(name, "INBOX") {
		return store.RoleInbox
	}
	for _, a := range attrs {
		switch a {
		case imap.MailboxAttrSent:
			return store.RoleSent
		case imap.MailboxAttrTrash:
			return store.RoleTrash
		case imap.MailboxAttrDrafts:
			return store.RoleDrafts
		case imap.MailboxAttrJunk:
			return store.RoleJunk
		case imap.MailboxAttrArchive:
			return store.RoleArchive
		}
	}
	switch strings.ToLower(name) {
	case "sent messages", "sent", "sent items", "sent mail":
		return store.RoleSent
	case "deleted messages", "trash", "deleted items", "bin":
		return store.RoleTrash
	case "drafts":
		return store.RoleDrafts
	case "junk", "spam", "junk e-mail", "bulk mail":
		return store.RoleJunk
	case "archive", "archives":
		return store.RoleArchive
	}
	return ""
}

// skipFolder: Apple Notes live in an IMAP folder named Notes; they are not
// mail. Folders that cannot be selected hold no messages.
func skipFolder(name string, attrs []imap.MailboxAttr) bool {
	for _, a := range attrs {
		if a == imap.MailboxAttrNoSelect || a == imap.MailboxAttrNonExistent {
			return true
		}
	}
	return name == "Notes" || strings.HasPrefix(name, "Notes/")
}
