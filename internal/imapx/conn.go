package imapx

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"time"
)

// conn sits between imapclient and the TLS connection. It exists because
// imapclient has no context support: it sets its own fixed read/write
// deadlines (30 s, 5 min) on the conn. conn clamps every deadline the library
// asks for to the deadline of the operation in progress, so an operation never
// outlives its context, while between operations (when the library's reader
// goroutine waits for unsolicited data) the library's own deadlines apply.
//
// It also records the first I/O error, because imapclient flattens errors with
// %v and so loses their type; classification needs the original.
type conn struct {
	net.Conn

	mu       sync.Mutex
	op       time.Time // deadline of the running operation; zero between operations
	rd, wd   time.Time // deadlines imapclient asked for
	ioErr    error     // first read/write error
	greeting []byte    // the server's first line, see firstLine
	gotLine  bool      // greeting is complete
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
	if err != nil {
		c.noteErr(err)
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

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.noteErr(err)
	}
	return n, err
}

func (c *conn) noteErr(err error) {
	c.mu.Lock()
	if c.ioErr == nil {
		c.ioErr = err
	}
	c.mu.Unlock()
}

// lastErr returns the first I/O error seen on the connection, if any.
func (c *conn) lastErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ioErr
}

func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rd = t
	return c.Conn.SetReadDeadline(earlier(t, c.op))
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wd = t
	return c.Conn.SetWriteDeadline(earlier(t, c.op))
}

// begin bounds all I/O by ctx until the returned function is called: the
// connection deadlines are clamped to ctx's deadline, and the connection is
// closed if ctx is cancelled (a deadline alone cannot express cancellation).
// ctx must have a deadline (see opContext).
func (c *conn) begin(ctx context.Context) (end func()) {
	d, _ := ctx.Deadline()
	c.mu.Lock()
	c.op = d
	// Errors here mean the connection is already closed; the operation will
	// find that out on its first read or write.
	_ = c.Conn.SetReadDeadline(earlier(c.rd, d))
	_ = c.Conn.SetWriteDeadline(earlier(c.wd, d))
	c.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { _ = c.Conn.Close() })
	return func() {
		stop()
		c.mu.Lock()
		c.op = time.Time{}
		_ = c.Conn.SetReadDeadline(c.rd)
		_ = c.Conn.SetWriteDeadline(c.wd)
		c.mu.Unlock()
	}
}

// earlier returns the earlier of two deadlines, where zero means none.
func earlier(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}
