package mimeconv

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// replyPrefixes are the reply and forward markers mail clients put before
// a subject, lowercased: English, German (AW, WG), Scandinavian (SV, VS),
// Dutch (Antw).
var replyPrefixes = []string{"re", "fwd", "fw", "aw", "wg", "sv", "vs", "antw"}

// SubjectKey normalizes a subject for threading: it strips any number of
// leading reply/forward prefixes (Re, Fwd, Fw, AW, WG, SV, VS, Antw, also
// counted as "RE[2]:" or "Re(2):", case-insensitive) and [list] tags at
// the start, surrounding whitespace, collapses inner whitespace and
// lowercases.
func SubjectKey(subject string) string {
	s := subject
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if rest, ok := cutListTag(s); ok {
			s = rest
			continue
		}
		if rest, ok := cutReplyPrefix(s); ok {
			s = rest
			continue
		}
		break
	}
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// IsReplySubject says whether the subject starts with a reply/forward
// prefix (after any [list] tags).
func IsReplySubject(subject string) bool {
	s := subject
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		rest, ok := cutListTag(s)
		if !ok {
			break
		}
		s = rest
	}
	_, ok := cutReplyPrefix(s)
	return ok
}

// maxListTag bounds a [list] tag, so that a subject that merely starts
// with a long bracketed phrase keeps it.
const maxListTag = 40

// cutListTag removes a leading "[tag]" (no nested brackets).
func cutListTag(s string) (string, bool) {
	if !strings.HasPrefix(s, "[") {
		return s, false
	}
	head := s
	if len(head) > maxListTag+1 {
		head = head[:maxListTag+1]
	}
	end := strings.IndexByte(head, ']')
	if end < 0 || strings.IndexByte(s[1:end], '[') >= 0 {
		return s, false
	}
	rest := s[end+1:]
	if strings.TrimSpace(rest) == "" {
		// The tag is the whole subject: keep it.
		return s, false
	}
	return rest, true
}

// cutReplyPrefix removes one leading "Re:", "RE[2]:", "Fwd :", "AW：" …
func cutReplyPrefix(s string) (string, bool) {
	for _, p := range replyPrefixes {
		if len(s) < len(p) || !strings.EqualFold(s[:len(p)], p) {
			continue
		}
		rest := s[len(p):]
		// A counter: "[2]" or "(2)".
		if len(rest) > 0 && (rest[0] == '[' || rest[0] == '(') {
			closer := byte(']')
			if rest[0] == '(' {
				closer = ')'
			}
			j := 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			if j > 1 && j < len(rest) && rest[j] == closer {
				rest = rest[j+1:]
			}
		}
		rest = strings.TrimLeft(rest, " \t")
		if strings.HasPrefix(rest, ":") {
			return rest[1:], true
		}
		// The full-width colon of CJK mail clients.
		if r, n := utf8.DecodeRuneInString(rest); r == '：' {
			return rest[n:], true
		}
	}
	return s, false
}
