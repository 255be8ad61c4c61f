package mimeconv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orchard-mail/orchard/internal/store"
)

// want is what one corpus file must parse to. Header is checked separately
// (it must be the file's bytes up to the empty line); Problems are matched
// by substring, one per entry, in order.
type want struct {
	MessageID   string
	InReplyTo   string
	References  []string
	Subject     string
	From        []store.Participant
	To          []store.Participant
	Cc          []store.Participant
	ReplyTo     []store.Participant
	Date        time.Time
	Text        string
	HTML        string
	Body        string // "" means: the same as HTML, or Text up-converted
	Snippet     string
	Attachments []store.Attachment
	Problems    []string
}

func pp(name, email string) store.Participant        { return store.Participant{Name: name, Email: email} }
func pl(ps ...store.Participant) []store.Participant { return ps }

func date(y int, mo time.Month, d, h, mi, s, offHours int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.FixedZone("", offHours*3600))
}

var carol = pl(pp("", "carol@example.test"))

var corpusWant = map[string]want{
	"alternative.eml": {
		MessageID: "CAF7k2xQ9=lunch-0001@mail.example.org",
		Subject:   "Team lunch on Friday",
		From:      pl(pp("Alice Martin", "alice.martin@example.org")),
		To:        pl(pp("Carol Danvers", "carol@example.test")),
		Date:      date(2026, 11, 20, 10, 14, 2, 1),
		Text:      "Hi Carol,\n\nShall we book the Thai place for Friday at 12:30? I’ll bring the new interns.\n\nAlice\n",
		HTML:      "<div dir=\"ltr\"><p>Hi Carol,</p><p>Shall we book the <b>Thai place</b> for Friday at 12:30? I’ll bring the new interns.</p><p>Alice</p></div>\n",
		Snippet:   "Hi Carol, Shall we book the Thai place for Friday at 12:30? I’ll bring the new interns. Alice",
	},
	"nested-mixed.eml": {
		MessageID: "20261123160210.88412.bob@example.net",
		Subject:   "Site visit report and floor plan",
		From:      pl(pp("Bob Okafor", "bob@example.net")),
		To:        pl(pp("", "carol@example.test"), pp("Dave Li", "dave@example.com")),
		Cc:        pl(pp("Erin", "erin@example.org")),
		ReplyTo:   pl(pp("Bob Okafor", "bob.replies@example.net")),
		Date:      date(2026, 11, 23, 11, 2, 10, -5),
		Text:      "Hello all,\n\nThe site visit went well. Floor plan below, full report attached.\n\n-- \nBob",
		HTML:      `<html><body><p>Hello all,</p><p>The site visit went well. Floor plan below, full report attached.</p><img src="cid:floorplan.7f3a@example.net" alt="Floor plan"><p>-- <br>Bob</p></body></html>`,
		Snippet:   "Hello all, The site visit went well. Floor plan below, full report attached. -- Bob",
		Attachments: []store.Attachment{
			{Filename: "floorplan.png", ContentType: "image/png", Size: 99, ContentID: "floorplan.7f3a@example.net", IsInline: true, Part: "1.2", Encoding: "base64"},
			{Filename: "site-visit-report.pdf", ContentType: "application/pdf", Size: 303, Part: "2", Encoding: "base64"},
		},
	},
	"inline-cid-image.eml": {
		MessageID: "weekly-picks.20261124.0830@shop.example.com",
		Subject:   "Your weekly picks",
		From:      pl(pp("Newsletter Team", "news@shop.example.com")),
		To:        carol,
		Date:      date(2026, 11, 24, 8, 30, 44, 0),
		HTML:      `<html><head><title>Weekly picks</title></head><body><img src="CID:banner@shop.example.com"><p>Three picks for you this week.</p></body></html>`,
		Snippet:   "Three picks for you this week.",
		Attachments: []store.Attachment{
			// No Content-Disposition: inline only because the HTML uses it.
			{ContentType: "image/png", Size: 99, ContentID: "banner@shop.example.com", IsInline: true, Part: "2", Encoding: "base64"},
		},
	},
	"rfc2231-filenames.eml": {
		MessageID: "rates-q3-2026.1@finance.example.org",
		Subject:   "Exchange rates and the quarterly report",
		From:      pl(pp("Finance", "finance@example.org")),
		To:        carol,
		Date:      date(2026, 11, 25, 14, 44, 59, 1),
		Text:      "Both files attached.",
		Snippet:   "Both files attached.",
		Attachments: []store.Attachment{
			{Filename: "€ rates.pdf", ContentType: "application/pdf", Size: 303, Part: "2", Encoding: "base64"},
			{Filename: "Quarterly report — Q3 übersicht.xlsx", ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Size: 272, Part: "3", Encoding: "base64"},
		},
	},
	"rfc2047-filename.eml": {
		MessageID: "cv-francoise-20261126@example.fr",
		Subject:   "CV ci-joint",
		From:      pl(pp("Françoise Dupont", "francoise@example.fr")),
		To:        carol,
		Date:      date(2026, 11, 26, 8, 11, 58, 1),
		Text:      "Bonjour, voici mon CV.",
		Snippet:   "Bonjour, voici mon CV.",
		Attachments: []store.Attachment{
			{Filename: "Résumé Françoise Dupont.docx", ContentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Size: 280, Part: "2", Encoding: "base64"},
		},
	},
	"latin1.eml": {
		MessageID: "latin1-cafe@example.ch",
		Subject:   "Café crème à Zürich",
		From:      pl(pp("José González", "jose@example.ch")),
		To:        carol,
		Date:      date(2026, 11, 27, 11, 0, 0, 1),
		Text:      "Bonjour Carol,\n\nLe café crème est à 2,50 EUR ... non, pardon : 2,50 francs suisses.\nGrüße aus Zürich,\nJosé\n",
		Snippet:   "Bonjour Carol, Le café crème est à 2,50 EUR ... non, pardon : 2,50 francs suisses. Grüße aus Zürich,",
	},
	"windows-1251.eml": {
		MessageID: "1251.report.nov@example.ru",
		Subject:   "Отчёт за ноябрь",
		From:      pl(pp("Иван Петров", "ivan@example.ru")),
		To:        carol,
		Date:      date(2026, 11, 28, 9, 20, 0, 3),
		Text:      "Привет, Кэрол!\n\nОтчёт за ноябрь во вложении не поместился, пришлю завтра.\n\nС уважением,\nИван\n",
		Snippet:   "Привет, Кэрол! Отчёт за ноябрь во вложении не поместился, пришлю завтра. С уважением, Иван",
	},
	"iso-2022-jp.eml": {
		MessageID: "jp-shiryou-20261122@example.jp",
		Subject:   "会議の資料",
		From:      pl(pp("田中 太郎", "tanaka@example.jp")),
		To:        carol,
		Date:      date(2026, 11, 22, 10, 5, 0, 9),
		Text:      "キャロルさん\n\n来週の会議の資料を送ります。\nよろしくお願いします。\n田中\n",
		Snippet:   "キャロルさん 来週の会議の資料を送ります。 よろしくお願いします。 田中",
	},
	"gb18030.eml": {
		MessageID: "gb18030-plan@example.cn",
		Subject:   "项目计划",
		From:      pl(pp("Wang Wei", "wangwei@example.cn")),
		To:        carol,
		Date:      date(2026, 11, 21, 11, 33, 0, 8),
		Text:      "卡罗尔你好，\n\n附上项目计划。生僻字测试：㐀。\n\n王伟\n",
		Snippet:   "卡罗尔你好， 附上项目计划。生僻字测试：㐀。 王伟",
	},
	"split-encoded-subject.eml": {
		MessageID: "split-subject-0001@example.org",
		// ISO-8859-1 word, then "☕" split across two UTF-8 words.
		Subject: "Grüße – naïve café ☕",
		From:    pl(pp("Grace Hopper", "grace@example.org")),
		To:      carol,
		Date:    date(2026, 11, 26, 20, 0, 0, 1),
		Text:    "Subject test.\n",
		Snippet: "Subject test.",
	},
	"no-date.eml": {
		MessageID: "backup-nightly-20261125@legacy.example.com",
		Subject:   "Nightly backup finished",
		From:      pl(pp("Legacy Cron", "cron@legacy.example.com")),
		To:        carol,
		Text:      "Backup of /srv finished: 1432 files, 0 errors.\n",
		Snippet:   "Backup of /srv finished: 1432 files, 0 errors.",
	},
	"malformed-from-broken.eml": {
		MessageID: "broken-from-1@example.org",
		Subject:   "Broken sender",
		From:      pl(pp("Broken", "no-at-sign")),
		To:        carol,
		Date:      date(2026, 11, 24, 12, 0, 0, 0),
		Text:      "The From header of this message has no address.\n",
		Snippet:   "The From header of this message has no address.",
		Problems:  []string{"From: unbalanced quote", `From: missing ">"`},
	},
	"malformed-from-quotes.eml": {
		MessageID: "broken-from-2@example.net",
		Subject:   "Unbalanced quotes",
		From:      pl(pp("Mallory Example", "mallory@example.net")),
		To:        pl(pp("Carol", "carol@example.test"), pp("Eve Example", "eve@example.net")),
		Date:      date(2026, 11, 24, 12, 5, 0, 0),
		Text:      "Quotes are hard.\n",
		Snippet:   "Quotes are hard.",
		Problems:  []string{"From: unbalanced quote", "To: unbalanced quote"},
	},
	"truncated.eml": {
		MessageID: "truncated-0001@example.com",
		Subject:   "Truncated in transit",
		From:      pl(pp("Flaky Relay", "relay@example.com")),
		To:        carol,
		Date:      date(2026, 11, 22, 18, 0, 0, 0),
		Text:      "The attachment below was cut off by a relay.",
		Snippet:   "The attachment below was cut off by a relay.",
		Attachments: []store.Attachment{
			// 297 base64 characters survive: 74 quanta (222 bytes) and one
			// lone character that carries no whole byte.
			{Filename: "data.bin", ContentType: "application/octet-stream", Size: 222, Part: "2", Encoding: "base64"},
		},
		Problems: []string{"multipart/mixed ends without its closing boundary"},
	},
	"unknown-charset.eml": {
		MessageID: "klingon-0001@example.org",
		Subject:   "Qapla'",
		From:      pl(pp("Worf", "worf@example.org")),
		To:        carol,
		Date:      date(2026, 11, 23, 20, 0, 0, 0),
		Text:      "nuqneH! Qapla' caf\uFFFD ✓\n",
		Snippet:   "nuqneH! Qapla' caf\uFFFD ✓",
		Problems:  []string{`Subject: unknown charset "x-klingon"`, `message: unknown charset "x-klingon"`},
	},
	"forwarded-rfc822.eml": {
		MessageID: "fwd-contract-1@example.net",
		Subject:   "Fwd: Original contract draft",
		From:      pl(pp("Bob Okafor", "bob@example.net")),
		To:        carol,
		Date:      date(2026, 11, 27, 10, 0, 0, -5),
		Text:      "See the forwarded message.",
		Snippet:   "See the forwarded message.",
		Attachments: []store.Attachment{
			{Filename: "Original contract draft.eml", ContentType: "message/rfc822", Size: 260, Part: "2"},
		},
	},
	"plain-escaping.eml": {
		MessageID: "escaping-0001@example.com",
		Subject:   "if a < b && c > d",
		From:      pl(pp("Trent", "trent@example.com")),
		To:        carol,
		Date:      date(2026, 11, 28, 11, 11, 11, 0),
		Text:      "Check: if a < b && c > d then print \"<b>bold</b>\" & exit.\nSecond line.\n",
		Body:      "<div>Check: if a &lt; b &amp;&amp; c &gt; d then print &#34;&lt;b&gt;bold&lt;/b&gt;&#34; &amp; exit.<br>Second line.<br></div>",
		Snippet:   "Check: if a < b && c > d then print \"<b>bold</b>\" & exit. Second line.",
	},
	"html-only.eml": {
		MessageID: "flash-sale-2026@deals.example.com",
		Subject:   "Flash sale",
		From:      pl(pp("Promo", "promo@deals.example.com")),
		To:        carol,
		Date:      date(2026, 11, 28, 12, 0, 0, 0),
		HTML: "<!DOCTYPE html>\n<html><head><title>Hidden title</title><style>p { color: red; } /* </p> */</style>\n" +
			"<script>var x = \"<p>not text</p>\";</script></head>\n" +
			"<body><!-- a comment with <b>tags</b> --><p>Fish &amp; chips&nbsp;&mdash; 50&#37; off</p>\n" +
			"<div data-x=\"a > b\">Only&#x20;today!</div><script>alert(1)</script>\n</body></html>\n",
		Snippet: "Fish & chips — 50% off Only today!",
	},
	"no-message-id.eml": {
		Subject: "Scan from office printer",
		From:    pl(pp("Printer", "scanner@office.example.com")),
		To:      carol,
		Date:    date(2026, 11, 26, 5, 55, 0, 0),
		Text:    "Scanned document ready.\n",
		Snippet: "Scanned document ready.",
	},
	"thread-1-original.eml": {
		MessageID: "budget-q1-root@example.org",
		Subject:   "Budget review for Q1",
		From:      pl(pp("Alice Martin", "alice.martin@example.org")),
		To:        pl(pp("", "carol@example.test"), pp("Bob Okafor", "bob@example.net")),
		Date:      date(2026, 11, 23, 9, 0, 0, 1),
		Text:      "Can we meet on Wednesday to go through the Q1 budget?\n",
		Snippet:   "Can we meet on Wednesday to go through the Q1 budget?",
	},
	"thread-2-reply.eml": {
		MessageID:  "budget-q1-reply-bob@example.net",
		InReplyTo:  "budget-q1-root@example.org",
		References: []string{"budget-q1-root@example.org"},
		Subject:    "Re: Budget review for Q1",
		From:       pl(pp("Bob Okafor", "bob@example.net")),
		To:         pl(pp("Alice Martin", "alice.martin@example.org")),
		Cc:         carol,
		Date:       date(2026, 11, 23, 4, 30, 0, -5),
		Text:       "Wednesday works for me.\n\n> Can we meet on Wednesday to go through the Q1 budget?\n",
		Snippet:    "Wednesday works for me. > Can we meet on Wednesday to go through the Q1 budget?",
	},
	"thread-3-reply-to-reply.eml": {
		MessageID:  "budget-q1-reply-carol@example.test",
		InReplyTo:  "budget-q1-reply-bob@example.net",
		References: []string{"budget-q1-root@example.org", "budget-q1-reply-bob@example.net"},
		Subject:    "RE: Re: Budget review for Q1",
		From:       pl(pp("Carol Danvers", "carol@example.test")),
		To:         pl(pp("Bob Okafor", "bob@example.net"), pp("Alice Martin", "alice.martin@example.org")),
		Date:       date(2026, 11, 23, 10, 15, 0, 0),
		Text:       "Me too, 10:00 in room 4.\n",
		Snippet:    "Me too, 10:00 in room 4.",
	},
	"subject-only-reply.eml": {
		MessageID: "dave-lunch-answer@example.com",
		Subject:   "Re: Team lunch on Friday",
		From:      pl(pp("Dave Li", "dave@example.com")),
		To:        pl(pp("Alice Martin", "alice.martin@example.org"), pp("", "carol@example.test")),
		Date:      date(2026, 11, 20, 11, 0, 0, 0),
		Text:      "Count me in.\n",
		Snippet:   "Count me in.",
	},
	"old-newsletter.eml": {
		MessageID: "newsletter-spring-2026@garden.example.org",
		Subject:   "Spring planting newsletter",
		From:      pl(pp("Garden Club", "club@garden.example.org")),
		To:        carol,
		Date:      date(2026, 5, 13, 7, 0, 0, 0),
		Text:      "Tomatoes go in now.\n",
		Snippet:   "Tomatoes go in now.",
	},
	"old-receipt.eml": {
		MessageID: "receipt-10442@books.example.com",
		Subject:   "Your receipt #10442",
		From:      pl(pp("Bookshop", "orders@books.example.com")),
		To:        carol,
		Date:      date(2026, 5, 13, 18, 45, 0, 2),
		Text:      "Thank you for your order: 2 books, 31.80 EUR.",
		HTML:      "<p>Thank you for your order: <b>2 books</b>, 31.80&nbsp;EUR.</p>",
		Snippet:   "Thank you for your order: 2 books, 31.80 EUR.",
	},
	"large-attachment.eml": {
		MessageID: "raw-photo-300k@example.com",
		Subject:   "Raw photo from the shoot",
		From:      pl(pp("Photographer", "photos@example.com")),
		To:        carol,
		Date:      date(2026, 11, 25, 17, 0, 0, 0),
		Text:      "The raw file is attached (300 KiB).",
		Snippet:   "The raw file is attached (300 KiB).",
		Attachments: []store.Attachment{
			{Filename: "IMG_0420.CR2", ContentType: "image/x-canon-cr2", Size: 300 * 1024, Part: "2", Encoding: "base64"},
		},
	},
}

