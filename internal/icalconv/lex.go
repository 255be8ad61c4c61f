package icalconv

import (
	"bytes"
	"errors"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-ical"
)

// The content-line reader and writer live here rather than in go-ical:
// go-ical's Decoder fails the whole object on one malformed line and
// panics on some (a quoted parameter value followed by anything but , ; or
// :, or a parameter at the very end of a line), and its Encoder neither
// folds lines nor accepts the duplicate properties servers send. The model
// is still go-ical's Component / Prop / Params, so callers that hold an
// *ical.Calendar (go-webdav's caldav package) can convert both ways.

// maxDepth bounds component nesting (VCALENDAR > VEVENT > VALARM is 3);
// deeper components are dropped whole.
const maxDepth = 8

// foldAt is the longest line the encoder writes, in octets without CRLF
// (RFC 5545 §3.1).
const foldAt = 75

var errNoCalendar = errors.New("icalconv: no BEGIN:VCALENDAR")

// decode reads the first VCALENDAR of data. It is lenient: a line it
// cannot read is skipped, END lines that close nothing are ignored,
// components still open at the end are closed, a UTF-8 byte order mark and
// bare CR line ends are accepted. Names are upper-cased.
func decode(data []byte) (*ical.Component, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	text := string(data)
	if !strings.Contains(text, "\n") {
		text = strings.ReplaceAll(text, "\r", "\n")
	} else if strings.Contains(text, "\r") {
		text = strings.ReplaceAll(text, "\r", "")
	}

	var root *ical.Component
	var stack []*ical.Component
	skip := 0 // depth inside a component being dropped
	done := false

	handle := func(line string) {
		name, params, value, ok := parseContentLine(line)
		if !ok || done {
			return
		}
		if skip > 0 {
			switch name {
			case "BEGIN":
				skip++
			case "END":
				skip--
			}
			return
		}
		switch name {
		case "BEGIN":
			cname := strings.ToUpper(value)
			if !validName(cname) {
				return
			}
			if root == nil {
				if cname != ical.CompCalendar {
					skip = 1
					return
				}
				root = ical.NewComponent(cname)
				stack = []*ical.Component{root}
				return
			}
			if len(stack) >= maxDepth {
				skip = 1
				return
			}
			c := ical.NewComponent(cname)
			top := stack[len(stack)-1]
			top.Children = append(top.Children, c)
			stack = append(stack, c)
		case "END":
			cname := strings.ToUpper(value)
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i].Name == cname {
					stack = stack[:i]
					if len(stack) == 0 {
						done = true
					}
					return
				}
			}
		default:
			if len(stack) == 0 {
				return
			}
			top := stack[len(stack)-1]
			top.Props[name] = append(top.Props[name], ical.Prop{Name: name, Params: params, Value: value})
		}
	}

	// Unfold: a physical line that starts with a space or a tab continues
	// the previous one, less that one character.
	var cur strings.Builder
	have := false
	for len(text) > 0 && !done {
		var line string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, ""
		}
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if have {
				cur.WriteString(line[1:])
			}
			continue
		}
		if have {
			handle(cur.String())
		}
		cur.Reset()
		cur.WriteString(line)
		have = true
	}
	if have {
		handle(cur.String())
	}
	if root == nil {
		return nil, errNoCalendar
	}
	return root, nil
}

// validName reports whether s is an iana-token or x-name: letters, digits
// and dashes (RFC 5545 §3.1).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// parseContentLine splits an unfolded line into name, parameters and
// value; ok is false for a line that is not a content line.
func parseContentLine(line string) (name string, params ical.Params, value string, ok bool) {
	i := strings.IndexAny(line, ";:")
	if i <= 0 {
		return "", nil, "", false
	}
	name = strings.ToUpper(line[:i])
	if !validName(name) {
		return "", nil, "", false
	}
	rest := line[i:]
	params = make(ical.Params)
	for rest[0] == ';' {
		rest = rest[1:]
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return "", nil, "", false
		}
		pname := strings.ToUpper(rest[:eq])
		if !validName(pname) {
			return "", nil, "", false
		}
		rest = rest[eq+1:]
		for {
			var v string
			if strings.HasPrefix(rest, `"`) {
				end := strings.IndexByte(rest[1:], '"')
				if end < 0 {
					return "", nil, "", false
				}
				v, rest = rest[1:1+end], rest[2+end:]
			} else {
				j := strings.IndexAny(rest, `;:,"`)
				if j < 0 || rest[j] == '"' {
					return "", nil, "", false
				}
				v, rest = rest[:j], rest[j:]
			}
			params[pname] = append(params[pname], unescapeParam(v))
			if rest == "" {
				return "", nil, "", false
			}
			if rest[0] == ',' {
				rest = rest[1:]
				continue
			}
			if rest[0] != ';' && rest[0] != ':' {
				return "", nil, "", false
			}
			break
		}
	}
	if rest[0] != ':' {
		return "", nil, "", false
	}
	return name, params, rest[1:], true
}

