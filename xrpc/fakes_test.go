package xrpc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hearth-pds/hearth/account"
)

// fakeAccounts serves hosted handles from a map; the other methods of
// Accounts are not implemented (calling one panics).
type fakeAccounts struct {
	Accounts
	handles map[string]string
	err     error
}

func (f fakeAccounts) HandleDID(_ context.Context, handle string) (string, error) {
	if f.err != nil {
		return "", f.err
	}
	if did, ok := f.handles[handle]; ok {
		return did, nil
	}
	return "", account.ErrAccountNotFound
}

func TestWellKnownDID(t *testing.T) {
	accounts := fakeAccounts{handles: map[string]string{"alice.pds.test": alice}}
	for _, tt := range []struct {
		host       string
		accounts   Accounts
		wantStatus int
		wantBody   string
	}{
		{"alice.pds.test", accounts, 200, alice},
		{"Alice.PDS.test:443", accounts, 200, alice},
		{"bob.pds.test", accounts, 404, "User not found"},
		{"alice.pds.test", fakeAccounts{err: errors.New("database is locked")}, 404, "User not found"},
	} {
		s := New(Config{Accounts: tt.accounts, Store: pinger{}})
		r := httptest.NewRequest(http.MethodGet, "/.well-known/atproto-did", nil)
		r.Host = tt.host
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != tt.wantStatus || w.Body.String() != tt.wantBody {
			t.Errorf("host %s: %d %q, want %d %q", tt.host, w.Code, w.Body, tt.wantStatus, tt.wantBody)
		}
	}
}
