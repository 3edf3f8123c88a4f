// Package serviceauth mints and verifies inter-service tokens: the short
// JWTs an account's PDS signs with the account's repo signing key so that
// another service (an AppView, a feed generator, a chat or moderation
// service, another PDS during migration) can check that a request comes
// from that account, for one method, for a minute.
//
// Tokens are byte-for-byte shaped like the official PDS's: header
// {"typ":"JWT","alg":"ES256K"}, claims iat, iss, aud, exp, lxm, jti in that
// order, jti 16 random bytes in hex, exp 60 s after iat unless asked.
// Verification follows the official verifier (xrpc-server verifyJwt): the
// same checks in the same order, the same error names, and one retry with
// a freshly resolved key when the signature does not match a cached one.
// Like indigo and the official PDS, it does not remember jti values: a
// token can be replayed within its minute.
package serviceauth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// DefaultLifetime is how long a token lives unless its exp is given.
const DefaultLifetime = time.Minute

// Claims are a service-auth token's payload.
type Claims struct {
	IssuedAt  int64  `json:"iat"`
	Issuer    string `json:"iss"`
	Audience  string `json:"aud"`
	ExpiresAt int64  `json:"exp"`
	// Method is the lxm claim, the NSID the token is bound to; empty for a
	// method-less token.
	Method string `json:"lxm,omitempty"`
	ID     string `json:"jti,omitempty"`
}

type header struct {
	Typ string `json:"typ,omitempty"`
	Alg string `json:"alg"`
}

// alg is the JWT algorithm of key: ES256K for secp256k1, ES256 for P-256.
func alg(key atcrypto.PrivateKey) (string, error) {
	switch key.(type) {
	case *atcrypto.PrivateKeyK256:
		return "ES256K", nil
	case *atcrypto.PrivateKeyP256:
		return "ES256", nil
	}
	return "", fmt.Errorf("service auth: unsupported key type %T", key)
}

// NewID returns a fresh jti: 16 random bytes in hex, the official form.
func NewID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Sign makes a token of c signed by key. A zero IssuedAt is now and an
// empty ID a fresh one; ExpiresAt is taken as given (the caller picks it,
// usually IssuedAt plus DefaultLifetime).
func Sign(key atcrypto.PrivateKey, c Claims) (string, error) {
	a, err := alg(key)
	if err != nil {
		return "", err
	}
	if c.IssuedAt == 0 {
		c.IssuedAt = time.Now().Unix()
	}
	if c.ID == "" {
		c.ID = NewID()
	}
	h, err := json.Marshal(header{Typ: "JWT", Alg: a})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	enc := base64.RawURLEncoding
	b.Grow(enc.EncodedLen(len(h)) + enc.EncodedLen(len(p)) + 90)
	b.WriteString(enc.EncodeToString(h))
	b.WriteByte('.')
	b.WriteString(enc.EncodeToString(p))
	sig, err := key.HashAndSign(b.Bytes())
	if err != nil {
		return "", fmt.Errorf("service auth: sign: %w", err)
	}
	b.WriteByte('.')
	b.WriteString(enc.EncodeToString(sig))
	return b.String(), nil
}
