package account

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	tok := &Tokens{Secret: []byte("secret"), ServiceDID: "did:web:pds.test"}
	other := &Tokens{Secret: []byte("other"), ServiceDID: "did:web:pds.test"}
	otherAud := &Tokens{Secret: []byte("secret"), ServiceDID: "did:web:elsewhere.test"}
	past := &Tokens{Secret: []byte("secret"), ServiceDID: "did:web:pds.test", now: func() time.Time { return time.Now().Add(-3 * time.Hour) }}

	access, _ := tok.Access("did:plc:a", ScopeAccess)
	appPass, _ := tok.Access("did:plc:a", ScopeAppPass)
	refresh, _, _ := tok.Refresh("did:plc:a", NewRefreshID())
	forged, _ := other.Access("did:plc:a", ScopeAccess)
	wrongAud, _ := otherAud.Access("did:plc:a", ScopeAccess)
	expired, _ := past.Access("did:plc:a", ScopeAccess)
	parts := strings.Split(access, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + "."

	tests := []struct {
		name    string
		verify  func(string) (Claims, error)
		token   string
		want    error
		wantDID string
	}{
		{"access", tok.VerifyAccess, access, nil, "did:plc:a"},
		{"app password access", tok.VerifyAccess, appPass, nil, "did:plc:a"},
		{"refresh", tok.VerifyRefresh, refresh, nil, "did:plc:a"},
		{"refresh as access", tok.VerifyAccess, refresh, ErrTokenType, ""},
		{"access as refresh", tok.VerifyRefresh, access, ErrTokenType, ""},
		{"forged signature", tok.VerifyAccess, forged, ErrTokenInvalid, ""},
		{"other audience", tok.VerifyAccess, wrongAud, ErrTokenInvalid, ""},
		{"expired", tok.VerifyAccess, expired, ErrTokenExpired, ""},
		{"alg none", tok.VerifyAccess, none, ErrTokenInvalid, ""},
		{"garbage", tok.VerifyAccess, "not.a.jwt", ErrTokenInvalid, ""},
		{"oversize", tok.VerifyAccess, strings.Repeat("a", 5000), ErrTokenInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.verify(tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if c.DID != tt.wantDID {
				t.Errorf("DID = %q, want %q", c.DID, tt.wantDID)
			}
		})
	}
}

func TestPasswords(t *testing.T) {
	ctx := context.Background()
	h, err := hashPassword(ctx, "hunter22")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=9216,t=4,p=1$") {
		t.Errorf("hash %q is not argon2id PHC", h)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"hunter22", true}, {"hunter23", false}, {"", false}} {
		if got, err := checkPassword(ctx, tc.pw, h); err != nil || got != tc.want {
			t.Errorf("checkPassword(%q) = %v, %v; want %v", tc.pw, got, err, tc.want)
		}
	}
	if _, err := checkPassword(ctx, "x", "$2b$10$bcrypt"); err == nil {
		t.Error("foreign hash accepted")
	}
	appHash := func(did string) string {
		h, err := hashAppPassword(ctx, did, "p")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if appHash("did:plc:a") != appHash("did:plc:a") {
		t.Error("app password hash is not deterministic per account")
	}
	if appHash("did:plc:a") == appHash("did:plc:b") {
		t.Error("app password hash does not depend on the account")
	}
}
