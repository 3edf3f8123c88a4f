package account

import "fmt"

// Error is a refusal the client can act on. Name is the XRPC error name and
// Message the text the official PDS sends for the same refusal; the xrpc
// package maps the name to the HTTP status.
type Error struct {
	Name    string
	Message string
}

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// XRPCError lets the HTTP layer render the error without knowing this type.
func (e *Error) XRPCError() (name, message string) { return e.Name, e.Message }

func invalidRequest(format string, args ...any) *Error {
	return &Error{Name: "InvalidRequest", Message: fmt.Sprintf(format, args...)}
}

// Refusals with fixed wording.
var (
	ErrAuthFailed        = &Error{"AuthenticationRequired", "Invalid identifier or password"}
	ErrNoInvite          = &Error{"InvalidInviteCode", "No invite code provided"}
	ErrInviteUnavailable = &Error{"InvalidInviteCode", "Provided invite code not available"}
	ErrSessionRevoked    = &Error{"ExpiredToken", "Token has been revoked"}
	ErrAccountNotFound   = &Error{"AccountNotFound", "Account not found"}
	ErrAccountTakedown   = &Error{"AccountTakedown", "Account has been taken down"}
)
