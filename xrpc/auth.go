package xrpc

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/hearth-pds/hearth/account"
	"github.com/hearth-pds/hearth/serviceauth"
)

// caller is who made a request, as established by its route's auth level.
type caller struct {
	DID     string
	Scope   account.Scope
	Refresh account.Claims // set for authRefresh routes
	Admin   bool
}

// service is the caller as the proxy and service auth see it: privileged
// unless an app password without the privileged flag.
func (c caller) service() serviceauth.Caller {
	return serviceauth.Caller{DID: c.DID, Privileged: c.Scope == account.ScopeAccess || c.Scope == account.ScopeAppPassPrivileged}
}

// authenticate checks r against level.
func (s *Server) authenticate(r *http.Request, level authLevel) (caller, error) {
	switch level {
	case authNone:
		return caller{}, nil
	case authAdmin:
		if s.isAdmin(r) {
			return caller{Admin: true}, nil
		}
		return caller{}, errAdminRequired
	case authOptional:
		if s.isAdmin(r) {
			return caller{Admin: true}, nil
		}
		if token, err := bearer(r); err == nil {
			if c, err := s.tokens.VerifyAccess(token); err == nil {
				return caller{DID: c.DID, Scope: c.Scope}, nil
			}
		}
		return caller{}, nil
	}
	token, err := bearer(r)
	if err != nil {
		return caller{}, err
	}
	if level == authRefresh {
		c, err := s.tokens.VerifyRefresh(token)
		if err != nil {
			return caller{}, err
		}
		return caller{DID: c.DID, Scope: c.Scope, Refresh: c}, nil
	}
	c, err := s.tokens.VerifyAccess(token)
	if err != nil {
		return caller{}, err
	}
	if level == authAccessFull && c.Scope != account.ScopeAccess {
		return caller{}, account.ErrTokenScope
	}
	return caller{DID: c.DID, Scope: c.Scope}, nil
}

// bearer extracts a bearer token, refusing other schemes with the official
// PDS's wording.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", errAuthMissing
	}
	scheme, token, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		return "", invalidToken("Unexpected authorization type")
	case !strings.EqualFold(scheme, "Bearer"):
		return "", invalidToken("Unsupported authorization type: " + scheme)
	case token == "" || strings.Contains(token, " "):
		return "", invalidToken("Malformed authorization header")
	}
	return token, nil
}

// isAdmin checks HTTP Basic admin:PDS_ADMIN_PASSWORD in constant time
// (hashing first so the comparison does not leak the length).
func (s *Server) isAdmin(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || user != "admin" || s.adminPassword == "" {
		return false
	}
	got := sha256.Sum256([]byte(pass))
	want := sha256.Sum256([]byte(s.adminPassword))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}
