package records

import "fmt"

// Error is a refusal the client can act on: an XRPC error name and the
// message, as the official PDS words it where it has one.
type Error struct {
	Name    string
	Message string
}

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// XRPCError lets the HTTP layer render the error.
func (e *Error) XRPCError() (name, message string) { return e.Name, e.Message }

func invalidRequest(format string, args ...any) *Error {
	return &Error{Name: "InvalidRequest", Message: fmt.Sprintf(format, args...)}
}
