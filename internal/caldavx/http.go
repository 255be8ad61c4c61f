package caldavx

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/opconn"
	"github.com/orchard-mail/orchard/internal/provider"
)

// request is one HTTP exchange with a CalDAV server.
type request struct {
	method string
	url    *url.URL
	depth  string // Depth header; "" for none
	body   []byte
	ctype  string            // Content-Type of body
	header map[string]string // If-Match, If-None-Match
	// write marks a request that changes something on the server. It is
	// repeated only when the server cannot have acted on it (503, 429, a
	// failed dial): a repeated PUT whose first attempt did land would come
	// back as a misleading 412.
	write bool
}

// response is what came back, body read in full.
type response struct {
	status int
	header http.Header
	body   []byte
	url    *url.URL // where it came from, after redirects: hrefs resolve against it
}

// do sends r with a's credentials, following redirects and retrying as
// Options say, under a deadline (the context's, else the client's Timeout).
// A 401, a 5xx or 429 that outlasted the retries, and transport failures are
// returned as *provider.Error; any other status is returned for the caller to
// interpret (statusError turns it into an error).
func (c *Client) do(ctx context.Context, a Account, r request) (*response, error) {
	ctx, cancel := opconn.Context(ctx, c.timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		resp, addr, err := c.follow(ctx, a, r)
		if err != nil {
			pe := transportError(ctx, addr, r, err)
			if attempt < c.maxRetries && pe.Kind == provider.KindUnavailable && ctx.Err() == nil &&
				(!r.write || isDialError(err)) {
				if wait(ctx, backoff(attempt)) {
					continue
				}
			}
			return nil, redact(pe, a)
		}
		switch {
		case resp.status == http.StatusUnauthorized:
			return nil, redact(&provider.Error{Kind: provider.KindAuth, Service: service, Addr: addr,
				Text: describe(r.method, resp)}, a)
		case resp.status == http.StatusServiceUnavailable || resp.status == http.StatusTooManyRequests ||
			(!r.write && (resp.status == http.StatusBadGateway || resp.status == http.StatusGatewayTimeout)):
			if attempt < c.maxRetries {
				d, ok := retryAfter(resp.header)
				if !ok {
					d = backoff(attempt)
				}
				if wait(ctx, d) {
					continue
				}
			}
			return nil, redact(&provider.Error{Kind: provider.KindUnavailable, Service: service, Addr: addr,
				Text: describe(r.method, resp)}, a)
		case resp.status >= 500:
			return nil, redact(&provider.Error{Kind: provider.KindUnavailable, Service: service, Addr: addr,
				Text: describe(r.method, resp)}, a)
		}
		return resp, nil
	}
}

// follow sends r and follows up to maxRedirects redirects, keeping the method
// and body (net/http would turn a PROPFIND into a GET). It returns the
// host:port of the last server asked, for errors.
func (c *Client) follow(ctx context.Context, a Account, r request) (*response, string, error) {
	u := r.url
	for hop := 0; ; hop++ {
		resp, err := c.send(ctx, a, r, u)
		if err != nil {
			return nil, hostPort(u), err
		}
		loc := resp.header.Get("Location")
		if !isRedirect(resp.status) || loc == "" || hop == maxRedirects {
			return resp, hostPort(u), nil
		}
		next, err := u.Parse(loc)
		if err != nil {
			return nil, hostPort(u), &provider.Error{Kind: provider.KindProtocol, Service: service, Addr: hostPort(u),
				Text: fmt.Sprintf("%s %s: bad redirect location %q", r.method, u.EscapedPath(), loc)}
		}
		if u.Scheme == "https" && next.Scheme != "https" {
			// The credentials go along (iCloud redirects between its own
			// hosts), so never in the clear.
			return nil, hostPort(u), &provider.Error{Kind: provider.KindTLS, Service: service, Addr: hostPort(u),
				Text: fmt.Sprintf("%s %s: refusing redirect from https to %s", r.method, u.EscapedPath(), next.Scheme)}
		}
		next.User, next.Fragment = nil, ""
		u = next
	}
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// send is one HTTP round trip; the body is read in full under ctx.
func (c *Client) send(ctx context.Context, a Account, r request, u *url.URL) (*response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(a.Username, a.Password)
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	if r.depth != "" {
		req.Header.Set("Depth", r.depth)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "Orchard-CalDAV")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxBody {
		return nil, &provider.Error{Kind: provider.KindProtocol, Service: service, Addr: hostPort(u),
			Text: fmt.Sprintf("%s %s: response larger than %d MB", r.method, u.EscapedPath(), maxBody>>20)}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data, url: u}, nil
}

// transportError classifies a failure of follow: ctx first (its end closes
// the connection under net/http), then the network error.
func transportError(ctx context.Context, addr string, r request, err error) *provider.Error {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return pe
	}
	// *url.Error repeats method and URL around the cause; the phase says it.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return provider.TransportError(ctx, service, addr, r.method+" "+r.url.EscapedPath(), err, nil)
}

