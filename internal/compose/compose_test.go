package compose

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/orchard-mail/orchard/internal/mimeconv"
	"github.com/orchard-mail/orchard/internal/store"
)

// ---- helpers ----

func build(t testing.TB, m *Message) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Build(&b, m); err != nil {
		t.Fatalf("Build: %v", err)
	}
	checkLines(t, b.Bytes(), maxLine)
	return b.Bytes()
}

// checkLines fails on a bare CR or LF or a line longer than max.
func checkLines(t testing.TB, raw []byte, max int) {
	t.Helper()
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			t.Fatalf("bare LF at byte %d: %q", i, context(raw, i))
		}
		if c == '\r' && (i+1 == len(raw) || raw[i+1] != '\n') {
			t.Fatalf("bare CR at byte %d: %q", i, context(raw, i))
		}
	}
	for n, l := range bytes.Split(raw, []byte("\r\n")) {
		if len(l) > max {
			t.Fatalf("line %d is %d characters long (max %d): %q", n+1, len(l), max, l)
		}
	}
}

func context(b []byte, i int) []byte {
	return b[max(0, i-30):min(len(b), i+30)]
}

// headerLines returns the physical lines of the top-level header block.
func headerLines(raw []byte) []string {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	return strings.Split(string(raw[:end]), "\r\n")
}

// leaf is a non-multipart entity read back with go-message.
type leaf struct {
	ctype   string
	params  map[string]string
	disp    string
	dparams map[string]string
	header  message.Header
	body    []byte // transfer encoding (and for text/*, charset) decoded
}

// walk reads raw with go-message and returns its MIME tree, e.g.
// "mixed[alternative[text/plain,text/html],application/pdf]", and the
// leaves in order.
func walk(t *testing.T, raw []byte) (string, []leaf) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message.Read: %v", err)
	}
	var leaves []leaf
	var visit func(e *message.Entity) string
	visit = func(e *message.Entity) string {
		ct, params, err := e.Header.ContentType()
		if err != nil {
			t.Fatalf("Content-Type %q: %v", e.Header.Get("Content-Type"), err)
		}
		if mr := e.MultipartReader(); mr != nil {
			var kids []string
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("NextPart: %v", err)
				}
				kids = append(kids, visit(p))
			}
			return strings.TrimPrefix(ct, "multipart/") + "[" + strings.Join(kids, ",") + "]"
		}
		body, err := io.ReadAll(e.Body)
		if err != nil {
			t.Fatalf("reading %s: %v", ct, err)
		}
		disp, dparams, _ := e.Header.ContentDisposition()
		leaves = append(leaves, leaf{ctype: ct, params: params, disp: disp, dparams: dparams, header: e.Header, body: body})
		return ct
	}
	return visit(e), leaves
}

func parse(t *testing.T, raw []byte) *mimeconv.Message {
	t.Helper()
	m, err := mimeconv.Parse(bytes.NewReader(raw), mimeconv.Limits{})
	if err != nil {
		t.Fatalf("mimeconv.Parse: %v", err)
	}
	if len(m.Problems) > 0 {
		t.Fatalf("mimeconv found problems in Build's output: %q", m.Problems)
	}
	return m
}

func readHeader(t *testing.T, raw []byte) mail.Header {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("mail.CreateReader: %v", err)
	}
	return r.Header
}

func addrList(t *testing.T, h mail.Header, key string) []Address {
	t.Helper()
	l, err := h.AddressList(key)
	if err != nil {
		t.Fatalf("%s %q: %v", key, h.Get(key), err)
	}
	var out []Address
	for _, a := range l {
		out = append(out, Address{Name: a.Name, Email: a.Address})
	}
	return out
}

func participants(l []Address) []store.Participant {
	var out []store.Participant
	for _, a := range l {
		out = append(out, store.Participant{Name: a.Name, Email: a.Email})
	}
	return out
}

var (
	png  = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR fake image bytes \x00\xff")
	pdf  = []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\nbinary \x00\x01\x02 tail")
	date = time.Date(2026, 3, 14, 15, 9, 26, 0, time.FixedZone("", 2*3600))
)

func base() *Message {
	return &Message{
		From:      Address{Name: "Ann Sender", Email: "ann@example.com"},
		To:        []Address{{Name: "Bob", Email: "bob@example.org"}},
		Subject:   "Hello",
		Body:      "<p>Hello <b>Bob</b></p>",
		MessageID: "fixed-1@example.com",
		Date:      date,
	}
}

// ---- structure ----

