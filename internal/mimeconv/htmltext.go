package mimeconv

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// textToHTML up-converts a plain-text body for the API's HTML body field.
func textToHTML(t string) string {
	e := html.EscapeString(t)
	e = strings.ReplaceAll(e, "\n", "<br>")
	return "<div>" + e + "</div>"
}

// textCollector gathers visible text with blanks collapsed, up to max runes.
type textCollector struct {
	b     strings.Builder
	n     int // runes written
	max   int
	space bool // a blank is due before the next visible character
}

func (c *textCollector) full() bool { return c.n >= c.max }

func (c *textCollector) brk() { c.space = true }

func (c *textCollector) add(s string) {
	for _, r := range s {
		if c.n >= c.max {
			return
		}
		switch {
		case invisibleRune(r):
			continue
		case unicode.IsSpace(r):
			c.space = true
			continue
		case r == utf8.RuneError || unicode.IsControl(r):
			if r != utf8.RuneError {
				c.space = true
				continue
			}
		}
		if c.space && c.n > 0 {
			c.b.WriteByte(' ')
			c.n++
			if c.n >= c.max {
				return
			}
		}
		c.space = false
		c.b.WriteRune(r)
		c.n++
	}
}

func (c *textCollector) String() string { return strings.TrimRight(c.b.String(), " ") }

// invisibleRune: characters that take no room; marketing mail pads its
// preview text with them (&zwnj;, &#847;, soft hyphens).
func invisibleRune(r rune) bool {
	switch r {
	case '\u00AD', '\u034F', '\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF', '\u180E':
		return true
	}
	return false
}

// collapseText returns the first max runes of t's visible text with blanks
// collapsed.
func collapseText(t string, max int) string {
	c := textCollector{max: max}
	c.add(t)
	return c.String()
}

// Elements whose content is not text: raw text (script, style, …) and
// escapable raw text (title, textarea), per the HTML tokenizer. hidden
// tells whether the content is shown.
var rawTextElements = map[string]struct{ hidden, entities bool }{
	"script":   {hidden: true},
	"style":    {hidden: true},
	"iframe":   {hidden: true},
	"noembed":  {hidden: true},
	"noframes": {hidden: true},
	"xmp":      {},
	"title":    {hidden: true, entities: true},
	"textarea": {entities: true},
}

// headElements may appear in <head>; any other start tag (or text) closes
// the head implicitly, as in the HTML tree builder.
var headElements = map[string]bool{
	"head": true, "title": true, "meta": true, "link": true, "style": true,
	"script": true, "base": true, "noscript": true, "template": true, "html": true,
}

// blockElements end a run of text: their content reads as separate words.
var blockElements = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "br": true,
	"caption": true, "center": true, "dd": true, "div": true, "dl": true, "dt": true,
	"fieldset": true, "figcaption": true, "figure": true, "footer": true, "form": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"header": true, "hr": true, "li": true, "main": true, "nav": true, "ol": true,
	"p": true, "pre": true, "section": true, "table": true, "tbody": true, "td": true,
	"tfoot": true, "th": true, "thead": true, "tr": true, "ul": true, "body": true,
	"html": true, "img": true, "option": true, "select": true, "button": true,
	"input": true, "label": true, "summary": true, "details": true,
}

// htmlVisibleText returns up to max runes of the text an HTML body shows:
// tags removed, <head>, <style>, <script> content and comments dropped,
// entities decoded, blanks collapsed.
func htmlVisibleText(s string, max int) string {
	c := textCollector{max: max}
	walkHTML(s, &c)
	return c.String()
}

func (c *textCollector) startTag(name string) {
	if blockElements[name] {
		c.brk()
	}
}

func (c *textCollector) endTag(name string) { c.startTag(name) }
func (c *textCollector) plaintext(s string) { c.add(s) }

// htmlSink receives what walkHTML finds: visible text (entities decoded),
// tags by name, and the rest of the document after <plaintext>. full
// stops the walk early.
type htmlSink interface {
	add(text string)
	startTag(name string)
	endTag(name string)
	plaintext(rest string)
	full() bool
}

// walkHTML reads an HTML body the way the HTML tokenizer does — where
// tags, comments and raw text end (quoted attribute values may hold ">", a
// comment ends at "-->" or "--!>", "<" not followed by a letter is text) —
// so that hostile markup cannot smuggle hidden text into what a sink
// keeps. <head>, <style> and <script> content and comments never reach
// the sink.
func walkHTML(s string, sink htmlSink) {
	inHead := false
	text := func(t string) {
		if t == "" {
			return
		}
		if inHead {
			if strings.TrimSpace(t) == "" {
				return
			}
			inHead = false
		}
		sink.add(html.UnescapeString(t))
	}
	i := 0
	for i < len(s) && !sink.full() {
		lt := strings.IndexByte(s[i:], '<')
		if lt < 0 {
			text(s[i:])
			break
		}
		text(s[i : i+lt])
		i += lt
		rest := s[i:]
		if len(rest) < 2 {
			text(rest)
			break
		}
		switch d := rest[1]; {
		case strings.HasPrefix(rest, "<!--"):
			i += commentLen(rest)
		case d == '!' || d == '?':
			i += bogusCommentLen(rest)
		case d == '/':
			if len(rest) > 2 && isASCIILetter(rest[2]) {
				name, n := readTag(rest[2:])
				i += 2 + n
				if name == "head" {
					inHead = false
				}
				sink.endTag(name)
			} else if len(rest) > 2 && rest[2] == '>' {
				i += 3 // "</>" is dropped
			} else {
				i += bogusCommentLen(rest)
			}
		case isASCIILetter(d):
			name, n := readTag(rest[1:])
			i += 1 + n
			switch {
			case name == "head":
				inHead = true
			case name == "body":
				inHead = false
			case inHead && !headElements[name]:
				inHead = false
			}
			sink.startTag(name)
			if name == "plaintext" {
				// Everything after <plaintext> is text, tags included.
				if !inHead {
					sink.plaintext(s[i:])
				}
				i = len(s)
			}
			if rt, ok := rawTextElements[name]; ok {
				end := rawTextEnd(s[i:], name)
				content := s[i : i+end]
				if !rt.hidden && !inHead {
					if rt.entities {
						content = html.UnescapeString(content)
					}
					sink.add(content)
				}
				i += end
			}
		default:
			text("<")
			i++
		}
	}
}

