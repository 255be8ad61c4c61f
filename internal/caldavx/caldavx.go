// Package caldavx is a thin CalDAV client for Orchard's calendar connectors:
// discovery (with iCloud's calendar home on another host), calendar
// collections (list, MKCALENDAR, PROPPATCH, DELETE), and calendar objects
// (sync-collection, etag listing, multiget, conditional PUT and DELETE).
//
// It speaks HTTP and XML itself (net/http, encoding/xml) instead of going
// through go-webdav's caldav.Client, which v0.6.0 cannot use for this: its
// error path drops the response headers (no Retry-After) and hides the status
// code in an internal type, its hrefs are host-less paths (iCloud's home is on
// pNN-caldav.icloud.com, not on the entry host), it re-encodes calendar data
// through go-ical instead of handing back the server's text, and it has no
// MKCALENDAR, sync-collection for CalDAV, If-Match or getctag. go-ical is used
// where it fits: reading and writing the VTIMEZONE of calendar-timezone.
//
// URLs (homes, calendars, objects) are absolute and canonical: net/url's
// escaping of the decoded path, so that a resource has the same spelling
// whichever response named it (Radicale's hrefs say %40 for '@', its
// Location headers and the URLs a caller builds from a calendar URL do
// not). Requests go out with the URL as given.
//
// Every failure is a *provider.Error with Service "caldav" and Addr the
// host:port that answered (or was being reached); ErrNotFound,
// ErrPreconditionFailed and ErrSyncTokenInvalid are in the chain of the
// errors they name, for errors.Is. Invalid arguments (a malformed URL, an
// Account without Home) are plain errors: they are the caller's bug, not
// the provider's doing. The password never appears in an error.
package caldavx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/orchard-mail/orchard/internal/opconn"
)

const (
	service = "caldav"
	// DefaultTimeout bounds each HTTP request whose context has no deadline,
	// as imapx and smtpx bound their operations.
	DefaultTimeout = opconn.DefaultTimeout
	// DefaultMaxRetries is how often a request is repeated after a 503, a
	// 429 or a network failure when Options.MaxRetries is 0.
	DefaultMaxRetries = 2
	// maxRetryWait caps each wait between attempts, Retry-After included: a
	// server asking for minutes is better answered with KindUnavailable at
	// once, leaving the pacing to the syncer, than with a request that hangs.
	maxRetryWait = 5 * time.Second
	// firstBackoff is the wait before the first retry when the server gives
	// no Retry-After; it doubles with each retry.
	firstBackoff = 250 * time.Millisecond
	// maxRedirects bounds the redirects followed for one request.
	maxRedirects = 5
	// maxBody bounds a response body held in memory. A multiget of 100
	// iCloud events is a few MB; anything beyond this is not a calendar.
	maxBody = 64 << 20
	// multigetBatch is the most hrefs asked for in one calendar-multiget.
	multigetBatch = 100
	// maxSyncRounds bounds the sync-collection requests of one
	// SyncCollection when the server truncates its answers (507).
	maxSyncRounds = 50
)

// Sentinels in the chain of a *provider.Error (Kind KindRejected), for
// errors.Is.
var (
	// ErrNotFound: 404, the calendar or object does not exist (any more).
	ErrNotFound = errors.New("caldavx: not found")
	// ErrPreconditionFailed: 412 on a conditional PUT or DELETE. Someone else
	// changed (or, for a create, already created) the resource since its ETag
	// was read; the API answers 409.
	ErrPreconditionFailed = errors.New("caldavx: precondition failed (resource changed)")
	// ErrSyncTokenInvalid: the server refused the sync token (RFC 6578
	// DAV:valid-sync-token, 403 or 409). The caller falls back to a full
	// listing (ListObjects) and starts over with an empty token.
	ErrSyncTokenInvalid = errors.New("caldavx: sync token no longer valid")
)