func TestBuildStructure(t *testing.T) {
	logo := Attachment{Filename: "logo.png", Content: png, ContentID: "logo", Inline: true}
	report := Attachment{Filename: "report.pdf", Content: pdf}
	withImg := `<p>Hi</p><img src="cid:logo">`
	cases := []struct {
		name  string
		edit  func(m *Message)
		tree  string
		disps []string // Content-Disposition of each leaf
	}{
		{"plain text", func(m *Message) { m.PlainText, m.Body = true, "Hi Bob" },
			"text/plain", []string{""}},
		{"plain text with attachment", func(m *Message) {
			m.PlainText, m.Body, m.Attachments = true, "Hi", []Attachment{report}
		}, "mixed[text/plain,application/pdf]", []string{"", "attachment"}},
		{"html", func(m *Message) {},
			"alternative[text/plain,text/html]", []string{"", ""}},
		{"empty html body", func(m *Message) { m.Body = "" },
			"alternative[text/plain,text/html]", []string{"", ""}},
		{"html with inline image", func(m *Message) { m.Body, m.Attachments = withImg, []Attachment{logo} },
			"alternative[text/plain,related[text/html,image/png]]", []string{"", "", "inline"}},
		{"html with inline image and attachment", func(m *Message) {
			m.Body, m.Attachments = withImg, []Attachment{report, logo}
		}, "mixed[alternative[text/plain,related[text/html,image/png]],application/pdf]",
			[]string{"", "", "inline", "attachment"}},
		{"inline without content id is attached", func(m *Message) {
			a := logo
			a.ContentID = ""
			m.Body, m.Attachments = withImg, []Attachment{a}
		}, "mixed[alternative[text/plain,text/html],image/png]", []string{"", "", "attachment"}},
		{"inline that the html does not use is attached", func(m *Message) {
			m.Attachments = []Attachment{logo}
		}, "mixed[alternative[text/plain,text/html],image/png]", []string{"", "", "attachment"}},
		{"referenced but not inline is attached", func(m *Message) {
			a := logo
			a.Inline = false
			m.Body, m.Attachments = withImg, []Attachment{a}
		}, "mixed[alternative[text/plain,text/html],image/png]", []string{"", "", "attachment"}},
		{"inline in a plain text message is attached", func(m *Message) {
			m.PlainText, m.Body, m.Attachments = true, "see cid:logo", []Attachment{logo}
		}, "mixed[text/plain,image/png]", []string{"", "attachment"}},
		{"content id matched case-insensitively", func(m *Message) {
			a := logo
			a.ContentID = "Logo@Example"
			m.Body, m.Attachments = `<img src="cid:logo@example">`, []Attachment{a}
		}, "alternative[text/plain,related[text/html,image/png]]", []string{"", "", "inline"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.edit(m)
			raw := build(t, m)
			checkLines(t, raw, 78)
			tree, leaves := walk(t, raw)
			if tree != c.tree {
				t.Fatalf("tree = %s, want %s", tree, c.tree)
			}
			for i, l := range leaves {
				if l.disp != c.disps[i] {
					t.Errorf("leaf %d (%s): disposition %q, want %q", i, l.ctype, l.disp, c.disps[i])
				}
				if strings.HasPrefix(l.ctype, "text/") {
					if l.params["charset"] != "utf-8" || l.header.Get("Content-Transfer-Encoding") != "quoted-printable" {
						t.Errorf("text leaf %d: charset %q, encoding %q", i, l.params["charset"], l.header.Get("Content-Transfer-Encoding"))
					}
				} else if l.header.Get("Content-Transfer-Encoding") != "base64" {
					t.Errorf("leaf %d (%s): encoding %q, want base64", i, l.ctype, l.header.Get("Content-Transfer-Encoding"))
				}
			}
			if strings.Contains(tree, "related[") {
				if !bytes.Contains(raw, []byte(`type="text/html"`)) {
					t.Errorf("multipart/related without type=\"text/html\" (RFC 2387)")
				}
			}
			if bytes.Count(raw, []byte("\r\nMIME-Version: 1.0\r\n")) != 1 {
				t.Errorf("want exactly one MIME-Version: 1.0 field")
			}
			parse(t, raw) // and mimeconv reads it without problems
		})
	}
}

// ---- round trips ----

// rich is a message with every kind of header and part.
func rich() *Message {
	return &Message{
		From:       Address{Name: "Zoë Ünïcode", Email: "zoe@example.com"},
		To:         []Address{{Name: "山田 太郎", Email: "taro@example.jp"}, {Name: `Smith, John "JJ"`, Email: "jj@example.com"}},
		Cc:         []Address{{Email: "carol@example.net"}},
		Bcc:        []Address{{Name: "Hidden", Email: "hidden@example.net"}},
		ReplyTo:    []Address{{Name: "Replies", Email: "replies@example.com"}},
		Subject:    "🎉 Release party: version 2.0 is out — everyone is invited, bring friends 🎉🎊",
		Body:       `<html><head><title>T</title><style>p{color:red}</style></head><body><p>Hello&nbsp;<b>team</b>,</p><p>See the logo:<br><img src="cid:logo@orchard"></p><ul><li>one</li><li>two</li></ul></body></html>`,
		MessageID:  "rich-1@example.com",
		Date:       date,
		InReplyTo:  "parent@example.org",
		References: []string{"root@example.org", "parent@example.org"},
		Headers:    []Header{{Name: "X-Campaign-ID", Value: "spring  2026\tA"}, {Name: "X-Note", Value: "Grüße aus Köln"}},
		Attachments: []Attachment{
			{Filename: "logo.png", Content: png, ContentID: "logo@orchard", Inline: true},
			{Filename: "Résumé de l’équipe.pdf", Content: pdf},
			{Filename: "données.csv", ContentType: "text/csv; charset=iso-8859-1", Content: []byte("caf\xe9;1\r\n")},
			{Filename: "blob", Content: []byte{0, 1, 2, 3}},
		},
	}
}

// The no-break space of &nbsp; is a blank like any other in plain text.
const richText = "Hello team,\n\nSee the logo:\n\none\ntwo"

func TestRoundTripGoMessage(t *testing.T) {
	m := rich()
	raw := build(t, m)
	checkLines(t, raw, 78)

	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header
	if s, err := h.Subject(); err != nil || s != m.Subject {
		t.Errorf("Subject = %q, %v; want %q", s, err, m.Subject)
	}
	for key, want := range map[string][]Address{"From": {m.From}, "To": m.To, "Cc": m.Cc, "Reply-To": m.ReplyTo} {
		if got := addrList(t, h, key); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if h.Has("Bcc") {
		t.Errorf("Bcc written without IncludeBcc: %q", h.Get("Bcc"))
	}
	if d, err := h.Date(); err != nil || !d.Equal(m.Date) {
		t.Errorf("Date = %v, %v; want %v", d, err, m.Date)
	}
	if id, err := h.MessageID(); err != nil || id != m.MessageID {
		t.Errorf("Message-ID = %q, %v", id, err)
	}
	if l, err := h.MsgIDList("In-Reply-To"); err != nil || !reflect.DeepEqual(l, []string{m.InReplyTo}) {
		t.Errorf("In-Reply-To = %q, %v", l, err)
	}
	if l, err := h.MsgIDList("References"); err != nil || !reflect.DeepEqual(l, m.References) {
		t.Errorf("References = %q, %v", l, err)
	}
	if v := h.Get("X-Campaign-ID"); v != "spring  2026\tA" {
		t.Errorf("X-Campaign-ID = %q", v)
	}
	if v, err := h.Text("X-Note"); err != nil || v != "Grüße aus Köln" {
		t.Errorf("X-Note = %q, %v", v, err)
	}

	// mail.Reader flattens the tree: text, html, the inline image, then
	// the attachments.
	type got struct{ kind, ctype, name, cid string }
	var parts []got
	var bodies [][]byte
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, body)
		switch ph := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := ph.ContentType()
			_, dp, _ := ph.ContentDisposition()
			parts = append(parts, got{"inline", ct, dp["filename"], ph.Get("Content-Id")})
		case *mail.AttachmentHeader:
			ct, _, _ := ph.ContentType()
			name, err := ph.Filename()
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, got{"attachment", ct, name, ph.Get("Content-Id")})
		}
	}
	want := []got{
		{"inline", "text/plain", "", ""},
		{"inline", "text/html", "", ""},
		{"inline", "image/png", "logo.png", "<logo@orchard>"},
		{"attachment", "application/pdf", "Résumé de l’équipe.pdf", ""},
		{"attachment", "text/csv", "données.csv", ""},
		{"attachment", "application/octet-stream", "blob", ""},
	}
	if !reflect.DeepEqual(parts, want) {
		t.Fatalf("parts:\n got %q\nwant %q", parts, want)
	}
	if got := strings.ReplaceAll(string(bodies[0]), "\r\n", "\n"); got != richText {
		t.Errorf("text alternative = %q, want %q", got, richText)
	}
	if string(bodies[1]) != m.Body {
		t.Errorf("html = %q", bodies[1])
	}
	if !bytes.Equal(bodies[2], png) || !bytes.Equal(bodies[3], pdf) || !bytes.Equal(bodies[5], []byte{0, 1, 2, 3}) {
		t.Errorf("attachment bytes differ")
	}
	// go-message converts text/* from their charset: the Latin-1 bytes
	// were kept, and labelled, as they were given.
	if string(bodies[4]) != "café;1\r\n" {
		t.Errorf("csv = %q", bodies[4])
	}
}

