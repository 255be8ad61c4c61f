package compose

import (
	"fmt"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Problem is one thing wrong with a Message.
type Problem struct {
	// Field is the JSON path of the request field at fault, as the API
	// names it: "to[1].email", "subject", "custom_headers[0].name",
	// "attachments[2].content_id". It is "" only for the note that more
	// problems were left out.
	Field   string
	Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// Error lists every problem Validate found, in the order of the fields.
// Its text is meant for the API caller.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.String()
	}
	return strings.Join(s, "; ")
}

// Limits that validation enforces.
const (
	MaxHeaders     = 1000 // custom headers per message
	maxEmail       = 254  // RFC 5321 §4.5.3.1.3: a path is 256 with its brackets
	maxDisplayName = 256
	maxFilename    = 255 // what file systems hold
	maxID          = 900 // a Message-ID or Content-ID, brackets and field name fit in a line
	maxProblems    = 50  // hostile input must not make an error of megabytes
)

// protectedHeaders are written by Orchard (or by the servers on the way);
// a custom header may not set them. Content-* is checked apart.
var protectedHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "reply-to": true, "sender": true,
	"subject": true, "date": true, "message-id": true, "in-reply-to": true,
	"references": true, "mime-version": true, "return-path": true, "received": true,
	"dkim-signature": true,
}

type validator struct {
	problems []Problem
	dropped  int
}

func (v *validator) add(field, format string, args ...any) {
	if len(v.problems) >= maxProblems {
		v.dropped++
		return
	}
	v.problems = append(v.problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Validate checks m and returns an *Error that lists every problem, or nil.
// requireRecipients asks for at least one of To, Cc and Bcc, as a send
// does; a draft may have none.
func (m *Message) Validate(requireRecipients bool) error {
	var v validator
	if m.From.Email == "" && m.From.Name == "" {
		v.add("from", "a sender is required")
	} else {
		v.address("from[0]", m.From)
	}
	if requireRecipients && len(m.To)+len(m.Cc)+len(m.Bcc) == 0 {
		v.add("to", "at least one recipient is required in to, cc or bcc")
	}
	v.addresses("to", m.To)
	v.addresses("cc", m.Cc)
	v.addresses("bcc", m.Bcc)
	v.addresses("reply_to", m.ReplyTo)
	if p := textProblem(m.Subject, true); p != "" {
		v.add("subject", "%s", p)
	}
	if !utf8.ValidString(m.Body) {
		v.add("body", "must be valid UTF-8")
	}
	if m.MessageID != "" {
		if p := idProblem(m.MessageID); p != "" {
			v.add("message_id", "%s", p)
		}
	}
	if m.InReplyTo != "" {
		if p := idProblem(m.InReplyTo); p != "" {
			v.add("reply_to_message_id", "In-Reply-To: %s", p)
		}
	}
	for _, id := range m.References {
		if p := idProblem(id); p != "" {
			v.add("reply_to_message_id", "References: %s", p)
		}
	}
	v.headers(m.Headers)
	v.attachments(m.Attachments)
	if v.dropped > 0 {
		v.problems = append(v.problems, Problem{Message: fmt.Sprintf("and %d more problems", v.dropped)})
	}
	if len(v.problems) > 0 {
		return &Error{Problems: v.problems}
	}
	return nil
}

func (v *validator) addresses(field string, l []Address) {
	for i, a := range l {
		v.address(field+"["+strconv.Itoa(i)+"]", a)
	}
}

func (v *validator) address(field string, a Address) {
	if p := emailProblem(a.Email); p != "" {
		v.add(field+".email", "%s", p)
	}
	if p := textProblem(a.Name, false); p != "" {
		v.add(field+".name", "%s", p)
	} else if len(a.Name) > maxDisplayName {
		v.add(field+".name", "is %d bytes long, at most %d are allowed", len(a.Name), maxDisplayName)
	}
}

// emailProblem checks that e is one bare addr-spec ("user@example.com"),
// which is what goes between the angle brackets and into RCPT TO.
func emailProblem(e string) string {
	switch {
	case e == "":
		return "is required"
	case strings.ContainsAny(e, "\r\n"):
		return "must not contain line breaks"
	case !isASCII(e):
		// Without SMTPUTF8 (RFC 6531), which Orchard does not speak, an
		// address must be ASCII; an IDN domain can be given as punycode.
		return fmt.Sprintf("%s: internationalized addresses are not supported", strconv.Quote(e))
	case len(e) > maxEmail:
		return fmt.Sprintf("is %d characters long, at most %d are allowed", len(e), maxEmail)
	}
	a, err := mail.ParseAddress(e)
	// net/mail also accepts "Name <a@b>" and "a@b (comment)": only a bare
	// address that it writes back as it was given is one addr-spec.
	if err != nil || a.Name != "" || (&mail.Address{Address: a.Address}).String() != "<"+e+">" {
		return fmt.Sprintf("%s is not a valid email address", strconv.Quote(e))
	}
	return ""
}

// textProblem checks text that goes in a header: UTF-8, no line breaks, no
// control characters (tabs only where allowTab).
func textProblem(s string, allowTab bool) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if strings.ContainsAny(s, "\r\n") {
		return "must not contain line breaks"
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(allowTab && r == '\t') {
			return fmt.Sprintf("must not contain control characters (%U)", r)
		}
	}
	return ""
}

// idProblem checks a Message-ID given without its angle brackets.
func idProblem(id string) string {
	switch {
	case id == "":
		return "an empty Message-ID"
	case len(id) >= 2 && id[0] == '<' && id[len(id)-1] == '>':
		return fmt.Sprintf("%s must be given without angle brackets", strconv.Quote(id))
	case len(id) > maxID:
		return fmt.Sprintf("a Message-ID of %d characters, at most %d are allowed", len(id), maxID)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 33 || c > 126 || c == '<' || c == '>' {
			return fmt.Sprintf("%s is not a valid Message-ID: use printable ASCII without spaces or angle brackets", strconv.Quote(id))
		}
	}
	return ""
}

// ValidMessageID reports whether id (without angle brackets) can be written
// as a Message-ID, In-Reply-To or References entry. Ids read from received
// mail may not pass; a caller building References from them can drop those.
func ValidMessageID(id string) bool { return idProblem(id) == "" }

// ValidMessageIDs returns the ids that ValidMessageID accepts, in order.
func ValidMessageIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if ValidMessageID(id) {
			out = append(out, id)
		}
	}
	return out
}

