package xrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/hearth-pds/hearth/refusal"
)

// input is a decoded JSON procedure body. Its accessors check presence and
// type the way the official PDS's lexicon validation does, with the same
// wording ("Missing required key \"handle\" at $"), so clients that show
// server messages show the same ones. Unknown keys are ignored, as there.
// The first problem is kept in err; later accessors then return zero
// values, so a handler reads every field and checks err once.
type input struct {
	m   map[string]json.RawMessage
	err error
}

// readInput reads a JSON object body within the body limit.
func readInput(w http.ResponseWriter, r *http.Request) (*input, error) {
	ct := r.Header.Get("Content-Type")
	mediaType := strings.TrimSpace(strings.SplitN(ct, ";", 2)[0])
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, refusal.ErrPayloadTooLarge
		}
		return nil, invalidRequest("Unable to read request body")
	}
	switch {
	case len(body) == 0 && ct == "":
		return nil, invalidRequest("A request body is expected but none was provided")
	case ct == "":
		return nil, invalidRequest("Request encoding (Content-Type) required but not provided")
	case mediaType != "application/json":
		return nil, invalidRequest("Wrong request encoding (Content-Type): " + ct)
	case len(bytes.TrimSpace(body)) == 0:
		return nil, invalidRequest("A request body is expected but none was provided")
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return nil, refusal.New("SyntaxError", syntaxMessage(err))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, invalidRequest("Expected object value type (got " + abbreviate(string(bytes.TrimSpace(body))) + ") at $")
	}
	return &input{m: m}, nil
}

func syntaxMessage(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Error() + " in JSON at offset " + itoa(se.Offset)
	}
	if err != nil {
		return err.Error()
	}
	return "invalid JSON"
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// abbreviate cuts a value for an error message, as the official does.
func abbreviate(s string) string {
	if utf8.RuneCountInString(s) <= 50 {
		return s
	}
	return string([]rune(s)[:47]) + "…"
}

func missing(key string) error {
	return invalidRequest(`Missing required key "` + key + `" at $`)
}

func wrongType(key, want string, raw json.RawMessage) error {
	return invalidRequest("Expected " + want + " value type (got " + abbreviate(string(raw)) + ") at $." + key)
}

// has reports whether key is present and not null.
func (in *input) has(key string) bool {
	raw, ok := in.m[key]
	return ok && string(raw) != "null"
}

// field decodes key into v, recording the first problem.
func (in *input) field(key, typeName string, required bool, v any) bool {
	if in.err != nil {
		return false
	}
	if !in.has(key) {
		if required {
			in.err = missing(key)
		}
		return false
	}
	if err := json.Unmarshal(in.m[key], v); err != nil {
		in.err = wrongType(key, typeName, in.m[key])
		return false
	}
	return true
}

// str returns a string field.
func (in *input) str(key string, required bool) string {
	var s string
	in.field(key, "string", required, &s)
	return s
}

// boolean returns an optional boolean field.
func (in *input) boolean(key string) bool {
	var b bool
	in.field(key, "boolean", false, &b)
	return b
}

// integer returns an integer field and whether it was given.
func (in *input) integer(key string, required bool) (int, bool) {
	var n int
	ok := in.field(key, "integer", required, &n)
	return n, ok
}

// strs returns an optional array of strings.
func (in *input) strs(key string) []string {
	var v []string
	in.field(key, "array", false, &v)
	return v
}
