package httpapi

import (
	"net/http"
	"strings"
)

// maxListValues bounds the values of one list parameter (Nylas allows 25
// addresses in any_email; a little headroom for the others).
const maxListValues = 100

// queryFilterList is queryList for filters, whose length is bounded.
func queryFilterList(r *http.Request, name string) ([]string, error) {
	v := queryList(r, name)
	if len(v) > maxListValues {
		return nil, badRequest("%s has %d values; at most %d are allowed", name, len(v), maxListValues)
	}
	return v, nil
}

// queryFilterLists reads several list filters, each into its destination.
func queryFilterLists(r *http.Request, lists map[string]*[]string) error {
	for name, dst := range lists {
		v, err := queryFilterList(r, name)
		if err != nil {
			return err
		}
		*dst = v
	}
	return nil
}

// queryList reads a list parameter given either repeated (to=a&to=b, as
// the Node SDK sends arrays) or comma-separated (to=a,b, as the OpenAPI
// spec documents), or both.
func queryList(r *http.Request, name string) []string {
	var out []string
	for _, v := range r.URL.Query()[name] {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// queryBool reads an optional boolean parameter.
func queryBool(r *http.Request, name string) (*bool, error) {
	switch v := r.URL.Query().Get(name); strings.ToLower(v) {
	case "":
		return nil, nil
	case "true", "1":
		t := true
		return &t, nil
	case "false", "0":
		f := false
		return &f, nil
	default:
		return nil, badRequest("%s must be true or false", name)
	}
}
