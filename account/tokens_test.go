package account

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
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
	expiredRefresh, _, _ := past.Refresh("did:plc:a", NewRefreshID())
	const noTyp = `{"alg":"HS256"}`

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
		// The typ header is required, as the official PDS requires it.
		{"access without typ", tok.VerifyAccess, resign(t, access, noTyp, "secret"), ErrTokenInvalid, ""},
		{"refresh without typ", tok.VerifyRefresh, resign(t, refresh, noTyp, "secret"), ErrTokenInvalid, ""},
		{"expired without typ", tok.VerifyAccess, resign(t, expired, noTyp, "secret"), ErrTokenInvalid, ""},
		{"forged without typ", tok.VerifyAccess, resign(t, access, noTyp, "other"), ErrTokenInvalid, ""},
		{"typ JWT", tok.VerifyAccess, resign(t, access, `{"alg":"HS256","typ":"JWT"}`, "secret"), ErrTokenType, ""},
		{"typ as media type", tok.VerifyAccess, resign(t, access, `{"alg":"HS256","typ":"application/AT+JWT"}`, "secret"), nil, "did:plc:a"},
		{"expired refresh as access", tok.VerifyAccess, expiredRefresh, ErrTokenType, ""},
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

// resign signs token's claims again under header, with secret.
func resign(t *testing.T, token, header, secret string) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + strings.Split(token, ".")[1]
	sig, err := jwt.SigningMethodHS256.Sign(input, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
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
	if first, again := appHash("did:plc:a"), appHash("did:plc:a"); first != again {
		t.Error("app password hash is not deterministic per account")
	}
	if appHash("did:plc:a") == appHash("did:plc:b") {
		t.Error("app password hash does not depend on the account")
	}
}