func (v *validator) headers(hs []Header) {
	if len(hs) > MaxHeaders {
		v.add("custom_headers", "at most %d headers are allowed, got %d", MaxHeaders, len(hs))
	}
	for i, h := range hs {
		v.header("custom_headers["+strconv.Itoa(i)+"]", h)
	}
}

// header checks one custom header field under the request field f and
// reports whether it may be written.
func (v *validator) header(f string, h Header) bool {
	before := len(v.problems) + v.dropped
	name := strings.ToLower(h.Name)
	switch {
	case h.Name == "":
		v.add(f+".name", "must not be empty")
	case !validFieldName(h.Name):
		v.add(f+".name", "%s is not a valid header name: use printable ASCII without spaces or \":\"", strconv.Quote(h.Name))
	case protectedHeaders[name] || strings.HasPrefix(name, "content-"):
		v.add(f+".name", "%s is set by Orchard and cannot be overridden", strconv.Quote(h.Name))
	}
	if p := textProblem(h.Value, true); p != "" {
		v.add(f+".value", "%s", p)
	} else if n := len(h.Name) + len(": ") + len(h.Value); n > maxLine {
		v.add(f+".value", "%s is too long: name and value must fit in %d bytes, got %d", strconv.Quote(h.Name), maxLine, n)
	}
	return len(v.problems)+v.dropped == before
}

// validFieldName: RFC 5322 §3.6.8, printable ASCII except ":".
func validFieldName(n string) bool {
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return n != ""
}

func (v *validator) attachments(as []Attachment) {
	seen := map[string]int{} // lowercased content id → index
	for i, a := range as {
		f := "attachments[" + strconv.Itoa(i) + "]"
		if p := textProblem(a.Filename, false); p != "" {
			v.add(f+".filename", "%s", p)
		} else if len(a.Filename) > maxFilename {
			v.add(f+".filename", "is %d bytes long, at most %d are allowed", len(a.Filename), maxFilename)
		}
		if a.ContentType != "" {
			t, _, err := mime.ParseMediaType(a.ContentType)
			switch {
			case err != nil:
				v.add(f+".content_type", "%s is not a valid media type (type/subtype)", strconv.Quote(a.ContentType))
			case strings.HasPrefix(t, "multipart/"):
				v.add(f+".content_type", "%s cannot be attached: a multipart type is a container, not a file", strconv.Quote(a.ContentType))
			}
		}
		if a.ContentID == "" {
			continue
		}
		if p := contentIDProblem(a.ContentID); p != "" {
			v.add(f+".content_id", "%s", p)
			continue
		}
		key := strings.ToLower(a.ContentID)
		if j, dup := seen[key]; dup {
			// cid: references match case-insensitively (mimeconv, most
			// clients), so ids that differ only in case are one id.
			v.add(f+".content_id", "%s is also the content id of attachments[%d]", strconv.Quote(a.ContentID), j)
			continue
		}
		seen[key] = i
	}
}

// contentIDProblem checks a Content-ID given without angle brackets. It must
// also work as a "cid:" URL in HTML, so quotes and the RFC 5322 specials
// other than "@" and "." are refused along with blanks.
func contentIDProblem(id string) string {
	switch {
	case len(id) >= 2 && id[0] == '<' && id[len(id)-1] == '>':
		return fmt.Sprintf("%s must be given without angle brackets", strconv.Quote(id))
	case len(id) > maxID:
		return fmt.Sprintf("is %d characters long, at most %d are allowed", len(id), maxID)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 33 || c > 126 || strings.IndexByte(`()<>[]:;\,"'`, c) >= 0 {
			return fmt.Sprintf("%s is not a valid content id: use printable ASCII without spaces, quotes or ()<>[]:;\\,", strconv.Quote(id))
		}
	}
	return ""
}
