package syncer

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/orchard-mail/orchard/internal/store"
)

func TestFolderRole(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		attrs []imap.MailboxAttr
		want  string
	}{
		{"INBOX", nil, store.RoleInbox},
		{"inbox", nil, store.RoleInbox},
		// iCloud: \Sent and \Trash as attributes without SPECIAL-USE.
		{"Sent Messages", []imap.MailboxAttr{imap.MailboxAttrSent}, store.RoleSent},
		{"Deleted Messages", []imap.MailboxAttr{imap.MailboxAttrTrash}, store.RoleTrash},
		// iCloud: Drafts, Junk, Archive by name only.
		{"Drafts", nil, store.RoleDrafts},
		{"Junk", nil, store.RoleJunk},
		{"Archive", nil, store.RoleArchive},
		{"Sent Messages", nil, store.RoleSent},
		{"Deleted Messages", nil, store.RoleTrash},
		// Attributes win over names.
		{"Papierkorb", []imap.MailboxAttr{imap.MailboxAttrTrash}, store.RoleTrash},
		{"Archive/2024", nil, ""},
		{"Projects", []imap.MailboxAttr{imap.MailboxAttrHasNoChildren}, ""},
	}
	for _, c := range cases {
		if got := folderRole(c.name, c.attrs); got != c.want {
			t.Errorf("folderRole(%q, %v) = %q, want %q", c.name, c.attrs, got, c.want)
		}
	}
}

func TestSkipFolder(t *testing.T) {
	t.Parallel()
	if !skipFolder("Notes", nil) || !skipFolder("Notes/Work", nil) {
		t.Error("Apple Notes folders are synced")
	}
	if !skipFolder("Parent", []imap.MailboxAttr{imap.MailboxAttrNoSelect}) {
		t.Error(`\Noselect folder is synced`)
	}
	if skipFolder("Notebook", nil) || skipFolder("INBOX", nil) {
		t.Error("a mail folder is skipped")
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	prevMax := time.Duration(0)
	for n := 1; n <= 20; n++ {
		d := backoff(n)
		base := min(backoffMin<<min(n-1, 10), backoffMax)
		if d < base-base/4 || d > base+base/4 {
			t.Fatalf("backoff(%d) = %v outside ±25%% of %v", n, d, base)
		}
		prevMax = max(prevMax, d)
	}
	if prevMax > backoffMax+backoffMax/4 {
		t.Fatalf("backoff exceeds its cap: %v", prevMax)
	}
}

func TestDerivedID(t *testing.T) {
	t.Parallel()
	a := derivedID("grant-1", "message", "mid:a@b")
	if a != derivedID("grant-1", "message", "mid:a@b") {
		t.Fatal("derivedID is not deterministic")
	}
	if len(a) != 26 || a == derivedID("grant-2", "message", "mid:a@b") || a == derivedID("grant-1", "thread", "mid:a@b") {
		t.Fatalf("derivedID collides across grants or kinds: %q", a)
	}
}
