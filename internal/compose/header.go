package compose

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// Header lines are folded to lineLen characters: RFC 2047 §2 limits a line
// that holds encoded words to 76, under RFC 5322's 78. No line may pass
// maxLine (CRLF excluded); validation keeps every unbreakable piece under
// it.
const (
	lineLen = 76
	maxLine = 998
)

// field formats one header field, folded, with its CRLF.
//
// go-message's own folding is not used: when a value's first word does not
// fit in 76 characters it falls back to one line of up to 998 (an emoji
// subject comes out as a 200-character line of encoded words, against RFC
// 2047), it can leave a continuation line of nothing but blanks (which RFC
// 5322 §3.2.2 forbids), and it splits a word longer than 998 by inserting a
// blank, changing the value. Here a line breaks only at a single space
// between two non-blank characters, so every reader's unfolding — keeping
// the blank (RFC 5322) or trimming lines and joining them with one space
// (go-message) — gives the value back exactly.
func field(name, value string) []byte {
	b := make([]byte, 0, len(name)+len(value)+8)
	b = append(b, name...)
	b = append(b, ':')
	if value == "" {
		return append(b, '\r', '\n')
	}
	b = append(b, ' ')
	lineStart := 0
	for from := 0; ; {
		next := nextBreak(value, from+1)
		seg := value[from:next] // from the second on, segments start with their space
		if from > 0 && len(b)-lineStart+len(seg) > lineLen {
			b = append(b, '\r', '\n')
			lineStart = len(b)
		}
		b = append(b, seg...)
		if next == len(value) {
			break
		}
		from = next
	}
	return append(b, '\r', '\n')
}

// nextBreak returns the first place at or after i where a field value may
// be folded (a space between non-blanks), or len(v).
func nextBreak(v string, i int) int {
	for j := max(i, 1); j < len(v)-1; j++ {
		if v[j] == ' ' && !isBlank(v[j-1]) && !isBlank(v[j+1]) {
			return j
		}
	}
	return len(v)
}

// longestSegment is the longest piece of v that field cannot break.
func longestSegment(v string) int {
	longest := 0
	for from := 0; from < len(v); {
		next := nextBreak(v, from+1)
		longest = max(longest, next-from)
		from = next
	}
	return longest
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// needsWords reports text that cannot go in a header as it stands: 8-bit or
// control characters (tabs aside), or "=?", which readers would take for
// the start of an encoded word (mimeconv decodes those even inside quotes
// and next to other text).
func needsWords(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
			return true
		}
	}
	return strings.Contains(s, "=?")
}

// Encoded words are "=?utf-8?q?" or "=?utf-8?b?", the text, and "?=".
const (
	wordOverhead = len("=?utf-8?q??=")
	maxWord      = 75 // RFC 2047 §2
)

// encodeWords encodes s as RFC 2047 encoded words of UTF-8, the first at
// most first characters long and the others at most rest, each holding
// whole characters (a reader that decodes words one by one must not see
// half a character). Q encoding is preferred, since it stays readable and
// spam filters count needless base64 against a message (ASCII text is
// always Q); B is used when it is a quarter shorter, as for scripts whose
// characters are all multi-byte. Q keeps only the characters RFC 2047
// §5(3) allows in a phrase, so the words are valid in display names as well
// as in a Subject.
func encodeWords(s string, first, rest int) []string {
	useB := false
	if !isASCII(s) {
		useB = 4*base64.StdEncoding.EncodedLen(len(s)) < 3*qLen(s)
	}
	prefix := "=?utf-8?q?"
	if useB {
		prefix = "=?utf-8?b?"
	}
	// The longest character takes 12 characters in Q (4 bytes × "=XX").
	if first < wordOverhead+12 {
		first = maxWord
	}
	limit := first - wordOverhead
	var words []string
	var cur []byte // raw bytes of the word being filled
	curLen := 0    // their encoded length
	flush := func() {
		var enc string
		if useB {
			enc = base64.StdEncoding.EncodeToString(cur)
		} else {
			enc = qEncode(cur)
		}
		words = append(words, prefix+enc+"?=")
		cur, curLen = cur[:0], 0
		limit = rest - wordOverhead
	}
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		ch := s[i : i+n]
		i += n
		var grown int
		if useB {
			grown = base64.StdEncoding.EncodedLen(len(cur) + n)
		} else {
			grown = curLen + qLen(ch)
		}
		if grown > limit && len(cur) > 0 {
			flush()
			if useB {
				grown = base64.StdEncoding.EncodedLen(n)
			} else {
				grown = qLen(ch)
			}
		}
		cur = append(cur, ch...)
		curLen = grown
	}
	if len(cur) > 0 || len(words) == 0 {
		flush()
	}
	return words
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// qSafe: the characters RFC 2047 §5(3) lets a Q word in a phrase keep.
func qSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '!' || c == '*' || c == '+' || c == '-' || c == '/'
}

func qLen(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if qSafe(s[i]) || s[i] == ' ' {
			n++
		} else {
			n += 3
		}
	}
	return n
}

func qEncode(b []byte) string {
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	for _, c := range b {
		switch {
		case qSafe(c):
			sb.WriteByte(c)
		case c == ' ':
			sb.WriteByte('_')
		default:
			sb.WriteByte('=')
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&0x0f])
		}
	}
	return sb.String()
}

// formatAddress writes "name <email>" with the name as an atom phrase, a
// quoted string or encoded words, whichever it needs; first is the room
// for the first encoded word.
func formatAddress(a Address, first int) string {
	addr := "<" + a.Email + ">"
	switch {
	case a.Name == "":
		return addr
	case needsWords(a.Name):
		return strings.Join(encodeWords(a.Name, first, maxWord), " ") + " " + addr
	case isAtomPhrase(a.Name):
		return a.Name + " " + addr
	}
	return quoteString(a.Name) + " " + addr
}

// formatAddressList formats the value of an address field named key.
func formatAddressList(key string, l []Address) string {
	parts := make([]string, len(l))
	for i, a := range l {
		first := maxWord // later addresses may start a continuation line
		if i == 0 {
			first = lineLen - len(key) - len(": ")
		}
		parts[i] = formatAddress(a, first)
	}
	return strings.Join(parts, ", ")
}

// isAtomPhrase: words of atext (RFC 5322 §3.2.3) separated by single
// spaces, which need no quotes.
func isAtomPhrase(s string) bool {
	for _, w := range strings.Split(s, " ") {
		if w == "" {
			return false
		}
		for i := 0; i < len(w); i++ {
			if !isAtext(w[i]) {
				return false
			}
		}
	}
	return true
}

func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// formatText formats unstructured text (a Subject, a filename) for a
// header: as it stands when it can be, else as encoded words. first and
// rest bound the words; a piece longer than maxPiece that folding cannot
// break is encoded too, so that no line passes 998 characters.
func formatText(s string, first, rest, maxPiece int) string {
	if !needsWords(s) && longestSegment(s) <= maxPiece {
		return s
	}
	return strings.Join(encodeWords(s, first, rest), " ")
}