// Options configure a Client. The zero value is usable: system roots,
// DefaultTimeout, DefaultMaxRetries.
type Options struct {
	// TLSConfig is cloned; nil means system roots.
	TLSConfig *tls.Config
	// Timeout bounds each HTTP request (its retries and redirects included)
	// whose context has no deadline; 0 means DefaultTimeout. A context
	// deadline always wins.
	Timeout time.Duration
	// MaxRetries is how often a request is repeated after 503, 429 (honouring
	// Retry-After, capped at a few seconds a wait) or a network failure
	// before it fails with KindUnavailable; 0 means DefaultMaxRetries, a
	// negative value none. Requests that change something are repeated
	// only when the server cannot have acted on them (503, 429, a failed
	// dial).
	MaxRetries int
}

// Client is a CalDAV client, safe for concurrent use by many accounts: the
// credentials travel with each call, in Account.
type Client struct {
	hc         *http.Client
	tr         *http.Transport
	timeout    time.Duration
	maxRetries int
}

// New returns a Client with its own connection pool.
func New(o Options) *Client {
	tr := &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		// With a custom TLS configuration net/http does not try HTTP/2 unless
		// told to; iCloud speaks it.
		ForceAttemptHTTP2:   true,
		TLSClientConfig:     o.TLSConfig.Clone(),
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	retries := o.MaxRetries
	switch {
	case retries == 0:
		retries = DefaultMaxRetries
	case retries < 0:
		retries = 0
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{
		hc: &http.Client{
			Transport: tr,
			// Redirects are followed by hand: net/http turns a redirected
			// PROPFIND into a GET (Radicale answers /.well-known/caldav with
			// 301).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		tr:         tr,
		timeout:    timeout,
		maxRetries: retries,
	}
}

// CloseIdleConnections closes the pooled connections that are not in use
// (at shutdown, or after a burst of work for many accounts).
func (c *Client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// Account is one CalDAV login. Password is a secret: it is sent only as
// HTTP Basic credentials, over whatever TLS the URL asks for, and never
// appears in errors or in fmt output of an Account.
type Account struct {
	Username, Password string
	// Home is the absolute URL of the calendar-home-set (with a trailing
	// slash), as Discover returns it; "" before discovery. All calls but
	// Discover need it.
	Home string
}

// String keeps the password out of fmt output (%v, %+v).
func (a Account) String() string { return fmt.Sprintf("{%s home %s}", a.Username, a.Home) }

// GoString does the same for %#v.
func (a Account) GoString() string { return "caldavx.Account" + a.String() }

// Calendar is one event calendar collection.
type Calendar struct {
	URL         string // absolute, canonical (see the package documentation)
	Name        string // DAV:displayname
	Description string // CALDAV:calendar-description
	// ClearDescription asks UpdateCalendar to remove the description (an
	// empty Description leaves it alone).
	ClearDescription bool
	// Timezone is the TZID of the VTIMEZONE in CALDAV:calendar-timezone
	// (normally an IANA name), "" if the calendar has none.
	Timezone string
	// Color is Apple's calendar-color as the server says it, e.g.
	// "#FF2968FF" (#RRGGBBAA) on iCloud; "" if none.
	Color string
	// ReadOnly: the server's current-user-privilege-set for this calendar
	// lacks DAV:write, DAV:write-content and DAV:all (shared read-only,
	// subscribed). False when the server does not report privileges.
	ReadOnly bool
	// Components are the component types the calendar accepts (VEVENT,
	// VTODO…), upper case; nil when the server does not say, which RFC 4791
	// §5.2.3 reads as "any".
	Components []string
	// CTag (calendarserver getctag) and SyncToken (RFC 6578) change whenever
	// the calendar's content changes; "" when the server has none.
	CTag, SyncToken string
}

// ObjectRef names one calendar object resource and its current version.
type ObjectRef struct {
	Href string // absolute URL, canonical
	// ETag is the entity tag as on the wire, quotes included ("abc"); values
	// a server gives without quotes are quoted, so that ETags from headers
	// and from properties compare equal.
	ETag string
}

// Object is one calendar object resource with its iCalendar text.
type Object struct {
	Href, ETag string
	// Data is the iCalendar text as the server stored it, with CRLF line
	// ends (XML parsing turns them into LF; they are put back) and with the
	// VTIMEZONEs it references.
	Data []byte
}
