package caldavx

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/orchard-mail/orchard/internal/provider"
)

// SyncCollection asks the calendar at calURL what changed since token
// (REPORT sync-collection, RFC 6578; "" = initial: everything there is). It
// returns the members that are new or changed, with their ETags, the hrefs
// of members that were deleted, and the token to use next time. A member
// changed and then deleted within the answer is only in deleted. Servers
// may list a deletion the caller never saw (Radicale does so on an initial
// sync), so deleted hrefs that are unknown are to be ignored. Answers the
// server truncates (507 on the collection) are followed up with the token
// they came with until complete.
//
// A token the server no longer accepts fails with ErrSyncTokenInvalid: the
// caller falls back to ListObjects and restarts from "".
func (c *Client) SyncCollection(ctx context.Context, a Account, calURL, token string) (changed []ObjectRef, deleted []string, newToken string, err error) {
	cal, err := parseURL(calURL)
	if err != nil {
		return nil, nil, "", err
	}
	cal = withSlash(cal)
	type state struct {
		etag    string
		deleted bool
	}
	var (
		order  []string
		states = map[string]*state{}
	)
	note := func(href string, s state) {
		if states[href] == nil {
			order = append(order, href)
		}
		states[href] = &s
	}
	for round := 0; ; round++ {
		if round == maxSyncRounds {
			return nil, nil, "", &provider.Error{Kind: provider.KindProtocol, Service: service, Addr: hostPort(cal),
				Text: fmt.Sprintf("REPORT %s: sync-collection still truncated after %d rounds", cal.EscapedPath(), round)}
		}
		var b bytes.Buffer
		b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n<d:sync-collection")
		writeNamespaces(&b)
		b.WriteString(">")
		writeText(&b, propSyncToken, token)
		b.WriteString("<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>")
		// RFC 6578 §3.2: Depth 0; the scope is the sync-level.
		resp, err := c.do(ctx, a, request{method: "REPORT", url: cal, depth: "0", body: b.Bytes(), ctype: xmlType})
		if err != nil {
			return nil, nil, "", err
		}
		if resp.status != http.StatusMultiStatus {
			e := statusError(a, "REPORT", resp)
			if token != "" && invalidToken(resp) {
				e.Kind, e.Err = provider.KindRejected, ErrSyncTokenInvalid
			}
			return nil, nil, "", e
		}
		ms, err := parseMultistatus(a, "REPORT", resp)
		if err != nil {
			return nil, nil, "", err
		}
		truncated := false
		for _, r := range ms.responses {
			u, err := resolve(a, resp.url, r.href)
			if err != nil {
				return nil, nil, "", err
			}
			if sameResource(u, cal) || sameResource(u, resp.url) {
				// iCloud lists the collection itself among the changes;
				// 507 on it means "more to come" (RFC 6578 §3.6).
				truncated = truncated || r.status == http.StatusInsufficientStorage
				continue
			}
			if strings.HasSuffix(u.Path, "/") {
				continue // a sub-collection, not a calendar object
			}
			switch {
			case r.status == http.StatusNotFound || r.status == http.StatusGone:
				note(u.String(), state{deleted: true})
			case r.status == 0 || r.status/100 == 2:
				note(u.String(), state{etag: normalizeETag(r.prop(propGetETag).text())})
			}
		}
		if ms.syncToken == "" {
			return nil, nil, "", redact(&provider.Error{Kind: provider.KindProtocol, Service: service, Addr: hostPort(resp.url),
				Text: fmt.Sprintf("REPORT %s: sync-collection answer without a sync-token", resp.url.EscapedPath())}, a)
		}
		newToken = ms.syncToken
		if !truncated || newToken == token {
			break
		}
		token = newToken
	}
	for _, href := range order {
		if s := states[href]; s.deleted {
			deleted = append(deleted, href)
		} else {
			changed = append(changed, ObjectRef{Href: href, ETag: s.etag})
		}
	}
	return changed, deleted, newToken, nil
}

// invalidToken recognises a refused sync token: a DAV:valid-sync-token
// precondition (RFC 6578 §3.2, 403 on Radicale), or a 409/410 to a request
// whose only variable part is the token.
func invalidToken(resp *response) bool {
	switch resp.status {
	case http.StatusConflict, http.StatusGone:
		return true
	case http.StatusForbidden, http.StatusBadRequest, http.StatusPreconditionFailed:
		return bytes.Contains(resp.body, []byte("valid-sync-token"))
	}
	return false
}

// ListObjects lists the calendar object resources of the calendar at calURL
// with their ETags (Depth-1 PROPFIND getetag): the fallback for servers
// without sync-collection, or after ErrSyncTokenInvalid. Sub-collections and
// resources that are neither .ics nor text/calendar are left out.
func (c *Client) ListObjects(ctx context.Context, a Account, calURL string) ([]ObjectRef, error) {
	cal, err := parseURL(calURL)
	if err != nil {
		return nil, err
	}
	cal = withSlash(cal)
	ms, at, err := c.propfind(ctx, a, cal, "1", propGetETag, propGetContentType, propResourceType)
	if err != nil {
		return nil, err
	}
	var refs []ObjectRef
	for _, r := range ms.responses {
		if r.status != 0 && r.status/100 != 2 {
			continue
		}
		u, err := resolve(a, at, r.href)
		if err != nil {
			return nil, err
		}
		if sameResource(u, cal) || sameResource(u, at) || strings.HasSuffix(u.Path, "/") ||
			r.prop(propResourceType).has(rtCollection) {
			continue
		}
		mt, _, _ := mime.ParseMediaType(r.prop(propGetContentType).text())
		if !strings.HasSuffix(strings.ToLower(u.Path), ".ics") && !strings.EqualFold(mt, "text/calendar") {
			continue
		}
		refs = append(refs, ObjectRef{Href: u.String(), ETag: normalizeETag(r.prop(propGetETag).text())})
	}
	return refs, nil
}

