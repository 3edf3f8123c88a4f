package handle

import (
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/refusal"
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

// Error is a handle rejected by the rules: a refusal sent with status 400
// and the official PDS's name (one of the Name* constants) and message.
// Nothing in it is internal, so it can be shown as is.
//
// Compare with errors.Is against the sentinels below: a refusal matches on
// Name (and on Message too when the sentinel has one), so
// errors.Is(err, ErrHandleNotAvailable) is true for both a reserved handle
// and a taken one.
type Error = refusal.Error

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
