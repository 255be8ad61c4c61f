package caldavx

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/orchard-mail/orchard/internal/provider"
)

// XML namespaces of the properties used here.
const (
	nsDAV    = "DAV:"
	nsCalDAV = "urn:ietf:params:xml:ns:caldav"
	nsCS     = "http://calendarserver.org/ns/" // getctag
	nsApple  = "http://apple.com/ns/ical/"     // calendar-color
)

// prefixes are the namespace prefixes of request bodies.
var prefixes = []struct{ prefix, ns string }{
	{"d", nsDAV}, {"c", nsCalDAV}, {"cs", nsCS}, {"a", nsApple},
}

func prefixOf(ns string) string {
	for _, p := range prefixes {
		if p.ns == ns {
			return p.prefix
		}
	}
	panic("caldavx: no prefix for namespace " + ns)
}

var (
	propResourceType       = xml.Name{Space: nsDAV, Local: "resourcetype"}
	propDisplayName        = xml.Name{Space: nsDAV, Local: "displayname"}
	propGetETag            = xml.Name{Space: nsDAV, Local: "getetag"}
	propGetContentType     = xml.Name{Space: nsDAV, Local: "getcontenttype"}
	propSyncToken          = xml.Name{Space: nsDAV, Local: "sync-token"}
	propCurrentUserPrinc   = xml.Name{Space: nsDAV, Local: "current-user-principal"}
	propCurrentUserPrivSet = xml.Name{Space: nsDAV, Local: "current-user-privilege-set"}
	propCalendarHomeSet    = xml.Name{Space: nsCalDAV, Local: "calendar-home-set"}
	propCalendarDesc       = xml.Name{Space: nsCalDAV, Local: "calendar-description"}
	propCalendarTimezone   = xml.Name{Space: nsCalDAV, Local: "calendar-timezone"}
	propSupportedCompSet   = xml.Name{Space: nsCalDAV, Local: "supported-calendar-component-set"}
	propCalendarData       = xml.Name{Space: nsCalDAV, Local: "calendar-data"}
	propScheduleInboxURL   = xml.Name{Space: nsCalDAV, Local: "schedule-inbox-URL"}
	propScheduleDefaultCal = xml.Name{Space: nsCalDAV, Local: "schedule-default-calendar-URL"}
	propGetCTag            = xml.Name{Space: nsCS, Local: "getctag"}
	propCalendarColor      = xml.Name{Space: nsApple, Local: "calendar-color"}
)

// node is a generic XML element. Responses are decoded into a tree of these
// and read by name rather than into fixed structs, so that what servers get
// wrong does not matter: elements in the default namespace or in none, a
// property in an unexpected namespace, CDATA (chardata includes it), extra
// elements anywhere.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []*node    `xml:",any"`
}

// parseXML decodes body leniently: not strict (HTML entities, unquoted
// attributes), a UTF-8 byte order mark skipped, Latin-1 accepted.
func parseXML(body []byte) (*node, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = false
	d.Entity = xml.HTMLEntity
	d.CharsetReader = charsetReader
	var root node
	if err := d.Decode(&root); err != nil {
		return nil, err
	}
	return &root, nil
}

// charsetReader lets a declared encoding of UTF-8, US-ASCII or Latin-1
// through (encoding/xml refuses anything but UTF-8 by default).
func charsetReader(label string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return r, nil
	case "iso-8859-1", "latin1", "latin-1", "windows-1252":
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(b))
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return bytes.NewReader(out), nil
	}
	return nil, fmt.Errorf("unsupported charset %q", label)
}

// is reports whether n is the element name, leniently: the namespace must
// match, or be empty (a server that forgot its xmlns).
func (n *node) is(name xml.Name) bool {
	return n.XMLName.Local == name.Local && (n.XMLName.Space == name.Space || n.XMLName.Space == "")
}

// child returns n's first child called name: an exact match first, then one
// with the same local name in any namespace.
func (n *node) child(name xml.Name) *node {
	if n == nil {
		return nil
	}
	for _, ch := range n.Children {
		if ch.is(name) {
			return ch
		}
	}
	for _, ch := range n.Children {
		if ch.XMLName.Local == name.Local {
			return ch
		}
	}
	return nil
}

// all returns n's children with the local name of name (any namespace).
func (n *node) all(name xml.Name) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, ch := range n.Children {
		if ch.XMLName.Local == name.Local {
			out = append(out, ch)
		}
	}
	return out
}

// has reports whether n has a child with the local name of name.
func (n *node) has(name xml.Name) bool { return n.child(name) != nil }

// text is n's character data without surrounding white space.
func (n *node) text() string {
	if n == nil {
		return ""
	}
	return strings.TrimSpace(n.Text)
}

// href is the text of n's DAV:href child, "" if none.
func (n *node) href() string { return n.child(xml.Name{Space: nsDAV, Local: "href"}).text() }

// multistatus is a parsed 207 body.
type multistatus struct {
	responses []msResponse
	syncToken string // RFC 6578: the new token, at the top level
}

// msResponse is one DAV:response.
type msResponse struct {
	href   string // raw, as the server wrote it
	status int    // response-level DAV:status; 0 when there is none (props)
	props  []*node
}

// prop returns the property called name among those with a 2xx propstat.
func (r *msResponse) prop(name xml.Name) *node {
	for _, p := range r.props {
		if p.is(name) {
			return p
		}
	}
	for _, p := range r.props {
		if p.XMLName.Local == name.Local {
			return p
		}
	}
	return nil
}