// unescapeParam undoes RFC 6868 caret encoding: ^n newline, ^' double
// quote, ^^ caret; any other caret stays.
func unescapeParam(v string) string {
	if !strings.Contains(v, "^") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '^' && i+1 < len(v) {
			switch v[i+1] {
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case '\'':
				b.WriteByte('"')
				i++
				continue
			case '^':
				b.WriteByte('^')
				i++
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// escapeParam writes a parameter value: RFC 6868 carets for ^, " and
// newlines; quotes around values with , ; : (which need them), blanks or
// backslashes (as Apple and Outlook quote such values).
func escapeParam(v string) string {
	if strings.ContainsAny(v, "^\"\n\r") {
		v = strings.NewReplacer("^", "^^", `"`, "^'", "\r\n", "^n", "\n", "^n", "\r", "^n").Replace(v)
	}
	if strings.ContainsAny(v, ";:, \t\\") {
		return `"` + v + `"`
	}
	return v
}

// propOrder is the order the encoder writes well-known properties in;
// the others follow alphabetically, so the output is deterministic.
var propOrder = map[string]int{
	"VERSION": 1, "PRODID": 2, "CALSCALE": 3, "METHOD": 4,
	"UID": 10, "DTSTAMP": 11, "CREATED": 12, "LAST-MODIFIED": 13, "SEQUENCE": 14,
	"RECURRENCE-ID": 15, "DTSTART": 16, "DTEND": 17, "DURATION": 18,
	"RRULE": 19, "RDATE": 20, "EXDATE": 21,
	"SUMMARY": 22, "LOCATION": 23, "DESCRIPTION": 24, "URL": 25, "STATUS": 26,
	"TRANSP": 27, "CLASS": 28, "ORGANIZER": 29, "ATTENDEE": 30,
	"TZID": 40, "TZOFFSETFROM": 41, "TZOFFSETTO": 42, "TZNAME": 43,
	"ACTION": 5, "TRIGGER": 6,
}

// encode writes c and its children as folded CRLF lines.
func encode(c *ical.Component) ([]byte, error) {
	var b bytes.Buffer
	if err := encodeComponent(&b, c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encodeComponent(b *bytes.Buffer, c *ical.Component) error {
	if !validName(c.Name) {
		return errors.New("icalconv: component with an invalid name " + c.Name)
	}
	writeFolded(b, "BEGIN:"+c.Name)
	names := make([]string, 0, len(c.Props))
	for n := range c.Props {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		oi, oj := propOrder[names[i]], propOrder[names[j]]
		if oi == 0 {
			oi = 1000
		}
		if oj == 0 {
			oj = 1000
		}
		if oi != oj {
			return oi < oj
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		for i := range c.Props[n] {
			line, err := propLine(n, &c.Props[n][i])
			if err != nil {
				return err
			}
			writeFolded(b, line)
		}
	}
	for _, ch := range c.Children {
		if err := encodeComponent(b, ch); err != nil {
			return err
		}
	}
	writeFolded(b, "END:"+c.Name)
	return nil
}

func propLine(name string, p *ical.Prop) (string, error) {
	if !validName(name) {
		return "", errors.New("icalconv: property with an invalid name " + name)
	}
	if strings.ContainsAny(p.Value, "\r\n") {
		return "", errors.New("icalconv: property " + name + " has a line break in its value")
	}
	var b strings.Builder
	b.WriteString(name)
	pnames := make([]string, 0, len(p.Params))
	for n := range p.Params {
		pnames = append(pnames, n)
	}
	sort.Strings(pnames)
	for _, n := range pnames {
		vs := p.Params[n]
		if len(vs) == 0 {
			continue
		}
		if !validName(n) {
			return "", errors.New("icalconv: parameter with an invalid name " + n)
		}
		b.WriteByte(';')
		b.WriteString(strings.ToUpper(n))
		b.WriteByte('=')
		for i, v := range vs {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(escapeParam(v))
		}
	}
	b.WriteByte(':')
	b.WriteString(p.Value)
	return b.String(), nil
}

// writeFolded writes line with CRLF, folded so that no physical line is
// longer than foldAt octets and no UTF-8 sequence is split.
func writeFolded(b *bytes.Buffer, line string) {
	limit := foldAt
	for len(line) > limit {
		cut := limit
		for cut > limit-3 && cut > 1 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		if !utf8.RuneStart(line[cut]) {
			cut = limit // not valid UTF-8 here: any cut will do
		}
		b.WriteString(line[:cut])
		b.WriteString("\r\n ")
		line = line[cut:]
		limit = foldAt - 1
	}
	b.WriteString(line)
	b.WriteString("\r\n")
}
