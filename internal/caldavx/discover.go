package caldavx

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/orchard-mail/orchard/internal/provider"
)

// Discover finds the account's calendar home: PROPFIND current-user-principal
// on <base>/.well-known/caldav (iCloud answers GET there with 400, Radicale
// redirects to /; redirects are followed with the method kept), falling back
// to base itself when the well-known URL is unknown (404 and the like) or
// names no principal; then PROPFIND calendar-home-set, in the CalDAV
// namespace, on the principal. The home is returned as an absolute URL with
// a trailing slash: on iCloud it is on another host (pNN-caldav.icloud.com),
// which every later call then talks to. Store it in Account.Home.
//
// Wrong credentials fail with KindAuth, whichever step notices.
func (c *Client) Discover(ctx context.Context, baseURL string, a Account) (home string, err error) {
	base, err := parseURL(baseURL)
	if err != nil {
		return "", err
	}
	wellKnown := base.ResolveReference(&url.URL{Path: "/.well-known/caldav"})
	principal, err := c.findPrincipal(ctx, a, wellKnown)
	if err != nil {
		return "", err
	}
	if principal == nil {
		if principal, err = c.findPrincipal(ctx, a, base); err != nil {
			return "", err
		}
	}
	if principal == nil {
		return "", &provider.Error{Kind: provider.KindProtocol, Service: service, Addr: hostPort(base),
			Text: fmt.Sprintf("no current-user-principal at %s or %s", wellKnown.EscapedPath(), base.EscapedPath())}
	}

	ms, at, err := c.propfind(ctx, a, principal, "0", propCalendarHomeSet)
	if err != nil {
		return "", err
	}
	// The property, not the href it is keyed under: iCloud answers a PROPFIND
	// of /<dsid>/principal/ with a response for /principal/.
	for _, r := range ms.responses {
		if href := r.prop(propCalendarHomeSet).href(); href != "" {
			u, err := resolve(a, at, href)
			if err != nil {
				return "", err
			}
			return withSlash(u).String(), nil
		}
	}
	return "", &provider.Error{Kind: provider.KindProtocol, Service: service, Addr: hostPort(at),
		Text: fmt.Sprintf("principal %s has no calendar-home-set", at.EscapedPath())}
}

// findPrincipal asks u for current-user-principal. It returns nil, nil when
// u does not serve one (not found, not a DAV resource, no such property),
// so that the caller can try elsewhere; credentials refused and outages are
// errors.
func (c *Client) findPrincipal(ctx context.Context, a Account, u *url.URL) (*url.URL, error) {
	ms, at, err := c.propfind(ctx, a, u, "0", propCurrentUserPrinc)
	if err != nil {
		if provider.KindOf(err) == provider.KindRejected || provider.KindOf(err) == provider.KindProtocol {
			return nil, nil
		}
		return nil, err
	}
	for _, r := range ms.responses {
		p := r.prop(propCurrentUserPrinc)
		if p == nil {
			continue
		}
		if p.has(xml.Name{Space: nsDAV, Local: "unauthenticated"}) {
			// RFC 5397: the server did not take the credentials it was sent.
			return nil, &provider.Error{Kind: provider.KindAuth, Service: service, Addr: hostPort(at),
				Text: fmt.Sprintf("PROPFIND %s: current-user-principal is unauthenticated", at.EscapedPath())}
		}
		if href := p.href(); href != "" {
			return resolve(a, at, href)
		}
	}
	return nil, nil
}

// DefaultCalendarURL returns the calendar that new events go to by default
// (RFC 6638 schedule-default-calendar-URL), asked of the home and then of
// the scheduling inbox that the principal names; "" when the server has
// none (Radicale).
func (c *Client) DefaultCalendarURL(ctx context.Context, a Account) (string, error) {
	home, err := homeURL(a)
	if err != nil {
		return "", err
	}
	ms, at, err := c.propfind(ctx, a, home, "0", propScheduleDefaultCal, propCurrentUserPrinc)
	if err != nil {
		return "", err
	}
	if u, err := firstHref(a, ms, at, propScheduleDefaultCal); u != nil || err != nil {
		return urlString(u), err
	}
	principal, err := firstHref(a, ms, at, propCurrentUserPrinc)
	if principal == nil || err != nil {
		return "", err
	}
	// Each further step is optional: a server that does not know the
	// property or the resource simply has no default.
	if ms, at, err = c.propfind(ctx, a, principal, "0", propScheduleInboxURL); err != nil {
		return "", optional(err)
	}
	inbox, err := firstHref(a, ms, at, propScheduleInboxURL)
	if inbox == nil || err != nil {
		return "", err
	}
	if ms, at, err = c.propfind(ctx, a, inbox, "0", propScheduleDefaultCal); err != nil {
		return "", optional(err)
	}
	u, err := firstHref(a, ms, at, propScheduleDefaultCal)
	return urlString(u), err
}

// optional drops a refusal (403, 404…) of a lookup that may fail.
func optional(err error) error {
	if provider.KindOf(err) == provider.KindRejected {
		return nil
	}
	return err
}

// firstHref returns the href inside the first property called name, made
// absolute; nil when no response has it.
func firstHref(a Account, ms *multistatus, at *url.URL, name xml.Name) (*url.URL, error) {
	for _, r := range ms.responses {
		if href := r.prop(name).href(); href != "" {
			return resolve(a, at, href)
		}
	}
	return nil, nil
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// propfind sends a PROPFIND for names with the given Depth and parses the
// multistatus; at is the URL that answered (after redirects), which hrefs
// resolve against. Any status but 207 is an error (statusError).
func (c *Client) propfind(ctx context.Context, a Account, u *url.URL, depth string, names ...xml.Name) (ms *multistatus, at *url.URL, err error) {
	resp, err := c.do(ctx, a, request{method: "PROPFIND", url: u, depth: depth, body: propfindBody(names...), ctype: xmlType})
	if err != nil {
		return nil, nil, err
	}
	if resp.status != http.StatusMultiStatus {
		return nil, nil, statusError(a, "PROPFIND", resp)
	}
	ms, err = parseMultistatus(a, "PROPFIND", resp)
	return ms, resp.url, err
}

// parseURL checks a URL given by the caller: absolute http(s). User
// information is dropped (credentials travel in Account), and kept out of
// the error.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("caldavx: invalid URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		u.User = nil
		return nil, fmt.Errorf("caldavx: URL %q is not an absolute http(s) URL", u.String())
	}
	u.User, u.Fragment = nil, ""
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

// homeURL is a.Home, parsed.
func homeURL(a Account) (*url.URL, error) {
	if a.Home == "" {
		return nil, errors.New("caldavx: Account.Home is empty (call Discover first)")
	}
	u, err := parseURL(a.Home)
	if err != nil {
		return nil, err
	}
	return withSlash(u), nil
}

// withSlash gives a collection URL its trailing slash, so that relative
// references resolve inside it.
func withSlash(u *url.URL) *url.URL {
	if strings.HasSuffix(u.Path, "/") {
		return u
	}
	v := *u
	v.Path += "/"
	if v.RawPath != "" {
		v.RawPath += "/"
	}
	return &v
}