var (
	elemResponse = xml.Name{Space: nsDAV, Local: "response"}
	elemHref     = xml.Name{Space: nsDAV, Local: "href"}
	elemStatus   = xml.Name{Space: nsDAV, Local: "status"}
	elemPropstat = xml.Name{Space: nsDAV, Local: "propstat"}
	elemProp     = xml.Name{Space: nsDAV, Local: "prop"}
)

// parseMultistatus reads a 207 body. Properties in a propstat whose status
// is not 2xx (Radicale lists the unknown ones under 404) are dropped; a
// propstat without a status counts as 200.
func parseMultistatus(a Account, method string, resp *response) (*multistatus, error) {
	root, err := parseXML(resp.body)
	if err == nil && root.XMLName.Local != "multistatus" {
		err = fmt.Errorf("root element is <%s>, not <multistatus>", root.XMLName.Local)
	}
	if err != nil {
		return nil, redact(&provider.Error{Kind: provider.KindProtocol, Service: service, Addr: hostPort(resp.url),
			Text: fmt.Sprintf("%s %s: unreadable multistatus: %v", method, resp.url.EscapedPath(), err)}, a)
	}
	ms := &multistatus{syncToken: root.child(propSyncToken).text()}
	for _, rn := range root.all(elemResponse) {
		r := msResponse{href: rn.child(elemHref).text(), status: parseStatus(rn.child(elemStatus).text())}
		for _, ps := range rn.all(elemPropstat) {
			if st := parseStatus(ps.child(elemStatus).text()); st != 0 && (st < 200 || st > 299) {
				continue
			}
			for _, pr := range ps.all(elemProp) {
				r.props = append(r.props, pr.Children...)
			}
		}
		ms.responses = append(ms.responses, r)
	}
	return ms, nil
}

// parseStatus reads the code of "HTTP/1.1 404 Not Found"; 0 if there is none.
func parseStatus(s string) int {
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return 0
	}
	return n
}

// propfindBody is a PROPFIND body asking for names.
func propfindBody(names ...xml.Name) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n<d:propfind")
	writeNamespaces(&b)
	b.WriteString("><d:prop>")
	for _, n := range names {
		writeEmpty(&b, n)
	}
	b.WriteString("</d:prop></d:propfind>")
	return b.Bytes()
}

func writeNamespaces(b *bytes.Buffer) {
	for _, p := range prefixes {
		fmt.Fprintf(b, ` xmlns:%s="%s"`, p.prefix, p.ns)
	}
}

// writeEmpty writes <p:name/>.
func writeEmpty(b *bytes.Buffer, n xml.Name) {
	fmt.Fprintf(b, "<%s:%s/>", prefixOf(n.Space), n.Local)
}

// writeText writes <p:name>text</p:name>, text escaped (CR included, so
// that it survives the server's XML parser).
func writeText(b *bytes.Buffer, n xml.Name, text string) {
	fmt.Fprintf(b, "<%s:%s>", prefixOf(n.Space), n.Local)
	_ = xml.EscapeText(b, []byte(text))
	fmt.Fprintf(b, "</%s:%s>", prefixOf(n.Space), n.Local)
}

// xmlType is the Content-Type of request bodies; Xandikos refuses text/xml
// sent as form data, everyone takes this.
const xmlType = "application/xml; charset=utf-8"

// resolve makes href absolute against base (the URL that answered), in
// canonical form (see canonical). Servers that forget to encode spaces are
// forgiven.
func resolve(a Account, base *url.URL, href string) (*url.URL, error) {
	href = strings.TrimSpace(href)
	u, err := url.Parse(href)
	if err != nil {
		u, err = url.Parse(strings.ReplaceAll(href, " ", "%20"))
	}
	if err != nil || href == "" {
		return nil, redact(&provider.Error{Kind: provider.KindProtocol, Service: service, Addr: hostPort(base),
			Text: fmt.Sprintf("bad href %q", href)}, a)
	}
	r := base.ResolveReference(u)
	r.User, r.Fragment = nil, ""
	return canonical(r), nil
}

// canonical spells u the way net/url escapes its decoded path, whatever the
// server wrote: Radicale writes '@' as %40 in hrefs but not in every URL the
// caller builds, and one resource must have one spelling, or a stored href
// and a synced one would not match. An escaped slash (%2F) is kept, since
// decoding it would change the path; the host is lower-cased.
func canonical(u *url.URL) *url.URL {
	v := *u
	if !strings.Contains(strings.ToUpper(v.RawPath), "%2F") {
		v.RawPath = ""
	}
	v.Host = strings.ToLower(v.Host)
	return &v
}

// sameResource reports whether two URLs name the same resource: same
// scheme, host and port (defaulted), and the same decoded path but for a
// trailing slash. Radicale writes '@' as %40 in hrefs, others do not.
func sameResource(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(hostPort(a), hostPort(b)) &&
		pathKey(a) == pathKey(b)
}

// pathKey is u's decoded path without a trailing slash.
func pathKey(u *url.URL) string { return strings.TrimSuffix(u.Path, "/") }

// normalizeETag returns an entity tag with its quotes: as sent when quoted
// (weak ones too), quoted when the server left them out.
func normalizeETag(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, `"`) || strings.HasPrefix(s, `W/"`) {
		return s
	}
	return `"` + s + `"`
}
