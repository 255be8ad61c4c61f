package mimeconv

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/orchard-mail/orchard/internal/store"
)

// maxTextLimit keeps Limits.MaxTextBytes arithmetic far from overflow.
const maxTextLimit = 1 << 40

// entity reads one part of a multipart, header and body, at IMAP section sec.
func (p *parser) entity(sec string, depth int, defType string) stop {
	p.parts++
	h, st, ok := p.readHeader(false)
	var cut *stop
	if !ok {
		cut = &st
	}
	return p.entityBody(h, sec, depth, defType, cut)
}

// entityBody reads the body of an entity whose header h was read. depth is
// the number of enclosing multiparts (0: the message itself). cut, when not
// nil, says the header was cut short and there is no body to read.
func (p *parser) entityBody(h *header, sec string, depth int, defType string, cut *stop) stop {
	where := "part " + sec
	if depth == 0 {
		where = "message"
	}
	ctype := defType
	var cparams map[string]string
	if v, ok := h.get("content-type"); ok && strings.TrimSpace(unfold(v)) != "" {
		t, params, probs := parseParamHeader(v)
		for _, pr := range probs {
			p.problem("%s: Content-Type: %s", where, pr)
		}
		cparams = params
		if validMediaType(t) {
			ctype = t
		} else {
			// RFC 2045 §5.2: an invalid Content-Type means text/plain.
			p.problem("%s: invalid Content-Type %s, read as text/plain", where, strconvQuote(t))
			ctype = "text/plain"
		}
	}
	if strings.HasPrefix(ctype, "multipart/") {
		boundary := strings.TrimRight(cparams["boundary"], " \t")
		switch {
		case boundary == "":
			p.problem("%s: %s without boundary, read as text/plain", where, ctype)
			ctype = "text/plain"
		case depth >= p.lim.MaxDepth:
			p.problem("%s: multipart nesting deeper than %d, not walked", where, p.lim.MaxDepth)
		case cut != nil:
			return *cut
		default:
			prefix := ""
			if depth > 0 {
				prefix = sec + "."
			}
			return p.multipart(where, prefix, depth, boundary, ctype)
		}
	}
	return p.leaf(h, where, sec, ctype, cparams, cut)
}

// multipart walks the parts of a multipart body up to its closing boundary,
// or up to a boundary of an enclosing multipart or the end of input when the
// closing boundary is missing.
func (p *parser) multipart(where, prefix string, depth int, boundary, ctype string) stop {
	level := len(p.bounds)
	p.bounds = append(p.bounds, boundary)
	defer func() { p.bounds = p.bounds[:level] }()
	childType := "text/plain"
	if ctype == "multipart/digest" {
		childType = "message/rfc822" // RFC 2046 §5.1.5
	}
	st := p.skip() // the preamble
	n := 0
	for {
		if st.eof || st.level < level {
			if n == 0 {
				p.problem("%s: %s has no part with boundary %s", where, ctype, strconvQuote(boundary))
			} else {
				p.problem("%s: %s ends without its closing boundary", where, ctype)
			}
			return st
		}
		if st.closing {
			// The epilogue belongs to the enclosing level.
			p.bounds = p.bounds[:level]
			return p.skip()
		}
		n++
		if p.parts >= p.lim.MaxParts {
			if !p.partsHit {
				p.partsHit = true
				p.problem("more than %d parts: the rest were not read", p.lim.MaxParts)
			}
			st = p.skip()
			continue
		}
		st = p.entity(prefix+strconv.Itoa(n), depth+1, childType)
	}
}

