// Package compose turns a message an application sends or saves as a draft
// into RFC 5322 / MIME bytes, after checking it with errors that name the
// request field at fault.
//
// The structure is the one mail clients write:
//
//	text/plain                                  PlainText, no attachments
//	multipart/alternative                       HTML: a text version first, then
//	├─ text/plain                               the HTML (or, with inline parts,
//	└─ multipart/related; type="text/html"      a multipart/related of the HTML
//	   ├─ text/html                             and the parts its cid: URLs
//	   └─ image/png (Content-ID, inline)        name)
//
// and with attachments the whole goes first in a multipart/mixed, followed
// by the attachments. Text is quoted-printable UTF-8, attachments base64, so
// the bytes of a file come back exactly; every line ends in CRLF and none
// is longer than 998 characters (header lines fold at 76 where they can).
//
// go-message's textproto layer writes the header blocks and the multipart
// boundaries; the header values and the body encodings are done here
// because go-message's higher layers fall short for sending: its writer
// refuses attachments with a charset other than UTF-8 (a Latin-1 CSV), and
// its header folding can break RFC 2047's 76-character lines, leave lines of
// nothing but blanks and, past 998 characters, change a value (see field).
package compose

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"path"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/orchard-mail/orchard/internal/mimeconv"
)

// Address is a participant: a display name (optional, any UTF-8 without
// control characters) and one bare email address.
type Address struct{ Name, Email string }

// Header is a custom header field (the API's custom_headers).
type Header struct{ Name, Value string }

// Attachment is a file to attach, or an inline part of the HTML.
type Attachment struct {
	Filename    string
	ContentType string // "" → from the filename's extension, else application/octet-stream
	Content     []byte // the decoded bytes
	ContentID   string // without angle brackets; "" for none
	// Inline asks for the part to be shown in the HTML. It takes effect
	// when the part has a ContentID that the HTML refers to as "cid:…": it
	// then goes in a multipart/related with the HTML. Otherwise (no
	// ContentID, no reference, a PlainText message) the part is attached
	// as a file, so that it is not lost from sight.
	Inline bool
}

// Message is an outgoing message.
type Message struct {
	From                 Address
	To, Cc, Bcc, ReplyTo []Address
	Subject              string
	Body                 string // HTML unless PlainText
	PlainText            bool   // send text/plain only
	// MessageID is written without angle brackets; "" makes Build generate
	// one, which the caller then cannot learn: set it from NewMessageID
	// when it is needed (to find the sent copy, to thread).
	MessageID  string
	Date       time.Time // zero → now
	InReplyTo  string    // the Message-ID replied to, without brackets
	References []string  // without brackets; empty → InReplyTo alone
	Headers    []Header  // custom headers, written after Orchard's own
	// Attachments and inline parts, in the order they are written.
	Attachments []Attachment
	// IncludeBcc writes the Bcc header: drafts and the sender's copy keep
	// it, mail that is sent must not carry it.
	IncludeBcc bool
}