func isASCIILetter(c byte) bool {
	c |= 0x20
	return c >= 'a' && c <= 'z'
}

func isHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

// commentLen returns the length of the comment at the start of s ("<!--"):
// "<!-->" and "<!--->" end at once; otherwise "-->" or "--!>" ends it, and
// an unclosed comment runs to the end.
func commentLen(s string) int {
	if strings.HasPrefix(s, "<!-->") {
		return 5
	}
	if strings.HasPrefix(s, "<!--->") {
		return 6
	}
	// The first "--" followed by ">" or "!>" ends it. Scanning "--" by
	// "--" keeps this linear in the comment's length.
	body := s[4:]
	from := 0
	for {
		j := strings.Index(body[from:], "--")
		if j < 0 {
			return len(s)
		}
		k := from + j + 2
		switch {
		case strings.HasPrefix(body[k:], ">"):
			return 4 + k + 1
		case strings.HasPrefix(body[k:], "!>"):
			return 4 + k + 2
		}
		from = from + j + 1
	}
}

// bogusCommentLen: "<!DOCTYPE …>", "<?xml …>", "<![CDATA[…]]>" and "</ 3>"
// end at the first ">".
func bogusCommentLen(s string) int {
	if j := strings.IndexByte(s, '>'); j >= 0 {
		return j + 1
	}
	return len(s)
}

// readTag reads a tag from its name to its ">" and returns the lowercased
// name and the length read. Attribute values in quotes may hold ">". A tag
// cut by the end of input is consumed whole (and shows nothing).
func readTag(s string) (name string, n int) {
	i := 0
	for i < len(s) && !isHTMLSpace(s[i]) && s[i] != '/' && s[i] != '>' {
		i++
	}
	name = strings.ToLower(s[:i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '>':
			return name, i + 1
		case isHTMLSpace(c) || c == '/':
			i++
		default:
			// Attribute name (may start with "=") up to blank, "/", ">" or "=".
			i++
			for i < len(s) && !isHTMLSpace(s[i]) && s[i] != '/' && s[i] != '>' && s[i] != '=' {
				i++
			}
			for i < len(s) && isHTMLSpace(s[i]) {
				i++
			}
			if i < len(s) && s[i] == '=' {
				i++
				for i < len(s) && isHTMLSpace(s[i]) {
					i++
				}
				if i < len(s) && (s[i] == '"' || s[i] == '\'') {
					q := s[i]
					j := strings.IndexByte(s[i+1:], q)
					if j < 0 {
						return name, len(s)
					}
					i += 1 + j + 1
				} else {
					for i < len(s) && !isHTMLSpace(s[i]) && s[i] != '>' {
						i++
					}
				}
			}
		}
	}
	return name, len(s)
}

// rawTextEnd returns where the raw text of element name ends in s: at
// "</name" followed by a blank, "/" or ">" (case-insensitive), or at the end.
func rawTextEnd(s, name string) int {
	from := 0
	for {
		j := strings.Index(s[from:], "</")
		if j < 0 {
			return len(s)
		}
		k := from + j
		t := s[k+2:]
		if len(t) >= len(name) && strings.EqualFold(t[:len(name)], name) &&
			(len(t) == len(name) || isHTMLSpace(t[len(name)]) || t[len(name)] == '/' || t[len(name)] == '>') {
			return k
		}
		from = k + 2
	}
}

// cidRefs returns the lowercased Content-IDs referenced by "cid:" URLs in
// an HTML body (RFC 2392; percent-encoding undone).
func cidRefs(h string) map[string]bool {
	refs := map[string]bool{}
	l := strings.ToLower(h)
	from := 0
	for {
		j := strings.Index(l[from:], "cid:")
		if j < 0 {
			return refs
		}
		start := from + j + 4
		end := start
		for end < len(l) && strings.IndexByte("\"'<> \t\r\n)", l[end]) < 0 {
			end++
		}
		if end > start {
			id := string(percentDecode(l[start:end]))
			refs[strings.Trim(id, "<>")] = true
		}
		from = end
		if from >= len(l) {
			return refs
		}
	}
}
