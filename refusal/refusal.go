// Package refusal holds the one error type domain packages return for a
// request they refuse and the client can act on: an XRPC error name (the
// protocol's vocabulary, not HTTP's) and the message the official PDS sends
// for the same refusal. The xrpc package maps names to HTTP statuses in
// one place; nothing here knows about HTTP.
package refusal

import "fmt"

// Error is a refusal the client can act on.
type Error struct {
	Name    string
	Message string
}

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// XRPCError lets the HTTP layer render the error without knowing this type.
func (e *Error) XRPCError() (name, message string) { return e.Name, e.Message }

// New returns a refusal with an XRPC error name and a message.
func New(name, message string) *Error { return &Error{Name: name, Message: message} }

// InvalidRequest is the generic refusal of bad input.
func InvalidRequest(format string, args ...any) *Error {
	return &Error{Name: "InvalidRequest", Message: fmt.Sprintf(format, args...)}
}
