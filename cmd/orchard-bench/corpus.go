package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"time"
)

// The synthetic mailbox: ~400 correspondents over 40 domains, a few
// newsletters, conversations (30 % of the mail answers an earlier message,
// with In-Reply-To, References and "Re:"), three shapes of message (plain
// text; text + HTML alternative; mixed with a small attachment) of 2–4 KB,
// dates spread evenly over a span ending now, ~70 % read.

type person struct{ name, email string }

type attachment struct {
	filename, contentType string
	data                  []byte
}

// mail is one generated message.
type mail struct {
	seq        int // 0 = oldest
	msgID      string
	inReplyTo  string
	refs       []string
	subject    string
	from       person
	to, cc     []person
	date       time.Time
	seen       bool
	flagged    bool
	shape      int // shapePlain, shapeAlternative, shapeMixed
	paragraphs []string
	att        *attachment
	root       int // seq of the conversation's first message
}

const (
	shapePlain = iota
	shapeAlternative
	shapeMixed
)

var (
	firstNames = []string{"Alice", "Bruno", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ingrid", "Jonas",
		"Kavya", "Luis", "Maren", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tamar", "Umar", "Vera",
		"Wen", "Xavier", "Yara", "Zoltan"}
	lastNames = []string{"Andersen", "Bianchi", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Hansen",
		"Ivanova", "Jensen", "Kowalski", "Larsen", "Müller", "Nakamura", "Okafor", "Petrov", "Quinn"}
	domains = []string{"example.org", "acme.example", "globex.example", "initech.example", "umbrella.example",
		"hooli.example", "stark.example", "wayne.example", "cyberdyne.example", "soylent.example", "tyrell.example",
		"wonka.example", "oscorp.example", "aperture.example", "blackmesa.example", "vandelay.example",
		"gringotts.example", "dunder.example", "pied-piper.example", "prestige.example", "monarch.example",
		"massive.example", "nakatomi.example", "octan.example", "rekall.example", "spacely.example", "virtucon.example",
		"weyland.example", "zorg.example", "bluth.example", "sterling.example", "krusty.example", "ollivanders.example",
		"gekko.example", "duff.example", "contoso.example", "fabrikam.example", "northwind.example", "tailspin.example",
		"adventure-works.example"}
	topics = []string{"Quarterly report", "Project Apollo", "Invoice", "Team offsite", "Budget review",
		"Design sync", "Release 4.2", "Hiring plan", "Customer escalation", "Contract renewal", "Board deck",
		"Security audit", "Travel booking", "Lunch on Friday", "Weekly update", "Roadmap", "Migration plan",
		"Onboarding", "Expense claim", "Conference talk", "Office move", "Vendor evaluation", "Sprint retro",
		"Pricing change", "Partnership proposal", "Incident postmortem", "Holiday schedule", "Training session"}
	qualifiers = []string{"", "", "", " draft", " v2", " — final", " (updated)", " follow-up", " questions",
		" for review", " next steps", " notes", " reminder"}
	newsletters = []person{{"The Weekly Digest", "digest@news.example"}, {"Product Updates", "updates@saas.example"},
		{"Travel Deals", "deals@travel.example"}, {"Dev Newsletter", "newsletter@dev.example"}}
	words = strings.Fields(`the we project plan meeting please review attached update team schedule next week
		budget numbers customer release feedback agree thanks notes call tomorrow proposal draft deadline
		timeline open questions summary action items follow up contract price quote invoice delivery launch
		design prototype test results data report metrics quarter goal risk issue fix support ticket office
		travel hotel flight agenda slides document shared folder access approval sign off estimate scope`)
)

type corpus struct {
	rng    *rand.Rand
	me     person
	people []person
	mails  []mail
	span   time.Duration
	end    time.Time
}

