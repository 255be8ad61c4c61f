package smtpx

import (
	"context"
	"net"
	"sync"
	"time"
)

// conn wraps the TCP connection, below TLS, for two reasons. go-smtp sets its
// own deadline (5 minutes) around each command and clears it afterwards;
// conn clamps every deadline to the one of the operation in progress, so a
// context deadline is honoured even in the middle of a multi-step exchange.
// And it records the first I/O error for classification.
type conn struct {
	net.Conn

	mu     sync.Mutex
	op     time.Time // deadline of the running operation; zero between operations
	rd, wd time.Time // deadlines go-smtp asked for
	ioErr  error
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.noteErr(err)
	}
	return n, err
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

// begin bounds all I/O by ctx until the returned function is called:
// deadlines are clamped to ctx's deadline and the connection is closed if ctx
// is cancelled. ctx must have a deadline (see opContext).
func (c *conn) begin(ctx context.Context) (end func()) {
	d, _ := ctx.Deadline()
	c.mu.Lock()
	c.op = d
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
