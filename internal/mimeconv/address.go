package mimeconv

import (
	"strings"
	"unicode/utf8"

	"github.com/orchard-mail/orchard/internal/store"
)

// parseAddressList reads an address list leniently and keeps what is
// readable: entries without any address are dropped (with a Problem), an
// unbalanced quote or angle bracket is ignored, a whole field encoded as
// one RFC 2047 word is decoded first.
func (p *parser) parseAddressList(v, field string) []store.Participant {
	list, probs := parseAddresses(v)
	if !hasAtEmail(list) && strings.Contains(v, "=?") {
		if dec, _ := decodeWords(v); dec != v {
			if l2, pr2 := parseAddresses(dec); hasAtEmail(l2) {
				list, probs = l2, pr2
			}
		}
	}
	for _, pr := range probs {
		p.problem("%s: %s", field, pr)
	}
	return list
}

func hasAtEmail(l []store.Participant) bool {
	for _, a := range l {
		if strings.Contains(a.Email, "@") {
			return true
		}
	}
	return false
}

// parseAddresses parses an unfolded address list value.
func parseAddresses(v string) ([]store.Participant, []string) {
	var probs []string
	entries, unbalanced := splitAddressList(v, true)
	quotes := true
	if unbalanced {
		// Read the quote characters as text: what they enclosed is then
		// split and parsed like the rest.
		probs = append(probs, "unbalanced quote")
		entries, _ = splitAddressList(v, false)
		quotes = false
	}
	var out []store.Participant
	for _, e := range entries {
		a, ok, pr := parseMailbox(e, quotes)
		if pr != "" {
			probs = append(probs, pr)
		}
		if ok {
			out = append(out, a)
		}
	}
	return out, probs
}

// splitAddressList splits at commas (and group syntax "name: a, b;") that
// are outside quotes, angle brackets and comments. unbalanced reports a
// quoted string that never closed.
func splitAddressList(v string, quotes bool) (entries []string, unbalanced bool) {
	var cur strings.Builder
	inQuote, angle, comment := false, false, 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inQuote:
			cur.WriteByte(c)
			if c == '\\' && i+1 < len(v) {
				i++
				cur.WriteByte(v[i])
			} else if c == '"' {
				inQuote = false
			}
		case comment > 0:
			cur.WriteByte(c)
			switch c {
			case '\\':
				if i+1 < len(v) {
					i++
					cur.WriteByte(v[i])
				}
			case '(':
				comment++
			case ')':
				comment--
			}
		case angle:
			cur.WriteByte(c)
			if c == '>' {
				angle = false
			}
		default:
			switch c {
			case '"':
				if quotes {
					inQuote = true
				}
				cur.WriteByte(c)
			case '(':
				comment++
				cur.WriteByte(c)
			case '<':
				angle = true
				cur.WriteByte(c)
			case ',', ';':
				entries = append(entries, cur.String())
				cur.Reset()
			case ':':
				// Group display name: not an address.
				cur.Reset()
			default:
				cur.WriteByte(c)
			}
		}
	}
	entries = append(entries, cur.String())
	return entries, inQuote
}

// parseMailbox reads one "name <addr>", "addr (comment)" or "addr" entry.
func parseMailbox(e string, quotes bool) (a store.Participant, ok bool, problem string) {
	e = strings.TrimSpace(e)
	if e == "" {
		return a, false, ""
	}
	if lt := indexOutsideQuotes(e, '<', quotes); lt >= 0 {
		rest := e[lt+1:]
		after := ""
		gt := strings.IndexByte(rest, '>')
		if gt >= 0 {
			after = rest[gt+1:]
			rest = rest[:gt]
		} else {
			problem = "missing \">\" in " + strconvQuote(e)
		}
		addr := cleanAddr(rest)
		name := cleanName(e[:lt], quotes)
		if name == "" {
			name = cleanName(stripParens(after), quotes)
		}
		if addr == "" {
			if problem == "" && name != "" {
				problem = "no address in " + strconvQuote(e)
			}
			return a, false, problem
		}
		return store.Participant{Name: name, Email: addr}, true, problem
	}
	outside, comments := splitComments(e)
	words := strings.Fields(outside)
	addr, nameWords := "", []string(nil)
	for _, w := range words {
		if addr == "" && strings.Contains(w, "@") {
			addr = w
		} else {
			nameWords = append(nameWords, w)
		}
	}
	if addr == "" {
		if len(words) != 1 {
			return a, false, "no address in " + strconvQuote(e)
		}
		// A local address such as "MAILER-DAEMON" or "root".
		addr, nameWords = words[0], nil
	}
	name := cleanName(strings.Join(nameWords, " "), quotes)
	if name == "" {
		name = cleanName(comments, quotes)
	}
	addr = cleanAddr(addr)
	if addr == "" {
		return a, false, ""
	}
	return store.Participant{Name: name, Email: addr}, true, ""
}

// indexOutsideQuotes finds c outside quoted strings and comments.
func indexOutsideQuotes(s string, c byte, quotes bool) int {
	inQuote, comment := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case inQuote:
			if s[i] == '\\' {
				i++
			} else if s[i] == '"' {
				inQuote = false
			}
		case comment > 0:
			switch s[i] {
			case '\\':
				i++
			case '(':
				comment++
			case ')':
				comment--
			}
		case s[i] == '"' && quotes:
			inQuote = true
		case s[i] == '(':
			comment++
		case s[i] == c:
			return i
		}
	}
	return -1
}

// splitComments separates the text outside parentheses from the text of
// the (outermost) comments.
func splitComments(s string) (outside, comments string) {
	var o, c strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '(':
			if depth > 0 {
				c.WriteByte(ch)
			} else if c.Len() > 0 {
				c.WriteByte(' ')
			}
			depth++
		case ch == ')' && depth > 0:
			depth--
			if depth > 0 {
				c.WriteByte(ch)
			}
		case depth > 0:
			c.WriteByte(ch)
		default:
			o.WriteByte(ch)
		}
	}
	return o.String(), c.String()
}

func stripParens(s string) string {
	_, c := splitComments(s)
	return c
}

// cleanName unquotes a display name (dropping the quotes of quoted strings
// and their backslash escapes), decodes RFC 2047 words (also inside quotes,
// as many mailers put them there), and collapses blanks.
func cleanName(s string, quotes bool) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == '\\' && (inQuote || !quotes) && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	name, _ := decodeWords(b.String())
	name = strings.Join(strings.Fields(name), " ")
	// Outlook writes 'Name' <addr>.
	if len(name) >= 2 && name[0] == '\'' && name[len(name)-1] == '\'' {
		name = strings.TrimSpace(name[1 : len(name)-1])
	}
	return name
}

// cleanAddr trims an address, drops an obsolete source route
// ("@relay:user@host") and blanks, and makes it valid UTF-8.
func cleanAddr(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "@") {
		if i := strings.IndexByte(s, ':'); i >= 0 {
			s = s[i+1:]
		}
	}
	if len(s) >= 7 && strings.EqualFold(s[:7], "mailto:") {
		s = s[7:]
	}
	s = strings.Join(strings.Fields(s), "")
	s = strings.Trim(s, `"'<>`)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}
