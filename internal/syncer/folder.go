package syncer

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/internal/store"
)

// syncFolder brings one folder up to date:
//
//  1. a changed UIDVALIDITY drops the folder's copies (their messages stay
//     until the end of the pass, so refetched mail keeps its ids);
//  2. mail that arrived above the last seen UID is fetched and notified;
//  3. the initial sync fetches the in-window mail below that point,
//     newest first, in batches whose progress is saved with them;
//  4. flag changes (CONDSTORE CHANGEDSINCE where the server has it) and
//     expunges (a UID diff) of stored copies are applied.
func (s *syncSession) syncFolder(ctx context.Context, f *store.Folder) error {
	o := s.w.sup.opts
	st := o.Store
	grantID := s.w.grant.ID
	log := s.w.log.With("folder", f.Name)
	started := time.Now()

	var sel *imap.SelectData
	err := s.c.Run(ctx, func(raw *imapclient.Client) error {
		var err error
		sel, err = raw.Select(f.Name, &imap.SelectOptions{ReadOnly: true, CondStore: s.condstore}).Wait()
		return err
	})
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
		// Gone since LIST, or not selectable after all: the next folder
		// list sync removes it.
		log.Info("folder cannot be selected; skipped", "error", err)
		return nil
	}
	if err != nil {
		return err
	}

	uidValidity := sel.UIDValidity
	if f.UIDValidity != 0 && uidValidity != f.UIDValidity {
		log.Warn("UIDVALIDITY changed: refetching the folder", "old", f.UIDValidity, "new", uidValidity)
		f.UIDNext, f.HighestModSeq, f.InitialLowUID, f.InitialDone = 0, 0, 0, false
		f.UIDValidity = uidValidity
		if err := st.ApplyMailBatch(ctx, &store.MailBatch{GrantID: grantID, ClearFolders: []string{f.ID}, Folders: []store.Folder{*f}}); err != nil {
			return err
		}
	}
	f.UIDValidity = uidValidity
	serverUIDNext := uint32(sel.UIDNext)
	var fetched, notified int
	// Mail fetched by this pass comes with its current flags: its flags
	// need no second look (and its "created" no "updated" after it).
	fetchedFrom := f.UIDNext

	// 2. New mail since the last pass.
	if f.UIDNext > 0 && serverUIDNext > f.UIDNext {
		uids, err := s.search(ctx, o, imap.UIDSet{imap.UIDRange{Start: imap.UID(f.UIDNext), Stop: 0}})
		if err != nil {
			return err
		}
		uids = slices.DeleteFunc(uids, func(u uint32) bool { return u < f.UIDNext })
		for chunk := range slices.Chunk(uids, o.BatchSize) {
			n, err := s.fetchAndStore(ctx, f, chunk, true, nil)
			if err != nil {
				return err
			}
			fetched += len(chunk)
			notified += n
		}
		f.UIDNext = serverUIDNext
	}

	// 3. Initial sync, newest first, resumable.
	initial := !f.InitialDone
	if initial {
		if f.UIDNext == 0 {
			f.UIDNext = serverUIDNext
		}
		s.w.sup.setStatus(grantID, func(st *Status) { st.State = "initial_sync" })
		uids, err := s.search(ctx, o, nil)
		if err != nil {
			return err
		}
		uids = slices.DeleteFunc(uids, func(u uint32) bool {
			return u >= f.UIDNext || (f.InitialLowUID > 0 && u >= f.InitialLowUID)
		})
		slices.Reverse(uids)
		n, err := s.initialBatches(ctx, f, uids)
		fetched += n
		if err != nil {
			return err
		}
		f.InitialDone = true
		if f.InitialLowUID == 0 {
			f.InitialLowUID = 1
		}
		log.Info("initial sync of folder done", "messages", fetched, "duration", time.Since(started).Round(time.Millisecond))
	}

	// 4. Flags and expunges of the copies we hold.
	b := &store.MailBatch{GrantID: grantID}
	// Right after an initial sync the flags are the ones just fetched.
	if !initial {
		if err := s.syncFlags(ctx, f, sel, fetchedFrom, b); err != nil {
			return err
		}
	}
	if err := s.syncExpunges(ctx, f, b); err != nil {
		return err
	}
	f.HighestModSeq = sel.HighestModSeq
	f.LastSyncAt = o.Now()
	f.UpdatedAt = f.LastSyncAt
	b.Folders = append(b.Folders, *f)
	if err := st.ApplyMailBatch(ctx, b); err != nil {
		return err
	}
	if len(b.Changes) > 0 {
		s.w.sup.changed()
	}
	if fetched > 0 || len(b.FlagUpdates) > 0 || len(b.RemovedLocations) > 0 {
		log.Info("folder synced", "fetched", fetched, "notified", notified, "flag_changes", len(b.FlagUpdates),
			"expunged", len(b.RemovedLocations), "duration", time.Since(started).Round(time.Millisecond))
	}
	return nil
}

