package mimeconv

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// charsetAliases maps labels to the charset that mail labelled so really
// uses: mailers label windows-1252 text as ISO-8859-1 (and browsers read it
// so, see the WHATWG Encoding Standard), and GB2312/GBK text often holds
// characters only their superset GB18030 has.
var charsetAliases = map[string]string{
	"utf8":       "utf-8",
	"ascii":      "us-ascii",
	"iso-8859-1": "windows-1252",
	"iso8859-1":  "windows-1252",
	"iso_8859-1": "windows-1252",
	"latin1":     "windows-1252",
	"latin-1":    "windows-1252",
	"l1":         "windows-1252",
	"cp819":      "windows-1252",
	"gb2312":     "gb18030",
	"gbk":        "gb18030",
	"x-gbk":      "gb18030",
	"cp936":      "gb18030",
	"euc-cn":     "gb18030",
}

func normalizeCharset(label string) string {
	l := strings.ToLower(strings.Trim(label, " \t\"'"))
	if a, ok := charsetAliases[l]; ok {
		return a
	}
	return l
}

// toUTF8 converts b from charset label to UTF-8. With max >= 0 it keeps at
// most max bytes of output (cut at a character boundary). problem is "" or
// says what went wrong; the result is always valid UTF-8: an unknown
// charset is read as UTF-8 with invalid bytes replaced by U+FFFD.
func toUTF8(label string, b []byte, max int64) (out string, problem string) {
	cs := normalizeCharset(label)
	var res []byte
	switch cs {
	case "", "utf-8", "us-ascii":
		// US-ASCII-labelled 8-bit text is nearly always UTF-8.
		res = b
	default:
		r, err := charset.Reader(cs, bytes.NewReader(b))
		if err != nil {
			problem = "unknown charset " + strconvQuote(label) + ", read as UTF-8"
			res = b
			break
		}
		var lr io.Reader = r
		if max >= 0 {
			// A few bytes more than max tell whether anything was cut.
			lr = io.LimitReader(r, max+utf8.UTFMax)
		}
		res, err = io.ReadAll(lr)
		if err != nil {
			problem = "charset " + strconvQuote(label) + ": " + err.Error()
		}
	}
	if !utf8.Valid(res) {
		if problem == "" {
			problem = "invalid " + charsetName(cs) + " bytes replaced"
		}
		res = bytes.ToValidUTF8(res, []byte("\uFFFD"))
	}
	if max >= 0 && int64(len(res)) > max {
		res = res[:cutRunes(res, int(max))]
	}
	return string(res), problem
}

func charsetName(cs string) string {
	if cs == "" || cs == "us-ascii" {
		return "UTF-8"
	}
	return cs
}

// cutRunes returns the largest n <= max at which b can be cut without
// splitting a UTF-8 sequence.
func cutRunes(b []byte, max int) int {
	if max >= len(b) {
		return len(b)
	}
	n := max
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return n
}

func strconvQuote(s string) string {
	return `"` + truncateForProblem(strings.ToValidUTF8(s, "\uFFFD")) + `"`
}

// decodeText decodes the RFC 2047 encoded words of an unstructured value
// (a subject, a display name, a filename), recording problems for field.
func (p *parser) decodeText(s, field string) string {
	out, probs := decodeWords(s)
	for _, pr := range probs {
		p.problem("%s: %s", field, pr)
	}
	return out
}

// decodeWords decodes RFC 2047 encoded words. Beyond the RFC it decodes
// words that touch other text, and it joins the bytes of adjacent words in
// one charset before converting them, since mailers split a multi-byte
// character across two words. Raw 8-bit text that is not UTF-8 is kept
// with U+FFFD for the invalid bytes.
func decodeWords(s string) (string, []string) {
	var b strings.Builder
	var probs []string
	var pendCS string
	var pend []byte
	pending := false
	flush := func() {
		if !pending {
			return
		}
		out, pr := toUTF8(pendCS, pend, -1)
		if pr != "" {
			probs = append(probs, pr)
		}
		b.WriteString(out)
		pend = pend[:0]
		pending = false
	}
	literal := func(t string) {
		if !utf8.ValidString(t) {
			probs = append(probs, "8-bit text that is not UTF-8, invalid bytes replaced")
			t = strings.ToValidUTF8(t, "\uFFFD")
		}
		b.WriteString(t)
	}
	i := 0
	for i < len(s) {
		j := strings.Index(s[i:], "=?")
		if j < 0 {
			break
		}
		cs, raw, n, ok := parseEncodedWord(s[i+j:])
		if !ok {
			flush()
			literal(s[i : i+j+2])
			i += j + 2
			continue
		}
		between := s[i : i+j]
		if pending && strings.Trim(between, " \t") == "" {
			// Blanks between adjacent encoded words are not text (RFC 2047 §6.2).
			if !strings.EqualFold(normalizeCharset(cs), normalizeCharset(pendCS)) {
				flush()
			}
		} else {
			flush()
			literal(between)
		}
		if !pending {
			pendCS = cs
			pending = true
		}
		pend = append(pend, raw...)
		i += j + n
	}
	flush()
	literal(s[i:])
	return b.String(), probs
}

