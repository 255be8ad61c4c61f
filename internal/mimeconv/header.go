package mimeconv

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Header size budgets. What a header holds beyond them is read (to find
// the body) but not kept: a header is never the place for megabytes, and
// hostile input must not make Parse hold them.
const (
	maxTopHeaderBytes  = 1 << 20
	maxPartHeaderBytes = 64 << 10
)

// field is one header field; value is raw (folding kept, not decoded).
type field struct {
	name  string // lowercased
	value []byte
}

type header struct {
	raw    []byte // the raw block, kept for the top level only
	fields []field
}

// get returns the first field named name (lowercase).
func (h *header) get(name string) (string, bool) {
	for _, f := range h.fields {
		if f.name == name {
			return string(f.value), true
		}
	}
	return "", false
}

// displayName is the usual spelling of a lowercase field name, for Problems.
func (h *header) displayName(name string) string {
	switch name {
	case "reply-to":
		return "Reply-To"
	case "cc":
		return "Cc"
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

// readHeader reads a header block. ok says it ended with an empty line (a
// body follows); otherwise st says what cut it: the end of input or a
// boundary of an enclosing multipart.
func (p *parser) readHeader(top bool) (h *header, st stop, ok bool) {
	h = &header{}
	budget := maxPartHeaderBytes
	if top {
		budget = maxTopHeaderBytes
	}
	used := 0
	overReported := false
	// What the segments of the current line go to: a field's value (cur),
	// or nowhere.
	cur := -1
	first := true
	for {
		seg, start, more := p.lr.next()
		if !more {
			return h, stop{eof: true}, false
		}
		if start {
			if st, isB := p.boundaryAt(seg, start); isB {
				p.problem("a part header was cut by a boundary")
				return h, st, false
			}
		}
		used += len(seg)
		keep := used <= budget
		if !keep && !overReported {
			overReported = true
			p.problem("header larger than %d bytes: the rest of it was ignored", budget)
		}
		if !start {
			// The rest of a long line.
			if keep {
				if top {
					h.raw = append(h.raw, seg...)
				}
				if cur >= 0 {
					h.fields[cur].value = append(h.fields[cur].value, seg...)
				}
			}
			continue
		}
		wasFirst := first
		first = false
		content, eol := splitEOL(seg)
		if len(content) == 0 && len(eol) > 0 {
			if top && keep {
				h.raw = append(h.raw, seg...)
			}
			return h, stop{}, true
		}
		if top && wasFirst && bytes.HasPrefix(content, []byte("From ")) {
			// An mbox separator line, not part of the message.
			cur = -1
			continue
		}
		if top && keep {
			h.raw = append(h.raw, seg...)
		}
		if !keep {
			cur = -1
			continue
		}
		if content[0] == ' ' || content[0] == '\t' {
			if cur < 0 && len(bytes.TrimSpace(content)) > 0 {
				p.problem("header continuation line without a field")
			}
			if cur >= 0 {
				h.fields[cur].value = append(h.fields[cur].value, seg...)
			}
			continue
		}
		name, value, isField := splitField(seg)
		if !isField {
			p.problem("malformed header line %q ignored", truncateForProblem(string(content)))
			cur = -1
			continue
		}
		h.fields = append(h.fields, field{name: name, value: append([]byte(nil), value...)})
		cur = len(h.fields) - 1
	}
}

// splitField splits "Name: value" (RFC 5322 field names are printable
// ASCII without colon; obsolete syntax allows blanks before the colon).
func splitField(seg []byte) (name string, value []byte, ok bool) {
	i := bytes.IndexByte(seg, ':')
	if i <= 0 {
		return "", nil, false
	}
	n := bytes.TrimRight(seg[:i], " \t")
	if len(n) == 0 {
		return "", nil, false
	}
	for _, c := range n {
		if c < 33 || c > 126 {
			return "", nil, false
		}
	}
	return strings.ToLower(string(n)), seg[i+1:], true
}

// unfold removes the line breaks of a folded field value (RFC 5322 §2.2.3)
// and the blanks around it.
func unfold(v string) string {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", "", "\n", "").Replace(v)
	}
	return strings.TrimSpace(v)
}

func truncateForProblem(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// msgIDs returns the msg-ids of an In-Reply-To or References value without
// angle brackets, in order, without duplicates. Values without any
// bracketed id (some mailers omit the brackets) fall back to the blank- or
// comma-separated words that contain an "@".
func msgIDs(v string) []string {
	v = unfold(v)
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	rest := v
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i+1:], '>')
		if j < 0 {
			// An id cut short; keep it when it looks like one.
			if id := cleanID(rest[i+1:]); strings.Contains(id, "@") {
				add(id)
			}
			break
		}
		add(cleanID(rest[i+1 : i+1+j]))
		rest = rest[i+1+j+1:]
	}
	if len(ids) == 0 {
		for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' }) {
			if strings.Contains(w, "@") {
				add(cleanID(w))
			}
		}
	}
	return ids
}

