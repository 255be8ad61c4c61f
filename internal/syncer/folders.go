package syncer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sort"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/internal/store"
)

// syncFolderList lists the server's folders (plain LIST: iCloud fails any
// LIST with RETURN options) and records new, changed and vanished ones.
// The result, INBOX first, is the order folders are synced in.
func (s *syncSession) syncFolderList(ctx context.Context) error {
	st := s.w.sup.opts.Store
	grantID := s.w.grant.ID
	var listed []*imap.ListData
	err := s.c.Run(ctx, func(raw *imapclient.Client) error {
		var err error
		listed, err = raw.List("", "*", nil).Collect()
		return err
	})
	if err != nil {
		return err
	}
	known, err := st.ListFolders(ctx, grantID)
	if err != nil {
		return err
	}
	byName := make(map[string]store.Folder, len(known))
	for _, f := range known {
		byName[f.Name] = f
	}

	now := s.w.sup.opts.Now()
	b := &store.MailBatch{GrantID: grantID}
	seen := map[string]bool{}
	var folders []store.Folder
	for _, l := range listed {
		if skipFolder(l.Mailbox, l.Attrs) {
			continue
		}
		seen[l.Mailbox] = true
		f, exists := byName[l.Mailbox]
		if !exists {
			f = store.Folder{ID: newFolderID(), GrantID: grantID, Name: l.Mailbox, CreatedAt: now}
		}
		attrs := make([]string, len(l.Attrs))
		for i, a := range l.Attrs {
			attrs[i] = string(a)
		}
		delim := ""
		if l.Delim != 0 {
			delim = string(l.Delim)
		}
		role := folderRole(l.Mailbox, l.Attrs)
		if !exists || f.Role != role || f.Delimiter != delim || !equalStrings(f.Attributes, attrs) {
			f.Role, f.Delimiter, f.Attributes, f.UpdatedAt = role, delim, attrs, now
			b.Folders = append(b.Folders, f)
			action := "updated"
			if !exists {
				action = "created"
			}
			// A grant's first folder list is history, not news.
			if len(known) > 0 {
				b.Changes = append(b.Changes, store.Change{GrantID: grantID, ObjectType: "folder", ObjectID: f.ID, Action: action})
			}
		}
		folders = append(folders, f)
	}
	for _, f := range known {
		if !seen[f.Name] {
			b.DeletedFolders = append(b.DeletedFolders, f.ID)
			b.Changes = append(b.Changes, store.Change{GrantID: grantID, ObjectType: "folder", ObjectID: f.ID, Action: "deleted"})
		}
	}
	if len(b.Folders)+len(b.DeletedFolders) > 0 {
		if err := st.ApplyMailBatch(ctx, b); err != nil {
			return err
		}
	}
	sort.SliceStable(folders, func(i, j int) bool { return folderOrder(folders[i]) < folderOrder(folders[j]) })
	s.folders = folders
	return nil
}

// folderOrder: INBOX first (what users look at), then sent mail (threads
// need it), then the rest by name; trash and junk last.
func folderOrder(f store.Folder) int {
	switch f.Role {
	case store.RoleInbox:
		return 0
	case store.RoleSent:
		return 1
	case store.RoleTrash, store.RoleJunk:
		return 3
	}
	return 2
}

func newFolderID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
