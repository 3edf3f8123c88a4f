// Package refusal owns the XRPC error: a request refused with an HTTP
// status, an XRPC error name (the protocol's vocabulary, which clients
// branch on) and the message the official PDS sends for the same refusal,
// plus an optional cause kept for logs only. It holds the one table from
// error names to statuses and the one renderer of the {"error","message"}
// body, used by the router, the firehose (before its upgrade) and the
// proxy alike.
//
// A message is always set explicitly where the refusal is made: the text
// of a Go error never becomes a wire message.
package refusal

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error is a refusal the client can act on.
type Error struct {
	// Status is the HTTP status; zero takes the name's (see StatusOf).
	Status  int
	Name    string
	Message string
	// Cause is what led to the refusal, for logs; never sent.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Name + ": " + e.Message + ": " + e.Cause.Error()
	}
	return e.Name + ": " + e.Message
}

// Unwrap gives the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Cause }

// Is matches a sentinel refusal by name, and by message when the sentinel
// has one, so errors.Is(err, ErrX) holds for every refusal of that kind
// however it was built.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Name == e.Name && (t.Message == "" || t.Message == e.Message)
}

// HTTPStatus is the status the refusal is sent with.
func (e *Error) HTTPStatus() int {
	if e.Status >= 400 {
		return e.Status
	}
	return StatusOf(e.Name)
}

// Because returns a copy of e that carries cause for the logs.
func (e *Error) Because(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// New returns a refusal whose status follows from its name.
func New(name, message string) *Error { return &Error{Name: name, Message: message} }

// WithStatus returns a refusal with a status of its own, for the names
// the official PDS sends with different statuses in different places.
func WithStatus(status int, name, message string) *Error {
	return &Error{Status: status, Name: name, Message: message}
}

// InvalidRequest is the generic refusal of bad input.
func InvalidRequest(format string, args ...any) *Error {
	return &Error{Name: "InvalidRequest", Message: fmt.Sprintf(format, args...)}
}

// Refusals shared by several packages, worded as the official PDS words
// them.
var (
	// ErrAccountNotFound: the repository or account named is not hosted
	// here.
	ErrAccountNotFound = New("AccountNotFound", "Account not found")
	// ErrInternal is what the client sees of any error that is not a
	// refusal; the error itself goes to the log.
	ErrInternal = New("InternalServerError", "Internal Server Error")
	// ErrPayloadTooLarge: a request body over its limit.
	ErrPayloadTooLarge = New("PayloadTooLargeError", "request entity too large")
)

// statusByName is the HTTP status of each error name; names not listed
// are 400, like the official PDS's InvalidRequest family.
var statusByName = map[string]int{
	"AuthenticationRequired": http.StatusUnauthorized,
	"AuthMissing":            http.StatusUnauthorized,
	"Forbidden":              http.StatusForbidden,
	"NotFound":               http.StatusNotFound,
	"MethodNotImplemented":   http.StatusNotImplemented,
	"MissingTokenId":         http.StatusUnauthorized,
	"PayloadTooLarge":        http.StatusRequestEntityTooLarge,
	"PayloadTooLargeError":   http.StatusRequestEntityTooLarge,
	"AccountNotFound":        http.StatusForbidden,
	"AccountDeactivated":     http.StatusUnauthorized,
	"AccountTakedown":        http.StatusUnauthorized,
	"RateLimitExceeded":      http.StatusTooManyRequests,
	"InternalServerError":    http.StatusInternalServerError,
	"UpstreamFailure":        http.StatusBadGateway,
	"NotAcceptable":          http.StatusNotAcceptable,
}

// StatusOf is the HTTP status of an error name.
func StatusOf(name string) int {
	if s, ok := statusByName[name]; ok {
		return s
	}
	return http.StatusBadRequest
}

// Write renders e as an XRPC error response. A field that is empty is
// left out: upstream answers relayed by the proxy may have no name.
func Write(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.HTTPStatus())
	_ = json.NewEncoder(w).Encode(struct {
		Error   string `json:"error,omitempty"`
		Message string `json:"message,omitempty"`
	}{e.Name, e.Message})
}
