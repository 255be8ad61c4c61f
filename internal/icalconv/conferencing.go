package icalconv

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/emersion/go-ical"
	"github.com/orchard-mail/orchard/api"
)

// meetingHosts are the online-meeting services recognized in URLs, with
// the provider name as Nylas spells it.
var meetingHosts = []struct{ host, provider string }{
	{"zoom.us", "Zoom Meeting"},
	{"zoomgov.com", "Zoom Meeting"},
	{"meet.google.com", "Google Meet"},
	{"teams.microsoft.com", "Microsoft Teams"},
	{"teams.live.com", "Microsoft Teams"},
	{"webex.com", "WebEx"},
	{"gotomeeting.com", "GoToMeeting"},
	{"meet.goto.com", "GoToMeeting"},
	{"gotomeet.me", "GoToMeeting"},
}

// knownProviders are the provider names Orchard writes and reads back
// from a CONFERENCE LABEL.
var knownProviders = map[string]bool{
	"Zoom Meeting": true, "Google Meet": true, "Microsoft Teams": true, "WebEx": true, "GoToMeeting": true,
}

// providerOf names the service of a meeting URL, "" for any other URL.
func providerOf(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	for _, m := range meetingHosts {
		if host == m.host || strings.HasSuffix(host, "."+m.host) {
			return m.provider
		}
	}
	return ""
}

var urlRE = regexp.MustCompile(`(?i)https?://[^\s<>"'\\]+`)

// findMeetingURL returns the first meeting URL in a text.
func findMeetingURL(text string) (string, string) {
	for _, u := range urlRE.FindAllString(text, 20) {
		u = strings.TrimRight(u, ".,;:!?)]}*")
		if p := providerOf(u); p != "" {
			return u, p
		}
	}
	return "", ""
}

var (
	zoomID   = regexp.MustCompile(`/(?:j|w|my|s)/(\d{9,11})`)
	meetCode = regexp.MustCompile(`^/([a-z]{3}-[a-z]{4}-[a-z]{3})`)
)

func meetingDetails(raw, provider string) *api.ConferencingDetail {
	d := &api.ConferencingDetail{URL: raw}
	if u, err := url.Parse(raw); err == nil {
		switch provider {
		case "Zoom Meeting":
			if m := zoomID.FindStringSubmatch(u.Path); m != nil {
				d.MeetingCode = m[1]
			}
		case "Google Meet":
			if m := meetCode.FindStringSubmatch(u.Path); m != nil {
				d.MeetingCode = m[1]
			}
		}
	}
	return d
}

// conferencing finds the event's online meeting: an RFC 7986 CONFERENCE
// property (what Orchard writes, its LABEL the provider), Google's
// X-GOOGLE-CONFERENCE, Microsoft's X-MICROSOFT-SKYPETEAMSMEETINGURL, a URL
// property of a known service, else the first known meeting URL in
// LOCATION, then DESCRIPTION.
func conferencing(c, inherit *ical.Component) *api.Conferencing {
	comps := []*ical.Component{c}
	if inherit != nil {
		comps = append(comps, inherit)
	}
	for _, cc := range comps {
		for _, p := range cc.Props.Values("CONFERENCE") {
			raw := strings.TrimSpace(p.Value)
			if u, err := url.Parse(raw); err != nil || u.Scheme == "" {
				continue
			}
			label := strings.TrimSpace(p.Params.Get("LABEL"))
			prov := providerOf(raw)
			if knownProviders[label] || prov == "" {
				prov = label
			}
			if prov == "" {
				prov = "Unknown"
			}
			return &api.Conferencing{Provider: prov, Details: meetingDetails(raw, prov)}
		}
		for _, name := range []string{"X-GOOGLE-CONFERENCE", "X-MICROSOFT-SKYPETEAMSMEETINGURL", ical.PropURL} {
			for _, p := range cc.Props.Values(name) {
				raw := strings.TrimSpace(p.Value)
				prov := providerOf(raw)
				if prov == "" && name == "X-GOOGLE-CONFERENCE" && strings.HasPrefix(raw, "https://") {
					prov = "Google Meet"
				}
				if prov != "" {
					return &api.Conferencing{Provider: prov, Details: meetingDetails(raw, prov)}
				}
			}
		}
	}
	for _, name := range []string{ical.PropLocation, ical.PropDescription} {
		for _, cc := range comps {
			if p := cc.Props.Get(name); p != nil {
				if raw, prov := findMeetingURL(unescapeText(p.Value)); raw != "" {
					return &api.Conferencing{Provider: prov, Details: meetingDetails(raw, prov)}
				}
				break // the override's own text wins over the master's
			}
		}
	}
	return nil
}
