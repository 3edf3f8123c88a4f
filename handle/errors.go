package handle

import (
	"errors"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// The XRPC error names the official PDS uses for handle problems. They are
// part of the wire contract: clients branch on them (the Bluesky app shows
// "handle not available" differently from "invalid handle").
const (
	NameInvalidHandle      = "InvalidHandle"
	NameHandleNotAvailable = "HandleNotAvailable"
	NameUnsupportedDomain  = "UnsupportedDomain"
	NameInvalidRequest     = "InvalidRequest"
)

// Error is a handle rejected by the rules, carrying what the client is told.
//
// Mapping contract for the HTTP layer: every *Error is a client error, sent
// as status 400 with body {"error": Name, "message": Message}. Name is one
// of the Name* constants, Message is the official PDS's text. Nothing in an
// Error is internal, so it can be shown as is.
//
// Compare with errors.Is against the sentinels below: it matches on Name
// (and on Message too when the sentinel has one), so
// errors.Is(err, ErrHandleNotAvailable) is true for both a reserved handle
// and a taken one.
type Error struct {
	Name    string
	Message string
}

func (e *Error) Error() string { return "handle: " + e.Name + ": " + e.Message }

// Is matches sentinels by name, and by message when the sentinel has one.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Name == e.Name && (t.Message == "" || t.Message == e.Message)
}

// Sentinels for errors.Is; they carry no message of their own.
var (
	// ErrInvalidHandle: bad syntax, a disallowed TLD, explicit language, or
	// a service handle of the wrong shape or length.
	ErrInvalidHandle = &Error{Name: NameInvalidHandle}
	// ErrHandleNotAvailable: reserved, or (see [Taken]) held by another account.
	ErrHandleNotAvailable = &Error{Name: NameHandleNotAvailable}
	// ErrUnsupportedDomain: a new account asked for a handle outside this
	// server's domains; custom domains come after creation.
	ErrUnsupportedDomain = &Error{Name: NameUnsupportedDomain}
)

// ErrExternalHandleMismatch is what the caller returns when a handle outside
// the service domains does not resolve (DNS TXT or /.well-known/atproto-did)
// to the account's DID. The rules cannot check this themselves: it needs the
// network. The official PDS sends it as a plain InvalidRequest.
var ErrExternalHandleMismatch = &Error{Name: NameInvalidRequest, Message: "External handle did not resolve to DID"}

// Taken is the error for a handle another account already holds.
func Taken(h syntax.Handle) *Error {
	return &Error{Name: NameHandleNotAvailable, Message: "Handle already taken: " + h.String()}
}

func invalid(msg string) *Error { return &Error{Name: NameInvalidHandle, Message: msg} }
