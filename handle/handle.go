package handle

import (
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Limits on the part of a service handle before the service domain, e.g.
// "alice" in alice.pds.example.com. They are the official PDS's.
const (
	MinServiceLabel = 3
	MaxServiceLabel = 18
)

// Normalize lowercases a handle and checks its syntax, as every endpoint
// that takes a handle does first (resolveHandle included). It returns an
// InvalidHandle *Error with the official message for the first problem.
//
// Unlike the official PDS, non-ASCII input is rejected before lowercasing:
// JavaScript's toLowerCase (like Go's) folds U+212A KELVIN SIGN to "k", so
// the official PDS would accept "\u212Aate.test" as "kate.test".
func Normalize(raw string) (syntax.Handle, error) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return "", invalid("Disallowed characters in handle (ASCII letters, digits, dashes, periods only)")
		}
	}
	lower := strings.ToLower(raw)
	if err := syntaxProblem(lower); err != nil {
		return "", err
	}
	// indigo's parser is the authority; syntaxProblem only finds the
	// official wording, and the two agree on the interop vectors.
	h, err := syntax.ParseHandle(lower)
	if err != nil {
		return "", invalid("Handle didn't validate via regex")
	}
	return h, nil
}

// syntaxProblem explains, in the official PDS's words and order, why an
// ASCII lowercase string is not a handle.
func syntaxProblem(s string) *Error {
	if len(s) > 253 {
		return invalid("Handle is too long (253 chars max)")
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return invalid("Handle domain needs at least two parts")
	}
	for i, l := range labels {
		switch {
		case l == "":
			return invalid("Handle parts can not be empty")
		case len(l) > 63:
			return invalid("Handle part too long (max 63 chars)")
		case l[0] == '-' || l[len(l)-1] == '-':
			return invalid("Handle parts can not start or end with hyphens")
		case i == len(labels)-1 && !(l[0] >= 'a' && l[0] <= 'z'):
			return invalid("Handle final component (TLD) must start with ASCII letter")
		}
	}
	return nil
}

// Rules are the handle rules of one server. The zero value hosts no
// domains, so every handle counts as external.
type Rules struct {
	// ServiceDomains are the suffixes handles are hosted under, each with a
	// leading dot (".pds.example.com"), lowercase, as config validates
	// PDS_SERVICE_HANDLE_DOMAINS.
	ServiceDomains []string
}

// Validate applies the rules the official PDS applies when an account is
// created or changes its handle, in the same order and with the same error
// names and messages:
//
//  1. syntax, after lowercasing ([Normalize]): InvalidHandle;
//  2. a disallowed TLD (.local, .arpa, .invalid, .localhost, .internal,
//     .example, .alt, .onion; .test is allowed): InvalidHandle;
//  3. explicit slurs anywhere in the handle: InvalidHandle;
//  4. under a service domain: the part in front must be one label of 3 to
//     18 characters (InvalidHandle) and not reserved (HandleNotAvailable);
//  5. outside the service domains: UnsupportedDomain when the caller has no
//     DID yet (account creation), since custom domains are proven later.
//
// A nil error for a handle outside the service domains (hasDID true) is not
// the end: the caller must check that the handle resolves to the DID and
// return [ErrExternalHandleMismatch] if not. Whether the handle is taken is
// also the caller's to check ([Taken]).
//
// The handle returned is normalized (lowercase). Every error is an *Error.
func (r Rules) Validate(raw string, hasDID bool) (syntax.Handle, error) {
	return r.validate(raw, hasDID, false)
}

// ValidateAdmin is [Rules.Validate] for administrators
// (com.atproto.admin.updateAccountHandle): as in the official PDS, it skips
// the slur and reserved-word checks but keeps syntax, TLD and shape rules.
func (r Rules) ValidateAdmin(raw string, hasDID bool) (syntax.Handle, error) {
	return r.validate(raw, hasDID, true)
}

func (r Rules) validate(raw string, hasDID, admin bool) (syntax.Handle, error) {
	h, err := Normalize(raw)
	if err != nil {
		return "", err
	}
	if !h.AllowedTLD() {
		return "", invalid("Handle TLD is invalid or disallowed")
	}
	if !admin && HasExplicitSlur(string(h)) {
		return "", invalid("Inappropriate language in handle")
	}
	domain, ok := r.serviceDomain(h)
	if !ok {
		if !hasDID {
			return "", &Error{Name: NameUnsupportedDomain, Message: "Not a supported handle domain"}
		}
		return h, nil
	}
	front := strings.TrimSuffix(string(h), domain)
	switch {
	case strings.Contains(front, "."):
		return "", invalid("Invalid characters in handle")
	case len(front) < MinServiceLabel:
		return "", invalid("Handle too short")
	case len(front) > MaxServiceLabel:
		return "", invalid("Handle too long")
	case !admin && isReserved(front):
		return "", &Error{Name: NameHandleNotAvailable, Message: "Reserved handle"}
	}
	return h, nil
}

// IsServiceHandle reports whether h is under one of the service domains,
// i.e. whether this server answers for it rather than DNS or the handle's
// own web server.
func (r Rules) IsServiceHandle(h syntax.Handle) bool {
	_, ok := r.serviceDomain(h.Normalize())
	return ok
}

// serviceDomain returns the service domain h is under. With overlapping
// domains (.example.com and .pds.example.com) the longest wins, so
// alice.pds.example.com is "alice" under the second; the official PDS takes
// the first listed and would reject it as having a dot in front.
func (r Rules) serviceDomain(h syntax.Handle) (string, bool) {
	best := ""
	for _, d := range r.ServiceDomains {
		d = strings.ToLower(d)
		if !strings.HasPrefix(d, ".") || len(d) < 2 {
			continue
		}
		if strings.HasSuffix(string(h), d) && len(d) > len(best) {
			best = d
		}
	}
	return best, best != ""
}
