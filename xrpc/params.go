package xrpc

import (
	"net/http"
	"net/url"
	"strconv"
)

// query reads query parameters with the official PDS's wording for
// problems, keeping the first problem in err like input does.
type query struct {
	v   url.Values
	err error
}

func params(r *http.Request) *query { return &query{v: r.URL.Query()} }

func (q *query) str(name string, required bool) string {
	v := q.v.Get(name)
	if v == "" && required && q.err == nil {
		q.err = invalidRequest(`Params must have the property "` + name + `"`)
	}
	return v
}

// integer reads an optional integer within [lo, hi].
func (q *query) integer(name string, def, lo, hi int) int {
	raw := q.v.Get(name)
	if raw == "" || q.err != nil {
		return def
	}
	n, err := strconv.Atoi(raw)
	switch {
	case err != nil:
		q.err = invalidRequest(name + " must be an integer")
	case n < lo:
		q.err = invalidRequest(name + " can not be less than " + strconv.Itoa(lo))
	case n > hi:
		q.err = invalidRequest(name + " can not be greater than " + strconv.Itoa(hi))
	}
	return n
}

// boolean reads an optional boolean ("true" or "false").
func (q *query) boolean(name string, def bool) bool {
	raw := q.v.Get(name)
	if raw == "" || q.err != nil {
		return def
	}
	switch raw {
	case "true":
		return true
	case "false":
		return false
	}
	q.err = invalidRequest(name + " must be a boolean")
	return def
}

// list reads a repeated parameter.
func (q *query) list(name string) []string { return q.v[name] }