// parseEncodedWord reads "=?charset?X?text?=" at the start of s and returns
// the charset, the decoded bytes and the length read. Neither the charset
// nor the encoded text may hold "?", so each scan stops at the next "?":
// that keeps decoding linear however many "=?" a hostile header holds.
func parseEncodedWord(s string) (cs string, raw []byte, n int, ok bool) {
	const maxCharset = 64
	head := s[2:]
	if len(head) > maxCharset+1 {
		head = head[:maxCharset+1]
	}
	q1 := strings.IndexByte(head, '?')
	if q1 <= 0 {
		return "", nil, 0, false
	}
	cs = s[2 : 2+q1]
	if strings.ContainsAny(cs, " \t\"") {
		return "", nil, 0, false
	}
	if k := strings.IndexByte(cs, '*'); k >= 0 { // RFC 2231 language suffix
		cs = cs[:k]
	}
	rest := s[2+q1+1:]
	if len(rest) < 2 || rest[1] != '?' {
		return "", nil, 0, false
	}
	enc := rest[0] | 0x20
	if enc != 'b' && enc != 'q' {
		return "", nil, 0, false
	}
	end := strings.IndexByte(rest[2:], '?')
	if end < 0 || 2+end+1 >= len(rest) || rest[2+end+1] != '=' {
		return "", nil, 0, false
	}
	text := rest[2 : 2+end]
	if enc == 'b' {
		raw = decodeBase64String(text)
	} else {
		raw = decodeQWord(text)
	}
	return cs, raw, 2 + q1 + 1 + 2 + end + 2, true
}

func decodeQWord(t string) []byte {
	out := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(t):
			if h, ok := unhex2(t[i+1], t[i+2]); ok {
				out = append(out, h)
				i += 2
			} else {
				out = append(out, c)
			}
		default:
			out = append(out, c)
		}
	}
	return out
}

func decodeBase64String(t string) []byte {
	var out bytes.Buffer
	d := &base64Writer{dst: &out}
	d.Write([]byte(t))
	d.Close()
	return out.Bytes()
}

// base64Writer decodes base64 as it is written, skipping anything outside
// the alphabet (line breaks, blanks, garbage). "=" ends a quantum early and
// decoding resumes after it, which reads concatenated base64 blocks too.
type base64Writer struct {
	dst  io.Writer
	q    [4]byte
	n    int
	out  [3 * 256]byte
	nout int
}

var b64Index = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(a); i++ {
		t[a[i]] = byte(i)
	}
	return t
}()

func (d *base64Writer) Write(b []byte) (int, error) {
	for _, c := range b {
		if c == '=' {
			d.endQuantum()
			continue
		}
		v := b64Index[c]
		if v == 0xFF {
			continue
		}
		d.q[d.n] = v
		d.n++
		if d.n == 4 {
			d.emit(d.q[0]<<2|d.q[1]>>4, d.q[1]<<4|d.q[2]>>2, d.q[2]<<6|d.q[3])
			d.n = 0
		}
	}
	return len(b), nil
}

func (d *base64Writer) emit(bs ...byte) {
	for _, x := range bs {
		if d.nout == len(d.out) {
			d.flush()
		}
		d.out[d.nout] = x
		d.nout++
	}
}

// endQuantum decodes a partial quantum (2 or 3 characters before padding,
// or at the end); a single character carries no whole byte.
func (d *base64Writer) endQuantum() {
	switch d.n {
	case 2:
		d.emit(d.q[0]<<2 | d.q[1]>>4)
	case 3:
		d.emit(d.q[0]<<2|d.q[1]>>4, d.q[1]<<4|d.q[2]>>2)
	}
	d.n = 0
}

