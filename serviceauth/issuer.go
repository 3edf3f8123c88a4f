package serviceauth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Keys gives an account's repo signing key (store.Store does).
type Keys interface {
	SigningKey(ctx context.Context, did syntax.DID) ([]byte, error)
}

// Issuer mints tokens on behalf of the accounts hosted here, signed with
// each account's repo signing key. It is safe for concurrent use.
type Issuer struct {
	keys Keys
	now  func() time.Time
	// parsed caches parsed keys: a key does not change while its account
	// lives here, and parsing costs more than signing.
	parsed sync.Map // did -> atcrypto.PrivateKey
}

// NewIssuer builds an Issuer reading keys from keys.
func NewIssuer(keys Keys) *Issuer {
	return &Issuer{keys: keys, now: time.Now}
}

// Token mints a token from iss to aud for method lxm ("" for none), valid
// for DefaultLifetime.
func (i *Issuer) Token(ctx context.Context, iss, aud, lxm string) (string, error) {
	now := i.now().Unix()
	return i.sign(ctx, Claims{IssuedAt: now, Issuer: iss, Audience: aud, ExpiresAt: now + int64(DefaultLifetime/time.Second), Method: lxm})
}

func (i *Issuer) sign(ctx context.Context, c Claims) (string, error) {
	key, err := i.key(ctx, c.Issuer)
	if err != nil {
		return "", err
	}
	return Sign(key, c)
}

// Forget drops a cached key (an account deleted or its key rotated).
func (i *Issuer) Forget(did string) { i.parsed.Delete(did) }

func (i *Issuer) key(ctx context.Context, did string) (atcrypto.PrivateKey, error) {
	if k, ok := i.parsed.Load(did); ok {
		return k.(atcrypto.PrivateKey), nil
	}
	raw, err := i.keys.SigningKey(ctx, syntax.DID(did))
	if err != nil {
		return nil, fmt.Errorf("signing key of %s: %w", did, err)
	}
	k, err := atcrypto.ParsePrivateBytesK256(raw)
	if err != nil {
		return nil, fmt.Errorf("parse signing key of %s: %w", did, err)
	}
	i.parsed.Store(did, k)
	return k, nil
}

// Error is a refusal with its XRPC name, message and HTTP status.
type Error struct {
	Status  int
	Name    string
	Message string
}

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// XRPCError gives the name and message to the HTTP layer.
func (e *Error) XRPCError() (name, message string) { return e.Name, e.Message }

// HTTPStatus is the status to answer with.
func (e *Error) HTTPStatus() int { return e.Status }

func invalidRequest(name, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Name: name, Message: msg}
}

// Caller is who asks for a token, as their session establishes.
type Caller struct {
	DID string
	// Privileged: a full session or a privileged app password.
	Privileged bool
	// Takendown: a session of a taken-down account, which may only ask
	// for what migration needs.
	Takendown bool
}

// Request is a com.atproto.server.getServiceAuth call, its parameters
// already parsed: aud a DID, lxm an NSID or empty, exp (Unix seconds)
// when HasExpiry.
type Request struct {
	Audience  string
	Method    string
	Expiry    int64
	HasExpiry bool
}

// GetServiceAuth answers com.atproto.server.getServiceAuth: the official
// checks in its order (scope, privileged methods, expiry bounds, protected
// methods), then a token bound to the requested audience and method.
func (i *Issuer) GetServiceAuth(ctx context.Context, c Caller, req Request) (string, error) {
	if c.Takendown && req.Method != "com.atproto.server.createAccount" {
		return "", invalidRequest("InvalidToken", "Bad token scope")
	}
	if req.Method != "" && Privileged(req.Method) && !c.Privileged {
		return "", invalidRequest("InvalidRequest", "insufficient access to request a service auth token for the following method: "+req.Method)
	}
	now := i.now()
	exp := now.Unix() + int64(DefaultLifetime/time.Second)
	if req.HasExpiry {
		// The official PDS checks only a non-zero exp, and signs whatever
		// was asked, 0 included.
		exp = req.Expiry
	}
	if req.Expiry != 0 {
		diff := time.Unix(req.Expiry, 0).Sub(now)
		switch {
		case diff < 0:
			return "", invalidRequest("BadExpiration", "expiration is in past")
		case diff > time.Hour:
			return "", invalidRequest("BadExpiration", "cannot request a token with an expiration more than an hour in the future")
		case req.Method == "" && diff > time.Minute:
			return "", invalidRequest("BadExpiration", "cannot request a method-less token with an expiration more than a minute in the future")
		}
	}
	if req.Method != "" && Protected(req.Method) {
		return "", invalidRequest("InvalidRequest", "cannot request a service auth token for the following protected method: "+req.Method)
	}
	return i.sign(ctx, Claims{IssuedAt: now.Unix(), Issuer: c.DID, Audience: req.Audience, ExpiresAt: exp, Method: req.Method})
}

// ParseRequest reads getServiceAuth's query parameters as its lexicon
// says: aud a DID (required), exp an integer, lxm an NSID, each at most
// once. The official PDS answers every problem here with a 500 (its
// parameter check throws); this says what is wrong, with a 400.
func ParseRequest(q url.Values) (Request, error) {
	var req Request
	aud, err := param(q, "aud", true)
	if err != nil {
		return req, err
	}
	if _, err := syntax.ParseDID(aud); err != nil {
		return req, invalidRequest("InvalidRequest", `Invalid DID (got "`+aud+`") at $.aud`)
	}
	req.Audience = aud
	exp, err := param(q, "exp", false)
	if err != nil {
		return req, err
	}
	if exp != "" {
		n, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			return req, invalidRequest("InvalidRequest", `Expected integer value type (got "`+exp+`") at $.exp`)
		}
		req.Expiry, req.HasExpiry = n, true
	}
	lxm, err := param(q, "lxm", false)
	if err != nil {
		return req, err
	}
	if lxm != "" {
		if _, err := syntax.ParseNSID(lxm); err != nil {
			return req, invalidRequest("InvalidRequest", `Invalid NSID (got "`+lxm+`") at $.lxm`)
		}
		req.Method = lxm
	}
	return req, nil
}

func param(q url.Values, name string, required bool) (string, error) {
	v := q[name]
	switch {
	case len(v) > 1:
		return "", invalidRequest("InvalidRequest", "Expected a single value at $."+name)
	case len(v) == 0 || v[0] == "":
		if required {
			return "", invalidRequest("InvalidRequest", `Params must have the property "`+name+`"`)
		}
		return "", nil
	}
	return v[0], nil
}
