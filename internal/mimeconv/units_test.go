package mimeconv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/orchard-mail/orchard/internal/store"
)

func TestSubjectKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Hello", "hello"},
		{"Re: Hello", "hello"},
		{"RE: Re: re:Hello", "hello"},
		{"RE[2]: Fwd: [list] Re:  Hello   World ", "hello world"},
		{"AW: WG: SV: VS: Antw: Fw: FWD: x", "x"},
		{"[dev-list] Re: [dev-list] Release plan", "release plan"},
		{"Re : French spacing", "french spacing"},
		{"Re(3): counted", "counted"},
		{"AW： full-width colon", "full-width colon"},
		{"Reminder: dentist", "reminder: dentist"},
		{"Regarding the plan", "regarding the plan"},
		{"Fwdx: not a prefix", "fwdx: not a prefix"},
		{"[only a tag]", "[only a tag]"},
		{"Re:", ""},
		{"   ", ""},
		{"Ré: café", "ré: café"},
		{"Tab\tand\nnewline", "tab and newline"},
	} {
		if got := SubjectKey(c.in); got != c.want {
			t.Errorf("SubjectKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestIsReplySubject(t *testing.T) {
	for in, want := range map[string]bool{
		"Re: x": true, "RE: x": true, "Fwd: x": true, "Fw: x": true, "AW: x": true, "WG: x": true,
		"SV: x": true, "VS: x": true, "Antw: x": true, "RE[2]: x": true, "[list] Re: x": true, "  re:x": true,
		"x": false, "Regarding x": false, "Reminder: x": false, "": false, "[list] x": false,
	} {
		if got := IsReplySubject(in); got != want {
			t.Errorf("IsReplySubject(%q) = %v", in, got)
		}
	}
}

func TestParseDate(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	for _, c := range []struct {
		in   string
		want time.Time // zero: unreadable
	}{
		{"Mon, 2 Jan 2006 15:04:05 -0700", utc(2006, 1, 2, 22, 4, 5)},
		{"2 Jan 2006 15:04:05 -0700", utc(2006, 1, 2, 22, 4, 5)},
		{"Mon, 02 Jan 2006 15:04:05 -0700 (MST)", utc(2006, 1, 2, 22, 4, 5)},
		{"Mon,  2 Jan 2006 15:04:05 EST", utc(2006, 1, 2, 20, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 PDT", utc(2006, 1, 2, 22, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 GMT", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 +0200 (CEST)", utc(2006, 1, 2, 13, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 +0200 CEST", utc(2006, 1, 2, 13, 4, 5)},
		{"Mon, 2 Jan 06 15:04:05 +0000", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon, 2 Jan 2006 15:04 +0100", utc(2006, 1, 2, 14, 4, 0)},
		{"Monday, 2 January 2006 15:04:05 +0100", utc(2006, 1, 2, 14, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 +02:00", utc(2006, 1, 2, 13, 4, 5)},
		{"mon, 2 jan 2006 15:04:05 +0000", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon Jan  2 15:04:05 2006", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon Jan 2 15:04:05 -0700 2006", utc(2006, 1, 2, 22, 4, 5)},
		{"2006-01-02T15:04:05Z", utc(2006, 1, 2, 15, 4, 5)},
		{"2006-01-02T15:04:05+02:00", utc(2006, 1, 2, 13, 4, 5)},
		{"2006-01-02 15:04:05", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 XYZ", utc(2006, 1, 2, 15, 4, 5)},
		{"2 Jan 2006 15:04:05", utc(2006, 1, 2, 15, 4, 5)},
		{"", time.Time{}},
		{"yesterday", time.Time{}},
		{"Mon, 32 Jan 2006 15:04:05 +0000", time.Time{}},
		{"(only a comment)", time.Time{}},
	} {
		got, ok := parseDate(c.in)
		if ok != !c.want.IsZero() || !got.Equal(c.want) {
			t.Errorf("parseDate(%q) = %v, %v; want %v", c.in, got, ok, c.want)
		}
	}
}

func TestParseAddressList(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  []store.Participant
		probs int
	}{
		{`Alice <a@x.test>`, pl(pp("Alice", "a@x.test")), 0},
		{`"Smith, John" <j@x.test>, b@x.test`, pl(pp("Smith, John", "j@x.test"), pp("", "b@x.test")), 0},
		{`b@x.test (Bob Builder)`, pl(pp("Bob Builder", "b@x.test")), 0},
		{`"Quote \"Q\" Me" <q@x.test>`, pl(pp(`Quote "Q" Me`, "q@x.test")), 0},
		{`=?UTF-8?Q?J=C3=BCrgen?= <j@x.test>`, pl(pp("Jürgen", "j@x.test")), 0},
		{`"=?UTF-8?Q?J=C3=BCrgen?=" <j@x.test>`, pl(pp("Jürgen", "j@x.test")), 0},
		{`=?UTF-8?B?SsO8cmdlbiA8akB4LnRlc3Q+?=`, pl(pp("Jürgen", "j@x.test")), 0},
		{`undisclosed-recipients:;`, nil, 0},
		{`Team: a@x.test, "B" <b@x.test>;, c@x.test`, pl(pp("", "a@x.test"), pp("B", "b@x.test"), pp("", "c@x.test")), 0},
		{`'Outlook Name' <o@x.test>`, pl(pp("Outlook Name", "o@x.test")), 0},
		{`<@relay.test:r@x.test>`, pl(pp("", "r@x.test")), 0},
		{`MAILER-DAEMON`, pl(pp("", "MAILER-DAEMON")), 0},
		{`Just A Name`, nil, 1},
		{`a@x.test,, ,b@x.test`, pl(pp("", "a@x.test"), pp("", "b@x.test")), 0},
		{`Name Without Brackets a@x.test`, pl(pp("Name Without Brackets", "a@x.test")), 0},
		{`"Broken <no-at-sign`, pl(pp("Broken", "no-at-sign")), 2},
		{`Open <a@x.test`, pl(pp("Open", "a@x.test")), 1},
		{`<>`, nil, 0},
		{"Caf\xe9 <c@x.test>", pl(pp("Caf\uFFFD", "c@x.test")), 0},
	} {
		p := &parser{msg: &Message{}}
		got := p.parseAddressList(c.in, "To")
		if !reflect.DeepEqual(got, c.want) || len(p.msg.Problems) != c.probs {
			t.Errorf("parseAddressList(%q) = %#v, problems %q; want %#v, %d problems", c.in, got, p.msg.Problems, c.want, c.probs)
		}
	}
}

func TestParseParamHeader(t *testing.T) {
	for _, c := range []struct {
		in     string
		value  string
		params map[string]string
	}{
		{`text/plain`, "text/plain", nil},
		{`Text/HTML; Charset="UTF-8"`, "text/html", map[string]string{"charset": "UTF-8"}},
		{`attachment; filename="a \"b\" c.pdf"`, "attachment", map[string]string{"filename": `a "b" c.pdf`}},
		{`attachment; filename="my "quoted" file.pdf"; size=3`, "attachment", map[string]string{"filename": `my "quoted" file.pdf`, "size": "3"}},
		{`attachment; filename=my file.pdf`, "attachment", map[string]string{"filename": "my file.pdf"}},
		{`attachment; filename="unterminated.pdf`, "attachment", map[string]string{"filename": "unterminated.pdf"}},
		{`attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf`, "attachment", map[string]string{"filename": "€ rates.pdf"}},
		{`attachment; filename*=iso-8859-1'fr'caf%E9.txt; filename="fallback.txt"`, "attachment", map[string]string{"filename": "café.txt"}},
		{`attachment; filename*0*=UTF-8''a%20; filename*1="b c"; filename*2*=%E2%82%AC`, "attachment", map[string]string{"filename": "a b c€"}},
		{`attachment; filename*1=second; filename*0=first-`, "attachment", map[string]string{"filename": "first-second"}},
		{`attachment; filename*=x-klingon''abc`, "attachment", map[string]string{"filename": "abc"}},
		{`multipart/mixed; boundary="a;b"; ; junk; x=1`, "multipart/mixed", map[string]string{"boundary": "a;b", "x": "1"}},
		{"multipart/mixed;\r\n boundary=\"folded\"", "multipart/mixed", map[string]string{"boundary": "folded"}},
		{`text/plain; charset=us-ascii; charset=utf-8`, "text/plain", map[string]string{"charset": "us-ascii"}},
	} {
		v, params, _ := parseParamHeader(c.in)
		if v != c.value || !reflect.DeepEqual(params, c.params) {
			t.Errorf("parseParamHeader(%q) = %q %q; want %q %q", c.in, v, params, c.value, c.params)
		}
	}
}

func TestDecodeWords(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"=?UTF-8?Q?a_b?= =?UTF-8?Q?c?=", "a bc"},
		{"=?UTF-8?Q?a?=  \t =?ISO-8859-1?Q?=E9?= end", "aé end"},
		{"x =?UTF-8?B?4pg=?= =?UTF-8?B?lQ==?= y", "x ☕ y"},
		{"glued=?UTF-8?Q?=C3=A9?=text", "gluedétext"},
		{"=?utf-8*en?q?lang?=", "lang"},
		{"=?UTF-8?X?bad?=", "=?UTF-8?X?bad?="},
		{"=?UTF-8?Q?unterminated", "=?UTF-8?Q?unterminated"},
		{"=?UTF-8?Q?=ZZ?=", "=ZZ"},
		{"=?gb2312?B?1tDOxA==?=", "中文"},
		{"=?UTF-8?B?!!!?=", ""},
	} {
		if got, _ := decodeWords(c.in); got != c.want {
			t.Errorf("decodeWords(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTransferDecoders(t *testing.T) {
	qp := func(in string) string {
		var b bytes.Buffer
		d := &qpWriter{dst: &b}
		// Byte by byte too: the decoder must not depend on write sizes.
		for i := 0; i < len(in); i++ {
			d.Write([]byte{in[i]})
		}
		d.Close()
		var b2 bytes.Buffer
		d2 := &qpWriter{dst: &b2}
		d2.Write([]byte(in))
		d2.Close()
		if b.String() != b2.String() {
			t.Errorf("qp %q: byte-wise %q, whole %q", in, b.String(), b2.String())
		}
		return b.String()
	}
	for _, c := range []struct{ in, want string }{
		{"a=3Db", "a=b"},
		{"soft=\r\nbreak", "softbreak"},
		{"soft=\nbreak", "softbreak"},
		{"soft=  \r\nbreak", "softbreak"},
		{"bad=ZZ and =", "bad=ZZ and "},
		{"lower =c3=a9", "lower é"},
		{"trailing   \r\nnext", "trailing\r\nnext"},
		{"keep  inner  blanks", "keep  inner  blanks"},
		{"= x", "= x"},
		{"=4", "=4"},
	} {
		if got := qp(c.in); got != c.want {
			t.Errorf("qp(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"SGVsbG8=", "Hello"},
		{"SGVs\r\nbG8*!", "Hello"},
		{"SGVsbG8=V29ybGQ=", "HelloWorld"},
		{"SGVsbG8", "Hello"},
		{"SGVsb", "Hel"},
		{"S", ""},
		{"", ""},
	} {
		if got := string(decodeBase64String(c.in)); got != c.want {
			t.Errorf("base64(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestHTMLVisibleText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`<p>a</p><p>b</p>`, "a b"},
		{`<b>Hel</b>lo`, "Hello"},
		{`<div title="x>y">z</div>`, "z"},
		{`<a href='>'>link</a>`, "link"},
		{`<!-- <p>hidden</p> -->shown`, "shown"},
		{`<!-->shown`, "shown"},
		{`<!--->shown`, "shown"},
		{`<!-- a --!>shown`, "shown"},
		{`before<!-- unclosed <p>x`, "before"},
		{`<script>if (a</b) {}</script>ok`, "ok"},
		{`<style>x</STYLE >ok`, "ok"},
		{`<SCRIPT>document.write("</scr"+"ipt>")</SCRIPT>ok`, "ok"},
		{`<script>never closed`, ""},
		{`a < b and c > d`, "a < b and c > d"},
		{`a <3 b`, "a <3 b"},
		{`&lt;script&gt; &amp;amp; &#x41;&#66;`, "<script> &amp; AB"},
		{`<head><title>t</title><meta charset=utf-8></head><body>x</body>`, "x"},
		{`<head><style>s</style>visible text`, "visible text"},
		{`<head><title>t</title><div>implicit body</div>`, "implicit body"},
		{`<textarea><b>x</b>&amp;</textarea>`, "<b>x</b>&"},
		{`<xmp><b>shown raw</b></xmp>`, "<b>shown raw</b>"},
		{`<title>hidden</title>x`, "x"},
		{`x<br>y<br/>z`, "x y z"},
		{`<p>&nbsp;&zwnj;&#847;&shy;Hi</p>`, "Hi"},
		{`<img src=x alt="pic">`, ""},
		{`<![CDATA[hidden]]>shown`, "shown"},
		{`</ p>x`, "x"},
		{`</>x`, "x"},
		{`<?xml version="1.0"?>x`, "x"},
		{`<!DOCTYPE html>x`, "x"},
		{`<div`, ""},
		{`<div a="unterminated>text`, ""},
		{`<iframe><p>no</p></iframe>yes`, "yes"},
		{`<plaintext><b>raw`, "<b>raw"},
		{"<td>a</td><td>b</td>\n\n\t<td>c</td>", "a b c"},
		{`<`, "<"},
		{`x<`, "x<"},
	} {
		if got := htmlVisibleText(c.in, SnippetRunes); got != c.want {
			t.Errorf("htmlVisibleText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := strings.Repeat("<p>wörd</p> ", 100)
	got := htmlVisibleText(long, SnippetRunes)
	// 100 runes, less the blank that would have been the last.
	if n := utf8.RuneCountInString(got); n < SnippetRunes-1 || n > SnippetRunes || strings.HasSuffix(got, " ") {
		t.Errorf("long snippet = %q (%d runes)", got, utf8.RuneCountInString(got))
	}
}

func TestCIDRefs(t *testing.T) {
	refs := cidRefs(`<img src="cid:A@B"><img src='CID:%3Cpct%40x%3E'><img src=cid:bare>x cid:`)
	for _, k := range []string{"a@b", "pct@x", "bare"} {
		if !refs[k] {
			t.Errorf("missing %q in %v", k, refs)
		}
	}
}

func parseString(t *testing.T, s string, lim Limits) *Message {
	t.Helper()
	m, err := Parse(strings.NewReader(s), lim)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLimits(t *testing.T) {
	t.Run("MaxParts", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("Content-Type: multipart/mixed; boundary=x\r\n\r\n")
		for i := 0; i < 30; i++ {
			fmt.Fprintf(&b, "--x\r\nContent-Type: image/png\r\n\r\npart %d\r\n", i)
		}
		b.WriteString("--x--\r\n")
		m := parseString(t, b.String(), Limits{MaxParts: 10})
		// The message itself counts as one part.
		if len(m.Attachments) != 9 || len(m.Problems) != 1 || !strings.Contains(m.Problems[0], "more than 10 parts") {
			t.Errorf("%d attachments, problems %q", len(m.Attachments), m.Problems)
		}
	})
	t.Run("MaxDepth", func(t *testing.T) {
		var b strings.Builder
		// Boundaries "b1z", "b10z": none is a prefix of another.
		b.WriteString("Content-Type: multipart/mixed; boundary=b0z\r\n\r\n")
		for i := 1; i < 30; i++ {
			fmt.Fprintf(&b, "--b%dz\r\nContent-Type: multipart/mixed; boundary=b%dz\r\n\r\n", i-1, i)
		}
		b.WriteString("--b29z\r\nContent-Type: text/plain\r\n\r\ndeep\r\n")
		m := parseString(t, b.String(), Limits{MaxDepth: 5})
		if len(m.Attachments) != 1 || m.Attachments[0].ContentType != "multipart/mixed" || m.Attachments[0].Part != "1.1.1.1.1" {
			t.Errorf("attachments %+v", m.Attachments)
		}
		if !strings.Contains(strings.Join(m.Problems, "\n"), "deeper than 5") {
			t.Errorf("problems %q", m.Problems)
		}
	})
	t.Run("MaxTextBytes", func(t *testing.T) {
		body := strings.Repeat("é", 3000) // 6000 bytes
		m := parseString(t, "Content-Type: text/plain; charset=utf-8\r\n\r\n"+body, Limits{MaxTextBytes: 1001})
		if len(m.Text) != 1000 || !utf8.ValidString(m.Text) {
			t.Errorf("Text of %d bytes, valid %v", len(m.Text), utf8.ValidString(m.Text))
		}
		if len(m.Problems) != 1 || !strings.Contains(m.Problems[0], "cut") {
			t.Errorf("problems %q", m.Problems)
		}
	})
	t.Run("MaxTextBytes UTF-16", func(t *testing.T) {
		// UTF-16 needs more raw bytes than it makes UTF-8: the limit is on
		// the UTF-8 kept.
		var raw []byte
		for i := 0; i < 3000; i++ {
			raw = append(raw, 'a', 0)
		}
		m := parseString(t, "Content-Type: text/plain; charset=utf-16le\r\n\r\n"+string(raw), Limits{MaxTextBytes: 2000})
		if m.Text != strings.Repeat("a", 2000) {
			t.Errorf("Text of %d bytes", len(m.Text))
		}
	})
	t.Run("huge header", func(t *testing.T) {
		s := "Subject: kept\r\nX-Big: " + strings.Repeat("x", 2<<20) + "\r\nFrom: late@x.test\r\n\r\nbody"
		m := parseString(t, s, Limits{})
		if m.Subject != "kept" || m.From != nil || m.Text != "body" || len(m.Header) > maxTopHeaderBytes {
			t.Errorf("Subject %q From %v Text %q header %d", m.Subject, m.From, m.Text, len(m.Header))
		}
	})
}

func TestBrokenStructure(t *testing.T) {
	for _, c := range []struct {
		name, in string
		check    func(t *testing.T, m *Message)
	}{
		{"LF only", "Subject: lf\nContent-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/plain\n\nline1\nline2\n--a\nContent-Type: text/html\n\n<p>h</p>\n--a--\n",
			func(t *testing.T, m *Message) {
				if m.Subject != "lf" || m.Text != "line1\nline2" || m.HTML != "<p>h</p>" || len(m.Problems) != 0 {
					t.Errorf("%+v", m)
				}
			}},
		{"mbox From line", "From someone@x.test Mon Jan  2 15:04:05 2006\r\nSubject: mbox\r\n\r\nbody",
			func(t *testing.T, m *Message) {
				if m.Subject != "mbox" || bytes.HasPrefix(m.Header, []byte("From ")) {
					t.Errorf("%+v", m)
				}
			}},
		{"garbage header lines", "Subject: g\r\nthis is not a header\r\n\tcontinued\r\nFrom: a@x.test\r\n\r\nbody",
			func(t *testing.T, m *Message) {
				if m.Subject != "g" || len(m.From) != 1 || m.Text != "body" || len(m.Problems) == 0 {
					t.Errorf("%+v", m)
				}
			}},
		{"no body", "Subject: only a header\r\n",
			func(t *testing.T, m *Message) {
				if m.Subject != "only a header" || m.Text != "" || m.Body != "" || len(m.Attachments) != 0 {
					t.Errorf("%+v", m)
				}
			}},
		{"empty input", "",
			func(t *testing.T, m *Message) {
				if m.Subject != "" || len(m.Attachments) != 0 || m.Body != "" {
					t.Errorf("%+v", m)
				}
			}},
		{"boundary never appears", "Content-Type: multipart/mixed; boundary=nope\r\n\r\njust text\r\n",
			func(t *testing.T, m *Message) {
				if m.Text != "" || len(m.Problems) != 1 || !strings.Contains(m.Problems[0], "no part") {
					t.Errorf("%+v", m)
				}
			}},
		{"boundary with transport padding", "Content-Type: multipart/mixed; boundary=p\r\n\r\n--p  \t\r\nContent-Type: text/plain\r\n\r\npadded\r\n--p-- \r\n",
			func(t *testing.T, m *Message) {
				if m.Text != "padded" || len(m.Problems) != 0 {
					t.Errorf("%+v", m)
				}
			}},
		// As in Dovecot: a line starting with the delimiter is one, whatever
		// follows; here it starts an empty second part.
		{"delimiter prefix", "Content-Type: multipart/mixed; boundary=p\r\n\r\n--p\r\nContent-Type: text/plain\r\n\r\nbody\r\n--pq starts a part\r\n--p--junk\r\nepilogue",
			func(t *testing.T, m *Message) {
				if m.Text != "body" || len(m.Attachments) != 1 || m.Attachments[0].Part != "2" || m.Attachments[0].Size != 0 || len(m.Problems) != 1 {
					t.Errorf("%+v", m)
				}
			}},
		{"unknown transfer encoding", "Content-Type: text/plain\r\nContent-Transfer-Encoding: x-rot13\r\n\r\nuryyb",
			func(t *testing.T, m *Message) {
				if m.Text != "uryyb" || len(m.Problems) != 1 {
					t.Errorf("%+v", m)
				}
			}},
		{"invalid content type", "Content-Type: garbage\r\n\r\ntext anyway",
			func(t *testing.T, m *Message) {
				if m.Text != "text anyway" || len(m.Problems) != 1 {
					t.Errorf("%+v", m)
				}
			}},
		{"invalid UTF-8 body", "Content-Type: text/plain; charset=utf-8\r\n\r\nbad \xff byte",
			func(t *testing.T, m *Message) {
				if m.Text != "bad \uFFFD byte" || len(m.Problems) != 1 {
					t.Errorf("%+v", m)
				}
			}},
		{"html charset from meta", "Content-Type: text/html\r\n\r\n<meta charset=\"windows-1252\"><p>caf\xe9 \x80</p>",
			func(t *testing.T, m *Message) {
				if !strings.Contains(m.HTML, "café €") || m.Snippet != "café €" {
					t.Errorf("%q %q", m.HTML, m.Snippet)
				}
			}},
		{"iso-8859-1 read as windows-1252", "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n\x93quoted\x94",
			func(t *testing.T, m *Message) {
				if m.Text != "“quoted”" {
					t.Errorf("%q", m.Text)
				}
			}},
		{"format=flowed", "Content-Type: text/plain; format=flowed\r\n\r\nThis is one \r\nparagraph.\r\n> quoted \r\n> flowed\r\n-- \r\nsig",
			func(t *testing.T, m *Message) {
				if m.Text != "This is one paragraph.\n> quoted flowed\n-- \nsig" {
					t.Errorf("%q", m.Text)
				}
			}},
		{"text attachment is not the body", "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\nnotes\r\n--m\r\nContent-Type: text/plain\r\n\r\nthe body\r\n--m--",
			func(t *testing.T, m *Message) {
				if m.Text != "the body" || len(m.Attachments) != 1 || m.Attachments[0].Filename != "notes.txt" || m.Attachments[0].Size != 5 {
					t.Errorf("%+v", m)
				}
			}},
		{"second text part is an attachment", "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n\r\nfirst\r\n--m\r\n\r\nsecond\r\n--m--",
			func(t *testing.T, m *Message) {
				if m.Text != "first" || len(m.Attachments) != 1 || m.Attachments[0].Part != "2" || m.Attachments[0].ContentType != "text/plain" {
					t.Errorf("%+v", m)
				}
			}},
		{"filename control characters", "Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"a=?UTF-8?Q?=0D=0A?=b.pdf\"\r\n\r\nx",
			func(t *testing.T, m *Message) {
				if len(m.Attachments) != 1 || m.Attachments[0].Filename != "ab.pdf" {
					t.Errorf("%+v", m.Attachments)
				}
			}},
		{"message-id without brackets", "Message-ID: abc@x.test (comment)\r\nIn-Reply-To: Your message of Monday <p@x.test>\r\nReferences: <a@x.test> <b@x\r\n .test> <a@x.test>\r\n\r\n",
			func(t *testing.T, m *Message) {
				if m.MessageID != "abc@x.test" || m.InReplyTo != "p@x.test" || !reflect.DeepEqual(m.References, []string{"a@x.test", "b@x.test"}) {
					t.Errorf("%q %q %q", m.MessageID, m.InReplyTo, m.References)
				}
			}},
		{"inline disposition without content-id", "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n\r\nt\r\n--m\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\n\r\nx\r\n--m--",
			func(t *testing.T, m *Message) {
				if len(m.Attachments) != 1 || m.Attachments[0].IsInline {
					t.Errorf("%+v", m.Attachments)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.check(t, parseString(t, c.in, Limits{}))
		})
	}
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestReadError(t *testing.T) {
	boom := errors.New("connection reset")
	m, err := Parse(&failingReader{strings.NewReader("Subject: partial\r\n\r\nbody so f"), boom}, Limits{})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if m == nil || m.Subject != "partial" || m.Text != "body so f" {
		t.Errorf("partial message %+v", m)
	}
}
