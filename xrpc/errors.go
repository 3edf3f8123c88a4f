package xrpc

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/hearth-pds/hearth/refusal"
)

func invalidRequest(msg string) *refusal.Error { return refusal.New("InvalidRequest", msg) }

func invalidToken(msg string) *refusal.Error { return refusal.New("InvalidToken", msg) }

// Errors of the HTTP layer itself, named and worded as the official PDS
// sends them: a user route without credentials is AuthMissing, an admin
// route without the admin password AuthenticationRequired.
var (
	errAuthMissing   = refusal.New("AuthMissing", "Authentication Required")
	errAdminRequired = refusal.New("AuthenticationRequired", "Authentication Required")
)

// toError maps any handler error to the refusal sent to the client: a
// refusal as it is, a body over its limit as PayloadTooLargeError, and
// anything else logged and shown only as InternalServerError.
func toError(err error, log *slog.Logger, r *http.Request) *refusal.Error {
	var re *refusal.Error
	if errors.As(err, &re) {
		return re
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return refusal.ErrPayloadTooLarge
	}
	log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return refusal.ErrInternal
}

// writeError renders an XRPC error body.
func writeError(w http.ResponseWriter, e *refusal.Error) { refusal.Write(w, e) }

// writeJSON renders a successful JSON response.
func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	return json.NewEncoder(w).Encode(v)
}