func readCorpus(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/corpus/*.eml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func TestCorpus(t *testing.T) {
	corpus := readCorpus(t)
	if len(corpus) != len(corpusWant) {
		t.Errorf("corpus has %d files, the test knows %d", len(corpus), len(corpusWant))
	}
	for name, raw := range corpus {
		t.Run(name, func(t *testing.T) {
			w, ok := corpusWant[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
				t.Errorf("%s has bare LF line ends; the corpus is CRLF", name)
			}
			m, err := Parse(bytes.NewReader(raw), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			end := bytes.Index(raw, []byte("\r\n\r\n"))
			if end < 0 || !bytes.Equal(m.Header, raw[:end+4]) {
				t.Errorf("Header is not the raw header block:\n%q", m.Header)
			}
			check := func(field string, got, want any) {
				t.Helper()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\n got %#v\nwant %#v", field, got, want)
				}
			}
			check("MessageID", m.MessageID, w.MessageID)
			check("InReplyTo", m.InReplyTo, w.InReplyTo)
			check("References", m.References, w.References)
			check("Subject", m.Subject, w.Subject)
			check("From", m.From, w.From)
			check("To", m.To, w.To)
			check("Cc", m.Cc, w.Cc)
			check("Bcc", m.Bcc, []store.Participant(nil))
			check("ReplyTo", m.ReplyTo, w.ReplyTo)
			if !m.Date.Equal(w.Date) || m.Date.IsZero() != w.Date.IsZero() {
				t.Errorf("Date = %v, want %v", m.Date, w.Date)
			} else if _, off := m.Date.Zone(); !w.Date.IsZero() {
				if _, woff := w.Date.Zone(); off != woff {
					t.Errorf("Date zone offset = %d, want %d", off, woff)
				}
			}
			check("Text", m.Text, w.Text)
			check("HTML", m.HTML, w.HTML)
			wantBody := w.Body
			if wantBody == "" {
				if w.HTML != "" {
					wantBody = w.HTML
				} else if w.Text != "" {
					wantBody = textToHTML(w.Text)
				}
			}
			check("Body", m.Body, wantBody)
			check("Snippet", m.Snippet, w.Snippet)
			check("Attachments", m.Attachments, w.Attachments)
			if len(m.Problems) != len(w.Problems) {
				t.Errorf("Problems = %q, want %d matching %q", m.Problems, len(w.Problems), w.Problems)
			} else {
				for i, p := range w.Problems {
					if !strings.Contains(m.Problems[i], p) {
						t.Errorf("Problems[%d] = %q, want it to contain %q", i, m.Problems[i], p)
					}
				}
			}
		})
	}
}

// The corpus's dates: within the last 30 days of when it was made, except
// the old-* files, 200 days before. The sync-window tests rely on this split.
func TestCorpusDates(t *testing.T) {
	made := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	for name, raw := range readCorpus(t) {
		m, _ := Parse(bytes.NewReader(raw), Limits{})
		if name == "no-date.eml" {
			continue
		}
		age := made.Sub(m.Date)
		if strings.HasPrefix(name, "old-") {
			if age < 190*24*time.Hour || age > 210*24*time.Hour {
				t.Errorf("%s: Date %v is not about 200 days old", name, m.Date)
			}
		} else if age < 0 || age > 30*24*time.Hour {
			t.Errorf("%s: Date %v is not within 30 days", name, m.Date)
		}
	}
}

func TestCorpusMessageIDsDistinct(t *testing.T) {
	seen := map[string]string{}
	for name, raw := range readCorpus(t) {
		m, _ := Parse(bytes.NewReader(raw), Limits{})
		k := IdentityKey(m)
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s share identity key %s", name, other, k)
		}
		seen[k] = name
	}
}

func TestIdentityKey(t *testing.T) {
	corpus := readCorpus(t)
	m, _ := Parse(bytes.NewReader(corpus["alternative.eml"]), Limits{})
	if got, want := IdentityKey(m), "mid:CAF7k2xQ9=lunch-0001@mail.example.org"; got != want {
		t.Errorf("IdentityKey = %q, want %q", got, want)
	}

	raw := corpus["no-message-id.eml"]
	end := bytes.Index(raw, []byte("\r\n\r\n")) + 4
	sum := sha256.Sum256(raw[:end])
	wantKey := "hdr:" + hex.EncodeToString(sum[:16])
	a, _ := Parse(bytes.NewReader(raw), Limits{})
	if got := IdentityKey(a); got != wantKey {
		t.Errorf("IdentityKey = %q, want %q", got, wantKey)
	}
	// A second copy (another IMAP folder holds the same bytes) gets the
	// same key; a copy with another header does not.
	b, _ := Parse(bytes.NewReader(append([]byte(nil), raw...)), Limits{})
	if IdentityKey(a) != IdentityKey(b) {
		t.Error("two copies of one message got different keys")
	}
	c, _ := Parse(bytes.NewReader(append([]byte("X-Other: 1\r\n"), raw...)), Limits{})
	if IdentityKey(a) == IdentityKey(c) {
		t.Error("a different header got the same key")
	}
}

// The threading corpus: the replies link to the original by References,
// the subject-only reply by its normalized subject.
func TestCorpusThreading(t *testing.T) {
	corpus := readCorpus(t)
	parse := func(n string) *Message {
		m, err := Parse(bytes.NewReader(corpus[n]), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	root := parse("thread-1-original.eml")
	r1 := parse("thread-2-reply.eml")
	r2 := parse("thread-3-reply-to-reply.eml")
	if r1.InReplyTo != root.MessageID || r2.InReplyTo != r1.MessageID || r2.References[0] != root.MessageID {
		t.Error("reply chain broken")
	}
	for _, m := range []*Message{r1, r2} {
		if SubjectKey(m.Subject) != SubjectKey(root.Subject) || !IsReplySubject(m.Subject) {
			t.Errorf("%q does not normalize to %q", m.Subject, root.Subject)
		}
	}
	if IsReplySubject(root.Subject) {
		t.Error("original taken for a reply")
	}
	lunch := parse("alternative.eml")
	answer := parse("subject-only-reply.eml")
	if answer.InReplyTo != "" || answer.References != nil {
		t.Error("the subject-only reply must have no references")
	}
	if SubjectKey(answer.Subject) != SubjectKey(lunch.Subject) || !IsReplySubject(answer.Subject) {
		t.Errorf("%q does not match %q", answer.Subject, lunch.Subject)
	}
}