// leaf reads a non-multipart body: a text body is kept (up to the limit),
// anything else becomes an attachment whose decoded size is counted.
func (p *parser) leaf(h *header, where, sec, ctype string, cparams map[string]string, cut *stop) stop {
	var disp string
	var dparams map[string]string
	if v, ok := h.get("content-disposition"); ok {
		var probs []string
		disp, dparams, probs = parseParamHeader(v)
		for _, pr := range probs {
			p.problem("%s: Content-Disposition: %s", where, pr)
		}
	}
	filename := dparams["filename"]
	if filename == "" {
		filename = cparams["name"]
	}
	filename = p.cleanFilename(filename, where)
	cte := ""
	if v, ok := h.get("content-transfer-encoding"); ok {
		cte = strings.ToValidUTF8(strings.ToLower(unfold(v)), "\uFFFD")
	}
	cid := ""
	if v, ok := h.get("content-id"); ok {
		cid = cleanID(unfold(v))
	}

	// A body is a text part that nobody asked to save as a file; unknown
	// dispositions count as "attachment" (RFC 2183 §2.8).
	bodyLike := (disp == "" || disp == "inline") && filename == ""
	isText := bodyLike && ((ctype == "text/plain" && !p.textSet) || (ctype == "text/html" && !p.htmlSet))

	var cnt counter
	var buf *capBuffer
	var sink io.Writer = &cnt
	if isText {
		// Charsets change sizes (UTF-16 and UTF-32 shrink, single-byte ones
		// grow up to 3×), so keep enough raw bytes to fill MaxTextBytes of
		// UTF-8 from any of them.
		buf = &capBuffer{max: 4*p.lim.MaxTextBytes + 16}
		sink = buf
	}
	dec, closeDec := p.transferDecoder(cte, sink, where)
	var st stop
	if cut != nil {
		st = *cut
	} else {
		st = p.copyBody(dec)
	}
	closeDec()

	if !isText {
		p.msg.Attachments = append(p.msg.Attachments, store.Attachment{
			Filename:    filename,
			ContentType: ctype,
			Size:        cnt.n,
			ContentID:   cid,
			IsInline:    disp == "inline" && cid != "",
			Part:        sec,
			Encoding:    cte,
		})
		return st
	}

	cs := cparams["charset"]
	if cs == "" && ctype == "text/html" && !utf8.Valid(buf.buf) {
		cs = sniffHTMLCharset(buf.buf)
	}
	max := p.lim.MaxTextBytes
	out, pr := toUTF8(cs, buf.buf, max+1)
	if pr != "" {
		p.problem("%s: %s", where, pr)
	}
	if int64(len(out)) > max || buf.total > int64(len(buf.buf)) {
		p.problem("%s: %s body longer than %d bytes, cut", where, ctype, max)
		if int64(len(out)) > max {
			out = out[:cutRunes([]byte(out), int(max))]
		}
	}
	out = strings.TrimPrefix(out, "\uFEFF")
	if strings.Contains(out, "\r\n") {
		out = strings.ReplaceAll(out, "\r\n", "\n")
	}
	if ctype == "text/plain" {
		if strings.EqualFold(cparams["format"], "flowed") {
			out = unflow(out, strings.EqualFold(cparams["delsp"], "yes"))
		}
		p.msg.Text, p.textSet = out, true
	} else {
		p.msg.HTML, p.htmlSet = out, true
	}
	return st
}

// transferDecoder returns a writer that decodes the Content-Transfer-Encoding
// into w, and the function that flushes it.
func (p *parser) transferDecoder(cte string, w io.Writer, where string) (io.Writer, func()) {
	enc := strings.Trim(cte, ` "'`)
	if i := strings.IndexByte(enc, ';'); i >= 0 {
		enc = strings.TrimSpace(enc[:i])
	}
	switch enc {
	case "", "7bit", "8bit", "binary":
		return w, func() {}
	case "base64":
		d := &base64Writer{dst: w}
		return d, d.Close
	case "quoted-printable":
		d := &qpWriter{dst: w}
		return d, d.Close
	}
	p.problem("%s: unknown Content-Transfer-Encoding %s, read as it stands", where, strconvQuote(cte))
	return w, func() {}
}

// cleanFilename decodes RFC 2047 words in a filename (mailers use them
// although RFC 2047 §5 forbids it) and drops control characters, which have
// no place in a name shown to users or put in a download header.
func (p *parser) cleanFilename(name, where string) string {
	if name == "" {
		return ""
	}
	name = p.decodeText(name, where+": filename")
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	return strings.TrimSpace(name)
}

// validMediaType checks "type/subtype" made of RFC 2045 token characters.
func validMediaType(t string) bool {
	slash := strings.IndexByte(t, '/')
	if slash <= 0 || slash == len(t)-1 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if i == slash {
			continue
		}
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// sniffHTMLCharset finds a <meta charset> (or http-equiv) declaration near
// the start of an HTML body whose part header names no charset.
func sniffHTMLCharset(b []byte) string {
	if len(b) > 4096 {
		b = b[:4096]
	}
	l := bytes.ToLower(b)
	i := bytes.Index(l, []byte("charset="))
	if i < 0 {
		return ""
	}
	rest := bytes.TrimLeft(l[i+len("charset="):], `"' `)
	end := 0
	for end < len(rest) && end < 40 {
		c := rest[end]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			break
		}
		end++
	}
	return string(rest[:end])
}

// unflow undoes RFC 3676 format=flowed: a line ending in a space continues
// on the next one (except the signature separator "-- "), and a leading
// space that protected the line ("space-stuffing") is removed. Quoted lines
// are joined only with lines of the same quote depth.
func unflow(s string, delsp bool) string {
	lines := strings.Split(s, "\n")
	var b strings.Builder
	b.Grow(len(s))
	prevFlowed := false
	prevDepth := 0
	for i, line := range lines {
		depth := 0
		for depth < len(line) && line[depth] == '>' {
			depth++
		}
		body := strings.TrimPrefix(line[depth:], " ")
		if prevFlowed && depth == prevDepth {
			// continues the previous line
		} else if i > 0 {
			b.WriteByte('\n')
			if depth > 0 {
				b.WriteString(strings.Repeat(">", depth) + " ")
			}
		} else if depth > 0 {
			b.WriteString(strings.Repeat(">", depth) + " ")
		}
		flowed := strings.HasSuffix(body, " ") && body != "-- "
		if flowed && delsp {
			body = body[:len(body)-1]
		}
		b.WriteString(body)
		prevFlowed, prevDepth = flowed, depth
	}
	return b.String()
}
