package mimeconv

import (
	"strings"
	"time"
)

// zoneOffsets are the zone names seen in Date headers, in seconds east of
// UTC: RFC 5322 §4.3's obsolete zones and a few that mailers still write.
// time.Parse would read an unknown abbreviation as UTC+0, silently wrong.
var zoneOffsets = map[string]int{
	"UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
	"EST": -5 * 3600, "EDT": -4 * 3600,
	"CST": -6 * 3600, "CDT": -5 * 3600,
	"MST": -7 * 3600, "MDT": -6 * 3600,
	"PST": -8 * 3600, "PDT": -7 * 3600,
	"CET": 1 * 3600, "CEST": 2 * 3600, "MET": 1 * 3600, "MEST": 2 * 3600,
	"EET": 2 * 3600, "EEST": 3 * 3600, "WET": 0, "WEST": 1 * 3600,
	"JST": 9 * 3600, "KST": 9 * 3600, "HKT": 8 * 3600, "SGT": 8 * 3600,
	"AEST": 10 * 3600, "AEDT": 11 * 3600, "NZST": 12 * 3600, "NZDT": 13 * 3600,
}

// dateLayouts are tried in order on a normalized value: the day of week
// and comments removed, blanks collapsed, zone names turned into offsets.
var dateLayouts = []string{
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04 -0700",
	"2 Jan 06 15:04:05 -0700",
	"2 Jan 06 15:04 -0700",
	"2 January 2006 15:04:05 -0700",
	"2 January 2006 15:04 -0700",
	"2-Jan-2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04",
	"2 Jan 06 15:04:05",
	"Jan 2 2006 15:04:05 -0700",
	"Jan 2, 2006 15:04:05 -0700",
	"Jan 2 15:04:05 -0700 2006",
	"Jan 2 15:04:05 2006 -0700",
	"Jan 2 15:04:05 2006", // asctime
	"Jan 2 2006 15:04:05",
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05.999999999-0700",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04 -0700",
}

// parseDate reads a Date header, standard or in one of the broken forms
// mailers write. A value without zone is taken as UTC.
func parseDate(v string) (time.Time, bool) {
	s := normalizeDate(v)
	if s == "" {
		return time.Time{}, false
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func normalizeDate(v string) string {
	// Comments such as "(PDT)" or "(UTC)".
	out, _ := splitComments(v)
	out = strings.NewReplacer(",", " ", "\t", " ").Replace(out)
	words := strings.Fields(out)
	if len(words) == 0 {
		return ""
	}
	// Day of week, possibly spelled out or misspelt: a leading word made of
	// letters that is not a month.
	if isLetters(words[0]) && !isMonth(words[0]) {
		words = words[1:]
	}
	for i, w := range words {
		switch {
		case strings.HasSuffix(w, "Z") && strings.Contains(w, "T") && len(w) > 10:
			// ISO 8601 "…T15:04:05Z".
			words[i] = w[:len(w)-1] + "+0000"
		case w[0] == '+' || w[0] == '-':
			words[i] = fixOffset(w)
		case i > 0 && isLetters(w) && !isMonth(w):
			if off, ok := zoneOffsets[strings.ToUpper(w)]; ok {
				words[i] = formatOffset(off)
			} else if i == len(words)-1 {
				// An unknown zone name: RFC 5322 says to read it as -0000.
				words[i] = "+0000"
			}
		default:
			// ISO 8601 with a colon offset glued on: "…T15:04:05+02:00".
			if j := strings.LastIndexAny(w, "+-"); j > 10 && strings.Contains(w, "T") {
				words[i] = w[:j] + fixOffset(w[j:])
			}
		}
	}
	// A zone given twice ("+0200 CEST" became "+0200 +0200"): keep one.
	if n := len(words); n >= 2 && isOffset(words[n-1]) && isOffset(words[n-2]) {
		words = words[:n-1]
	}
	return strings.Join(words, " ")
}

// fixOffset turns "+02:00", "+2" or "+200" into "+0200".
func fixOffset(w string) string {
	sign, d := w[:1], strings.ReplaceAll(w[1:], ":", "")
	for _, c := range d {
		if c < '0' || c > '9' {
			return w
		}
	}
	switch len(d) {
	case 1, 2:
		d = strings.Repeat("0", 2-len(d)) + d + "00"
	case 3:
		d = "0" + d
	}
	return sign + d
}

func isOffset(w string) bool {
	if len(w) != 5 || (w[0] != '+' && w[0] != '-') {
		return false
	}
	for i := 1; i < 5; i++ {
		if w[i] < '0' || w[i] > '9' {
			return false
		}
	}
	return true
}

func formatOffset(sec int) string {
	sign := byte('+')
	if sec < 0 {
		sign, sec = '-', -sec
	}
	h, m := sec/3600, sec%3600/60
	return string([]byte{sign, byte('0' + h/10), byte('0' + h%10), byte('0' + m/10), byte('0' + m%10)})
}

func isLetters(w string) bool {
	for i := 0; i < len(w); i++ {
		c := w[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return w != ""
}

var months = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

func isMonth(w string) bool {
	if len(w) < 3 {
		return false
	}
	p := strings.ToLower(w[:3])
	for _, m := range months {
		if p == m {
			return true
		}
	}
	return false
}
