package xrpc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

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

// fakeResolver resolves handles hosted elsewhere from a map.
type fakeResolver map[string]string

func (f fakeResolver) ResolveHandle(_ context.Context, h syntax.Handle) (syntax.DID, error) {
	if did, ok := f[h.String()]; ok {
		return syntax.DID(did), nil
	}
	return "", errors.New("no TXT record, no well-known file")
}

// TestResolveHandle: hosted handles from the accounts, others from the
// network; a handle under this server's domain that no account holds is
// HandleNotFound, one elsewhere that resolves nowhere InvalidRequest, as
// the official PDS answers since 0.5.29.
func TestResolveHandle(t *testing.T) {
	const bob = "did:plc:bobbobbobbobbobbobbobbob"
	s := New(Config{
		Accounts:      fakeAccounts{handles: map[string]string{"alice.pds.test": alice}},
		Handles:       fakeResolver{"bob.example.com": bob},
		HandleDomains: []string{".pds.test"},
		Store:         pinger{},
	})
	for _, tt := range []struct {
		handle     string
		wantStatus int
		wantBody   string
	}{
		{"alice.pds.test", 200, `{"did":"` + alice + `"}`},
		{"ALICE.pds.test", 200, `{"did":"` + alice + `"}`},
		{"bob.example.com", 200, `{"did":"` + bob + `"}`},
		{"nobody.pds.test", 400, `{"error":"HandleNotFound","message":"Unable to resolve handle"}`},
		{"nobody.example.com", 400, `{"error":"InvalidRequest","message":"Unable to resolve handle"}`},
	} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/xrpc/com.atproto.identity.resolveHandle?handle="+tt.handle, nil))
		if w.Code != tt.wantStatus || w.Body.String() != tt.wantBody+"\n" {
			t.Errorf("%s: %d %s, want %d %s", tt.handle, w.Code, w.Body, tt.wantStatus, tt.wantBody)
		}
	}
}

// TestDescribeServerBlobLimit: describeServer tells clients the largest
// blob they may upload.
func TestDescribeServerBlobLimit(t *testing.T) {
	s := New(Config{Describe: Describe{DID: "did:web:pds.test", BlobUploadLimit: 5 << 20}, Store: pinger{}})
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/xrpc/com.atproto.server.describeServer", nil))
	var got struct {
		BlobUploadLimit *int64
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.BlobUploadLimit == nil || *got.BlobUploadLimit != 5<<20 {
		t.Errorf("describeServer %d %s: want blobUploadLimit %d", w.Code, w.Body, 5<<20)
	}
}