func (d *base64Writer) flush() {
	if d.nout > 0 {
		d.dst.Write(d.out[:d.nout])
		d.nout = 0
	}
}

func (d *base64Writer) Close() {
	d.endQuantum()
	d.flush()
}

// qpWriter decodes quoted-printable as it is written. It is lenient the way
// readers of real mail must be: "=" not followed by two hex digits is kept
// as it stands, lowercase hex is accepted, and blanks between a soft line
// break "=" and the line end are ignored. Trailing blanks of a line are
// dropped (RFC 2045 §6.7 rule 3).
type qpWriter struct {
	dst   io.Writer
	state int // qpText, qpEq, qpEqHex, qpEqBlank
	hex   byte
	blank []byte // blanks held back: dropped at a line end, else written
	buf   []byte
}

const (
	qpText = iota
	qpEq
	qpEqHex
	qpEqBlank
)

// maxHeldBlanks bounds the blanks held back, so that a hostile line of
// blanks does not grow memory.
const maxHeldBlanks = 1024

func (d *qpWriter) Write(b []byte) (int, error) {
	for _, c := range b {
		d.byte1(c)
	}
	d.flushBuf()
	return len(b), nil
}

func (d *qpWriter) put(c byte) {
	d.buf = append(d.buf, c)
	if len(d.buf) >= 4096 {
		d.flushBuf()
	}
}

func (d *qpWriter) flushBuf() {
	if len(d.buf) > 0 {
		d.dst.Write(d.buf)
		d.buf = d.buf[:0]
	}
}

func (d *qpWriter) putBlanks() {
	for _, c := range d.blank {
		d.put(c)
	}
	d.blank = d.blank[:0]
}

func (d *qpWriter) byte1(c byte) {
	switch d.state {
	case qpEq:
		switch {
		case c == '\r' || c == '\n':
			// Soft line break: the "=" and the line end vanish. A "\r" is
			// followed by "\n", which is swallowed in qpEqBlank.
			if c == '\r' {
				d.state = qpEqBlank
			} else {
				d.state = qpText
			}
			return
		case c == ' ' || c == '\t':
			d.blank = append(d.blank[:0], c)
			d.state = qpEqBlank
			return
		}
		if _, ok := unhex(c); ok {
			d.hex = c
			d.state = qpEqHex
			return
		}
		d.put('=')
		d.state = qpText
		d.byte1(c)
		return
	case qpEqHex:
		d.state = qpText
		if v, ok := unhex2(d.hex, c); ok {
			d.put(v)
			return
		}
		d.put('=')
		d.put(d.hex)
		d.byte1(c)
		return
	case qpEqBlank:
		switch c {
		case '\n':
			d.blank = d.blank[:0]
			d.state = qpText
			return
		case '\r', ' ', '\t':
			if len(d.blank) < maxHeldBlanks {
				d.blank = append(d.blank, c)
			}
			return
		}
		// "=" and blanks followed by text: not a soft break after all.
		d.put('=')
		held := d.blank
		d.blank = nil
		d.state = qpText
		for _, h := range held {
			if h != '\r' {
				d.put(h)
			}
		}
		d.byte1(c)
		return
	}
	switch c {
	case '=':
		d.putBlanks()
		d.state = qpEq
	case ' ', '\t':
		if len(d.blank) >= maxHeldBlanks {
			d.putBlanks()
		}
		d.blank = append(d.blank, c)
	case '\r', '\n':
		d.blank = d.blank[:0]
		d.put(c)
	default:
		d.putBlanks()
		d.put(c)
	}
}

func (d *qpWriter) Close() {
	switch d.state {
	case qpEq:
		// A soft break at the very end (the last line of a part before its
		// boundary): nothing to write.
	case qpEqHex:
		d.put('=')
		d.put(d.hex)
	}
	// Trailing blanks at the end are dropped like those at a line end.
	d.blank = d.blank[:0]
	d.state = qpText
	d.flushBuf()
}

// counter counts bytes written.
type counter struct{ n int64 }

func (c *counter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return len(b), nil
}

// capBuffer keeps the first max bytes written and counts the rest.
type capBuffer struct {
	buf   []byte
	max   int64
	total int64
}

func (c *capBuffer) Write(b []byte) (int, error) {
	c.total += int64(len(b))
	if room := c.max - int64(len(c.buf)); room > 0 {
		if int64(len(b)) > room {
			c.buf = append(c.buf, b[:room]...)
		} else {
			c.buf = append(c.buf, b...)
		}
	}
	return len(b), nil
}
