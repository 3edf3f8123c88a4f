//lint:file-ignore ST1005 the token errors' text is the official PDS's wire message, which xrpc sends as is

package account

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"

	"github.com/hearth-pds/hearth/refusal"
)

// Scope names carried by session JWTs, as the official PDS issues them.
type Scope string

const (
	ScopeAccess            Scope = "com.atproto.access"
	ScopeAppPass           Scope = "com.atproto.appPass"
	ScopeAppPassPrivileged Scope = "com.atproto.appPassPrivileged"
	ScopeRefresh           Scope = "com.atproto.refresh"
)

// Lifetimes of the official PDS.
const (
	AccessLifetime  = 2 * time.Hour
	RefreshLifetime = 90 * 24 * time.Hour
)

const (
	accessTyp      = "at+jwt"
	refreshTyp     = "refresh+jwt"
	leeway         = 5 * time.Second
	refreshIDBytes = 32
	maxTokenLength = 4096
)

// Token refusals, named and worded as the official PDS sends them.
var (
	ErrTokenExpired   = refusal.New("ExpiredToken", "Token has expired")
	ErrTokenInvalid   = refusal.New("InvalidToken", "Token could not be verified")
	ErrTokenType      = refusal.New("InvalidToken", "Invalid token type")
	ErrTokenScope     = refusal.New("InvalidToken", "Bad token scope")
	ErrTokenMalformed = refusal.New("InvalidToken", "Malformed token")
	ErrTokenNoID      = refusal.New("MissingTokenId", "Unexpected missing refresh token id")
)

// Claims are the verified contents of a session token.
type Claims struct {
	DID   string
	Scope Scope
	// ID is the jti of a refresh token (empty for access tokens).
	ID        string
	ExpiresAt time.Time
}

// Tokens signs and verifies session JWTs with PDS_JWT_SECRET (HS256), the
// scheme of the official PDS, so sessions survive a switch between the two.
type Tokens struct {
	Secret     []byte
	ServiceDID string
	now        func() time.Time
}

type sessionClaims struct {
	Scope Scope `json:"scope"`
	jwt.RegisteredClaims
}

func (t *Tokens) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// Access issues an access token for did with scope.
func (t *Tokens) Access(did string, scope Scope) (string, error) {
	now := t.clock()
	return t.sign(accessTyp, jwt.MapClaims{
		"scope": scope,
		"sub":   did,
		"aud":   t.ServiceDID,
		"iat":   now.Unix(),
		"exp":   now.Add(AccessLifetime).Unix(),
	})
}

// NewRefreshID returns a fresh refresh-token id: 32 random bytes in
// unpadded standard base64, the official PDS's form.
func NewRefreshID() string {
	id := make([]byte, refreshIDBytes)
	rand.Read(id)
	return base64.RawStdEncoding.EncodeToString(id)
}

// Refresh issues a refresh token for did with the given jti.
func (t *Tokens) Refresh(did, id string) (token string, claims Claims, err error) {
	now := t.clock()
	claims = Claims{DID: did, Scope: ScopeRefresh, ID: id, ExpiresAt: now.Add(RefreshLifetime).Truncate(time.Second)}
	token, err = t.sign(refreshTyp, jwt.MapClaims{
		"scope": ScopeRefresh,
		"sub":   did,
		"aud":   t.ServiceDID,
		"jti":   claims.ID,
		"iat":   now.Unix(),
		"exp":   claims.ExpiresAt.Unix(),
	})
	return token, claims, err
}

// sign makes an HS256 JWT. The claims are a map so "aud" is a plain
// string, as the official PDS writes it.
func (t *Tokens) sign(typ string, c jwt.MapClaims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["typ"] = typ
	s, err := tok.SignedString(t.Secret)
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", typ, err)
	}
	return s, nil
}

// VerifyAccess checks an access token: signature, expiry, audience, type
// and one of the access scopes.
func (t *Tokens) VerifyAccess(token string) (Claims, error) {
	c, err := t.verify(token, accessTyp)
	if err != nil {
		return Claims{}, err
	}
	switch c.Scope {
	case ScopeAccess, ScopeAppPass, ScopeAppPassPrivileged:
		return c, nil
	}
	return Claims{}, ErrTokenScope
}

// VerifyRefresh checks a refresh token: signature, expiry, audience, type,
// the refresh scope and a jti.
func (t *Tokens) VerifyRefresh(token string) (Claims, error) {
	c, err := t.verify(token, refreshTyp)
	if err != nil {
		return Claims{}, err
	}
	if c.Scope != ScopeRefresh {
		return Claims{}, ErrTokenScope
	}
	if c.ID == "" {
		return Claims{}, ErrTokenNoID
	}
	return c, nil
}

// verify checks a session token in the official PDS's order: signature,
// then the typ header, then the claims. So a token without typ, or of the
// other kind, is refused even when it has also expired. A missing typ is
// refused as the official refuses it since 0.4.221 (InvalidToken, "Token
// could not be verified"); the other kind keeps the "Invalid token type"
// wording of the official 0.4 line.
func (t *Tokens) verify(token, typ string) (Claims, error) {
	if len(token) > maxTokenLength {
		return Claims{}, ErrTokenInvalid
	}
	var sc sessionClaims
	parsed, err := jwt.ParseWithClaims(token, &sc, func(*jwt.Token) (any, error) { return t.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithoutClaimsValidation(),
	)
	if err != nil {
		return Claims{}, ErrTokenInvalid
	}
	h, ok := parsed.Header["typ"].(string)
	if !ok {
		return Claims{}, ErrTokenInvalid
	}
	if normalTyp(h) != normalTyp(typ) {
		return Claims{}, ErrTokenType
	}
	err = jwt.NewValidator(
		jwt.WithAudience(t.ServiceDID),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(t.clock),
	).Validate(&sc)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, ErrTokenExpired
	case err != nil:
		return Claims{}, ErrTokenInvalid
	}
	if _, err := syntax.ParseDID(sc.Subject); err != nil {
		return Claims{}, ErrTokenMalformed
	}
	return Claims{DID: sc.Subject, Scope: sc.Scope, ID: sc.ID, ExpiresAt: sc.ExpiresAt.Time}, nil
}

// normalTyp compares typ values as media types, the way the official's JWT
// library does: case-insensitive, "at+jwt" the same as "application/at+jwt".
func normalTyp(typ string) string {
	typ = strings.ToLower(typ)
	if !strings.Contains(typ, "/") {
		typ = "application/" + typ
	}
	return typ
}
