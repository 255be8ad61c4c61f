package mimeconv

import (
	"bytes"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/orchard-mail/orchard/internal/store"
)

// FuzzParse: Parse never panics, never fails on an in-memory reader, keeps
// within its limits, returns valid UTF-8 everywhere, and does not depend on
// how the reader splits its input.
func FuzzParse(f *testing.F) {
	for _, raw := range readCorpus(f) {
		// The 300 KiB seed makes the fuzzer spend its time minimizing
		// mutations of it; TestLargeAttachmentBoundedMemory covers size.
		if len(raw) < 64<<10 {
			f.Add(raw)
		}
	}
	for _, s := range structureCases {
		f.Add(crlf(s))
	}
	lim := Limits{MaxTextBytes: 2048, MaxParts: 16, MaxDepth: 6}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(bytes.NewReader(raw), lim)
		if err != nil {
			t.Fatalf("error from an in-memory reader: %v", err)
		}
		if int64(len(m.Text)) > lim.MaxTextBytes || int64(len(m.HTML)) > lim.MaxTextBytes {
			t.Fatalf("text %d / html %d bytes over the limit", len(m.Text), len(m.HTML))
		}
		if len(m.Attachments) > lim.MaxParts {
			t.Fatalf("%d attachments, limit %d parts", len(m.Attachments), lim.MaxParts)
		}
		if n := utf8.RuneCountInString(m.Snippet); n > SnippetRunes {
			t.Fatalf("snippet of %d runes", n)
		}
		if len(m.Problems) > maxProblems {
			t.Fatalf("%d problems kept", len(m.Problems))
		}
		if len(m.Header) > maxTopHeaderBytes {
			t.Fatalf("header of %d bytes kept", len(m.Header))
		}
		strs := []string{m.Subject, m.Text, m.HTML, m.Body, m.Snippet, m.MessageID, m.InReplyTo}
		strs = append(strs, m.References...)
		strs = append(strs, names(m)...)
		for _, a := range m.Attachments {
			strs = append(strs, a.Filename, a.ContentType, a.ContentID, a.Encoding)
			if a.Part == "" || strings.HasPrefix(a.Part, ".") || strings.HasSuffix(a.Part, ".") || strings.Count(a.Part, ".") >= lim.MaxDepth {
				t.Fatalf("bad part number %q", a.Part)
			}
			if a.Size < 0 {
				t.Fatalf("negative size")
			}
		}
		for _, s := range strs {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8: %q", s)
			}
		}
		// The same bytes read one at a time give the same result.
		m2, err := Parse(iotest.OneByteReader(bytes.NewReader(raw)), lim)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("result depends on read sizes")
		}
	})
}

// names lists every display name and address of m.
func names(m *Message) []string {
	var out []string
	for _, l := range [][]store.Participant{m.From, m.To, m.Cc, m.Bcc, m.ReplyTo} {
		for _, p := range l {
			out = append(out, p.Name, p.Email)
		}
	}
	return out
}

// base64Lines generates n lines of base64 (76 characters, 57 bytes
// decoded, CRLF) without ever holding more than one line.
type base64Lines struct {
	n    int
	line []byte
	off  int
}

func newBase64Lines(n int) *base64Lines {
	l := []byte(strings.Repeat("QUJD", 19) + "\r\n")
	return &base64Lines{n: n, line: l, off: len(l)}
}

func (g *base64Lines) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if g.off == len(g.line) {
			if g.n == 0 {
				break
			}
			g.n--
			g.off = 0
		}
		c := copy(p, g.line[g.off:])
		g.off += c
		p = p[c:]
		total += c
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// A 50 MB attachment streams: memory stays flat, the size is exact.
func TestLargeAttachmentBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 67 MB")
	}
	const lines = 50 << 20 / 57 // ≈ 50 MiB decoded
	head := crlf(`From: big@example.test
Subject: big
Message-ID: <big@example.test>
Content-Type: multipart/mixed; boundary=B

--B
Content-Type: text/plain

see attachment
--B
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename=big.bin

`)
	tail := crlf("--B--\n")
	r := io.MultiReader(bytes.NewReader(head), newBase64Lines(lines), bytes.NewReader(tail))

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	m, err := Parse(r, Limits{})
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Attachments) != 1 || m.Attachments[0].Size != lines*57 {
		t.Fatalf("attachments = %+v, want one of %d bytes", m.Attachments, lines*57)
	}
	if m.Text != "see attachment" || len(m.Problems) != 0 {
		t.Errorf("Text %q, Problems %q", m.Text, m.Problems)
	}
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("50 MiB attachment: %v, heap growth %d KiB, total allocated %d KiB", elapsed, heap/1024, alloc/1024)
	const bound = 8 << 20
	if heap > bound || alloc > bound {
		t.Errorf("heap grew %d bytes, %d allocated in all; want < %d", heap, alloc, bound)
	}
}

// Inputs built to make a careless parser quadratic finish quickly: many
// "=?" in a header, many comments or "</" in an HTML body, many "<" in
// References, many quotes in a parameter.
func TestHostileInputsStayLinear(t *testing.T) {
	const n = 1 << 20
	cases := map[string]string{
		"encoded-word starts":  "Subject: " + strings.Repeat("=?", n/2) + "\r\n\r\n",
		"address junk":         "To: " + strings.Repeat("=?a?", n/4) + "\r\n\r\n",
		"comments":             "Content-Type: text/html\r\n\r\n" + strings.Repeat("<!-- x -->", n/10),
		"unclosed script ends": "Content-Type: text/html\r\n\r\n<script>" + strings.Repeat("</scrip", n/7),
		"references":           "References: " + strings.Repeat("<", n) + "\r\n\r\n",
		"parameter quotes":     "Content-Type: text/plain; name=\"" + strings.Repeat("\" ", n/2) + "\r\n\r\n",
		"boundary lookalikes":  "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b-\r\n", n/5),
	}
	for name, in := range cases {
		start := time.Now()
		m, err := Parse(strings.NewReader(in), Limits{MaxTextBytes: 4 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: %v for 1 MiB (%d problems)", name, d, len(m.Problems))
		}
	}
}

// BenchmarkParse reports messages per second over the corpus.
func BenchmarkParse(b *testing.B) {
	corpus := readCorpus(b)
	var msgs [][]byte
	var total int64
	for _, raw := range corpus {
		msgs = append(msgs, raw)
		total += int64(len(raw))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, raw := range msgs {
			if _, err := Parse(bytes.NewReader(raw), Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(msgs))/b.Elapsed().Seconds(), "msgs/s")
}
