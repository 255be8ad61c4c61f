package opconn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/opconn"
	"github.com/orchard-mail/orchard/internal/provider"
	"github.com/orchard-mail/orchard/internal/testnet"
)

func TestContext(t *testing.T) {
	t.Parallel()
	parent := testnet.Context(t, time.Hour)
	want, _ := parent.Deadline()
	ctx, cancel := opconn.Context(parent, time.Second)
	defer cancel()
	if got, _ := ctx.Deadline(); !got.Equal(want) {
		t.Errorf("deadline = %v, want the context's own %v", got, want)
	}
	for _, tc := range []struct {
		timeout, want time.Duration
	}{{time.Second, time.Second}, {0, opconn.DefaultTimeout}, {-1, opconn.DefaultTimeout}} {
		ctx, cancel := opconn.Context(context.Background(), tc.timeout)
		d, ok := ctx.Deadline()
		cancel()
		if left := time.Until(d); !ok || left > tc.want || left < tc.want-time.Minute/2 {
			t.Errorf("timeout %v: deadline in %v, want about %v", tc.timeout, left, tc.want)
		}
	}
}

// pipe returns a Conn over one end of a pipe whose other end never writes.
func pipe(t *testing.T) *opconn.Conn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return opconn.New(a, time.Hour)
}

func TestBeginClampsLibraryDeadline(t *testing.T) {
	t.Parallel()
	c := pipe(t)
	end := c.Begin(testnet.Context(t, 100*time.Millisecond))
	// The library asks for a generous deadline during the operation; the
	// operation's wins (the read fails on the deadline or on the close that
	// the expiring context causes, whichever comes first).
	if err := c.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	end()
	if err == nil {
		t.Fatal("Read succeeded on a silent pipe")
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Read returned after %v, want the operation's deadline", el)
	}
	if c.LastErr() == nil {
		t.Error("LastErr = nil after a failed read")
	}
}

func TestLibraryDeadlineApplies(t *testing.T) {
	t.Parallel()
	for _, during := range []bool{false, true} {
		c := pipe(t)
		end := c.Begin(testnet.Context(t, time.Hour))
		if !during {
			end() // between operations, the operation's deadline is gone
		}
		if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		_, err := c.Read(make([]byte, 1))
		if during {
			end()
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("during an operation %v: Read = %v, want the library's earlier deadline", during, err)
		}
	}
}

func TestCancelClosesConn(t *testing.T) {
	t.Parallel()
	c := pipe(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	end := c.Begin(ctx)
	defer end()
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Read after cancel = %v, want a closed connection", err)
	}
}

func TestCourtesyYieldsToRunningOperation(t *testing.T) {
	t.Parallel()
	c := pipe(t)
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- c.Do(context.Background(), func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("operation context has no deadline")
			}
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	ran := false
	c.Courtesy(time.Second, func() { ran = true })
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ran {
		t.Error("Courtesy ran during an operation")
	}
	c.Courtesy(time.Second, func() { ran = true })
	if !ran {
		t.Error("Courtesy did not run between operations")
	}
}

func TestDial(t *testing.T) {
	t.Parallel()
	ca := testnet.NewCA(t)
	addr := testnet.Silent(t, ca, false)
	base := ca.ClientConfig()
	cfg, err := opconn.Dial(testnet.Context(t, 5*time.Second), "imap", addr, base, 0,
		func(ctx context.Context, nc net.Conn, cfg *tls.Config) (*tls.Config, error) {
			nc.Close()
			return cfg, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if cfg == base || cfg.ServerName != "127.0.0.1" || cfg.RootCAs != ca.Pool || base.ServerName != "" {
		t.Errorf("TLS config = %p ServerName %q, want a clone of %p for 127.0.0.1", cfg, cfg.ServerName, base)
	}

	noSetup := func(context.Context, net.Conn, *tls.Config) (struct{}, error) {
		t.Error("setup called after a failed dial")
		return struct{}{}, nil
	}
	for _, tc := range []struct {
		addr string
		kind provider.ErrorKind
	}{{"no-port", provider.KindProtocol}, {testnet.ClosedAddr(t), provider.KindUnavailable}} {
		_, err := opconn.Dial(testnet.Context(t, 5*time.Second), "smtp", tc.addr, nil, 0, noSetup)
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Service != "smtp" || pe.Addr != tc.addr {
			t.Errorf("Dial(%q) = %v, want smtp %v", tc.addr, err, tc.kind)
		}
	}
}
