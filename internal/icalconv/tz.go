package icalconv

//go:generate go run gen_windowszones.go

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	// Calendars must read the same times on every host: with the zone
	// database embedded, a zone missing from (or an old) /usr/share/zoneinfo
	// still loads.
	_ "time/tzdata"
)

// LoadLocation resolves a time zone name as calendars write it in TZID:
// an IANA name ("Europe/Berlin", also in other letter case), a Windows
// name as Outlook and Exchange write it ("W. Europe Standard Time",
// "Eastern Standard Time"; CLDR's windowsZones mapping is built in), an
// IANA name behind a vendor prefix ("/mozilla.org/20050126_1/Europe/Berlin",
// "/softwarestudio.org/Olson_20011030_5/America/New_York"), or an Outlook
// display name whose cities are IANA zones ("(UTC+01:00) Amsterdam, Berlin,
// Bern, Rome, Stockholm, Vienna"). The Location's String() is the IANA name.
// "" and "Local" are refused: neither names a zone.
func LoadLocation(name string) (*time.Location, error) {
	n := strings.TrimSpace(strings.Trim(strings.TrimSpace(name), `"`))
	if n == "" || strings.EqualFold(n, "Local") {
		return nil, fmt.Errorf("icalconv: unknown time zone %q", name)
	}
	switch strings.ToUpper(n) {
	case "UTC", "Z", "GMT", "UT", "ETC/UTC", "ETC/GMT", "ETC/UCT", "UCT", "ZULU", "ETC/ZULU":
		return time.UTC, nil
	}
	if loc, ok := loadIANA(n); ok {
		return loc, nil
	}
	if iana, ok := windowsZoneName(n); ok {
		if loc, ok := loadIANA(iana); ok {
			return loc, nil
		}
	}
	if strings.Contains(n, "/") {
		parts := strings.Split(strings.Trim(n, "/"), "/")
		for k := min(3, len(parts)-1); k >= 1; k-- {
			if loc, ok := loadIANA(strings.Join(parts[len(parts)-k:], "/")); ok {
				return loc, nil
			}
		}
	}
	if loc, ok := fromDisplayName(n); ok {
		return loc, nil
	}
	return nil, fmt.Errorf("icalconv: unknown time zone %q", name)
}

// loadIANA loads an IANA zone; a name in the wrong letter case is retried
// with each word capitalized ("america/new_york" → "America/New_York").
func loadIANA(n string) (*time.Location, bool) {
	if n == "" || strings.EqualFold(n, "Local") || strings.ContainsAny(n, " \\") || strings.HasPrefix(n, "/") || strings.Contains(n, "..") {
		return nil, false
	}
	if loc, err := time.LoadLocation(n); err == nil {
		return loc, true
	}
	if t := titleZone(n); t != n {
		if loc, err := time.LoadLocation(t); err == nil {
			return loc, true
		}
	}
	return nil, false
}

func titleZone(n string) string {
	b := []byte(strings.ToLower(n))
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == '/' || c == '_' || c == '-'
	}
	s := string(b)
	// The few IANA names with inner capitals or upper-case parts.
	for _, fix := range []struct{ from, to string }{
		{"Etc/Gmt", "Etc/GMT"}, {"Etc/Utc", "Etc/UTC"}, {"Port-Au-Prince", "Port-au-Prince"},
		{"Dumontdurville", "DumontDUrville"}, {"Mcmurdo", "McMurdo"},
	} {
		s = strings.Replace(s, fix.from, fix.to, 1)
	}
	return s
}

func windowsZoneName(n string) (string, bool) {
	if iana, ok := windowsZones[n]; ok {
		return iana, true
	}
	for w, iana := range windowsZones {
		if strings.EqualFold(w, n) {
			return iana, true
		}
	}
	return "", false
}

var displayNameRE = regexp.MustCompile(`^\(\s*(?:UTC|GMT)\s*(?:([+-])(\d{1,2}):?(\d{2}))?\s*\)\s*(.*)$`)