// isDialError reports whether err happened before anything was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// redact keeps a's password and its Basic token out of e; the server or a
// library could echo either.
func redact(e *provider.Error, a Account) *provider.Error {
	return e.Redact(a.Password, base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
}

// statusError turns a status that the operation did not expect into a
// *provider.Error: 404 → ErrNotFound, 412 → ErrPreconditionFailed, other 4xx
// (403 no rights, 400/415 a request the server will not take) →
// KindRejected, anything else (an unexpected 2xx or 3xx) → KindProtocol.
func statusError(a Account, method string, resp *response) *provider.Error {
	e := &provider.Error{Service: service, Addr: hostPort(resp.url), Text: describe(method, resp)}
	switch {
	case resp.status == http.StatusNotFound || resp.status == http.StatusGone:
		e.Kind, e.Err = provider.KindRejected, ErrNotFound
	case resp.status == http.StatusPreconditionFailed:
		e.Kind, e.Err = provider.KindRejected, ErrPreconditionFailed
	case resp.status >= 400 && resp.status < 500:
		e.Kind = provider.KindRejected
	default:
		e.Kind = provider.KindProtocol
	}
	return redact(e, a)
}

// describe renders "PUT /cal/x.ics: 403 Forbidden: <what the server said>".
func describe(method string, resp *response) string {
	s := fmt.Sprintf("%s %s: %d %s", method, resp.url.EscapedPath(), resp.status, http.StatusText(resp.status))
	if why := bodySummary(resp); why != "" {
		s += ": " + why
	}
	return s
}

// bodySummary is a short, one-line account of an error body: the names of
// the preconditions in a DAV:error (e.g. "valid-sync-token"), or the start of
// a plain-text body. HTML and other bodies say nothing useful.
func bodySummary(resp *response) string {
	if len(resp.body) == 0 {
		return ""
	}
	mt, _, _ := mime.ParseMediaType(resp.header.Get("Content-Type"))
	if strings.HasSuffix(mt, "xml") || bytes.HasPrefix(bytes.TrimSpace(resp.body), []byte("<?xml")) {
		if root, err := parseXML(resp.body); err == nil && root.XMLName.Local == "error" {
			var names []string
			for _, ch := range root.Children {
				names = append(names, ch.XMLName.Local)
			}
			return strings.Join(names, ", ")
		}
		return ""
	}
	if mt != "text/plain" && mt != "" {
		return ""
	}
	s := strings.Join(strings.Fields(string(resp.body)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// retryAfter reads Retry-After (seconds or an HTTP date), capped at
// maxRetryWait.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return 0, false
	}
	return min(max(d, 0), maxRetryWait), true
}

// backoff is the wait before retry number attempt+1 when the server names
// none: doubling from firstBackoff, capped, with jitter so that the workers
// of many accounts do not retry in step.
func backoff(attempt int) time.Duration {
	d := min(firstBackoff<<attempt, maxRetryWait)
	return d/2 + rand.N(d/2+1)
}

// wait sleeps for d unless ctx ends first, or would end before d is over
// (then there is no point in waiting: the retry could not complete).
func wait(ctx context.Context, d time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// hostPort is u's host:port, the port defaulted from the scheme.
func hostPort(u *url.URL) string {
	if u == nil {
		return ""
	}
	if port := u.Port(); port != "" {
		return u.Host
	}
	port := "443"
	if u.Scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