// dateLayout is RFC 5322 §3.3's date-time.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// Build writes m to w as an RFC 5322 message. It validates m first —
// without requiring recipients, so that drafts can be built; a send calls
// Validate(true) itself — and writes nothing when m is invalid, returning
// the *Error. Other errors are w's.
func Build(w io.Writer, m *Message) error {
	if err := m.Validate(false); err != nil {
		return err
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	id := m.MessageID
	if id == "" {
		id = NewMessageID(domainOf(m.From.Email))
	}
	root, err := m.entity()
	if err != nil {
		return err
	}
	content, body := root.open()
	fields := append(m.fields(date, id), field("MIME-Version", "1.0"))
	fields = append(fields, content...)

	bw := bufio.NewWriterSize(w, 32<<10)
	if err := textproto.WriteHeader(bw, header(fields)); err != nil {
		return fmt.Errorf("compose: writing the header: %w", err)
	}
	if err := body(bw); err != nil {
		return fmt.Errorf("compose: writing the body: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	return nil
}

// fields returns the message's own header fields, in order.
func (m *Message) fields(date time.Time, id string) [][]byte {
	var fs [][]byte
	addrs := func(key string, l []Address) {
		if len(l) > 0 {
			fs = append(fs, field(key, formatAddressList(key, l)))
		}
	}
	addrs("From", []Address{m.From})
	addrs("To", m.To)
	addrs("Cc", m.Cc)
	if m.IncludeBcc {
		addrs("Bcc", m.Bcc)
	}
	addrs("Reply-To", m.ReplyTo)
	if m.Subject != "" {
		const key = "Subject: "
		fs = append(fs, field("Subject", formatText(m.Subject, lineLen-len(key), maxWord, maxLine-len(key))))
	}
	fs = append(fs, field("Date", date.Format(dateLayout)))
	fs = append(fs, field("Message-ID", "<"+id+">"))
	if m.InReplyTo != "" {
		fs = append(fs, field("In-Reply-To", "<"+m.InReplyTo+">"))
	}
	refs := m.References
	if len(refs) == 0 && m.InReplyTo != "" {
		refs = []string{m.InReplyTo}
	}
	if len(refs) > 0 {
		fs = append(fs, field("References", "<"+strings.Join(refs, "> <")+">"))
	}
	for _, h := range m.Headers {
		v := h.Value
		if !isASCII(v) {
			v = strings.Join(encodeWords(v, lineLen-len(h.Name)-len(": "), maxWord), " ")
		}
		fs = append(fs, field(h.Name, v))
	}
	return fs
}

// header makes a textproto.Header that writes fields in order. go-message
// writes the field added last first, and its Add would respell names in
// Go's canonical form ("Message-Id", "Mime-Version"): raw fields keep the
// RFC spellings and a custom header's name as the caller wrote it.
func header(fields [][]byte) textproto.Header {
	var h textproto.Header
	for i := len(fields) - 1; i >= 0; i-- {
		h.AddRaw(fields[i])
	}
	return h
}

// entity is a MIME entity to write: a leaf with its Content-* fields and
// body, or a multipart of parts.
type entity struct {
	fields [][]byte              // a leaf's Content-* fields
	body   func(io.Writer) error // a leaf's encoded body

	multipart string            // "mixed", "alternative", "related"
	params    map[string]string // more Content-Type parameters of a multipart
	parts     []*entity
}

// open returns e's Content-* fields and the function that writes its body.
// A multipart's boundary is drawn here, since its Content-Type must name
// it before the body is written.
func (e *entity) open() ([][]byte, func(io.Writer) error) {
	if e.multipart == "" {
		return e.fields, e.body
	}
	out := &deferredWriter{}
	mw := textproto.NewMultipartWriter(out)
	params := map[string]string{"boundary": mw.Boundary()}
	for k, v := range e.params {
		params[k] = v
	}
	ct := field("Content-Type", mime.FormatMediaType("multipart/"+e.multipart, params))
	return [][]byte{ct}, func(w io.Writer) error {
		out.w = w
		for _, p := range e.parts {
			fields, body := p.open()
			pw, err := mw.CreatePart(header(fields))
			if err != nil {
				return err
			}
			if err := body(pw); err != nil {
				return err
			}
		}
		return mw.Close()
	}
}

// deferredWriter lets a multipart writer be made before the writer of the
// part it goes in exists.
type deferredWriter struct{ w io.Writer }

func (d *deferredWriter) Write(p []byte) (int, error) { return d.w.Write(p) }

// entity lays out m's MIME structure.
func (m *Message) entity() (*entity, error) {
	var inline, attached []*Attachment
	var refs map[string]bool
	if !m.PlainText {
		refs = mimeconv.ContentIDRefs(m.Body)
	}
	for i := range m.Attachments {
		a := &m.Attachments[i]
		if a.Inline && a.ContentID != "" && refs[strings.ToLower(a.ContentID)] {
			inline = append(inline, a)
		} else {
			attached = append(attached, a)
		}
	}

	var text *entity
	if m.PlainText {
		text = textPart("plain", m.Body)
	} else {
		html := textPart("html", m.Body)
		if len(inline) > 0 {
			related := &entity{multipart: "related", params: map[string]string{"type": "text/html"}, parts: []*entity{html}}
			for _, a := range inline {
				p, err := filePart(a, "inline")
				if err != nil {
					return nil, err
				}
				related.parts = append(related.parts, p)
			}
			html = related
		}
		text = &entity{multipart: "alternative", parts: []*entity{textPart("plain", mimeconv.HTMLToText(m.Body)), html}}
	}
	if len(attached) == 0 {
		return text, nil
	}
	mixed := &entity{multipart: "mixed", parts: []*entity{text}}
	for _, a := range attached {
		p, err := filePart(a, "attachment")
		if err != nil {
			return nil, err
		}
		mixed.parts = append(mixed.parts, p)
	}
	return mixed, nil
}

// textPart is a quoted-printable UTF-8 text/<sub> part. Quoted-printable
// keeps lines short whatever the text, and turns its line ends into CRLF.
func textPart(sub, s string) *entity {
	return &entity{
		fields: [][]byte{
			field("Content-Type", "text/"+sub+"; charset=utf-8"),
			field("Content-Transfer-Encoding", "quoted-printable"),
		},
		body: func(w io.Writer) error {
			qw := quotedprintable.NewWriter(w)
			if _, err := io.WriteString(qw, s); err != nil {
				return err
			}
			return qw.Close()
		},
	}
}

// filePart is an attachment or inline part (disposition), base64-encoded
// so that its bytes come back exactly, text files included.
func filePart(a *Attachment, disposition string) (*entity, error) {
	ct := a.ContentType
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(a.Filename))
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	t, params, err := mime.ParseMediaType(ct)
	if err != nil { // a detected type that does not parse: validation saw the caller's
		t, params = "application/octet-stream", map[string]string{}
	}
	// Filenames go in as go-message and most mailers write them: RFC 2047
	// words inside the quoted parameter (RFC 2231 is not read everywhere).
	// Words of 60 keep ` filename="…";` within a line.
	const nameWord = 60
	var name string
	if a.Filename != "" {
		name = formatText(a.Filename, nameWord, nameWord, maxLine-len(`Content-Disposition: filename="";`))
	}
	delete(params, "name")
	if name != "" {
		params["name"] = name // what older clients read
	}
	ctype := mime.FormatMediaType(t, params)
	disp := disposition
	if name != "" {
		disp = mime.FormatMediaType(disposition, map[string]string{"filename": name})
	}
	if ctype == "" || disp == "" {
		return nil, fmt.Errorf("compose: cannot format the header of attachment %q", a.Filename)
	}
	fields := [][]byte{field("Content-Type", ctype), field("Content-Disposition", disp)}
	if a.ContentID != "" {
		fields = append(fields, field("Content-ID", "<"+a.ContentID+">"))
	}
	fields = append(fields, field("Content-Transfer-Encoding", "base64"))
	content := a.Content
	return &entity{fields: fields, body: func(w io.Writer) error { return writeBase64(w, content) }}, nil
}

// writeBase64 writes b in base64 lines of 76 characters (RFC 2045 §6.8),
// CRLF between them, a few kilobytes per write.
func writeBase64(w io.Writer, b []byte) error {
	const (
		lineBytes = 57 // encode to 76 characters
		batch     = 64 // lines per write
	)
	buf := make([]byte, 0, batch*(76+2))
	first := true
	for len(b) > 0 {
		buf = buf[:0]
		for k := 0; k < batch && len(b) > 0; k++ {
			n := min(lineBytes, len(b))
			if !first {
				buf = append(buf, '\r', '\n')
			}
			first = false
			buf = base64.StdEncoding.AppendEncode(buf, b[:n])
			b = b[n:]
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// NewMessageID returns a new Message-ID, without angle brackets, of 128
// random bits at domain: "<random>@<domain>". The sender's domain is the
// usual choice; "orchard.invalid" (a domain that cannot exist, RFC 2606)
// stands in for an empty one or one that cannot go in a Message-ID.
func NewMessageID(domain string) string {
	if domain == "" || idProblem(domain) != "" {
		domain = "orchard.invalid"
	}
	return strings.ToLower(rand.Text()) + "@" + domain
}

func domainOf(email string) string {
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		return email[i+1:]
	}
	return ""
}

// Recipients returns the envelope recipients: the addresses of To, Cc and
// Bcc in that order, each once (compared case-insensitively; the first
// spelling is kept).
func (m *Message) Recipients() []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range [][]Address{m.To, m.Cc, m.Bcc} {
		for _, a := range l {
			k := strings.ToLower(a.Email)
			if a.Email == "" || seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, a.Email)
		}
	}
	return out
}
