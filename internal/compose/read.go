package compose

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// Read parses a message — a draft as Build wrote it, or one another client
// saved — back into a Message: addresses, subject, the HTML (or plain)
// body, threading headers, custom headers (every field Build does not
// write itself, so that a draft read back and built again keeps them) and
// every attachment with its bytes. What another client wrote that Build
// would refuse (a malformed Message-ID in References, a header field too
// long to write back) is dropped rather than making the draft unusable. Parts it cannot decode are an error rather than silently lost,
// since the Message is written back in their place.
func Read(r io.Reader) (*Message, error) {
	mr, err := mail.CreateReader(r)
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("compose: read message: %w", err)
	}
	defer mr.Close()
	h := mr.Header
	m := &Message{}
	list := func(key string) []Address {
		l, _ := h.AddressList(key) // an unreadable list reads as empty, as clients show it
		out := make([]Address, 0, len(l))
		for _, a := range l {
			out = append(out, Address{Name: a.Name, Email: a.Address})
		}
		return out
	}
	if from := list("From"); len(from) > 0 {
		m.From = from[0]
	}
	m.To, m.Cc, m.Bcc, m.ReplyTo = list("To"), list("Cc"), list("Bcc"), list("Reply-To")
	if m.Subject, err = h.Subject(); err != nil {
		m.Subject = h.Get("Subject")
	}
	if id, _ := h.MessageID(); ValidMessageID(id) {
		m.MessageID = id
	}
	if ids, _ := h.MsgIDList("In-Reply-To"); len(ids) > 0 && ValidMessageID(ids[0]) {
		m.InReplyTo = ids[0]
	}
	refs, _ := h.MsgIDList("References")
	m.References = ValidMessageIDs(refs)
	m.Date, _ = h.Date()
	fields := h.Fields()
	for fields.Next() {
		hd := Header{Name: fields.Key(), Value: fields.Value()}
		if (&validator{}).header("", hd) {
			m.Headers = append(m.Headers, hd)
		}
	}

	var text string
	html, sawHTML := "", false
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return nil, fmt.Errorf("compose: read part: %w", err)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			return nil, fmt.Errorf("compose: read part: %w", err)
		}
		ct, params, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		disp, dparams, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		isFile := disp == "attachment" || dparams["filename"] != "" || params["name"] != "" ||
			(ct != "" && ct != "text/plain" && ct != "text/html")
		switch {
		case !isFile && ct == "text/html" && !sawHTML:
			html, sawHTML = string(body), true
			continue
		case !isFile && (ct == "text/plain" || ct == "") && text == "":
			text = string(body)
			continue
		}
		a := Attachment{ContentType: ct, Content: body,
			ContentID: strings.Trim(p.Header.Get("Content-Id"), "<> ")}
		if a.Filename = dparams["filename"]; a.Filename == "" {
			a.Filename = params["name"]
		}
		if dec, err := new(mime.WordDecoder).DecodeHeader(a.Filename); err == nil {
			a.Filename = dec
		}
		a.Inline = disp != "attachment" && a.ContentID != ""
		m.Attachments = append(m.Attachments, a)
	}
	if sawHTML {
		m.Body = html
	} else {
		m.Body, m.PlainText = text, true
	}
	return m, nil
}