func TestRoundTripMimeconv(t *testing.T) {
	m := rich()
	m.IncludeBcc = true
	raw := build(t, m)
	p := parse(t, raw)

	if p.Subject != m.Subject {
		t.Errorf("Subject = %q, want %q", p.Subject, m.Subject)
	}
	for name, pair := range map[string][2][]store.Participant{
		"From":     {p.From, participants([]Address{m.From})},
		"To":       {p.To, participants(m.To)},
		"Cc":       {p.Cc, participants(m.Cc)},
		"Bcc":      {p.Bcc, participants(m.Bcc)},
		"Reply-To": {p.ReplyTo, participants(m.ReplyTo)},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("%s = %q, want %q", name, pair[0], pair[1])
		}
	}
	if p.MessageID != m.MessageID || p.InReplyTo != m.InReplyTo || !reflect.DeepEqual(p.References, m.References) {
		t.Errorf("ids: %q %q %q", p.MessageID, p.InReplyTo, p.References)
	}
	if !p.Date.Equal(m.Date) {
		t.Errorf("Date = %v", p.Date)
	}
	if p.HTML != m.Body || p.Body != m.Body {
		t.Errorf("HTML = %q", p.HTML)
	}
	if p.Text != richText {
		t.Errorf("Text = %q, want %q", p.Text, richText)
	}
	want := []store.Attachment{
		{Filename: "logo.png", ContentType: "image/png", Size: int64(len(png)), ContentID: "logo@orchard", IsInline: true},
		{Filename: "Résumé de l’équipe.pdf", ContentType: "application/pdf", Size: int64(len(pdf))},
		{Filename: "données.csv", ContentType: "text/csv", Size: 8},
		{Filename: "blob", ContentType: "application/octet-stream", Size: 4},
	}
	if len(p.Attachments) != len(want) {
		t.Fatalf("%d attachments, want %d: %+v", len(p.Attachments), len(want), p.Attachments)
	}
	for i, a := range p.Attachments {
		w := want[i]
		if a.Filename != w.Filename || a.ContentType != w.ContentType || a.Size != w.Size || a.ContentID != w.ContentID || a.IsInline != w.IsInline {
			t.Errorf("attachment %d = %+v, want %+v", i, a, w)
		}
		if a.Encoding != "base64" {
			t.Errorf("attachment %d encoding %q", i, a.Encoding)
		}
	}
}

// TestInternationalHeaders: names and subjects that need RFC 2047 (or
// quoting) come back exactly from go-message and as mimeconv shows them,
// and every header line holding encoded words stays within 76 characters.
func TestInternationalHeaders(t *testing.T) {
	long := strings.Repeat("x", 500)
	cases := []struct{ name, subject string }{
		{"Zoë Ünïcode", "Zoë Ünïcode says hi"},
		{"山田 太郎", "会議の議事録を共有します。ご確認のほどよろしくお願いいたします。来週の予定についても相談させてください。"},
		{`Smith, John "JJ" \ Jr.`, "🎉🎊🥳 Celebration time! The new release is out and everyone is invited 🎉🎊🥳"},
		{"O'Brien (Sales) <boss>", "Re: [list] quarterly numbers; see attached: 1+1=2"},
		{"=?utf-8?q?not_encoded?=", "=?utf-8?q?looks_encoded?= but is not"},
		{"Ann  Double  Space", "two  spaces  and\ttab"},
		{"Plain Name", "a long word: " + long + " and more"},
		{"Ελληνικά και English mixed together in one fairly long display name", strings.Repeat("Ünïcode ", 40)},
		{"", strings.Repeat("🙂", 60)},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			m := base()
			m.From.Name = c.name
			m.To = []Address{{Name: "Ünï", Email: "u@example.org"}, {Name: c.name, Email: "second@example.org"}}
			m.Subject = c.subject
			raw := build(t, m)
			for _, l := range headerLines(raw) {
				if strings.Contains(l, "=?utf-8?") && len(l) > 76 {
					t.Errorf("line with encoded words of %d characters: %q", len(l), l)
				}
				if len(l) > 78 && !strings.Contains(l, long) {
					t.Errorf("header line of %d characters: %q", len(l), l)
				}
			}
			h := readHeader(t, raw)
			if s, err := h.Subject(); err != nil || s != c.subject {
				t.Errorf("go-message Subject = %q, %v; want %q", s, err, c.subject)
			}
			if got := addrList(t, h, "From"); len(got) != 1 || got[0] != m.From {
				t.Errorf("go-message From = %q, want %q", got, m.From)
			}
			if got := addrList(t, h, "To"); !reflect.DeepEqual(got, m.To) {
				t.Errorf("go-message To = %q, want %q", got, m.To)
			}
			p := parse(t, raw)
			if p.Subject != strings.TrimSpace(c.subject) {
				t.Errorf("mimeconv Subject = %q, want %q", p.Subject, c.subject)
			}
			// mimeconv collapses blanks in names, as mail clients show them.
			wantName := strings.Join(strings.Fields(c.name), " ")
			if len(p.From) != 1 || p.From[0].Name != wantName || p.From[0].Email != m.From.Email {
				t.Errorf("mimeconv From = %q, want %q", p.From, wantName)
			}
			if len(p.To) != 2 || p.To[1].Name != wantName {
				t.Errorf("mimeconv To = %q", p.To)
			}
		})
	}
}