func newCorpus(seed uint64, me person, span time.Duration, end time.Time) *corpus {
	c := &corpus{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), me: me, span: span, end: end}
	for i := 0; i < 400; i++ {
		f := firstNames[c.rng.IntN(len(firstNames))]
		l := lastNames[c.rng.IntN(len(lastNames))]
		d := domains[i%len(domains)]
		c.people = append(c.people, person{f + " " + l, strings.ToLower(asciiName(f)) + "." + strings.ToLower(asciiName(l)) + fmt.Sprint(i/len(domains)) + "@" + d})
	}
	return c
}

func asciiName(s string) string {
	r := strings.NewReplacer("é", "e", "ü", "u", "í", "i")
	return r.Replace(s)
}

// person picks a correspondent; a Zipf-like skew makes a few of them
// frequent, as in a real mailbox.
func (c *corpus) person() person {
	i := int(float64(len(c.people)) * c.rng.Float64() * c.rng.Float64())
	return c.people[i]
}

func (c *corpus) sentence() string {
	n := 6 + c.rng.IntN(12)
	w := make([]string, n)
	for i := range w {
		w[i] = words[c.rng.IntN(len(words))]
	}
	s := strings.Join(w, " ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

func (c *corpus) paragraphs(bytes int) []string {
	var out []string
	total := 0
	for total < bytes {
		n := 2 + c.rng.IntN(4)
		var p []string
		for range n {
			p = append(p, c.sentence())
		}
		s := strings.Join(p, " ")
		out = append(out, s)
		total += len(s) + 2
	}
	return out
}

// generate makes n messages, oldest first, dated evenly over the span.
func (c *corpus) generate(n int) []mail {
	c.mails = make([]mail, 0, n)
	start := c.end.Add(-c.span)
	step := c.span / time.Duration(max(n, 1))
	for i := range n {
		m := mail{seq: i, root: i}
		m.date = start.Add(time.Duration(i)*step + time.Duration(c.rng.Int64N(int64(step)+1))).Truncate(time.Second)
		m.msgID = fmt.Sprintf("%08x.%d@mail.%s", c.rng.Uint32(), i, domains[c.rng.IntN(len(domains))])
		// 30 % answer a recent message: a conversation.
		if i > 10 && c.rng.IntN(10) < 3 {
			p := &c.mails[i-1-c.rng.IntN(min(i-1, 200))]
			m.root = p.root
			m.inReplyTo = p.msgID
			m.refs = append(append([]string{}, p.refs...), p.msgID)
			if len(m.refs) > 10 {
				m.refs = m.refs[len(m.refs)-10:]
			}
			m.subject = "Re: " + strings.TrimPrefix(p.subject, "Re: ")
			if p.from == c.me {
				m.from, m.to = p.to[0], []person{c.me}
			} else {
				m.from, m.to = c.me, []person{p.from}
			}
			m.cc = p.cc
		} else if c.rng.IntN(10) == 0 {
			m.from = newsletters[c.rng.IntN(len(newsletters))]
			m.to = []person{c.me}
			m.subject = fmt.Sprintf("%s: %s", strings.TrimPrefix(m.from.name, "The "), topics[c.rng.IntN(len(topics))])
		} else {
			m.subject = topics[c.rng.IntN(len(topics))] + qualifiers[c.rng.IntN(len(qualifiers))]
			if c.rng.IntN(8) == 0 { // sent by me
				m.from, m.to = c.me, []person{c.person()}
			} else {
				m.from, m.to = c.person(), []person{c.me}
			}
			for range c.rng.IntN(3) {
				m.to = append(m.to, c.person())
			}
			for range c.rng.IntN(3) / 2 * (1 + c.rng.IntN(2)) {
				m.cc = append(m.cc, c.person())
			}
		}
		m.seen = c.rng.IntN(10) < 7
		m.flagged = c.rng.IntN(25) == 0
		switch r := c.rng.IntN(100); {
		case r < 12:
			m.shape = shapeMixed
			m.att = c.attachment()
		case r < 55:
			m.shape = shapeAlternative
		default:
			m.shape = shapePlain
		}
		size := 1400 + c.rng.IntN(1600)
		if m.shape == shapeAlternative {
			size = 700 + c.rng.IntN(900) // written twice (text and HTML)
		}
		if m.shape == shapeMixed {
			size = 500 + c.rng.IntN(700)
		}
		m.paragraphs = c.paragraphs(size)
		c.mails = append(c.mails, m)
	}
	return c.mails
}

func (c *corpus) attachment() *attachment {
	kinds := []struct{ ext, ct string }{{"pdf", "application/pdf"}, {"png", "image/png"}, {"ics", "text/calendar"},
		{"csv", "text/csv"}, {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}}
	k := kinds[c.rng.IntN(len(kinds))]
	data := make([]byte, 500+c.rng.IntN(1000))
	for i := range data {
		data[i] = byte(c.rng.UintN(256))
	}
	return &attachment{filename: fmt.Sprintf("%s-%d.%s", strings.ToLower(strings.Fields(topics[c.rng.IntN(len(topics))])[0]), c.rng.IntN(100), k.ext),
		contentType: k.ct, data: data}
}

func addrList(ps []person) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%q <%s>", p.name, p.email)
	}
	return strings.Join(s, ", ")
}

