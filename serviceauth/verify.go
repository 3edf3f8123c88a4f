package serviceauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/identity/diddoc"
)

// Documents resolves issuers' DID documents (diddoc.Resolver does).
// Refresh bypasses any cache.
type Documents interface {
	Resolve(ctx context.Context, did string) (*diddoc.Document, error)
	Refresh(ctx context.Context, did string) (*diddoc.Document, error)
}

var _ Documents = (*diddoc.Resolver)(nil)

// Verifier checks inbound service-auth tokens addressed to this service.
type Verifier struct {
	// Audience is this service's DID; empty skips the audience check.
	Audience string
	Docs     Documents
	now      func() time.Time
}

// NewVerifier builds a Verifier for tokens addressed to audience.
func NewVerifier(audience string, docs Documents) *Verifier {
	return &Verifier{Audience: audience, Docs: docs, now: time.Now}
}

func authError(name, msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Name: name, Message: msg}
}

// Verify checks token for method lxm ("" skips the method check) and
// returns its claims. Refusals are *Error with the official names:
// BadJwt, BadJwtType, JwtExpired, BadJwtAudience, BadJwtLexiconMethod,
// BadJwtIss, BadJwtSignature (all 401); a failure to resolve the issuer is
// returned as is.
func (v *Verifier) Verify(ctx context.Context, token, lxm string) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, authError("BadJwt", "poorly formatted jwt")
	}
	var h struct {
		Typ any `json:"typ"`
		Alg any `json:"alg"`
	}
	if decodePart(parts[0], &h) != nil {
		return nil, authError("BadJwt", "poorly formatted jwt")
	}
	algName, ok := h.Alg.(string)
	if !ok {
		return nil, authError("BadJwt", "poorly formatted jwt")
	}
	switch h.Typ {
	case "at+jwt", "refresh+jwt", "dpop+jwt":
		return nil, authError("BadJwtType", fmt.Sprintf("Invalid jwt type %q", h.Typ))
	}
	var raw map[string]any
	if decodePart(parts[1], &raw) != nil || raw == nil {
		return nil, authError("BadJwt", "poorly formatted jwt")
	}
	c, ok := claimsOf(raw)
	if !ok {
		return nil, authError("BadJwt", "poorly formatted jwt")
	}
	now := v.clock()
	if float64(now.UnixMilli())/1000 > c.exp {
		return nil, authError("JwtExpired", "jwt expired")
	}
	if v.Audience != "" && c.Audience != v.Audience {
		return nil, authError("BadJwtAudience", "jwt audience does not match service did")
	}
	if lxm != "" && c.Method != lxm {
		if c.Method != "" {
			return nil, authError("BadJwtLexiconMethod", `bad jwt lexicon method ("lxm"). must match: `+lxm)
		}
		return nil, authError("BadJwtLexiconMethod", `missing jwt lexicon method ("lxm"). must match: `+lxm)
	}
	did, ok := issuerDID(c.Issuer)
	if !ok {
		return nil, authError("BadJwtIss", "jwt iss is not a valid did")
	}
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
	if err != nil {
		return nil, authError("BadJwtSignature", "could not verify jwt signature")
	}
	msg := []byte(parts[0] + "." + parts[1])

	doc, err := v.Docs.Resolve(ctx, did)
	if err != nil {
		return nil, fmt.Errorf("resolve issuer %s: %w", did, err)
	}
	key, err := doc.SigningKey()
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", did, err)
	}
	valid, err := verifySig(key, algName, msg, sig)
	if err != nil {
		return nil, authError("BadJwtSignature", "could not verify jwt signature")
	}
	if !valid {
		// The key may have rotated since the document was cached.
		fresh, err := v.Docs.Refresh(ctx, did)
		if err != nil {
			return nil, fmt.Errorf("resolve issuer %s: %w", did, err)
		}
		freshKey, err := fresh.SigningKey()
		if err != nil {
			return nil, fmt.Errorf("issuer %s: %w", did, err)
		}
		if !freshKey.Equal(key) {
			valid, err = verifySig(freshKey, algName, msg, sig)
			if err != nil {
				return nil, authError("BadJwtSignature", "could not verify jwt signature")
			}
		}
	}
	if !valid {
		return nil, authError("BadJwtSignature", "jwt signature does not match jwt issuer")
	}
	return &c.Claims, nil
}

func (v *Verifier) clock() time.Time {
	if v.now != nil {
		return v.now()
	}
	return time.Now()
}

// errAlg: the token's alg does not fit the issuer's key.
var errAlg = errors.New("jwt alg does not match the key type")

// verifySig checks a compact ECDSA signature, accepting high-S forms as
// the official verifier does (allowMalleableSig).
func verifySig(key atcrypto.PublicKey, alg string, msg, sig []byte) (bool, error) {
	switch key.(type) {
	case *atcrypto.PublicKeyK256:
		if alg != "ES256K" {
			return false, errAlg
		}
	case *atcrypto.PublicKeyP256:
		if alg != "ES256" {
			return false, errAlg
		}
	default:
		return false, errAlg
	}
	return key.HashAndVerifyLenient(msg, sig) == nil, nil
}

func decodePart(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

type parsedClaims struct {
	Claims
	exp float64
}

// claimsOf applies the official payload shape check: iss and aud strings,
// exp a number, lxm and nonce strings when present.
func claimsOf(raw map[string]any) (parsedClaims, bool) {
	var c parsedClaims
	iss, ok1 := raw["iss"].(string)
	aud, ok2 := raw["aud"].(string)
	exp, ok3 := raw["exp"].(float64)
	if !ok1 || !ok2 || !ok3 {
		return c, false
	}
	for _, k := range []string{"lxm", "nonce"} {
		if v, present := raw[k]; present && v != nil && v != "" && v != false && v != 0.0 {
			if _, ok := v.(string); !ok {
				return c, false
			}
		}
	}
	c.exp = exp
	c.Issuer, c.Audience, c.ExpiresAt = iss, aud, int64(exp)
	c.Method, _ = raw["lxm"].(string)
	c.ID, _ = raw["jti"].(string)
	if iat, ok := raw["iat"].(float64); ok {
		c.IssuedAt = int64(iat)
	}
	return c, true
}

// issuerDID accepts "did:..." or "did:...#fragment" (a service issuing as
// itself) and returns the DID part.
func issuerDID(iss string) (string, bool) {
	did, frag, hasFrag := strings.Cut(iss, "#")
	if hasFrag && (frag == "" || strings.Contains(frag, "#")) {
		return "", false
	}
	if _, err := syntax.ParseDID(did); err != nil {
		return "", false
	}
	return did, true
}