// fromDisplayName reads "(UTC+01:00) Amsterdam, Berlin, …": the first
// city that is an IANA zone with that standard offset.
func fromDisplayName(n string) (*time.Location, bool) {
	m := displayNameRE.FindStringSubmatch(n)
	if m == nil {
		return nil, false
	}
	off, _ := offsetOf(m[1], m[2], m[3])
	rest := strings.TrimSpace(m[4])
	if off == 0 && (rest == "" || strings.HasPrefix(strings.ToLower(rest), "coordinated universal time")) {
		return time.UTC, true
	}
	for _, city := range strings.Split(rest, ",") {
		city = strings.TrimSpace(city)
		if i := strings.IndexAny(city, "(["); i >= 0 {
			city = strings.TrimSpace(city[:i])
		}
		if city == "" {
			continue
		}
		city = strings.ReplaceAll(city, " ", "_")
		for _, region := range []string{"Europe", "America", "Asia", "Africa", "Australia", "Pacific", "Atlantic", "Indian"} {
			loc, ok := loadIANA(region + "/" + city)
			if ok && standardOffset(loc, 2024) == off {
				return loc, true
			}
		}
	}
	return nil, false
}

func offsetOf(sign, hh, mm string) (int, bool) {
	if hh == "" {
		return 0, true
	}
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	off := h*3600 + m*60
	if sign == "-" {
		off = -off
	}
	return off, true
}

// standardOffset is the smaller of the offsets on 1 January and 1 July.
func standardOffset(loc *time.Location, year int) int {
	_, a := time.Date(year, 1, 1, 12, 0, 0, 0, time.UTC).In(loc).Zone()
	_, b := time.Date(year, 7, 1, 12, 0, 0, 0, time.UTC).In(loc).Zone()
	return min(a, b)
}

// zone is a resolved TZID: where to read times, and the IANA name to
// report ("" when the zone has none, e.g. an Outlook "Customized Time
// Zone" that matches no IANA zone).
type zone struct {
	loc  *time.Location
	name string
}

// resolveZone resolves a TZID, with the calendar's VTIMEZONE of that TZID
// (nil when absent). A name LoadLocation knows wins over the VTIMEZONE:
// servers rewrite VTIMEZONEs (iCloud replaces them with its own) and the
// IANA rules are the better truth. Otherwise the VTIMEZONE's rules are
// read: matched against IANA zones to find a name, or else used as they
// are. ok is false when nothing resolves: the caller reads such times as
// floating.
func resolveZone(tzid string, vtz *icalComponent) (zone, bool) {
	if loc, err := LoadLocation(tzid); err == nil {
		return zone{loc, loc.String()}, true
	}
	if vtz != nil {
		if p := vtz.Props.Get("X-LIC-LOCATION"); p != nil {
			if loc, err := LoadLocation(p.Value); err == nil {
				return zone{loc, loc.String()}, true
			}
		}
		if base, trans, ok := vtimezoneTransitions(vtz); ok {
			name := ""
			iana, matched := matchIANA(base, trans)
			if matched {
				name = iana.String()
			}
			if loc, err := tzifLocation(tzid, base, trans); err == nil {
				return zone{loc, name}, true
			}
			if matched {
				return zone{iana, name}, true
			}
		}
	}
	if m := displayNameRE.FindStringSubmatch(strings.TrimSpace(tzid)); m != nil {
		if off, ok := offsetOf(m[1], m[2], m[3]); ok {
			return zone{time.FixedZone(tzid, off), ""}, true
		}
	}
	return zone{}, false
}

// ttinfo is one local time type: offset east of UTC in seconds, DST flag,
// abbreviation.
type ttinfo struct {
	off  int
	dst  bool
	name string
}

// transition is a change of local time type at an instant (Unix seconds).
type transition struct {
	at int64
	ttinfo
}

// maxOnsets bounds the onsets read from one VTIMEZONE observance.
const maxOnsets = 1200