func TestSubjectEncodingChoice(t *testing.T) {
	for _, c := range []struct{ subject, want string }{
		{"Plain ASCII subject", "Subject: Plain ASCII subject\r\n"},
		{"Café", "Subject: =?utf-8?q?Caf=C3=A9?=\r\n"},
		{"日本語", "Subject: =?utf-8?b?5pel5pys6Kqe?=\r\n"},
		// ASCII that must be encoded stays in Q: needless base64 is a spam sign.
		{"a =?x?q?y?= b", "Subject: =?utf-8?q?a_=3D=3Fx=3Fq=3Fy=3F=3D_b?=\r\n"},
	} {
		m := base()
		m.Subject = c.subject
		raw := build(t, m)
		if !bytes.Contains(raw, []byte("\r\n"+c.want)) {
			t.Errorf("%q: want %q in\n%s", c.subject, c.want, raw)
		}
	}
}

func TestBcc(t *testing.T) {
	m := base()
	m.Bcc = []Address{{Name: "Secret Person", Email: "secret@hidden.example"}}
	raw := build(t, m)
	if bytes.Contains(raw, []byte("secret")) || bytes.Contains(raw, []byte("Bcc")) {
		t.Fatalf("sent mail carries the Bcc:\n%s", raw)
	}
	if p := parse(t, raw); len(p.Bcc) != 0 {
		t.Fatalf("mimeconv Bcc = %q", p.Bcc)
	}
	m.IncludeBcc = true
	raw = build(t, m)
	if got := addrList(t, readHeader(t, raw), "Bcc"); !reflect.DeepEqual(got, m.Bcc) {
		t.Fatalf("Bcc = %q", got)
	}
	if p := parse(t, raw); !reflect.DeepEqual(p.Bcc, participants(m.Bcc)) {
		t.Fatalf("mimeconv Bcc = %q", p.Bcc)
	}
	m.Bcc = nil
	if raw := build(t, m); bytes.Contains(raw, []byte("Bcc:")) {
		t.Fatalf("empty Bcc written")
	}
}

func TestReplyHeaders(t *testing.T) {
	m := base()
	m.InReplyTo = "parent@example.org"
	p := parse(t, build(t, m))
	if p.InReplyTo != "parent@example.org" || !reflect.DeepEqual(p.References, []string{"parent@example.org"}) {
		t.Fatalf("In-Reply-To %q, References %q: References must default to In-Reply-To", p.InReplyTo, p.References)
	}

	// A long thread: References folds between ids.
	m.References = nil
	for i := range 30 {
		m.References = append(m.References, fmt.Sprintf("message-%02d.with.a.longish.id@mail.example.org", i))
	}
	raw := build(t, m)
	checkLines(t, raw, 78)
	p = parse(t, raw)
	if !reflect.DeepEqual(p.References, m.References) {
		t.Fatalf("References = %q", p.References)
	}
	if h := readHeader(t, raw); false {
	} else if l, err := h.MsgIDList("References"); err != nil || !reflect.DeepEqual(l, m.References) {
		t.Fatalf("go-message References = %q, %v", l, err)
	}

	m.InReplyTo, m.References = "", nil
	if raw := build(t, m); bytes.Contains(raw, []byte("In-Reply-To")) || bytes.Contains(raw, []byte("References")) {
		t.Fatalf("reply headers on a new message")
	}
}

