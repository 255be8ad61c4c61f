package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// Notification sources (the envelope's "source"). Nylas documents no
// source for IMAP or CalDAV grants; receivers accept any string.
const (
	SourceSystem   = "/nylas/system"           // grant.*
	SourceMail     = "/imap/emails/realtime"   // message.*, folder.*
	SourceCalendar = "/caldav/events/realtime" // calendar.*, event.*
)

// Renderer turns a change row into the notification to send, reading the
// object as it is now. The service implements it.
type Renderer interface {
	// Render returns false when the change notifies nothing (a thread
	// row, a message.deleted, mail from the initial sync, an object gone
	// since). The notification's type must start with the change's
	// ObjectType and a dot (a "message" row is message.something): changes
	// of a kind no webhook subscribes to are not rendered at all. An error wrapping store.ErrNotFound skips the change like
	// false; any other error is taken as transient: the dispatcher stops
	// its batch at that change and renders it again later, so a change is
	// never skipped because the database blinked. A permanent problem must
	// therefore be answered with false, not an error.
	Render(ctx context.Context, ch store.Change) (Notification, bool, error)
}

// RenderFunc adapts a function to Renderer.
type RenderFunc func(ctx context.Context, ch store.Change) (Notification, bool, error)

// Render calls f.
func (f RenderFunc) Render(ctx context.Context, ch store.Change) (Notification, bool, error) {
	return f(ctx, ch)
}

// Notification is what one change notifies, before it is addressed to
// webhooks.
type Notification struct {
	ApplicationID string // whose webhooks receive it; required
	GrantID       string // data.grant_id; "" leaves it out
	Type          string // trigger type, e.g. message.created; required
	Source        string // e.g. SourceMail
	// Object is data.object: the full API object, as GET returns it. For
	// message.* types whose envelope exceeds MaxPayload the dispatcher
	// removes "body" and "raw_mime" and sends the .truncated type.
	// Encode it with SetEscapeHTML(false): json.Marshal's \u003c for every
	// '<' makes an HTML body up to six times larger.
	Object json.RawMessage
}

// MaxPayload is the default size limit of a notification body: over it,
// message.* notifications become .truncated (nylas-v3-api.md §6.3, "1 MB";
// the decimal megabyte, so that receivers with either limit accept it).
const MaxPayload = 1_000_000

// attemptFieldReserve bounds the length of `,"webhook_delivery_attempt":N`
// added to the stored payload at each attempt.
const attemptFieldReserve = len(`,"webhook_delivery_attempt":`) + 20

// triggers are the types Orchard sends (and Mock knows). Subscribing to a
// base message type also delivers its .truncated variant.
var triggers = []string{
	"grant.created", "grant.updated", "grant.deleted", "grant.expired",
	"message.created", "message.updated", "message.deleted",
	"message.created.truncated", "message.updated.truncated",
	"folder.created", "folder.updated", "folder.deleted",
	"calendar.created", "calendar.updated", "calendar.deleted",
	"event.created", "event.updated", "event.deleted",
}

// Triggers returns the trigger types Orchard can send.
func Triggers() []string { return slices.Clone(triggers) }

// subscribed reports whether w wants notifications of type typ: listed,
// or typ is a .truncated variant of a listed type.
func subscribed(w *store.Webhook, typ string) bool {
	if slices.Contains(w.TriggerTypes, typ) {
		return true
	}
	base, ok := strings.CutSuffix(typ, ".truncated")
	return ok && slices.Contains(w.TriggerTypes, base)
}

// envelope is a notification's payload around its id: head + quoted id +
// tail is the stored body (without webhook_delivery_attempt), so one
// rendering serves every webhook, each with its own notification id.
type envelope struct {
	typ        string
	head, tail []byte
}

type envelopeData struct {
	ApplicationID string          `json:"application_id"`
	GrantID       string          `json:"grant_id,omitempty"`
	Object        json.RawMessage `json:"object"`
}

// buildEnvelope lays out
//
//	{"specversion":"1.0","type":…,"source":…,"id":…,"time":…,"data":{…}}
//
// and, for message.* types over maxPayload, strips the body and appends
// .truncated to the type.
func buildEnvelope(n Notification, at time.Time, maxPayload int) (envelope, error) {
	typ := n.Type
	env, err := layout(n, typ, n.Object, at)
	if err != nil {
		return env, err
	}
	idLen := len(`"00000000-0000-0000-0000-000000000000"`)
	if len(env.head)+idLen+len(env.tail)+attemptFieldReserve <= maxPayload ||
		!strings.HasPrefix(typ, "message.") || strings.HasSuffix(typ, ".truncated") {
		return env, nil
	}
	obj, err := stripBody(n.Object)
	if err != nil {
		return env, err
	}
	return layout(n, typ+".truncated", obj, at)
}

func layout(n Notification, typ string, obj json.RawMessage, at time.Time) (envelope, error) {
	var data bytes.Buffer
	enc := json.NewEncoder(&data)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(envelopeData{ApplicationID: n.ApplicationID, GrantID: n.GrantID, Object: obj}); err != nil {
		return envelope{}, fmt.Errorf("webhook: encode %s notification: %w", typ, err)
	}
	head := `{"specversion":"1.0","type":` + quote(typ) + `,"source":` + quote(n.Source) + `,"id":`
	tail := make([]byte, 0, data.Len()+40)
	tail = append(tail, `,"time":`...)
	tail = strconv.AppendInt(tail, at.Unix(), 10)
	tail = append(tail, `,"data":`...)
	tail = append(tail, bytes.TrimSuffix(data.Bytes(), []byte("\n"))...)
	tail = append(tail, '}')
	return envelope{typ: typ, head: []byte(head), tail: tail}, nil
}

// payload is the stored body of the notification with this id.
func (e envelope) payload(id string) []byte {
	q := quote(id)
	out := make([]byte, 0, len(e.head)+len(q)+len(e.tail))
	out = append(out, e.head...)
	out = append(out, q...)
	return append(out, e.tail...)
}

// stripBody removes the message content from a message object.
func stripBody(obj json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, fmt.Errorf("webhook: truncate message object: %w", err)
	}
	delete(m, "body")
	delete(m, "raw_mime")
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("webhook: truncate message object: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// dataField starts the envelope's last field; the attempt number goes
// before it. Nothing earlier in the envelope can contain it: the fields
// before are JSON strings, in which every '"' is escaped.
var dataField = []byte(`,"data":`)

// withAttempt returns the body of attempt n of a stored payload:
// webhook_delivery_attempt set after time, as Nylas lays it out.
func withAttempt(payload []byte, n int) ([]byte, error) {
	field := strconv.AppendInt([]byte(`,"webhook_delivery_attempt":`), int64(n), 10)
	i := bytes.Index(payload, dataField)
	if i < 0 {
		// Not laid out by buildEnvelope: put the field first.
		p := bytes.TrimLeft(payload, " \t\r\n")
		if len(p) < 2 || p[0] != '{' {
			return nil, fmt.Errorf("webhook: stored payload is not a JSON object")
		}
		out := append([]byte(`{`), field[1:]...)
		if rest := bytes.TrimLeft(p[1:], " \t\r\n"); len(rest) > 0 && rest[0] != '}' {
			out = append(out, ',')
		}
		return append(out, p[1:]...), nil
	}
	out := make([]byte, 0, len(payload)+len(field))
	out = append(out, payload[:i]...)
	out = append(out, field...)
	return append(out, payload[i:]...), nil
}