// vtimezoneTransitions reads a VTIMEZONE's STANDARD and DAYLIGHT
// observances (DTSTART, RRULE up to 2100, RDATE) into transitions. base is
// the local time before the first transition.
func vtimezoneTransitions(vtz *icalComponent) (base ttinfo, trans []transition, ok bool) {
	type onset struct {
		at   int64
		from int
		t    ttinfo
	}
	var all []onset
	limit := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, obs := range vtz.Children {
		if obs.Name != "STANDARD" && obs.Name != "DAYLIGHT" {
			continue
		}
		from, ok1 := parseUTCOffset(propValue(obs, "TZOFFSETFROM"))
		to, ok2 := parseUTCOffset(propValue(obs, "TZOFFSETTO"))
		start, err := time.ParseInLocation("20060102T150405", strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(propValue(obs, "DTSTART"))), "Z"), time.UTC)
		if !ok1 || !ok2 || err != nil {
			continue
		}
		t := ttinfo{off: to, dst: obs.Name == "DAYLIGHT", name: unescapeText(propValue(obs, "TZNAME"))}
		add := func(wall time.Time) {
			all = append(all, onset{at: wall.Unix() - int64(from), from: from, t: t})
		}
		add(start)
		n := 1
		for _, rd := range obs.Props.Values("RDATE") {
			for _, v := range strings.Split(rd.Value, ",") {
				v = strings.ToUpper(strings.TrimSpace(v))
				if i := strings.IndexByte(v, '/'); i >= 0 {
					v = v[:i]
				}
				if w, err := time.ParseInLocation("20060102T150405", strings.TrimSuffix(v, "Z"), time.UTC); err == nil && n < maxOnsets {
					add(w)
					n++
				}
			}
		}
		if rr := obs.Props.Get("RRULE"); rr != nil {
			opt, err := parseRuleOptions(rr.Value, time.UTC)
			if err != nil {
				continue
			}
			if !opt.Until.IsZero() && strings.Contains(strings.ToUpper(rr.Value), "Z") {
				// UNTIL is a UTC instant; the rule runs in wall time.
				opt.Until = opt.Until.Add(time.Duration(from) * time.Second)
			}
			if opt.Until.IsZero() || opt.Until.After(limit) {
				// rrule-go's implicit end is DTSTART + 292 years (the
				// longest time.Duration): not enough for Outlook's 1601.
				opt.Until = limit
			}
			r, err := buildRule(opt, start, time.UTC)
			if err != nil {
				continue
			}
			it := r.iterator()
			for n < maxOnsets {
				w, ok := it()
				if !ok || w.After(limit) {
					break
				}
				add(w)
				n++
			}
		}
	}
	if len(all) == 0 {
		return ttinfo{}, nil, false
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at < all[j].at })
	base = ttinfo{off: all[0].from, dst: false}
	prev := base
	for _, o := range all {
		if o.t == prev {
			continue
		}
		if len(trans) > 0 && trans[len(trans)-1].at == o.at {
			trans[len(trans)-1].ttinfo = o.t
		} else {
			trans = append(trans, transition{at: o.at, ttinfo: o.t})
		}
		prev = o.t
	}
	return base, trans, true
}

func propValue(c *icalComponent, name string) string {
	if p := c.Props.Get(name); p != nil {
		return p.Value
	}
	return ""
}

// parseUTCOffset reads ±HHMM or ±HHMMSS.
func parseUTCOffset(v string) (int, bool) {
	v = strings.TrimSpace(v)
	if len(v) != 5 && len(v) != 7 || v[0] != '+' && v[0] != '-' {
		return 0, false
	}
	n := 0
	for _, part := range []string{v[1:3], v[3:5], v[5:]} {
		if part == "" {
			continue
		}
		x, err := strconv.Atoi(part)
		if err != nil || x < 0 || x > 59 {
			return 0, false
		}
		n = n*60 + x
	}
	if len(v) == 5 {
		n *= 60
	}
	if v[0] == '-' {
		n = -n
	}
	return n, true
}

// preferredZones are tried first when matching a VTIMEZONE's rules, so a
// customized Central European zone reads as Europe/Berlin rather than
// another zone with the same rules.
var preferredZones = []string{
	"UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York", "America/Chicago",
	"America/Denver", "America/Phoenix", "America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata",
	"Asia/Shanghai", "Australia/Sydney",
}

