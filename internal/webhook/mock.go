package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/api"
)

// MockSecret signs SendTest's notification (Nylas's send-test-event).
const MockSecret = "mock-webhook-secret"

// ErrUnknownTrigger is wrapped by Mock and SendTest for a trigger type
// Orchard does not send (an API 400).
var ErrUnknownTrigger = errors.New("unknown trigger type")

// Example ids of the mock notifications.
const (
	mockApplicationID = "mock-application-id"
	mockGrantID       = "mock-grant-id"
	mockEmail         = "jane.doe@icloud.com"
)

// Mock returns an example notification of a trigger type, as it would be
// POSTed (attempt 1), for POST /v3/webhooks/mock-payload.
func Mock(triggerType string) (json.RawMessage, error) {
	return mock(triggerType, time.Now())
}

func mock(triggerType string, now time.Time) (json.RawMessage, error) {
	obj, source, err := mockObject(triggerType, now)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, fmt.Errorf("webhook: mock %s: %w", triggerType, err)
	}
	n := Notification{ApplicationID: mockApplicationID, Type: triggerType, Source: source, Object: b.Bytes()}
	// layout, not buildEnvelope: the example never needs truncating, and a
	// .truncated type is asked for by name.
	env, err := layout(n, triggerType, n.Object, now)
	if err != nil {
		return nil, err
	}
	return withAttempt(env.payload(newID()), 1)
}

func mockObject(typ string, now time.Time) (obj any, source string, err error) {
	kind, action, _ := strings.Cut(typ, ".")
	truncated := strings.HasSuffix(action, ".truncated")
	action = strings.TrimSuffix(action, ".truncated")
	if !isTrigger(typ) {
		return nil, "", fmt.Errorf("%w %q", ErrUnknownTrigger, typ)
	}
	ts := now.Add(-time.Minute).Unix()
	switch kind {
	case "grant":
		g := map[string]any{"code": map[string]int{"created": 25012, "updated": 25014, "deleted": 25013, "expired": 25009}[action],
			"grant_id": mockGrantID, "integration_id": mockApplicationID, "provider": "icloud", "email": mockEmail, "name": "Jane Doe"}
		switch action {
		case "updated":
			g["reauthentication_flag"] = false
		case "expired":
			g["grant_updated_at"] = ts
		}
		return g, SourceSystem, nil
	case "message":
		if action == "deleted" {
			return map[string]string{"id": "mock-message-id", "grant_id": mockGrantID, "object": "message"}, SourceMail, nil
		}
		m := api.Message{Object: "message", ID: "mock-message-id", GrantID: mockGrantID, ThreadID: "mock-thread-id",
			Subject: "Hello from Orchard", From: []api.Participant{{Name: "John Smith", Email: "john@example.com"}},
			To: []api.Participant{{Name: "Jane Doe", Email: mockEmail}}, Cc: []api.Participant{}, Bcc: []api.Participant{},
			ReplyTo: []api.Participant{}, Date: ts, Unread: action == "created", Folders: []string{"mock-inbox-folder-id"},
			Snippet: "This is an example message.", Body: "<div>This is an example message.</div>",
			Attachments: []api.Attachment{}, Metadata: map[string]any{}, CreatedAt: ts}
		if truncated {
			b, err := json.Marshal(m)
			if err != nil {
				return nil, "", err
			}
			stripped, err := stripBody(b)
			return stripped, SourceMail, err
		}
		return m, SourceMail, nil
	case "folder":
		if action == "deleted" {
			return map[string]string{"id": "mock-folder-id", "grant_id": mockGrantID, "object": "folder"}, SourceMail, nil
		}
		return api.Folder{Object: "folder", ID: "mock-folder-id", GrantID: mockGrantID, Name: "Receipts",
			Attributes: []string{`\HasNoChildren`}, TotalCount: 3, UnreadCount: 1}, SourceMail, nil
	case "calendar":
		if action == "deleted" {
			return map[string]string{"id": "mock-calendar-id", "grant_id": mockGrantID, "object": "calendar"}, SourceCalendar, nil
		}
		return api.Calendar{Object: "calendar", ID: "mock-calendar-id", GrantID: mockGrantID, Name: "Work",
			Timezone: "Europe/Paris", HexColor: "#1BADF8", IsOwnedByUser: true, Metadata: map[string]string{}}, SourceCalendar, nil
	default: // event
		if action == "deleted" {
			return map[string]string{"id": "mock-event-id", "grant_id": mockGrantID, "calendar_id": "mock-calendar-id",
				"object": "event"}, SourceCalendar, nil
		}
		start := now.Truncate(time.Hour).Add(24 * time.Hour)
		return api.Event{Object: "event", ID: "mock-event-id", GrantID: mockGrantID, CalendarID: "mock-calendar-id",
			Title: "Project sync", Description: "Weekly status", Location: "Room 4",
			When: api.When{Object: "timespan", StartTime: start.Unix(), EndTime: start.Add(time.Hour).Unix(),
				StartTimezone: "UTC", EndTimezone: "UTC"},
			Participants: []api.EventParticipant{{Email: "john@example.com", Name: "John Smith", Status: "yes"}},
			Organizer:    &api.EventPerson{Name: "Jane Doe", Email: mockEmail}, Busy: true, Status: "confirmed",
			ICalUID: "mock-event-id@orchard", Metadata: map[string]string{}, CreatedAt: ts, UpdatedAt: ts}, SourceCalendar, nil
	}
}

func isTrigger(t string) bool { return slices.Contains(triggers, t) }

// SendTest POSTs one Mock notification of triggerType to url, signed with
// MockSecret (POST /v3/webhooks/send-test-event), and reports an answer
// other than 2xx within VerifyTimeout as an error. client nil means
// http.DefaultClient.
func SendTest(ctx context.Context, client *http.Client, url, triggerType string) error {
	if client == nil {
		client = http.DefaultClient
	}
	body, err := Mock(triggerType)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, VerifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("send test event: webhook_url %q: %v", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(SignatureHeader, Sign([]byte(MockSecret), body))
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("send test event: POST %s did not answer within %v", url, VerifyTimeout)
		}
		return fmt.Errorf("send test event: POST %s: %v", url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("send test event: POST %s answered %s", url, resp.Status)
	}
	return nil
}
