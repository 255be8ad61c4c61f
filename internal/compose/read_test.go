package compose

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// A draft built and read back is the same message, so an update that
// changes one field keeps all the others.
func TestReadRoundTrip(t *testing.T) {
	in := &Message{
		From: Address{Name: "Zoë", Email: "zoe@example.test"},
		To:   []Address{{Name: "Bob, Jr.", Email: "bob@example.test"}}, Cc: []Address{{Email: "c@example.test"}},
		Bcc: []Address{{Email: "hidden@example.test"}}, ReplyTo: []Address{{Email: "r@example.test"}},
		Subject:   "Grüße 🍎 " + strings.Repeat("long ", 30),
		Body:      `<p>Hello</p><img src="cid:pic@x">`,
		MessageID: "draft-1@example.test", Date: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC),
		InReplyTo: "orig@example.test", References: []string{"root@example.test", "orig@example.test"},
		Headers: []Header{{Name: "X-Custom", Value: "one"}, {Name: "X-Other", Value: "two"}},
		Attachments: []Attachment{
			{Filename: "rates €.pdf", ContentType: "application/pdf", Content: bytes.Repeat([]byte{0, 0xff, 7}, 3000)},
			{Filename: "pic.png", ContentType: "image/png", Content: []byte("PNG"), ContentID: "pic@x", Inline: true},
		},
		IncludeBcc: true,
	}
	var b bytes.Buffer
	if err := Build(&b, in); err != nil {
		t.Fatal(err)
	}
	out, err := Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	out.IncludeBcc = true
	if !out.Date.Equal(in.Date) {
		t.Errorf("Date %v", out.Date)
	}
	out.Date = in.Date
	// The inline part is written with the HTML, before the attachments.
	slices.SortFunc(out.Attachments, func(a, b Attachment) int { return strings.Compare(b.Filename, a.Filename) })
	for i := range min(len(out.Attachments), len(in.Attachments)) {
		if !bytes.Equal(out.Attachments[i].Content, in.Attachments[i].Content) {
			t.Errorf("attachment %d: %d bytes differ", i, len(out.Attachments[i].Content))
		}
		out.Attachments[i].Content, in.Attachments[i].Content = nil, nil
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("read back:\n%+v\nbuilt from:\n%+v", out, in)
	}
}

// What another client wrote and Build would refuse is dropped, not fatal.
func TestReadForeignDraft(t *testing.T) {
	raw := "From: a@example.test\r\nSubject: plain\r\nMessage-ID: <ok@example.test>\r\n" +
		"References: <good@example.test> <bad id@>\r\nX-Long: " + strings.Repeat("x", 1200) + "\r\n" +
		"X-Keep: yes\r\nContent-Type: text/plain; charset=utf-8\r\n\r\njust text\r\n"
	m, err := Read(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !m.PlainText || m.Body != "just text\r\n" || m.MessageID != "ok@example.test" {
		t.Errorf("body %q plain %v id %q", m.Body, m.PlainText, m.MessageID)
	}
	if !reflect.DeepEqual(m.References, []string{"good@example.test"}) || !reflect.DeepEqual(m.Headers, []Header{{Name: "X-Keep", Value: "yes"}}) {
		t.Errorf("references %q headers %q", m.References, m.Headers)
	}
	var b bytes.Buffer
	if err := Build(&b, m); err != nil {
		t.Fatalf("a read draft must build again: %v", err)
	}
}
