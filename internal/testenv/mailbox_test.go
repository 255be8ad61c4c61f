package testenv

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestNewUserAppendAndSeed(t *testing.T) {
	env := Get(t)
	u := env.NewUser(t)
	msg := func(subject string) []byte {
		return []byte("From: a@example.test\r\nTo: " + u.Email + "\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject + "@x>\r\n\r\nhello\r\n")
	}
	old := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	env.SeedMaildir(t, u, "Archive", []SeedMessage{{Raw: msg("seeded"), Received: old, Seen: true}})
	c := env.IMAP(t, u)
	uid := env.Append(t, c, "INBOX", msg("appended"), old, imap.FlagFlagged)
	if uid == 0 {
		t.Fatal("no APPENDUID")
	}
	for _, folder := range []string{"INBOX", "Archive"} {
		if _, err := c.Select(folder, nil).Wait(); err != nil {
			t.Fatalf("select %s: %v", folder, err)
		}
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{InternalDate: true, Flags: true, Envelope: true}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%s: %v %d", folder, err, len(msgs))
		}
		if !msgs[0].InternalDate.Equal(old) {
			t.Errorf("%s: INTERNALDATE %v, want %v", folder, msgs[0].InternalDate, old)
		}
	}
}
