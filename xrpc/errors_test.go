package xrpc

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/hearth-pds/hearth/account"
	"github.com/hearth-pds/hearth/serviceauth"
)

// A refusal that carries its status keeps it, whatever its name.
func TestToErrorKeepsOwnStatus(t *testing.T) {
	r := httptest.NewRequest("GET", "/xrpc/x.y.z", nil)
	log := slog.New(slog.DiscardHandler)
	for _, tt := range []struct {
		err        error
		wantStatus int
		wantName   string
	}{
		{&serviceauth.Error{Status: 401, Name: "InvalidRequest", Message: "m"}, 401, "InvalidRequest"},
		{fmt.Errorf("wrapped: %w", &serviceauth.Error{Status: 400, Name: "BadExpiration", Message: "m"}), 400, "BadExpiration"},
		// No usable status of its own: the name decides.
		{&serviceauth.Error{Name: "AuthMissing", Message: "m"}, 401, "AuthMissing"},
		{fmt.Errorf("check password: %w: %w", account.ErrHashBusy, context.Canceled), 503, "NotEnoughResources"},
	} {
		got := toError(tt.err, log, r)
		if got.HTTPStatus() != tt.wantStatus || got.Name != tt.wantName {
			t.Errorf("toError(%v) = %d %s, want %d %s", tt.err, got.HTTPStatus(), got.Name, tt.wantStatus, tt.wantName)
		}
	}
}