// cleanID drops the blanks inside an id (left by folding) and stray brackets.
func cleanID(s string) string {
	s = strings.Trim(s, "<> \t")
	if strings.ContainsAny(s, " \t") {
		s = strings.Join(strings.Fields(s), "")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// firstMsgID reads a Message-ID: the first bracketed id, else the first
// word of the value as it stands.
func firstMsgID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 && strings.Contains(v, "<") {
		return ids[0]
	}
	f := strings.Fields(unfold(v))
	if len(f) == 0 {
		return ""
	}
	return cleanID(f[0])
}

// parseParamHeader reads a Content-Type or Content-Disposition value:
// "value; name=token; name="quoted"; name*=charset'lang'pct; name*0*=…".
// It is lenient: unquoted values may hold blanks, a quote that does not
// end the value is kept, an unterminated quoted string runs to the end.
// RFC 2231 extended values and continuations are joined and decoded.
func parseParamHeader(s string) (value string, params map[string]string, probs []string) {
	s = unfold(s)
	semi := strings.IndexByte(s, ';')
	if semi < 0 {
		return strings.ToLower(strings.TrimSpace(s)), nil, nil
	}
	value = strings.ToLower(strings.TrimSpace(s[:semi]))
	rest := s[semi+1:]

	type seg struct {
		val string
		ext bool // percent-encoded (name*N* or name*)
	}
	plain := map[string]string{}
	segs := map[string]map[int]seg{}
	extended := map[string]string{} // name* = charset'lang'value, still encoded
	var order []string
	note := func(n string) {
		if _, ok := plain[n]; ok {
			return
		}
		if _, ok := segs[n]; ok {
			return
		}
		if _, ok := extended[n]; ok {
			return
		}
		order = append(order, n)
	}

	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " \t;")
		if rest == "" {
			break
		}
		eq := strings.IndexAny(rest, "=;")
		if eq < 0 || rest[eq] == ';' {
			// A word without "=": nothing to keep.
			if eq < 0 {
				break
			}
			rest = rest[eq:]
			continue
		}
		name := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var unterminated bool
			val, rest, unterminated = readQuoted(rest)
			if unterminated {
				probs = append(probs, "unterminated quoted parameter "+name)
			}
			// Whatever follows the closing quote up to ";" is dropped.
			if i := strings.IndexByte(rest, ';'); i >= 0 {
				rest = rest[i:]
			} else {
				rest = ""
			}
		} else {
			i := strings.IndexByte(rest, ';')
			if i < 0 {
				i = len(rest)
			}
			val = strings.TrimSpace(rest[:i])
			rest = rest[i:]
		}
		if name == "" {
			continue
		}
		base, num, ext, isCont := splitParamName(name)
		switch {
		case isCont:
			note(base)
			m := segs[base]
			if m == nil {
				m = map[int]seg{}
				segs[base] = m
			}
			if _, dup := m[num]; !dup {
				m[num] = seg{val, ext}
			}
		case ext:
			note(base)
			if _, dup := extended[base]; !dup {
				extended[base] = val
			}
		default:
			note(base)
			if _, dup := plain[base]; !dup {
				plain[base] = val
			}
		}
	}
	if len(order) == 0 {
		return value, nil, probs
	}
	params = make(map[string]string, len(order))
	for _, n := range order {
		ev, hasExt := extended[n]
		switch {
		case segs[n] != nil:
			m := segs[n]
			nums := make([]int, 0, len(m))
			for k := range m {
				nums = append(nums, k)
			}
			sort.Ints(nums)
			if nums[0] != 0 || nums[len(nums)-1] != len(nums)-1 {
				probs = append(probs, "parameter "+n+" has missing continuation segments")
			}
			var raw []byte
			cs := ""
			for i, k := range nums {
				sg := m[k]
				v := sg.val
				if sg.ext {
					if i == 0 {
						cs, v = splitCharsetLang(v)
					}
					raw = append(raw, percentDecode(v)...)
				} else {
					raw = append(raw, v...)
				}
			}
			out, pr := toUTF8(cs, raw, -1)
			if pr != "" {
				probs = append(probs, "parameter "+n+": "+pr)
			}
			params[n] = out
		case hasExt:
			cs, v := splitCharsetLang(ev)
			out, pr := toUTF8(cs, percentDecode(v), -1)
			if pr != "" {
				probs = append(probs, "parameter "+n+": "+pr)
			}
			params[n] = out
		default:
			params[n] = plain[n]
		}
	}
	return value, params, probs
}

