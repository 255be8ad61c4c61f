// Package mimeconv turns an RFC 5322 message into Orchard's message model.
//
// Mail in the wild is often broken, and a message that cannot be shown
// perfectly must still be shown as well as possible: Parse never fails on
// content. Whatever it cannot read becomes a Problem and the rest is kept.
// It also streams: attachments are decoded only to count their size, so a
// message with a 50 MB attachment costs no more memory than a small one.
//
// The MIME walk is done here rather than with go-message's multipart reader
// because robustness needs one view of all enclosing boundaries at once: a
// nested multipart that is never closed must end where its parent's next
// boundary appears (as Dovecot does), which a reader stacked per level cannot
// see. go-message's charset tables (golang.org/x/text) do the charset work.
package mimeconv

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// Limits bound what Parse keeps and walks. Zero (or negative) fields take
// their defaults.
type Limits struct {
	MaxTextBytes int64 // per text body kept (text/plain, text/html); default 1 MiB; more is cut (Problem recorded)
	MaxParts     int   // default 500; further parts are not walked (Problem recorded)
	MaxDepth     int   // multipart nesting, default 20
}

// Defaults for zero Limits fields.
const (
	DefaultMaxTextBytes = 1 << 20
	DefaultMaxParts     = 500
	DefaultMaxDepth     = 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = DefaultMaxTextBytes
	}
	if l.MaxTextBytes > maxTextLimit {
		l.MaxTextBytes = maxTextLimit
	}
	if l.MaxParts <= 0 {
		l.MaxParts = DefaultMaxParts
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	return l
}

// Message is what Parse read from one message.
type Message struct {
	Header     []byte   // the raw header block as received, CRLF kept, with its terminating empty line
	MessageID  string   // Message-ID without angle brackets, trimmed; "" when absent
	InReplyTo  string   // first msg-id of In-Reply-To, no brackets
	References []string // msg-ids of References, no brackets, in order, duplicates dropped
	Subject    string   // RFC 2047 decoded to UTF-8

	From, To, Cc, Bcc, ReplyTo []store.Participant

	Date time.Time // Date header; zero when missing or unparseable

	Text    string // the plain-text body in UTF-8, line ends normalized to "\n"
	HTML    string // the HTML body in UTF-8, line ends normalized to "\n"
	Body    string // HTML when present, else Text escaped and up-converted
	Snippet string // ≤ 100 runes of visible text

	Attachments []store.Attachment
	Problems    []string // what could not be read; never fatal
}

// SnippetRunes is the length of Message.Snippet at most.
const SnippetRunes = 100

// maxProblems bounds Message.Problems: hostile input could otherwise make
// one Problem per line.
const maxProblems = 50

// Parse reads a whole message from r. It streams: attachment bodies are
// decoded only to count their size and are never held in memory; text
// bodies are kept up to Limits.MaxTextBytes. It returns an error only when
// r itself fails (an I/O error), together with what it read until then;
// every content problem (bad charset, truncated MIME, missing boundary,
// garbage headers) becomes a Problem and Parse returns what it could read.
func Parse(r io.Reader, lim Limits) (*Message, error) {
	p := &parser{
		lim: lim.withDefaults(),
		lr:  &lineReader{br: bufio.NewReaderSize(r, lineBufSize)},
		msg: &Message{},
	}
	p.parse()
	if p.lr.ioErr != nil {
		return p.msg, fmt.Errorf("mimeconv: reading message: %w", p.lr.ioErr)
	}
	return p.msg, nil
}

// IdentityKey returns "mid:" + MessageID when there is one, else "hdr:" +
// lowercase hex of the first 16 bytes of SHA-256 of the Header block. Two
// copies of one message (in two IMAP folders) get the same key, because
// IMAP keeps the header bytes of a message as they were delivered.
func IdentityKey(m *Message) string {
	if m.MessageID != "" {
		return "mid:" + m.MessageID
	}
	sum := sha256.Sum256(m.Header)
	return "hdr:" + hex.EncodeToString(sum[:16])
}

// parser holds the state of one Parse call.
type parser struct {
	lim Limits
	lr  *lineReader
	msg *Message

	bounds    []string // boundaries of the enclosing multiparts, outermost first
	parts     int      // entities walked so far
	partsHit  bool     // MaxParts was reached (reported once)
	textSet   bool     // a text/plain body was chosen
	htmlSet   bool     // a text/html body was chosen
	problemsN int      // problems seen, including those not kept
}

func (p *parser) problem(format string, args ...any) {
	p.problemsN++
	switch {
	case p.problemsN < maxProblems:
		p.msg.Problems = append(p.msg.Problems, fmt.Sprintf(format, args...))
	case p.problemsN == maxProblems:
		p.msg.Problems = append(p.msg.Problems, "further problems were not recorded")
	}
}

func (p *parser) parse() {
	h, st, ok := p.readHeader(true)
	p.msg.Header = h.raw
	p.topFields(h)
	var cut *stop
	if !ok {
		cut = &st // a header and no body
	}
	p.parts++
	p.entityBody(h, "1", 0, "text/plain", cut)
	// Drain what a limit left unread so that the caller's stream (an IMAP
	// literal, say) is consumed and its I/O errors surface.
	p.lr.drain()
	p.finish()
}

// topFields fills the message fields that come from the top-level header.
func (p *parser) topFields(h *header) {
	m := p.msg
	if v, ok := h.get("message-id"); ok {
		m.MessageID = firstMsgID(v)
	}
	if v, ok := h.get("in-reply-to"); ok {
		if ids := msgIDs(v); len(ids) > 0 {
			m.InReplyTo = ids[0]
		}
	}
	if v, ok := h.get("references"); ok {
		m.References = msgIDs(v)
	}
	if v, ok := h.get("subject"); ok {
		m.Subject = strings.TrimSpace(p.decodeText(unfold(v), "Subject"))
	}
	addrs := []struct {
		name string
		dst  *[]store.Participant
	}{{"from", &m.From}, {"to", &m.To}, {"cc", &m.Cc}, {"bcc", &m.Bcc}, {"reply-to", &m.ReplyTo}}
	for _, a := range addrs {
		if v, ok := h.get(a.name); ok {
			*a.dst = p.parseAddressList(unfold(v), h.displayName(a.name))
		}
	}
	if v, ok := h.get("date"); ok {
		if t, ok := parseDate(unfold(v)); ok {
			m.Date = t
		} else {
			p.problem("Date: cannot read %q", truncateForProblem(unfold(v)))
		}
	}
}

// finish derives Body, Snippet and the inline flags once the walk is done.
func (p *parser) finish() {
	m := p.msg
	if m.HTML != "" {
		m.Body = m.HTML
	} else if m.Text != "" {
		m.Body = textToHTML(m.Text)
	}
	m.Snippet = collapseText(m.Text, SnippetRunes)
	if m.Snippet == "" && m.HTML != "" {
		m.Snippet = htmlVisibleText(m.HTML, SnippetRunes)
	}
	if m.HTML != "" {
		refs := cidRefs(m.HTML)
		for i := range m.Attachments {
			a := &m.Attachments[i]
			if a.ContentID != "" && refs[strings.ToLower(a.ContentID)] {
				a.IsInline = true
			}
		}
	}
}
