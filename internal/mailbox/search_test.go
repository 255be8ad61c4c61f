package mailbox

import (
	"reflect"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestParseSearch(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want imap.SearchCriteria
	}{
		{`SUBJECT "hello world"`, imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "SUBJECT", Value: "hello world"}}}},
		{`from alice@example.test UNSEEN`, imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: "FROM", Value: "alice@example.test"}}, NotFlag: []imap.Flag{imap.FlagSeen}}},
		{`SINCE 1-Feb-2026 FLAGGED`, imap.SearchCriteria{Since: day, Flag: []imap.Flag{imap.FlagFlagged}}},
		{`ON 1-Feb-2026`, imap.SearchCriteria{Since: day, Before: day.AddDate(0, 0, 1)}},
		{`NOT SEEN`, imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}}}}},
		{`OR (FROM a TO b) BODY "x \"y\""`, imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{
			{Header: []imap.SearchCriteriaHeaderField{{Key: "FROM", Value: "a"}, {Key: "TO", Value: "b"}}},
			{Body: []string{`x "y"`}},
		}}}},
		{`HEADER Message-ID "<a@b>" LARGER 100`, imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<a@b>"}}, Larger: 100}},
		{`ALL`, imap.SearchCriteria{}},
	}
	for _, c := range cases {
		got, err := ParseSearch(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.in, *got, c.want)
		}
	}
	for _, bad := range []string{``, `SUBJECT`, `FROBNICATE x`, `SINCE yesterday`, `"unterminated`, `OR SEEN`, `LARGER -1`, `(SEEN`, `UID abc`} {
		if _, err := ParseSearch(bad); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

func TestParsePart(t *testing.T) {
	t.Parallel()
	if p, err := parsePart("2.1.10"); err != nil || !reflect.DeepEqual(p, []int{2, 1, 10}) {
		t.Fatalf("parsePart = %v %v", p, err)
	}
	for _, bad := range []string{"", ".", "1..2", "a", "1.", "12345678"} {
		if _, err := parsePart(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseUIDSet(t *testing.T) {
	t.Parallel()
	got, err := parseUIDSet("1:100,205,300:*")
	want := imap.UIDSet{{Start: 1, Stop: 100}, {Start: 205, Stop: 205}, {Start: 300, Stop: 0}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("parseUIDSet = %v %v", got, err)
	}
}
