package refusal

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
)

func TestHTTPStatus(t *testing.T) {
	for _, tt := range []struct {
		err  *Error
		want int
	}{
		{New("InvalidRequest", "m"), 400},
		{New("SomethingUnlisted", "m"), 400},
		{New("AuthMissing", "m"), 401},
		{ErrAccountNotFound, 403},
		{ErrPayloadTooLarge, 413},
		{ErrInternal, 500},
		// A status of its own wins over the name's.
		{WithStatus(401, "InvalidRequest", "m"), 401},
		{WithStatus(415, "UnsupportedMediaType", "m"), 415},
		// No usable status of its own: the name decides.
		{WithStatus(200, "AuthMissing", "m"), 401},
	} {
		if got := tt.err.HTTPStatus(); got != tt.want {
			t.Errorf("%v: status %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestIs(t *testing.T) {
	sentinel := New("HandleNotAvailable", "")
	worded := New("InvalidInviteCode", "No invite code provided")
	cause := errors.New("disk on fire")
	for _, tt := range []struct {
		err    error
		target error
		want   bool
	}{
		{New("HandleNotAvailable", "Reserved handle"), sentinel, true},
		{fmt.Errorf("wrapped: %w", New("HandleNotAvailable", "x")), sentinel, true},
		{New("InvalidHandle", "x"), sentinel, false},
		{New("InvalidInviteCode", "No invite code provided"), worded, true},
		{New("InvalidInviteCode", "Provided invite code not available"), worded, false},
		{ErrInternal.Because(cause), cause, true},
		{ErrInternal.Because(cause), ErrInternal, true},
	} {
		if got := errors.Is(tt.err, tt.target); got != tt.want {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", tt.err, tt.target, got, tt.want)
		}
	}
}

// The cause goes to logs only: Write sends the name and message.
func TestWrite(t *testing.T) {
	for _, tt := range []struct {
		err        *Error
		wantStatus int
		wantBody   string
	}{
		{New("InvalidRequest", "bad").Because(errors.New("secret detail")), 400, `{"error":"InvalidRequest","message":"bad"}` + "\n"},
		{New("AuthMissing", ""), 401, `{"error":"AuthMissing"}` + "\n"},
		// An upstream answer with a status XRPC has no name for.
		{WithStatus(418, "", ""), 418, "{}\n"},
	} {
		w := httptest.NewRecorder()
		Write(w, tt.err)
		if w.Code != tt.wantStatus || w.Body.String() != tt.wantBody || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("Write(%v) = %d %q %q, want %d %q", tt.err, w.Code, w.Header().Get("Content-Type"), w.Body.String(), tt.wantStatus, tt.wantBody)
		}
	}
}

// XRPC's own names go both ways: a status gets its name, the name its
// status.
func TestForStatus(t *testing.T) {
	for _, rt := range responseTypes {
		name, text := ForStatus(rt.status)
		if name != rt.name || text != rt.text || StatusOf(name) != rt.status {
			t.Errorf("ForStatus(%d) = %q %q; StatusOf(%q) = %d", rt.status, name, text, name, StatusOf(name))
		}
	}
	if name, text := ForStatus(418); name != "" || text != "" {
		t.Errorf("ForStatus(418) = %q %q, want none", name, text)
	}
}