// raw renders m as RFC 5322 bytes with CRLF line ends.
func (m *mail) raw() []byte {
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("Return-Path", "<"+m.from.email+">")
	h("Received", fmt.Sprintf("from mx.%s (mx.%s [192.0.2.%d]) by mail.example.test with ESMTPS id %x; %s",
		domainOf(m.from.email), domainOf(m.from.email), m.seq%250+1, m.seq, m.date.Format(time.RFC1123Z)))
	h("From", addrList([]person{m.from}))
	h("To", addrList(m.to))
	if len(m.cc) > 0 {
		h("Cc", addrList(m.cc))
	}
	h("Subject", m.subject)
	h("Date", m.date.Format(time.RFC1123Z))
	h("Message-ID", "<"+m.msgID+">")
	if m.inReplyTo != "" {
		h("In-Reply-To", "<"+m.inReplyTo+">")
		refs := make([]string, len(m.refs))
		for i, r := range m.refs {
			refs[i] = "<" + r + ">"
		}
		h("References", strings.Join(refs, " "))
	}
	h("MIME-Version", "1.0")
	text := strings.Join(m.paragraphs, "\r\n\r\n") + "\r\n\r\n-- \r\n" + m.from.name + "\r\n"
	html := "<html><body><div>" + strings.Join(m.paragraphs, "</div>\r\n<div><br></div>\r\n<div>") +
		"</div>\r\n<div>-- <br>" + m.from.name + "</div></body></html>\r\n"
	boundary := fmt.Sprintf("=_bench_%d_%x", m.seq, len(m.paragraphs))
	switch m.shape {
	case shapePlain:
		h("Content-Type", "text/plain; charset=utf-8")
		h("Content-Transfer-Encoding", "8bit")
		b.WriteString("\r\n" + text)
	case shapeAlternative:
		h("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
		b.WriteString("\r\n--" + boundary + "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		b.WriteString(qp(text))
		b.WriteString("\r\n--" + boundary + "\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		b.WriteString(qp(html))
		b.WriteString("\r\n--" + boundary + "--\r\n")
	case shapeMixed:
		h("Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
		b.WriteString("\r\n--" + boundary + "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		b.WriteString(text)
		b.WriteString("\r\n--" + boundary + "\r\nContent-Type: " + m.att.contentType + `; name="` + m.att.filename + "\"\r\n" +
			`Content-Disposition: attachment; filename="` + m.att.filename + "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(m.att.data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n--" + boundary + "--\r\n")
	}
	return b.Bytes()
}

func qp(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.String()
}

func domainOf(email string) string {
	_, d, _ := strings.Cut(email, "@")
	return d
}
