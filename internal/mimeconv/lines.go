package mimeconv

import (
	"bufio"
	"errors"
	"io"
)

// lineBufSize is the longest line segment handed out at once. Longer lines
// (base64 without line breaks, minified HTML) come in several segments;
// boundaries are short, so only a line's first segment is checked for one.
const lineBufSize = 64 << 10

// lineReader hands out the input line by line, each with its terminator.
// It never fails: an I/O error ends the input like EOF and is kept in ioErr.
type lineReader struct {
	br      *bufio.Reader
	ioErr   error
	done    bool
	midLine bool // the last segment did not end a line
}

// next returns the next segment. start says whether it begins a line, full
// whether it ends one (a line's last segment ends with '\n', except at EOF).
// ok is false at the end of input.
func (lr *lineReader) next() (seg []byte, start, ok bool) {
	if lr.done {
		return nil, false, false
	}
	start = !lr.midLine
	seg, err := lr.br.ReadSlice('\n')
	switch {
	case err == nil:
		lr.midLine = false
	case errors.Is(err, bufio.ErrBufferFull):
		lr.midLine = true
	default:
		lr.done = true
		if !errors.Is(err, io.EOF) {
			lr.ioErr = err
		}
		lr.midLine = false
		if len(seg) == 0 {
			return nil, false, false
		}
	}
	return seg, start, true
}

// drain reads and discards the rest of the input.
func (lr *lineReader) drain() {
	if lr.done {
		return
	}
	lr.done = true
	if _, err := io.Copy(io.Discard, lr.br); err != nil {
		lr.ioErr = err
	}
}

// splitEOL splits a segment into its content and line terminator
// ("\r\n", "\n" or "").
func splitEOL(seg []byte) (content, eol []byte) {
	n := len(seg)
	if n > 0 && seg[n-1] == '\n' {
		if n > 1 && seg[n-2] == '\r' {
			return seg[:n-2], seg[n-2:]
		}
		return seg[:n-1], seg[n-1:]
	}
	return seg, nil
}

// stop says why reading an entity ended: the end of input, or a boundary
// line of the enclosing multipart at index level of parser.bounds.
type stop struct {
	eof     bool
	level   int
	closing bool // the boundary ended with "--"
}

// boundaryAt checks whether a line is a boundary delimiter of one of the
// enclosing multiparts, innermost first, so that an inner multipart whose
// closing delimiter is missing ends at its parent's next boundary. Like
// Dovecot, whose section numbers Orchard must share, a line that starts
// with "--" and the boundary is a delimiter whatever follows (RFC 2046
// allows only blanks there); it closes the multipart when "--" follows.
func (p *parser) boundaryAt(seg []byte, start bool) (stop, bool) {
	if !start || len(p.bounds) == 0 || len(seg) < 3 || seg[0] != '-' || seg[1] != '-' {
		return stop{}, false
	}
	rest := seg[2:]
	for i := len(p.bounds) - 1; i >= 0; i-- {
		b := p.bounds[i]
		if len(rest) < len(b) || string(rest[:len(b)]) != b {
			continue
		}
		tail := rest[len(b):]
		closing := len(tail) >= 2 && tail[0] == '-' && tail[1] == '-'
		return stop{level: i, closing: closing}, true
	}
	return stop{}, false
}

// skip discards lines up to the next boundary of an enclosing multipart or
// the end of input.
func (p *parser) skip() stop {
	for {
		seg, start, ok := p.lr.next()
		if !ok {
			return stop{eof: true}
		}
		if st, ok := p.boundaryAt(seg, start); ok {
			return st
		}
	}
}

// copyBody writes an entity body to w up to the next boundary or the end
// of input. The line break before a boundary belongs to the boundary (RFC
// 2046 §5.1.1), so each line's terminator is held back until the next line
// shows that the body goes on.
func (p *parser) copyBody(w io.Writer) stop {
	var pending [2]byte
	npending := 0
	for {
		seg, start, ok := p.lr.next()
		if !ok {
			// Without a boundary the last line break is the body's own.
			w.Write(pending[:npending])
			return stop{eof: true}
		}
		if st, ok := p.boundaryAt(seg, start); ok {
			return st
		}
		if npending > 0 {
			w.Write(pending[:npending])
			npending = 0
		}
		content, eol := splitEOL(seg)
		w.Write(content)
		npending = copy(pending[:], eol)
	}
}
