package interop

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/handle"
	"github.com/hearth-pds/hearth/testenv"
)

// parsers maps each identifier kind of the syntax vectors to the parser
// Hearth uses for it at the edge.
var parsers = map[string]func(string) error{
	"atidentifier": func(s string) error { _, err := syntax.ParseAtIdentifier(s); return err },
	"aturi":        func(s string) error { _, err := syntax.ParseATURI(s); return err },
	"cid":          func(s string) error { _, err := syntax.ParseCID(s); return err },
	"did":          func(s string) error { _, err := syntax.ParseDID(s); return err },
	"handle":       func(s string) error { _, err := syntax.ParseHandle(s); return err },
	"language":     func(s string) error { _, err := syntax.ParseLanguage(s); return err },
	"nsid":         func(s string) error { _, err := syntax.ParseNSID(s); return err },
	"recordkey":    func(s string) error { _, err := syntax.ParseRecordKey(s); return err },
	"tid":          func(s string) error { _, err := syntax.ParseTID(s); return err },
	"uri":          func(s string) error { _, err := syntax.ParseURI(s); return err },
	// A datetime must pass both the string check and conversion to a time.
	"datetime": func(s string) error {
		if _, err := syntax.ParseDatetime(s); err != nil {
			return err
		}
		_, err := syntax.ParseDatetimeTime(s)
		return err
	},
}

// knownGaps are vectors the pinned indigo gets wrong, keyed by file and
// line (none in the copy of the vectors it ships). Each still runs: while
// the gap is open it is logged, and once indigo agrees with the vector the
// test fails so the entry gets removed.
var knownGaps = map[string]string{}

// TestSyntaxVectors runs every <kind>_syntax_{valid,invalid}.txt and
// <kind>_parse_invalid.txt file: valid lines must parse, invalid ones must be
// rejected. A file whose kind has no parser fails the test, so that new
// vectors are noticed.
func TestSyntaxVectors(t *testing.T) {
	dir := testenv.InteropVectors(t, "syntax")
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no syntax vectors in %s (%v)", dir, err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		kind, rest, _ := strings.Cut(strings.TrimSuffix(name, ".txt"), "_")
		var wantValid bool
		switch rest {
		case "syntax_valid":
			wantValid = true
		case "syntax_invalid", "parse_invalid":
		default:
			t.Errorf("%s: unknown vector file kind %q", name, rest)
			continue
		}
		parse, ok := parsers[kind]
		if !ok {
			t.Errorf("%s: no parser for %q vectors: add one to parsers", name, kind)
			continue
		}
		t.Run(name, func(t *testing.T) {
			for _, line := range readLines(t, path) {
				err := parse(line)
				agrees := (err == nil) == wantValid
				gap, known := knownGaps[name+"\x00"+line]
				switch {
				case known && agrees:
					t.Errorf("%q now agrees with the vector: remove it from knownGaps", short(line))
				case known:
					t.Logf("known gap, %s: %q", gap, short(line))
				case !agrees && wantValid:
					t.Errorf("valid %q rejected: %v", short(line), err)
				case !agrees:
					t.Errorf("invalid %q accepted", short(line))
				}
			}
		})
	}
}

// TestHandleVectorsThroughRules checks that Hearth's handle rules agree with
// the protocol's syntax: every valid handle is accepted (as an external
// handle of an existing account, so that only syntax and policy apply)
// unless its TLD is one that PDSs refuse to register; every invalid one is
// rejected as InvalidHandle, never as some other error.
func TestHandleVectorsThroughRules(t *testing.T) {
	dir := testenv.InteropVectors(t, "syntax")
	var rules handle.Rules // no service domains: every handle is external

	for _, line := range readLines(t, filepath.Join(dir, "handle_syntax_valid.txt")) {
		h, err := rules.Validate(line, true)
		tld := line[strings.LastIndex(line, ".")+1:]
		if slices.Contains([]string{"local", "arpa", "invalid", "localhost", "internal", "example", "alt", "onion"}, strings.ToLower(tld)) {
			var he *handle.Error
			if !errors.As(err, &he) || he.Name != handle.NameInvalidHandle || he.Message != "Handle TLD is invalid or disallowed" {
				t.Errorf("valid %q with disallowed TLD: got %q, %v; want InvalidHandle for its TLD", short(line), h, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("valid %q rejected by handle.Rules: %v", short(line), err)
			continue
		}
		if string(h) != strings.ToLower(line) {
			t.Errorf("valid %q normalized to %q, want the lowercase form", short(line), h)
		}
		if n, err := handle.Normalize(line); err != nil || n != h {
			t.Errorf("handle.Normalize(%q) = %q, %v; want %q", short(line), n, err, h)
		}
	}

	for _, line := range readLines(t, filepath.Join(dir, "handle_syntax_invalid.txt")) {
		for _, hasDID := range []bool{false, true} {
			h, err := rules.Validate(line, hasDID)
			if !errors.Is(err, handle.ErrInvalidHandle) {
				t.Errorf("invalid %q (hasDID %v): got %q, %v; want InvalidHandle", short(line), hasDID, h, err)
			}
		}
		if _, err := handle.Normalize(line); err == nil {
			t.Errorf("handle.Normalize accepted invalid %q", short(line))
		}
	}
}

// TestSyntaxVectorsHaveNoCarriageReturns guards readLines: a CRLF checkout
// would turn every valid vector into an invalid one.
func TestSyntaxVectorsHaveNoCarriageReturns(t *testing.T) {
	dir := testenv.InteropVectors(t, "syntax")
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "\r") {
			t.Errorf("%s has CR line endings; check it out with LF", filepath.Base(path))
		}
	}
}