// matchIANA finds an IANA zone that agrees with the transitions from
// 2015 (or the VTIMEZONE's first transition) to 2035 (or a year past its
// last one): weekly samples and both sides of every transition. Custom
// zones describe today's rules, which older years of the IANA zone may
// not follow.
func matchIANA(base ttinfo, trans []transition) (*time.Location, bool) {
	lo := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	if len(trans) > 0 {
		lo = max(lo, trans[0].at)
		hi = min(hi, trans[len(trans)-1].at+366*86400)
	}
	if hi <= lo {
		lo = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		hi = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	}
	offAt := func(at int64) int {
		i := sort.Search(len(trans), func(i int) bool { return trans[i].at > at })
		if i == 0 {
			return base.off
		}
		return trans[i-1].off
	}
	var samples []int64
	for t := lo; t < hi; t += 7 * 86400 {
		samples = append(samples, t)
	}
	for _, tr := range trans {
		if tr.at >= lo && tr.at < hi {
			samples = append(samples, tr.at-1, tr.at)
		}
	}
	want := make([]int, len(samples))
	for i, s := range samples {
		want[i] = offAt(s)
	}
	agrees := func(loc *time.Location) bool {
		for i, s := range samples {
			if _, off := time.Unix(s, 0).In(loc).Zone(); off != want[i] {
				return false
			}
		}
		return true
	}
	tried := map[string]bool{}
	try := func(name string) (*time.Location, bool) {
		if tried[name] {
			return nil, false
		}
		tried[name] = true
		loc, err := time.LoadLocation(name)
		if err != nil || !agrees(loc) {
			return nil, false
		}
		return loc, true
	}
	for _, n := range preferredZones {
		if loc, ok := try(n); ok {
			return loc, true
		}
	}
	names := make([]string, 0, len(windowsZones))
	for _, n := range windowsZones {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if loc, ok := try(n); ok {
			return loc, true
		}
	}
	return nil, false
}

// tzifLocation builds a Location from transitions by writing them as a
// TZif (RFC 8536) version 2 file, the one way the time package accepts
// zone rules it did not load itself.
func tzifLocation(name string, base ttinfo, trans []transition) (*time.Location, error) {
	if len(trans) > 5000 {
		return nil, errors.New("icalconv: too many transitions")
	}
	var types []ttinfo
	var chars []byte
	abbrIdx := map[string]int{}
	typeOf := func(t ttinfo) int {
		for i, x := range types {
			if x == t {
				return i
			}
		}
		types = append(types, t)
		return len(types) - 1
	}
	typeOf(base)
	idx := make([]byte, len(trans))
	for i, tr := range trans {
		k := typeOf(tr.ttinfo)
		if k > 255 {
			return nil, errors.New("icalconv: too many local time types")
		}
		idx[i] = byte(k)
	}
	abbr := func(t ttinfo) int {
		a := t.name
		if a == "" || len(a) > 16 || strings.ContainsRune(a, 0) {
			a = fmt.Sprintf("%+03d%02d", t.off/3600, abs(t.off%3600)/60)
		}
		if i, ok := abbrIdx[a]; ok {
			return i
		}
		abbrIdx[a] = len(chars)
		chars = append(chars, a...)
		chars = append(chars, 0)
		return abbrIdx[a]
	}
	var b []byte
	be32 := func(v uint32) { b = append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }
	be64 := func(v uint64) { be32(uint32(v >> 32)); be32(uint32(v)) }
	header := func(timecnt, typecnt, charcnt int) {
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		be32(0) // isutcnt
		be32(0) // isstdcnt
		be32(0) // leapcnt
		be32(uint32(timecnt))
		be32(uint32(typecnt))
		be32(uint32(charcnt))
	}
	// Abbreviations first, so the counts are known.
	abbrs := make([]int, len(types))
	for i, t := range types {
		abbrs[i] = abbr(t)
	}
	for _, a := range abbrs {
		if a > 255 {
			return nil, errors.New("icalconv: too many zone abbreviations")
		}
	}
	header(0, 0, 0) // an empty version 1 block
	header(len(trans), len(types), len(chars))
	for _, tr := range trans {
		be64(uint64(tr.at))
	}
	b = append(b, idx...)
	for i, t := range types {
		be32(uint32(int32(t.off)))
		if t.dst {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = append(b, byte(abbrs[i]))
	}
	b = append(b, chars...)
	b = append(b, '\n', '\n')
	return time.LoadLocationFromTZData(name, b)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