func TestDefaults(t *testing.T) {
	m := base()
	m.MessageID, m.Date = "", time.Time{}
	before := time.Now().Truncate(time.Second)
	raw1 := build(t, m)
	raw2 := build(t, m)
	after := time.Now()
	h := readHeader(t, raw1)
	id1, err := h.MessageID()
	if err != nil || !strings.HasSuffix(id1, "@example.com") || len(id1) < 20 {
		t.Fatalf("generated Message-ID %q, %v", id1, err)
	}
	h2 := readHeader(t, raw2)
	if id2, _ := h2.MessageID(); id2 == id1 {
		t.Fatalf("two builds share Message-ID %q", id1)
	}
	if d, err := h.Date(); err != nil || d.Before(before) || d.After(after) {
		t.Fatalf("Date %v, %v not between %v and %v", d, err, before, after)
	}
	if m.MessageID != "" || !m.Date.IsZero() {
		t.Fatalf("Build changed the message")
	}
	// RFC spellings, not Go's canonical "Message-Id", "Mime-Version".
	for _, f := range []string{"\r\nMessage-ID: <", "\r\nMIME-Version: 1.0\r\n"} {
		if !bytes.Contains(raw1, []byte(f)) {
			t.Errorf("no %q", f)
		}
	}
	want := []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"}
	var got []string
	for _, l := range headerLines(raw1) {
		if l != "" && l[0] != ' ' {
			got = append(got, l[:strings.IndexByte(l, ':')])
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("header fields %q, want %q", got, want)
	}
}

func TestCustomHeaders(t *testing.T) {
	m := base()
	longValue := strings.TrimSpace(strings.Repeat("token-value ", 80))
	m.Headers = []Header{
		{Name: "X-Custom-ID", Value: "abc-123"},
		{Name: "x-lower-case", Value: "  leading blanks kept inside?  x"},
		{Name: "X-Tag", Value: "one"},
		{Name: "X-Tag", Value: "two"},
		{Name: "X-Long", Value: longValue},
		{Name: "X-Unicode", Value: "Ünïcode ✓ " + strings.Repeat("é", 60)},
		{Name: "X-Empty", Value: ""},
		{Name: "List-Unsubscribe", Value: "<mailto:unsub@example.com>, <https://example.com/u?id=1>"},
	}
	raw := build(t, m)
	checkLines(t, raw, 78)
	for _, f := range []string{"\r\nX-Custom-ID: abc-123\r\n", "\r\nx-lower-case: ", "\r\nX-Empty:\r\n"} {
		if !bytes.Contains(raw, []byte(f)) {
			t.Errorf("no %q in the header: names must keep the caller's spelling", f)
		}
	}
	h := readHeader(t, raw)
	if got := h.Values("X-Tag"); !reflect.DeepEqual(got, []string{"one", "two"}) {
		t.Errorf("X-Tag = %q", got)
	}
	for _, c := range m.Headers {
		if c.Name == "X-Tag" {
			continue
		}
		v, err := h.Text(c.Name)
		if err != nil || v != strings.TrimSpace(c.Value) {
			t.Errorf("%s = %q, %v; want %q", c.Name, v, err, c.Value)
		}
	}
	if !bytes.Contains(raw, []byte("X-Custom-ID: abc-123\r\nx-lower-case:")) {
		t.Errorf("custom headers out of order")
	}
}

func TestAttachments(t *testing.T) {
	m := base()
	m.Attachments = []Attachment{
		{Filename: "photo.png", Content: png},                                 // detected
		{Filename: "Scan.PDF", Content: pdf},                                  // detected, upper case extension
		{Filename: "archive.unknown-ext", Content: []byte("??")},              // not detected
		{Filename: "", ContentType: "application/zip", Content: []byte("PK")}, // no name
		{Filename: `my "quoted" \ file.txt`, ContentType: "text/plain", Content: []byte("line1\nline2\r\nno end")},
		{Filename: "=?utf-8?q?fake?=.bin", ContentType: "application/x-thing; version=2", Content: []byte{0xff}},
		{Filename: "empty.dat", Content: nil},
		{Filename: strings.Repeat("ü", 120) + ".txt", ContentType: "text/plain", Content: []byte("x")},
	}
	raw := build(t, m)
	checkLines(t, raw, 78)
	tree, leaves := walk(t, raw)
	if !strings.HasPrefix(tree, "mixed[alternative[text/plain,text/html],") {
		t.Fatalf("tree %s", tree)
	}
	leaves = leaves[2:]
	wantTypes := []string{"image/png", "application/pdf", "application/octet-stream", "application/zip", "text/plain", "application/x-thing", "application/octet-stream", "text/plain"}
	p := parse(t, raw)
	if len(p.Attachments) != len(m.Attachments) {
		t.Fatalf("mimeconv: %d attachments", len(p.Attachments))
	}
	for i, a := range m.Attachments {
		l := leaves[i]
		if l.ctype != wantTypes[i] {
			t.Errorf("%d: content type %q, want %q", i, l.ctype, wantTypes[i])
		}
		if !bytes.Equal(l.body, a.Content) {
			t.Errorf("%d: bytes %q, want %q (base64 keeps text files exact)", i, l.body, a.Content)
		}
		if l.disp != "attachment" || l.dparams["filename"] != a.Filename {
			t.Errorf("%d: disposition %q filename %q, want %q", i, l.disp, l.dparams["filename"], a.Filename)
		}
		if a.Filename != "" && l.params["name"] != a.Filename {
			t.Errorf("%d: Content-Type name %q", i, l.params["name"])
		}
		pa := p.Attachments[i]
		if pa.Filename != a.Filename || pa.ContentType != wantTypes[i] || pa.Size != int64(len(a.Content)) {
			t.Errorf("%d: mimeconv %+v", i, pa)
		}
	}
	if leaves[5].params["version"] != "2" {
		t.Errorf("content type parameters lost: %q", leaves[5].params)
	}
}

// TestLatin1Attachment: go-message's own writer refuses a text part whose
// charset is not UTF-8; Build attaches it as it is.
func TestLatin1Attachment(t *testing.T) {
	m := base()
	m.Attachments = []Attachment{{Filename: "a.csv", ContentType: "text/csv; charset=ISO-8859-1", Content: []byte("na\xefve")}}
	raw := build(t, m)
	_, leaves := walk(t, raw)
	if l := leaves[2]; !strings.EqualFold(l.params["charset"], "iso-8859-1") || string(l.body) != "naïve" {
		t.Fatalf("charset %q body %q", l.params["charset"], l.body)
	}
}

func TestLargeAttachment(t *testing.T) {
	content := make([]byte, 5<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	m := base()
	m.Attachments = []Attachment{{Filename: "big.bin", Content: content}}
	raw := build(t, m)
	checkLines(t, raw, 78)
	_, leaves := walk(t, raw)
	if got := leaves[2].body; len(got) != len(content) || sha256.Sum256(got) != sha256.Sum256(content) {
		t.Fatalf("5 MB attachment came back as %d bytes, not byte-exact", len(got))
	}
	p := parse(t, raw)
	if len(p.Attachments) != 1 || p.Attachments[0].Size != int64(len(content)) {
		t.Fatalf("mimeconv attachments %+v", p.Attachments)
	}
}

func TestLineEndings(t *testing.T) {
	m := rich()
	m.Body = "<p>unix\nline\nends</p>\r\n<p>windows</p>\rold mac\r\r\n" + strings.Repeat("<span>long line without breaks</span>", 100)
	m.IncludeBcc = true
	raw := build(t, m)
	checkLines(t, raw, 78)
	if !bytes.HasSuffix(raw, []byte("--\r\n")) {
		t.Fatalf("message does not end with its closing boundary and CRLF: %q", raw[len(raw)-20:])
	}
	// Plain text, single part.
	m = base()
	m.PlainText = true
	m.Body = "one\ntwo\rthree\r\nfour " + strings.Repeat("ä", 500)
	raw = build(t, m)
	checkLines(t, raw, 78)
	if p := parse(t, raw); p.Text != "one\ntwo\nthree\nfour "+strings.Repeat("ä", 500) {
		t.Fatalf("text = %q", p.Text)
	}
}

func TestRecipients(t *testing.T) {
	m := &Message{
		To:  []Address{{Email: "a@example.com"}, {Email: "B@example.com"}},
		Cc:  []Address{{Email: "A@EXAMPLE.COM"}, {Email: "c@example.com"}},
		Bcc: []Address{{Email: "b@example.com"}, {Email: "d@example.com"}},
	}
	want := []string{"a@example.com", "B@example.com", "c@example.com", "d@example.com"}
	if got := m.Recipients(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Recipients = %q, want %q", got, want)
	}
	if got := (&Message{ReplyTo: []Address{{Email: "r@example.com"}}}).Recipients(); len(got) != 0 {
		t.Fatalf("Reply-To is not a recipient: %q", got)
	}
}

func TestNewMessageID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewMessageID("example.com")
		if seen[id] {
			t.Fatalf("duplicate %q", id)
		}
		seen[id] = true
		if !strings.HasSuffix(id, "@example.com") || strings.ContainsAny(id, "<> ") || !ValidMessageID(id) {
			t.Fatalf("bad id %q", id)
		}
	}
	for _, d := range []string{"", "bad domain", "ünï.example", "a<b"} {
		if id := NewMessageID(d); !strings.HasSuffix(id, "@orchard.invalid") {
			t.Errorf("NewMessageID(%q) = %q", d, id)
		}
	}
}

