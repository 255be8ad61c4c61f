package mailbox

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// ParseSearch turns a search written in IMAP SEARCH syntax (RFC 3501
// §6.4.4, as search_query_native passes it) into criteria. Keys are
// AND-ed; NOT and OR nest; strings may be quoted. Unknown keys are an
// error naming the key, not a silent match-all.
func ParseSearch(query string) (*imap.SearchCriteria, error) {
	toks, err := tokenize(query)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty search")
	}
	p := &searchParser{toks: toks}
	c := &imap.SearchCriteria{}
	for !p.done() {
		if err := p.key(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

type searchParser struct {
	toks []string
	pos  int
}

func (p *searchParser) done() bool { return p.pos >= len(p.toks) }

func (p *searchParser) next(what string) (string, error) {
	if p.done() {
		return "", fmt.Errorf("%s expects an argument", what)
	}
	t := p.toks[p.pos]
	p.pos++
	return t, nil
}

var flagKeys = map[string]struct {
	flag imap.Flag
	not  bool
}{
	"ANSWERED": {imap.FlagAnswered, false}, "UNANSWERED": {imap.FlagAnswered, true},
	"DELETED": {imap.FlagDeleted, false}, "UNDELETED": {imap.FlagDeleted, true},
	"DRAFT": {imap.FlagDraft, false}, "UNDRAFT": {imap.FlagDraft, true},
	"FLAGGED": {imap.FlagFlagged, false}, "UNFLAGGED": {imap.FlagFlagged, true},
	"SEEN": {imap.FlagSeen, false}, "UNSEEN": {imap.FlagSeen, true},
}

// key parses one search key into c.
func (p *searchParser) key(c *imap.SearchCriteria) error {
	tok, _ := p.next("")
	k := strings.ToUpper(tok)
	if f, ok := flagKeys[k]; ok {
		if f.not {
			c.NotFlag = append(c.NotFlag, f.flag)
		} else {
			c.Flag = append(c.Flag, f.flag)
		}
		return nil
	}
	switch k {
	case "ALL":
		return nil
	case "(":
		for !p.done() && p.toks[p.pos] != ")" {
			if err := p.key(c); err != nil {
				return err
			}
		}
		if _, err := p.next("("); err != nil {
			return fmt.Errorf("unbalanced parenthesis")
		}
		return nil
	case "NOT":
		var sub imap.SearchCriteria
		if p.done() {
			return fmt.Errorf("NOT expects a search key")
		}
		if err := p.key(&sub); err != nil {
			return err
		}
		c.Not = append(c.Not, sub)
		return nil
	case "OR":
		var a, b imap.SearchCriteria
		if p.done() {
			return fmt.Errorf("OR expects two search keys")
		}
		if err := p.key(&a); err != nil {
			return err
		}
		if p.done() {
			return fmt.Errorf("OR expects two search keys")
		}
		if err := p.key(&b); err != nil {
			return err
		}
		c.Or = append(c.Or, [2]imap.SearchCriteria{a, b})
		return nil
	case "FROM", "TO", "CC", "BCC", "SUBJECT":
		v, err := p.next(k)
		if err != nil {
			return err
		}
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: k, Value: v})
		return nil
	case "HEADER":
		name, err := p.next(k)
		if err != nil {
			return err
		}
		v, err := p.next(k)
		if err != nil {
			return err
		}
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: name, Value: v})
		return nil
	case "BODY", "TEXT":
		v, err := p.next(k)
		if err != nil {
			return err
		}
		if k == "BODY" {
			c.Body = append(c.Body, v)
		} else {
			c.Text = append(c.Text, v)
		}
		return nil
	case "KEYWORD", "UNKEYWORD":
		v, err := p.next(k)
		if err != nil {
			return err
		}
		if k == "KEYWORD" {
			c.Flag = append(c.Flag, imap.Flag(v))
		} else {
			c.NotFlag = append(c.NotFlag, imap.Flag(v))
		}
		return nil
	case "SINCE", "BEFORE", "ON", "SENTSINCE", "SENTBEFORE", "SENTON":
		v, err := p.next(k)
		if err != nil {
			return err
		}
		d, err := time.Parse("2-Jan-2006", v)
		if err != nil {
			return fmt.Errorf("%s expects a date like 1-Feb-2026, not %q", k, v)
		}
		switch k {
		case "SINCE":
			c.Since = d
		case "BEFORE":
			c.Before = d
		case "ON":
			c.Since, c.Before = d, d.AddDate(0, 0, 1)
		case "SENTSINCE":
			c.SentSince = d
		case "SENTBEFORE":
			c.SentBefore = d
		case "SENTON":
			c.SentSince, c.SentBefore = d, d.AddDate(0, 0, 1)
		}
		return nil
	case "LARGER", "SMALLER":
		v, err := p.next(k)
		if err != nil {
			return err
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%s expects a size in bytes, not %q", k, v)
		}
		if k == "LARGER" {
			c.Larger = n
		} else {
			c.Smaller = n
		}
		return nil
	case "UID":
		v, err := p.next(k)
		if err != nil {
			return err
		}
		set, err := parseUIDSet(v)
		if err != nil {
			return fmt.Errorf("UID expects a set like 1:100, not %q", v)
		}
		c.UID = append(c.UID, set)
		return nil
	}
	return fmt.Errorf("unsupported search key %q", tok)
}

// tokenize splits a search into atoms, quoted strings (with \" and \\
// escapes) and parentheses.
func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '"':
			var b strings.Builder
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated quoted string")
			}
			i++
			toks = append(toks, b.String())
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n()\"", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

// parseUIDSet reads a UID set such as 1:100,205,300:*.
func parseUIDSet(s string) (imap.UIDSet, error) {
	var set imap.UIDSet
	num := func(v string) (imap.UID, error) {
		if v == "*" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("bad UID %q", v)
		}
		return imap.UID(n), nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		start, err := num(lo)
		if err != nil {
			return nil, err
		}
		stop := start
		if isRange {
			if stop, err = num(hi); err != nil {
				return nil, err
			}
		}
		set = append(set, imap.UIDRange{Start: start, Stop: stop})
	}
	return set, nil
}
