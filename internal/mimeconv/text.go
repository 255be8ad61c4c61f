package mimeconv

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// HTMLToText renders an HTML body as plain text, for the text/plain
// alternative of a message Orchard composes. It reads markup with the
// tokenizer the snippets use (htmlVisibleText): tags, comments, <head>,
// <style> and <script> content are dropped, entities are decoded and blanks
// collapse. Unlike a snippet it keeps the layout a reader needs: <br> and
// block elements (div, li, tr, …) end a line, paragraphs, headings, lists
// and tables are set off by a blank line, and <pre> keeps its blanks and
// line breaks.
func HTMLToText(s string) string {
	var t textLines
	walkHTML(s, &t)
	return t.String()
}

func (t *textLines) startTag(name string) {
	t.tag(name)
	if name == "pre" {
		t.pre++
		t.preStart = true
	}
}

func (t *textLines) endTag(name string) {
	if name == "pre" && t.pre > 0 {
		t.pre--
	}
	t.tag(name)
}

func (t *textLines) plaintext(rest string) {
	t.pre++
	t.add(rest)
}

func (t *textLines) full() bool { return false }

// ContentIDRefs returns the lowercased Content-IDs that "cid:" URLs in an
// HTML body refer to (RFC 2392, percent-encoding undone): the parts a
// composer must put beside the HTML in its multipart/related, by the same
// reading Parse uses to mark attachments inline.
func ContentIDRefs(html string) map[string]bool { return cidRefs(html) }

// paragraphElements are set off from their surroundings by a blank line;
// the other blockElements end a line, except table cells and form controls,
// which read as words in a row.
var paragraphElements = map[string]bool{
	"p": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"blockquote": true, "pre": true, "table": true, "ul": true, "ol": true, "dl": true,
	"hr": true, "figure": true,
}

var inlineBlockElements = map[string]bool{
	"td": true, "th": true, "img": true, "input": true, "button": true, "label": true,
	"select": true, "tbody": true, "thead": true, "tfoot": true, "html": true, "body": true,
}

// textLines gathers the text of HTMLToText.
type textLines struct {
	b        strings.Builder
	space    bool // a blank is due before the next visible character
	breaks   int  // line breaks due before the next visible character
	pre      int  // depth of <pre> (and <plaintext>): blanks are kept
	preStart bool // just after <pre>, whose first line break HTML ignores
}

// tag applies the layout of an element's start or end tag.
func (t *textLines) tag(name string) {
	switch {
	case name == "br":
		// Each <br> is a line break of its own: two make a blank line.
		if t.b.Len() > 0 {
			t.breaks++
		}
	case paragraphElements[name]:
		t.lineBreaks(2)
	case inlineBlockElements[name]:
		t.space = true
	case blockElements[name]:
		t.lineBreaks(1)
	}
}

func (t *textLines) lineBreaks(n int) {
	if t.b.Len() > 0 && t.breaks < n {
		t.breaks = n
	}
}

func (t *textLines) add(s string) {
	for _, r := range s {
		switch {
		case invisibleRune(r):
			continue
		case t.pre > 0 && r == '\r':
			continue
		case t.pre > 0 && r == '\n':
			if t.preStart {
				t.preStart = false
				continue
			}
			if t.b.Len() > 0 {
				t.breaks++
			}
			continue
		case t.pre > 0 && (r == ' ' || r == '\t'):
			t.preStart = false
			t.emit(r)
			continue
		case unicode.IsSpace(r):
			t.space = true
			continue
		case r != utf8.RuneError && unicode.IsControl(r):
			t.space = true
			continue
		}
		t.preStart = false
		t.emit(r)
	}
}

// emit writes a visible rune (or a blank of <pre>) after the line breaks
// or the blank that are due.
func (t *textLines) emit(r rune) {
	if t.breaks > 0 {
		t.b.WriteString(strings.Repeat("\n", t.breaks))
		t.breaks = 0
		t.space = false
	} else if t.space && t.b.Len() > 0 {
		t.b.WriteByte(' ')
	}
	t.space = false
	t.b.WriteRune(r)
}

func (t *textLines) String() string { return strings.TrimRight(t.b.String(), " \t\n") }