func TestHTMLToText(t *testing.T) {
	for _, c := range []struct{ html, want string }{
		{"", ""},
		{"plain   words\n here", "plain words here"},
		{"<p>one</p><p>two</p>", "one\n\ntwo"},
		{"a<br>b<br><br>c", "a\nb\n\nc"},
		{"<div>a</div><div>b</div>", "a\nb"},
		{"<h1>Title</h1>text", "Title\n\ntext"},
		{"<ul><li>x</li><li>y</li></ul>after", "x\ny\n\nafter"},
		{"<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>", "a b\nc d"},
		{"<head><title>no</title><style>p{}</style></head><body>yes</body>", "yes"},
		{"<script>alert('<p>x</p>')</script>ok<!-- <p>hidden</p> -->!", "ok!"},
		{"&lt;tag&gt; &amp; &eacute;&#233;", "<tag> & éé"},
		{"<pre>\n  code\n    indented\n</pre>after", "  code\n    indented\n\nafter"},
		{"x<span>y</span>z", "xyz"},
		{`<a href="https://example.com/?a=1&amp;b=2">link</a>`, "link"},
		{"a &zwnj;&#847;b", "a b"},
		{"<p>a<br></p><p>b</p>", "a\n\nb"},
	} {
		if got := mimeconv.HTMLToText(c.html); got != c.want {
			t.Errorf("HTMLToText(%q) = %q, want %q", c.html, got, c.want)
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	m := base()
	m.Attachments = []Attachment{{Filename: "a.bin", Content: make([]byte, 1<<20)}}
	err := Build(&failWriter{n: 100 << 10}, m)
	var ce *Error
	if err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the writer's error", err)
	}
}

// ---- validation ----

func TestValidate(t *testing.T) {
	tooLong := strings.Repeat("a", 999)
	cases := []struct {
		name              string
		edit              func(m *Message)
		requireRecipients bool
		want              []Problem // Message is a substring
	}{
		{"valid", func(m *Message) {}, true, nil},
		{"no recipients for a draft", func(m *Message) { m.To = nil }, false, nil},
		{"no recipients for a send", func(m *Message) { m.To = nil }, true,
			[]Problem{{"to", "at least one recipient is required in to, cc or bcc"}}},
		{"bcc alone is enough", func(m *Message) { m.To, m.Bcc = nil, []Address{{Email: "b@example.com"}} }, true, nil},
		{"no sender", func(m *Message) { m.From = Address{} }, false, []Problem{{"from", "a sender is required"}}},
		{"sender without address", func(m *Message) { m.From.Email = "" }, false, []Problem{{"from[0].email", "is required"}}},
		{"bad addresses", func(m *Message) {
			m.To = []Address{
				{Email: "ok@example.com"},
				{Email: "not an address"},
				{Email: "a@example.com, b@example.com"},
				{Email: "Name <n@example.com>"},
				{Email: "x@example.com\r\nBcc: victim@example.com"},
				{Email: "ünï@example.com"},
				{Email: strings.Repeat("a", 250) + "@example.com"},
				{Email: "<n@example.com>"},
				{Email: "n@example.com (comment)"},
				{Email: ""},
			}
		}, true, []Problem{
			{"to[1].email", `"not an address" is not a valid email address`},
			{"to[2].email", "is not a valid email address"},
			{"to[3].email", "is not a valid email address"},
			{"to[4].email", "must not contain line breaks"},
			{"to[5].email", "internationalized addresses are not supported"},
			{"to[6].email", "at most 254"},
			{"to[7].email", "is not a valid email address"},
			{"to[8].email", "is not a valid email address"},
			{"to[9].email", "is required"},
		}},
		{"quoted local part is one addr-spec", func(m *Message) { m.Cc = []Address{{Email: `"john doe"@example.com`}} }, true, nil},
		{"bad names", func(m *Message) {
			m.Cc = []Address{{Name: "Evil\r\nBcc: x@example.com", Email: "a@example.com"}, {Name: "tab\there", Email: "b@example.com"}}
			m.Bcc = []Address{{Name: "nul\x00", Email: "c@example.com"}, {Name: "bad \xff utf8", Email: "d@example.com"}}
			m.ReplyTo = []Address{{Name: strings.Repeat("n", 257), Email: "e@example.com"}, {Name: "esc\x1b", Email: "f@example"}}
		}, true, []Problem{
			{"cc[0].name", "must not contain line breaks"},
			{"cc[1].name", "control characters (U+0009)"},
			{"bcc[0].name", "control characters (U+0000)"},
			{"bcc[1].name", "must be valid UTF-8"},
			{"reply_to[0].name", "is 257 bytes long, at most 256"},
			{"reply_to[1].name", "control characters (U+001B)"},
		}},
		{"subject", func(m *Message) { m.Subject = "two\nlines" }, true, []Problem{{"subject", "must not contain line breaks"}}},
		{"subject control", func(m *Message) { m.Subject = "bell\a" }, true, []Problem{{"subject", "control characters (U+0007)"}}},
		{"subject C1 control", func(m *Message) { m.Subject = "c1\u0085" }, true, []Problem{{"subject", "control characters (U+0085)"}}},
		{"subject tab is fine", func(m *Message) { m.Subject = "a\tb" }, true, nil},
		{"body", func(m *Message) { m.Body = "bad \xc3" }, true, []Problem{{"body", "must be valid UTF-8"}}},
		{"ids", func(m *Message) {
			m.MessageID = "<x@example.com>"
			m.InReplyTo = "has space@example.com"
			m.References = []string{"ok@example.com", "", "ünï@example.com"}
		}, true, []Problem{
			{"message_id", "must be given without angle brackets"},
			{"reply_to_message_id", "In-Reply-To: \"has space@example.com\" is not a valid Message-ID"},
			{"reply_to_message_id", "References: an empty Message-ID"},
			{"reply_to_message_id", "References: \"ünï@example.com\" is not a valid Message-ID"},
		}},
		{"protected headers", func(m *Message) {
			for _, n := range []string{"From", "to", "CC", "Bcc", "Reply-To", "Sender", "Subject", "Date", "Message-ID",
				"message-id", "In-Reply-To", "References", "MIME-Version", "Content-Type", "content-transfer-encoding",
				"Content-Anything", "Return-Path", "Received", "DKIM-Signature"} {
				m.Headers = append(m.Headers, Header{Name: n, Value: "x"})
			}
			m.Headers = append(m.Headers, Header{Name: "X-Allowed", Value: "x"}, Header{Name: "Contentious", Value: "x"})
		}, true, func() []Problem {
			var p []Problem
			for i, n := range []string{"From", "to", "CC", "Bcc", "Reply-To", "Sender", "Subject", "Date", "Message-ID",
				"message-id", "In-Reply-To", "References", "MIME-Version", "Content-Type", "content-transfer-encoding",
				"Content-Anything", "Return-Path", "Received", "DKIM-Signature"} {
				p = append(p, Problem{fmt.Sprintf("custom_headers[%d].name", i), fmt.Sprintf("%q is set by Orchard and cannot be overridden", n)})
			}
			return p
		}()},
		{"bad header names and values", func(m *Message) {
			m.Headers = []Header{
				{Name: "", Value: "x"},
				{Name: "X Space", Value: "x"},
				{Name: "X:Colon", Value: "x"},
				{Name: "X-Ünï", Value: "x"},
				{Name: "X-Injection", Value: "x\r\nBcc: victim@example.com"},
				{Name: "X-Nul", Value: "a\x00b"},
				{Name: "X-Long", Value: tooLong},
				{Name: "X-Fits", Value: strings.Repeat("a", maxLine-len("X-Fits: "))},
				{Name: "X-Tab", Value: "a\tb"},
			}
		}, true, []Problem{
			{"custom_headers[0].name", "must not be empty"},
			{"custom_headers[1].name", `"X Space" is not a valid header name`},
			{"custom_headers[2].name", `"X:Colon" is not a valid header name`},
			{"custom_headers[3].name", `"X-Ünï" is not a valid header name`},
			{"custom_headers[4].value", "must not contain line breaks"},
			{"custom_headers[5].value", "control characters (U+0000)"},
			{"custom_headers[6].value", `"X-Long" is too long: name and value must fit in 998 bytes, got 1007`},
		}},
		{"too many headers", func(m *Message) {
			for i := range MaxHeaders + 1 {
				m.Headers = append(m.Headers, Header{Name: fmt.Sprintf("X-H%d", i), Value: "v"})
			}
		}, true, []Problem{{"custom_headers", "at most 1000 headers are allowed, got 1001"}}},
		{"attachments", func(m *Message) {
			m.Body = `<img src="cid:a"><img src="cid:b">`
			m.Attachments = []Attachment{
				{Filename: "ok.png", ContentID: "a", Inline: true},
				{Filename: "evil\r\nContent-Type: text/html", Content: []byte("x")},
				{Filename: "dup.png", ContentID: "A", Inline: true},
				{Filename: "space.png", ContentID: "has space"},
				{Filename: "brackets.png", ContentID: "<b>"},
				{Filename: "ctl.png", ContentID: "a\x01b"},
				{Filename: "quote.png", ContentID: `a"b`},
				{Filename: "x", ContentType: "not a type"},
				{Filename: "y", ContentType: "multipart/mixed; boundary=x"},
				{Filename: "tab\tname"},
				{Filename: strings.Repeat("f", 256)},
				{Filename: "fine.bin", ContentType: "application/octet-stream", ContentID: "ok.part@x"},
			}
		}, true, []Problem{
			{"attachments[1].filename", "must not contain line breaks"},
			{"attachments[2].content_id", `"A" is also the content id of attachments[0]`},
			{"attachments[3].content_id", `"has space" is not a valid content id`},
			{"attachments[4].content_id", `"<b>" must be given without angle brackets`},
			{"attachments[5].content_id", "is not a valid content id"},
			{"attachments[6].content_id", "is not a valid content id"},
			{"attachments[7].content_type", `"not a type" is not a valid media type`},
			{"attachments[8].content_type", "a multipart type is a container"},
			{"attachments[9].filename", "control characters (U+0009)"},
			{"attachments[10].filename", "is 256 bytes long, at most 255"},
		}},
		{"every problem at once, in field order", func(m *Message) {
			m.From.Email = "bad"
			m.To = nil
			m.Subject = "x\n"
			m.Headers = []Header{{Name: "Date", Value: "now"}}
			m.Attachments = []Attachment{{Filename: "a\n"}}
		}, true, []Problem{
			{"from[0].email", "is not a valid email address"},
			{"to", "at least one recipient"},
			{"subject", "line breaks"},
			{"custom_headers[0].name", `"Date" is set by Orchard`},
			{"attachments[0].filename", "line breaks"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.edit(m)
			err := m.Validate(c.requireRecipients)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if !c.requireRecipients || len(m.To)+len(m.Cc)+len(m.Bcc) > 0 {
					build(t, m) // what validates builds
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Validate = %v, want *Error", err)
			}
			if len(ce.Problems) != len(c.want) {
				t.Fatalf("%d problems, want %d:\n%s", len(ce.Problems), len(c.want), strings.Join(strings.Split(ce.Error(), "; "), "\n"))
			}
			for i, p := range ce.Problems {
				if p.Field != c.want[i].Field || !strings.Contains(p.Message, c.want[i].Message) {
					t.Errorf("problem %d = %s, want %s", i, p, c.want[i])
				}
			}
			// Build refuses the same message and writes nothing. (Build
			// does not require recipients, so skip that case.)
			if c.name != "no recipients for a send" {
				var b bytes.Buffer
				berr := Build(&b, m)
				if !errors.As(berr, &ce) || b.Len() != 0 {
					t.Fatalf("Build = %v with %d bytes written", berr, b.Len())
				}
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	m := base()
	m.To = nil
	m.Headers = []Header{{Name: "Message-ID", Value: "x"}}
	err := m.Validate(true)
	want := `to: at least one recipient is required in to, cc or bcc; custom_headers[0].name: "Message-ID" is set by Orchard and cannot be overridden`
	if err == nil || err.Error() != want {
		t.Fatalf("Error() = %q\nwant      %q", err, want)
	}
}

func TestValidateBoundsProblems(t *testing.T) {
	m := base()
	for range 500 {
		m.Headers = append(m.Headers, Header{Name: "Bad Name", Value: "x"})
	}
	var ce *Error
	if !errors.As(m.Validate(true), &ce) {
		t.Fatal("want *Error")
	}
	if len(ce.Problems) != maxProblems+1 || ce.Problems[maxProblems].String() != "and 450 more problems" {
		t.Fatalf("%d problems, last %q", len(ce.Problems), ce.Problems[len(ce.Problems)-1])
	}
}

// ---- fuzzing and benchmarks ----

// FuzzBuild: for any subject, display name and header value, Build either
// refuses the message with an *Error or writes one that go-message and
// mimeconv read back with the same subject, name and value, with CRLF line
// ends and no line over 998 characters.
func FuzzBuild(f *testing.F) {
	seeds := [][4]string{
		{"Hello", "Ann", "v", "a.pdf"},
		{"Zoë Ünïcode", "Zoë Ünïcode", "Grüße", "Résumé.pdf"},
		{"🎉🎊🥳 Celebration time! The new release is out and everyone is invited 🎉🎊🥳", "山田 太郎", "値", "議事録.docx"},
		{"=?utf-8?q?x?=", "=?utf-8?b?eA==?=", "=?utf-8?q?raw?=", "=?utf-8?q?f?="},
		{`Smith, John "JJ"`, `Smith, John "JJ" \`, "a, b; c", `my "file" \ name;.txt`},
		{"  spaced  out  ", "  Ann   B  ", "  v  ", "  two  spaces  "},
		{strings.Repeat("x", 1200), strings.Repeat("y", 256), strings.Repeat("z", 980), strings.Repeat("w", 255)},
		{"tab\there", "tab\tname", "tab\tvalue", "tab\tname"},
		{"line\nbreak", "cr\rname", "nul\x00", "lf\n"},
		{"\xff", "\xc3", "\xe2\x82", "\xff"},
		{"a\u00a0b\u2028c", "\u200b", "\ufeff", "\u00a0"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, subject, name, value, filename string) {
		m := &Message{
			From:        Address{Name: name, Email: "from@example.com"},
			To:          []Address{{Name: "Bob", Email: "bob@example.com"}, {Name: name, Email: "second@example.com"}},
			Subject:     subject,
			Body:        "<p>" + subject + "</p>",
			MessageID:   "fuzz@example.com",
			Date:        date,
			Headers:     []Header{{Name: "X-Fuzz", Value: value}},
			Attachments: []Attachment{{Filename: filename, ContentType: "application/octet-stream", Content: []byte(filename)}},
		}
		var b bytes.Buffer
		err := Build(&b, m)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("Build error %v is not an *Error", err)
			}
			return
		}
		raw := b.Bytes()
		checkLines(t, raw, maxLine)

		h := readHeader(t, raw)
		// Readers trim the blanks around a field value; encoded words keep them.
		if s, err := h.Subject(); err != nil || (s != subject && s != strings.Trim(subject, " \t")) {
			t.Fatalf("go-message Subject = %q, %v; want %q", s, err, subject)
		}
		if v, err := h.Text("X-Fuzz"); err != nil || (v != value && v != strings.Trim(value, " \t")) {
			if !strings.Contains(value, "=?") { // raw ASCII values are the caller's to encode
				t.Fatalf("go-message X-Fuzz = %q, %v; want %q", v, err, value)
			}
		}
		if got := addrList(t, h, "From"); len(got) != 1 || got[0] != m.From {
			t.Fatalf("go-message From = %q, want %q", got, m.From)
		}

		p, err := mimeconv.Parse(bytes.NewReader(raw), mimeconv.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Problems) > 0 {
			t.Fatalf("mimeconv problems %q in\n%s", p.Problems, raw)
		}
		if p.Subject != strings.TrimSpace(subject) {
			t.Fatalf("mimeconv Subject = %q, want %q", p.Subject, subject)
		}
		wantName := strings.Join(strings.Fields(name), " ")
		if len(wantName) >= 2 && wantName[0] == '\'' && wantName[len(wantName)-1] == '\'' {
			wantName = strings.TrimSpace(wantName[1 : len(wantName)-1]) // Outlook's 'Name'
		}
		if len(p.From) != 1 || p.From[0].Email != "from@example.com" || p.From[0].Name != wantName {
			t.Fatalf("mimeconv From = %q, want name %q", p.From, wantName)
		}
		if len(p.To) != 2 || p.To[1].Name != wantName {
			t.Fatalf("mimeconv To = %q", p.To)
		}

		_, leaves := walk(t, raw)
		a := leaves[len(leaves)-1]
		if a.disp != "attachment" || a.dparams["filename"] != filename || string(a.body) != filename {
			t.Fatalf("go-message attachment %q %q, body %q; want %q", a.disp, a.dparams["filename"], a.body, filename)
		}
		// mimeconv trims a filename, as it must be shown.
		if len(p.Attachments) != 1 || p.Attachments[0].Filename != strings.TrimSpace(filename) || p.Attachments[0].Size != int64(len(filename)) {
			t.Fatalf("mimeconv attachments %+v, want filename %q", p.Attachments, filename)
		}
	})
}

func BenchmarkBuild(b *testing.B) {
	content := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	m := rich()
	m.Attachments = append(m.Attachments, Attachment{Filename: "big.bin", Content: content})
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Build(io.Discard, m); err != nil {
			b.Fatal(err)
		}
	}
}