// initialBatches fetches and stores uids (newest first) batch by batch,
// saving the progress with each batch. The next batch is fetched while the
// current one is written: reading from the server and writing to the
// store then overlap instead of taking turns.
func (s *syncSession) initialBatches(ctx context.Context, f *store.Folder, uids []uint32) (int, error) {
	o := s.w.sup.opts
	type batch struct {
		msgs []fetched
		low  uint32
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan batch, 1)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(ready)
		for chunk := range slices.Chunk(uids, o.BatchSize) {
			msgs, err := s.fetch(ctx, chunk)
			if err != nil {
				fetchErr <- err
				return
			}
			select {
			case ready <- batch{msgs: msgs, low: chunk[len(chunk)-1]}:
			case <-ctx.Done():
				return
			}
		}
	}()
	stored := 0
	for b := range ready {
		if _, err := s.store(ctx, f, b.msgs, false, func(mb *store.MailBatch) {
			f.InitialLowUID = b.low
			f.UpdatedAt = o.Now()
			mb.Folders = append(mb.Folders, *f)
		}); err != nil {
			cancel()
			for range ready { // let the fetcher finish before returning
			}
			return stored, err
		}
		stored += len(b.msgs)
	}
	select {
	case err := <-fetchErr:
		return stored, err
	default:
		return stored, nil
	}
}

// search returns, ascending, the UIDs in uids (all when nil) that are
// inside the sync window. SINCE compares dates, not times, which is as
// precise as the window needs to be.
func (s *syncSession) search(ctx context.Context, o Options, uids imap.UIDSet) ([]uint32, error) {
	criteria := &imap.SearchCriteria{}
	if uids != nil {
		criteria.UID = []imap.UIDSet{uids}
	}
	if o.WindowDays > 0 {
		criteria.Since = o.Now().AddDate(0, 0, -o.WindowDays)
	}
	var out []uint32
	err := s.c.Run(ctx, func(raw *imapclient.Client) error {
		data, err := raw.UIDSearch(criteria, nil).Wait()
		if err != nil {
			return err
		}
		for _, u := range data.AllUIDs() {
			out = append(out, uint32(u))
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// syncFlags reads the flags of stored copies: only the changed ones with
// CONDSTORE, all of them without (then no change can be told from no
// change, so no change rows are written).
func (s *syncSession) syncFlags(ctx context.Context, f *store.Folder, sel *imap.SelectData, fetchedFrom uint32, b *store.MailBatch) error {
	st := s.w.sup.opts.Store
	useModSeq := s.condstore && f.HighestModSeq > 0 && sel.HighestModSeq > 0
	if useModSeq && sel.HighestModSeq <= f.HighestModSeq {
		return nil // nothing changed in the folder
	}
	stored, err := st.FolderUIDs(ctx, s.w.grant.ID, f.ID)
	if err != nil || len(stored) == 0 {
		return err
	}
	opts := &imap.FetchOptions{UID: true, Flags: true}
	if useModSeq {
		opts.ChangedSince = f.HighestModSeq
		opts.ModSeq = true
	}
	var set imap.UIDSet
	set.AddRange(imap.UID(stored[0]), 0)
	var updates []store.FlagUpdate
	err = s.c.Run(ctx, func(raw *imapclient.Client) error {
		msgs, err := raw.Fetch(set, opts).Collect()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.UID == 0 || !containsUID(stored, uint32(m.UID)) || (fetchedFrom > 0 && uint32(m.UID) >= fetchedFrom) {
				continue
			}
			updates = append(updates, store.FlagUpdate{FolderID: f.ID, UID: uint32(m.UID), Flags: flagStrings(m.Flags), ModSeq: m.ModSeq})
		}
		return nil
	})
	if err != nil || len(updates) == 0 {
		return err
	}
	b.FlagUpdates = append(b.FlagUpdates, updates...)
	if useModSeq {
		uids := make([]uint32, len(updates))
		for i, u := range updates {
			uids[i] = u.UID
		}
		return s.changedMessages(ctx, f, uids, b)
	}
	return nil
}

// syncExpunges compares the stored UIDs with the server's and removes the
// copies the server no longer has.
func (s *syncSession) syncExpunges(ctx context.Context, f *store.Folder, b *store.MailBatch) error {
	stored, err := s.w.sup.opts.Store.FolderUIDs(ctx, s.w.grant.ID, f.ID)
	if err != nil || len(stored) == 0 {
		return err
	}
	var onServer []uint32
	err = s.c.Run(ctx, func(raw *imapclient.Client) error {
		data, err := raw.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: imap.UID(stored[0]), Stop: 0}}}}, nil).Wait()
		if err != nil {
			return err
		}
		for _, u := range data.AllUIDs() {
			onServer = append(onServer, uint32(u))
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(onServer)
	var gone []uint32
	for _, u := range stored {
		if !containsUID(onServer, u) {
			gone = append(gone, u)
			b.RemovedLocations = append(b.RemovedLocations, store.LocationKey{FolderID: f.ID, UID: u})
		}
	}
	if len(gone) == 0 {
		return nil
	}
	return s.changedMessages(ctx, f, gone, b)
}

// changedMessages records a "message updated" change for the messages at
// these UIDs of f.
func (s *syncSession) changedMessages(ctx context.Context, f *store.Folder, uids []uint32, b *store.MailBatch) error {
	ids, err := s.w.sup.opts.Store.MessageIDsAt(ctx, s.w.grant.ID, f.ID, uids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		b.Changes = append(b.Changes, store.Change{GrantID: s.w.grant.ID, ObjectType: "message", ObjectID: id, Action: "updated"})
	}
	return nil
}

func containsUID(sorted []uint32, u uint32) bool {
	_, ok := slices.BinarySearch(sorted, u)
	return ok
}

func flagStrings(flags []imap.Flag) []string {
	out := make([]string, len(flags))
	for i, f := range flags {
		out[i] = string(f)
	}
	return out
}