// maxContinuation bounds RFC 2231 segment numbers; real ones stay small.
const maxContinuation = 999

// splitParamName splits "name*3*" into ("name", 3, true, true), "name*"
// into ("name", 0, true, false) and "name" into ("name", 0, false, false).
func splitParamName(n string) (base string, num int, ext, isCont bool) {
	if !strings.HasSuffix(n, "*") && !strings.Contains(n, "*") {
		return n, 0, false, false
	}
	s := n
	if strings.HasSuffix(s, "*") {
		ext = true
		s = s[:len(s)-1]
	}
	if i := strings.LastIndexByte(s, '*'); i > 0 {
		if k, err := strconv.Atoi(s[i+1:]); err == nil && k >= 0 && k <= maxContinuation {
			return s[:i], k, ext, true
		}
	}
	if ext && !strings.Contains(s, "*") {
		return s, 0, true, false
	}
	return n, 0, false, false
}

// splitCharsetLang splits an RFC 2231 "charset'lang'value"; a value
// without the two quotes is taken as it stands.
func splitCharsetLang(v string) (charset, rest string) {
	i := strings.IndexByte(v, '\'')
	if i < 0 {
		return "", v
	}
	j := strings.IndexByte(v[i+1:], '\'')
	if j < 0 {
		return "", v
	}
	return v[:i], v[i+1+j+1:]
}

// percentDecode decodes %XX; a "%" not followed by two hex digits is kept.
func percentDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if h, ok := unhex2(s[i+1], s[i+2]); ok {
				out = append(out, h)
				i += 2
				continue
			}
		}
		out = append(out, s[i])
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func unhex2(a, b byte) (byte, bool) {
	x, ok1 := unhex(a)
	y, ok2 := unhex(b)
	return x<<4 | y, ok1 && ok2
}

// readQuoted reads a quoted string at the start of s (which begins with a
// quote), handling backslash escapes. A quote that is not followed by ";"
// or the end (blanks aside) is taken as part of the value, because mailers
// put unescaped quotes in filenames. unterminated: no closing quote.
func readQuoted(s string) (val, rest string, unterminated bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			after := strings.TrimLeft(s[i+1:], " \t")
			if after == "" || after[0] == ';' {
				return b.String(), s[i+1:], false
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "", true
}
