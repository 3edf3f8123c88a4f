package xrpc

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hearth-pds/hearth/refusal"
)

func TestInputAccessors(t *testing.T) {
	tests := []struct {
		body    string
		read    func(in *input)
		wantErr string
	}{
		{`{"a":"x"}`, func(in *input) { in.str("a", true) }, ""},
		{`{}`, func(in *input) { in.str("a", true) }, `Missing required key "a" at $`},
		{`{"a":null}`, func(in *input) { in.str("a", true) }, `Missing required key "a" at $`},
		{`{"a":5}`, func(in *input) { in.str("a", true) }, `Expected string value type (got 5) at $.a`},
		{`{"n":"1"}`, func(in *input) { in.integer("n", true) }, `Expected integer value type (got "1") at $.n`},
		{`{"b":"yes"}`, func(in *input) { in.boolean("b") }, `Expected boolean value type (got "yes") at $.b`},
		{`{"l":["a",1]}`, func(in *input) { in.strs("l") }, `Expected array value type (got ["a",1]) at $.l`},
		// The first problem wins.
		{`{"b":1}`, func(in *input) { in.str("a", true); in.str("b", true) }, `Missing required key "a" at $`},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
		r.Header.Set("Content-Type", "application/json")
		in, err := readInput(httptest.NewRecorder(), r)
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		tt.read(in)
		got := ""
		if in.err != nil {
			got = in.err.(*refusal.Error).Message
		}
		if got != tt.wantErr {
			t.Errorf("%s: error %q, want %q", tt.body, got, tt.wantErr)
		}
	}
}

// FuzzReadInput: no body makes the reader panic, and every refusal is a
// client error.
func FuzzReadInput(f *testing.F) {
	for _, seed := range []string{`{}`, `{"handle":"a.test"}`, `[]`, `null`, `{"a":`, "\x00", `"x"`, `{"a":{"b":[1,2,{}]}}`} {
		f.Add(seed, "application/json")
	}
	f.Add(`{}`, "text/plain")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		in, err := readInput(httptest.NewRecorder(), r)
		if err != nil {
			if e, ok := err.(*refusal.Error); !ok || e.HTTPStatus() >= 500 {
				t.Fatalf("error %v is not a client error", err)
			}
			return
		}
		in.str("handle", true)
		in.integer("useCount", false)
		in.strs("codes")
		in.boolean("privileged")
	})
}
