// Package refusal owns the XRPC error: a request refused with an HTTP
// status, an XRPC error name (the protocol's vocabulary, which clients
// branch on) and the message the official PDS sends for the same refusal,
// plus an optional cause kept for logs only. It holds the one table from
// error names to statuses and the one renderer of the {"error","message"}
// body, used by the router (for its own refusals, the domain packages'
// and the proxy's relayed upstream answers) and by the firehose before
// its WebSocket upgrade.
//
// A message is set explicitly where the refusal is made. Mapping an error
// that is not a refusal never turns its Go text into a message: the
// client sees InternalServerError and the log gets the error.
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

// responseTypes are XRPC's own error names (@atproto/xrpc's
// ResponseType): the status each stands for and its standard text, which
// an upstream's answer without a name of its own is given.
var responseTypes = []struct {
	status     int
	name, text string
}{
	{400, "InvalidRequest", "Invalid Request"},
	{401, "AuthenticationRequired", "Authentication Required"},
	{403, "Forbidden", "Forbidden"},
	{404, "XRPCNotSupported", "XRPC Not Supported"},
	{406, "NotAcceptable", "Not Acceptable"},
	{413, "PayloadTooLarge", "Payload Too Large"},
	{415, "UnsupportedMediaType", "Unsupported Media Type"},
	{429, "RateLimitExceeded", "Rate Limit Exceeded"},
	{500, "InternalServerError", "Internal Server Error"},
	{501, "MethodNotImplemented", "Method Not Implemented"},
	{502, "UpstreamFailure", "Upstream Failure"},
	{503, "NotEnoughResources", "Not Enough Resources"},
	{504, "UpstreamTimeout", "Upstream Timeout"},
}

// statusByName is the HTTP status of each error name: XRPC's own, and
// the official PDS's that it sends with a status other than 400. Names
// not listed are 400, like the official PDS's InvalidRequest family.
var statusByName = func() map[string]int {
	m := map[string]int{
		"AuthMissing":          http.StatusUnauthorized,
		"NotFound":             http.StatusNotFound,
		"MissingTokenId":       http.StatusUnauthorized,
		"PayloadTooLargeError": http.StatusRequestEntityTooLarge,
		"AccountNotFound":      http.StatusForbidden,
		"AccountDeactivated":   http.StatusUnauthorized,
		"AccountTakedown":      http.StatusUnauthorized,
	}
	for _, rt := range responseTypes {
		m[rt.name] = rt.status
	}
	return m
}()

// StatusOf is the HTTP status of an error name.
func StatusOf(name string) int {
	if s, ok := statusByName[name]; ok {
		return s
	}
	return http.StatusBadRequest
}

// ForStatus is XRPC's name and standard text for status; both are empty
// for a status XRPC has no name for.
func ForStatus(status int) (name, text string) {
	for _, rt := range responseTypes {
		if rt.status == status {
			return rt.name, rt.text
		}
	}
	return "", ""
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
