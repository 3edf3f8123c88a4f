package xrpc

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/hearth-pds/hearth/account"
	"github.com/hearth-pds/hearth/handle"
)

// Error is an XRPC error response: an HTTP status and the JSON body
// {"error": Name, "message": Message}.
type Error struct {
	Status  int
	Name    string
	Message string
}

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// clientError is implemented by domain refusals (account.Error): an XRPC
// error name and a message meant for the client.
type clientError interface {
	XRPCError() (name, message string)
}

// statusError is implemented by refusals that carry their HTTP status
// (serviceauth.Error, proxy.UpstreamError); it wins over statusByName.
type statusError interface {
	HTTPStatus() int
}

// statusByName is the HTTP status of each error name a domain package may
// return; names not listed are 400, like the official PDS's InvalidRequest
// family.
var statusByName = map[string]int{
	"AuthenticationRequired": http.StatusUnauthorized,
	"AuthMissing":            http.StatusUnauthorized,
	"Forbidden":              http.StatusForbidden,
	"NotFound":               http.StatusNotFound,
	"MethodNotImplemented":   http.StatusNotImplemented,
	"MissingTokenId":         http.StatusUnauthorized,
	"PayloadTooLarge":        http.StatusRequestEntityTooLarge,
	"AccountNotFound":        http.StatusForbidden,
	"AccountDeactivated":     http.StatusUnauthorized,
	"AccountTakedown":        http.StatusUnauthorized,
	"RateLimitExceeded":      http.StatusTooManyRequests,
	"InternalServerError":    http.StatusInternalServerError,
}

func invalidRequest(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Name: "InvalidRequest", Message: msg}
}

func invalidToken(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Name: "InvalidToken", Message: msg}
}

// Errors of the HTTP layer itself, named and worded as the official PDS
// sends them: a user route without credentials is AuthMissing, an admin
// route without the admin password AuthenticationRequired.
var (
	errAuthMissing   = &Error{http.StatusUnauthorized, "AuthMissing", "Authentication Required"}
	errAdminRequired = &Error{http.StatusUnauthorized, "AuthenticationRequired", "Authentication Required"}
	errTooLarge      = &Error{http.StatusRequestEntityTooLarge, "PayloadTooLargeError", "request entity too large"}
	errInternal      = &Error{http.StatusInternalServerError, "InternalServerError", "Internal Server Error"}
)

// toError maps any handler error to the XRPC error sent to the client. It
// is the one place where domain errors become HTTP: a refusal keeps its
// name and message, token errors become ExpiredToken/InvalidToken, and
// anything else is logged and shown only as InternalServerError.
func toError(err error, log *slog.Logger, r *http.Request) *Error {
	var xe *Error
	if errors.As(err, &xe) {
		return xe
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	switch {
	case errors.Is(err, account.ErrTokenExpired):
		return &Error{http.StatusBadRequest, "ExpiredToken", err.Error()}
	case errors.Is(err, account.ErrTokenNoID):
		return &Error{http.StatusUnauthorized, "MissingTokenId", err.Error()}
	case errors.Is(err, account.ErrTokenInvalid), errors.Is(err, account.ErrTokenScope),
		errors.Is(err, account.ErrTokenType), errors.Is(err, account.ErrTokenMalformed):
		return invalidToken(err.Error())
	}
	var he *handle.Error
	if errors.As(err, &he) {
		return &Error{http.StatusBadRequest, he.Name, he.Message}
	}
	var ce clientError
	if errors.As(err, &ce) {
		name, msg := ce.XRPCError()
		status, ok := statusByName[name]
		if !ok {
			status = http.StatusBadRequest
		}
		if se, ok := ce.(statusError); ok && se.HTTPStatus() >= 400 {
			status = se.HTTPStatus()
		}
		return &Error{Status: status, Name: name, Message: msg}
	}
	log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return errInternal
}

// writeError renders an XRPC error body.
func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(struct {
		Error   string `json:"error"`
		Message string `json:"message,omitempty"`
	}{e.Name, e.Message})
}

// writeJSON renders a successful JSON response.
func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	return json.NewEncoder(w).Encode(v)
}
