package handle

import (
	"errors"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// r13 decodes a ROT13 test word, so slurs stay out of the test source too.
func r13(s string) string { return rot13Fields(s)[0] }

var rules = Rules{ServiceDomains: []string{".pds.example.com", ".test"}}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		hasDID   bool
		want     string // normalized handle when valid
		wantName string // XRPC error name when not
		wantMsg  string
	}{
		// Normalization and syntax.
		{name: "service handle", raw: "alice.pds.example.com", want: "alice.pds.example.com"},
		{name: "lowercased", raw: "Alice.PDS.Example.com", want: "alice.pds.example.com"},
		{name: ".test allowed", raw: "bob.test", want: "bob.test"},
		{name: "hyphen and digits", raw: "a-1-b.test", want: "a-1-b.test"},
		{name: "empty", raw: "", wantName: NameInvalidHandle, wantMsg: "Handle domain needs at least two parts"},
		{name: "one label", raw: "alice", wantName: NameInvalidHandle, wantMsg: "Handle domain needs at least two parts"},
		{name: "underscore", raw: "al_ice.test", wantName: NameInvalidHandle, wantMsg: "Disallowed characters in handle (ASCII letters, digits, dashes, periods only)"},
		{name: "space", raw: " alice.test", wantName: NameInvalidHandle, wantMsg: "Disallowed characters in handle (ASCII letters, digits, dashes, periods only)"},
		{name: "unicode", raw: "bücher.test", wantName: NameInvalidHandle, wantMsg: "Disallowed characters in handle (ASCII letters, digits, dashes, periods only)"},
		{name: "kelvin sign is not k", raw: "\u212Aate.test", wantName: NameInvalidHandle, wantMsg: "Disallowed characters in handle (ASCII letters, digits, dashes, periods only)"},
		{name: "empty label", raw: "alice..test", wantName: NameInvalidHandle, wantMsg: "Handle parts can not be empty"},
		{name: "trailing dot", raw: "alice.test.", wantName: NameInvalidHandle, wantMsg: "Handle parts can not be empty"},
		{name: "leading hyphen", raw: "-alice.test", wantName: NameInvalidHandle, wantMsg: "Handle parts can not start or end with hyphens"},
		{name: "numeric TLD", raw: "alice.123", wantName: NameInvalidHandle, wantMsg: "Handle final component (TLD) must start with ASCII letter"},
		{name: "label too long", raw: strings.Repeat("a", 64) + ".com", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Handle part too long (max 63 chars)"},
		{name: "handle too long", raw: strings.Repeat("abcdefghi.", 26) + "com", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Handle is too long (253 chars max)"},

		// Disallowed TLDs, as in the official list.
		{name: ".local", raw: "alice.local", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Handle TLD is invalid or disallowed"},
		{name: ".arpa", raw: "alice.arpa", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Handle TLD is invalid or disallowed"},
		{name: ".invalid", raw: "handle.invalid", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Handle TLD is invalid or disallowed"},
		{name: ".localhost", raw: "alice.localhost", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Handle TLD is invalid or disallowed"},
		{name: ".internal", raw: "alice.internal", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Handle TLD is invalid or disallowed"},
		{name: ".example", raw: "alice.example", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Handle TLD is invalid or disallowed"},
		{name: ".alt", raw: "alice.alt", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Handle TLD is invalid or disallowed"},
		{name: ".onion", raw: "expyuzz4wqqyqhjn.onion", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Handle TLD is invalid or disallowed"},
		{name: ".example.com is fine", raw: "alice.example.com", hasDID: true, want: "alice.example.com"},

		// Service domain constraints.
		{name: "dot in front", raw: "a.alice.test", wantName: NameInvalidHandle, wantMsg: "Invalid characters in handle"},
		{name: "too short", raw: "al.test", wantName: NameInvalidHandle, wantMsg: "Handle too short"},
		{name: "shortest", raw: "ali.test", want: "ali.test"},
		{name: "longest", raw: strings.Repeat("a", 18) + ".test", want: strings.Repeat("a", 18) + ".test"},
		{name: "too long", raw: strings.Repeat("a", 19) + ".test", wantName: NameInvalidHandle, wantMsg: "Handle too long"},
		{name: "reserved", raw: "admin.pds.example.com", wantName: NameHandleNotAvailable, wantMsg: "Reserved handle"},
		{name: "reserved with hyphen", raw: "ad-min.test", wantName: NameHandleNotAvailable, wantMsg: "Reserved handle"},
		{name: "reserved protocol word", raw: "xrpc.test", wantName: NameHandleNotAvailable, wantMsg: "Reserved handle"},
		{name: "reserved brand", raw: "BSKY.test", wantName: NameHandleNotAvailable, wantMsg: "Reserved handle"},
		{name: "reserved word inside is fine", raw: "adminfan.test", want: "adminfan.test"},
		{name: "longest service domain wins", raw: "carol.pds.example.com", want: "carol.pds.example.com"},

		// Outside the service domains.
		{name: "custom domain at creation", raw: "alice.example.com", wantName: NameUnsupportedDomain, wantMsg: "Not a supported handle domain"},
		{name: "custom domain with DID", raw: "Alice.Example.com", hasDID: true, want: "alice.example.com"},
		{name: "reserved words do not apply to custom domains", raw: "admin.example.org", hasDID: true, want: "admin.example.org"},
		{name: "the service domain itself", raw: "pds.example.com", wantName: NameUnsupportedDomain, wantMsg: "Not a supported handle domain"},

		// Explicit slurs, anywhere in the handle.
		{name: "slur label", raw: r13("avttre") + ".test", wantName: NameInvalidHandle, wantMsg: "Inappropriate language in handle"},
		{name: "slur in a custom domain", raw: "x." + r13("avttre") + "s.com", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Inappropriate language in handle"},
		{name: "slur split by dots", raw: r13("avttre")[:2] + "." + r13("avttre")[2:] + ".com", hasDID: true, wantName: NameInvalidHandle, wantMsg: "Inappropriate language in handle"},
		{name: "slur with digits", raw: strings.NewReplacer("i", "1", "e", "3").Replace(r13("avttre")) + ".test", wantName: NameInvalidHandle, wantMsg: "Inappropriate language in handle"},
		{name: "slur with repeats", raw: strings.Replace(r13("avttre"), "g", "gg", 1) + ".test", wantName: NameInvalidHandle, wantMsg: "Inappropriate language in handle"},
		{name: "slur inside a word", raw: "x" + r13("snttbg") + "x.test", wantName: NameInvalidHandle, wantMsg: "Inappropriate language in handle"},
		{name: "word slur", raw: "big-" + r13("pbba") + ".test", wantName: NameInvalidHandle, wantMsg: "Inappropriate language in handle"},
		{name: "word slur plural with digits", raw: r13("puvax") + "s99.test", wantName: NameInvalidHandle, wantMsg: "Inappropriate language in handle"},
		{name: "niger is a country", raw: "niger.test", want: "niger.test"},
		{name: "nigeria too", raw: "nigeria-news.com", hasDID: true, want: "nigeria-news.com"},
		{name: "raccoon", raw: "raccoon.test", want: "raccoon.test"},
		{name: "spicy", raw: "spicy.test", want: "spicy.test"},
		{name: "cocoon", raw: "cocoon.test", want: "cocoon.test"},
		{name: "scunthorpe", raw: "scunthorpe.test", want: "scunthorpe.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rules.Validate(tt.raw, tt.hasDID)
			if tt.wantName == "" {
				if err != nil {
					t.Fatalf("Validate(%q) = %v", tt.raw, err)
				}
				if string(got) != tt.want {
					t.Errorf("Validate(%q) = %q, want %q", tt.raw, got, tt.want)
				}
				return
			}
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("Validate(%q) = %q, %v; want a *handle.Error %s", tt.raw, got, err, tt.wantName)
			}
			if he.Name != tt.wantName || he.Message != tt.wantMsg {
				t.Errorf("Validate(%q) = {%s, %q}, want {%s, %q}", tt.raw, he.Name, he.Message, tt.wantName, tt.wantMsg)
			}
			if got != "" {
				t.Errorf("Validate(%q) returned handle %q with an error", tt.raw, got)
			}
		})
	}
}

func TestValidateAdmin(t *testing.T) {
	tests := []struct {
		raw      string
		wantName string
	}{
		{raw: "admin.test"},                               // reserved: allowed
		{raw: r13("avttre") + ".test"},                    // slur: allowed, as officially
		{raw: "ab.test", wantName: NameInvalidHandle},     // shape still applies
		{raw: "alice.local", wantName: NameInvalidHandle}, // TLD still applies
		{raw: "alice.example.com", wantName: NameUnsupportedDomain},
	}
	for _, tt := range tests {
		_, err := rules.ValidateAdmin(tt.raw, false)
		var he *Error
		switch {
		case tt.wantName == "" && err != nil:
			t.Errorf("ValidateAdmin(%q) = %v, want ok", tt.raw, err)
		case tt.wantName != "" && (!errors.As(err, &he) || he.Name != tt.wantName):
			t.Errorf("ValidateAdmin(%q) = %v, want %s", tt.raw, err, tt.wantName)
		}
	}
}

func TestErrorsIs(t *testing.T) {
	_, err := rules.Validate("admin.test", false)
	if !errors.Is(err, ErrHandleNotAvailable) {
		t.Errorf("reserved: errors.Is(%v, ErrHandleNotAvailable) = false", err)
	}
	if errors.Is(err, ErrInvalidHandle) {
		t.Errorf("reserved: errors.Is(%v, ErrInvalidHandle) = true", err)
	}
	if !errors.Is(Taken("alice.test"), ErrHandleNotAvailable) {
		t.Error("Taken is not ErrHandleNotAvailable")
	}
	if got, want := Taken("alice.test").Message, "Handle already taken: alice.test"; got != want {
		t.Errorf("Taken message = %q, want %q", got, want)
	}
	if errors.Is(&Error{Name: NameInvalidRequest, Message: "other"}, ErrExternalHandleMismatch) {
		t.Error("a different InvalidRequest matched ErrExternalHandleMismatch")
	}
	_, err = rules.Validate("x.example.com", false)
	if !errors.Is(err, ErrUnsupportedDomain) {
		t.Errorf("errors.Is(%v, ErrUnsupportedDomain) = false", err)
	}
}

func TestIsServiceHandle(t *testing.T) {
	tests := []struct {
		h    syntax.Handle
		want bool
	}{
		{"alice.pds.example.com", true},
		{"ALICE.PDS.EXAMPLE.COM", true},
		{"alice.test", true},
		{"pds.example.com", false},
		{"alice.example.com", false},
		{"alicepds.example.com", false},
	}
	for _, tt := range tests {
		if got := rules.IsServiceHandle(tt.h); got != tt.want {
			t.Errorf("IsServiceHandle(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
	if (Rules{}).IsServiceHandle("alice.test") {
		t.Error("zero Rules host a domain")
	}
}

func TestReservedListShape(t *testing.T) {
	for w := range reserved {
		if len(strings.ReplaceAll(w, "-", "")) < MinServiceLabel && len(w) < MinServiceLabel {
			t.Errorf("reserved %q is shorter than any service handle", w)
		}
		if w != strings.ToLower(w) {
			t.Errorf("reserved %q is not lowercase", w)
		}
	}
}

// FuzzValidate checks the invariants every accepted handle must hold, and
// that rejection is always a *handle.Error with a known name.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"alice.test", "ALICE.pds.example.com", "admin.test", "a..b", "-x.com",
		"alice.example.com", "x.onion", "\u212Aate.test", r13("avttre") + ".test", strings.Repeat("a.", 130) + "com"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	names := map[string]bool{NameInvalidHandle: true, NameHandleNotAvailable: true, NameUnsupportedDomain: true}
	f.Fuzz(func(t *testing.T, raw string, hasDID bool) {
		h, err := rules.Validate(raw, hasDID)
		if err != nil {
			var he *Error
			if !errors.As(err, &he) || !names[he.Name] || he.Message == "" {
				t.Fatalf("Validate(%q) error %v is not a named *handle.Error", raw, err)
			}
			if h != "" {
				t.Fatalf("Validate(%q) returned %q with an error", raw, h)
			}
			return
		}
		if string(h) != strings.ToLower(raw) {
			t.Fatalf("Validate(%q) = %q, not the lowercase input", raw, h)
		}
		if _, err := syntax.ParseHandle(string(h)); err != nil {
			t.Fatalf("Validate(%q) accepted a handle indigo rejects: %v", raw, err)
		}
		if !h.AllowedTLD() {
			t.Fatalf("Validate(%q) accepted a disallowed TLD", raw)
		}
		if !hasDID && !rules.IsServiceHandle(h) {
			t.Fatalf("Validate(%q) accepted a custom domain without a DID", raw)
		}
		if again, err := rules.Validate(string(h), hasDID); err != nil || again != h {
			t.Fatalf("Validate is not idempotent on %q: %q, %v", h, again, err)
		}
	})
}

func TestHasExplicitSlurRecordKeys(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"3jzfcijpj2z2a", false},
		{"self", false},
		{"my_" + r13("pbba") + "_list", true},
		{"list:" + strings.ToUpper(r13("avttre")), true},
		{"raccoon~friends", false},
	}
	for _, tt := range tests {
		if got := HasExplicitSlur(tt.s); got != tt.want {
			t.Errorf("HasExplicitSlur(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