// GetObjects fetches the given objects of the calendar at calURL with
// calendar-multiget REPORTs of at most 100 hrefs each, asking for the full
// calendar-data (so VTIMEZONEs come along; iCloud drops them from trimmed
// data). Each Object's Href is the string the caller passed. Hrefs the
// server does not know (deleted meanwhile) are left out, not errors.
func (c *Client) GetObjects(ctx context.Context, a Account, calURL string, hrefs []string) ([]Object, error) {
	cal, err := parseURL(calURL)
	if err != nil {
		return nil, err
	}
	cal = withSlash(cal)
	var objs []Object
	for len(hrefs) > 0 {
		n := min(len(hrefs), multigetBatch)
		batch, err := c.multiget(ctx, a, cal, hrefs[:n])
		if err != nil {
			return nil, err
		}
		objs = append(objs, batch...)
		hrefs = hrefs[n:]
	}
	return objs, nil
}

func (c *Client) multiget(ctx context.Context, a Account, cal *url.URL, hrefs []string) ([]Object, error) {
	// Hrefs go into the body as absolute paths, as the server spelled them
	// (percent-encoding kept); the response is matched by decoded path.
	asked := map[string]string{}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n<c:calendar-multiget")
	writeNamespaces(&b)
	b.WriteString("><d:prop><d:getetag/><c:calendar-data/></d:prop>")
	for _, h := range hrefs {
		u, err := cal.Parse(h)
		if err != nil {
			return nil, fmt.Errorf("caldavx: invalid href %q: %w", h, err)
		}
		asked[pathKey(u)] = h
		writeText(&b, elemHref, u.EscapedPath())
	}
	b.WriteString("</c:calendar-multiget>")

	resp, err := c.do(ctx, a, request{method: "REPORT", url: cal, depth: "1", body: b.Bytes(), ctype: xmlType})
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusMultiStatus {
		return nil, statusError(a, "REPORT", resp)
	}
	ms, err := parseMultistatus(a, "REPORT", resp)
	if err != nil {
		return nil, err
	}
	var objs []Object
	for _, r := range ms.responses {
		if r.status != 0 && r.status/100 != 2 {
			continue // 404: deleted since it was listed
		}
		data := r.prop(propCalendarData)
		if data == nil {
			continue
		}
		u, err := resolve(a, resp.url, r.href)
		if err != nil {
			return nil, err
		}
		href, ok := asked[pathKey(u)]
		if !ok {
			continue // not asked for: nothing to match it to
		}
		objs = append(objs, Object{Href: href, ETag: normalizeETag(r.prop(propGetETag).text()), Data: crlf(data.Text)})
	}
	return objs, nil
}

// crlf trims the white space around calendar data (pretty-printed XML,
// CDATA sections on lines of their own) and gives every line a CRLF end:
// XML parsing turns CRLF into LF (Radicale stores LF anyway), iCalendar
// wants CRLF.
func crlf(s string) []byte {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return []byte(strings.ReplaceAll(s, "\n", "\r\n") + "\r\n")
}

// PutObject stores data (iCalendar text) at href and returns the new ETag.
// With ifMatch "" it only creates (If-None-Match: *); otherwise it only
// replaces the version with that ETag (If-Match). Either way a conflicting
// change by someone else fails with ErrPreconditionFailed, a refusal (no
// rights, invalid data) with KindRejected. When the server sends no ETag,
// which it must not when it changed the data on the way in (iCloud rewrites
// VTIMEZONEs), a PROPFIND asks for it; if that fails too the ETag is "":
// the write itself succeeded, and the next sync brings the ETag.
func (c *Client) PutObject(ctx context.Context, a Account, href string, data []byte, ifMatch string) (etag string, err error) {
	u, err := parseURL(href)
	if err != nil {
		return "", err
	}
	h := map[string]string{"If-None-Match": "*"}
	if ifMatch != "" {
		h = map[string]string{"If-Match": normalizeETag(ifMatch)}
	}
	if data == nil {
		data = []byte{}
	}
	resp, err := c.do(ctx, a, request{method: http.MethodPut, url: u, body: data,
		ctype: "text/calendar; charset=utf-8", header: h, write: true})
	if err != nil {
		return "", err
	}
	if resp.status/100 != 2 {
		return "", statusError(a, "PUT", resp)
	}
	if etag := normalizeETag(resp.header.Get("ETag")); etag != "" {
		return etag, nil
	}
	ms, _, err := c.propfind(ctx, a, resp.url, "0", propGetETag)
	if err != nil {
		return "", nil
	}
	for _, r := range ms.responses {
		if e := r.prop(propGetETag).text(); e != "" {
			return normalizeETag(e), nil
		}
	}
	return "", nil
}

// DeleteObject deletes the object at href; with ifMatch only the version
// with that ETag (ErrPreconditionFailed otherwise). A missing object is
// ErrNotFound, which a caller deleting may well treat as success.
func (c *Client) DeleteObject(ctx context.Context, a Account, href, ifMatch string) error {
	u, err := parseURL(href)
	if err != nil {
		return err
	}
	var h map[string]string
	if ifMatch != "" {
		h = map[string]string{"If-Match": normalizeETag(ifMatch)}
	}
	resp, err := c.do(ctx, a, request{method: http.MethodDelete, url: u, header: h, write: true})
	if err != nil {
		return err
	}
	if resp.status/100 != 2 {
		return statusError(a, "DELETE", resp)
	}
	return nil
}
