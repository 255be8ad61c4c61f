package imapx

import (
	"bytes"
	"strings"
	"sync"

	"github.com/orchard-mail/orchard/internal/opconn"
)

// conn sits between imapclient and the TLS connection. imapclient has no
// context support: it sets its own fixed read/write deadlines (30 s, 5 min)
// on the conn, which opconn.Conn clamps to the deadline of the operation in
// progress; it also flattens errors with %v and so loses their type, which is
// why classification asks opconn.Conn for the first I/O error.
//
// On top of that, conn keeps the server's first line (see firstLine).
type conn struct {
	*opconn.Conn

	mu       sync.Mutex
	greeting []byte // the server's first line, see firstLine
	gotLine  bool   // greeting is complete
}

// maxGreeting bounds what firstLine keeps.
const maxGreeting = 1024

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if !c.gotLine {
			chunk := p[:n]
			if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
				chunk, c.gotLine = chunk[:i+1], true
			}
			if room := maxGreeting - len(c.greeting); len(chunk) > room {
				chunk, c.gotLine = chunk[:room], true
			}
			c.greeting = append(c.greeting, chunk...)
		}
		c.mu.Unlock()
	}
	return n, err
}

// firstLine returns the server's first line without CRLF. imapclient's
// WaitGreeting can report "connection closed before greeting" even though a
// greeting arrived (it selects between two channels that are both closed when
// a server greets with BYE and hangs up), so Dial looks at the line itself.
func (c *conn) firstLine() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gotLine {
		return ""
	}
	return strings.TrimRight(string(c.greeting), "\r\n")
}
