package xrpc

import (
	"errors"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/store"
)

// resolveHandle answers hosted handles from the local index, then asks
// the network (DNS TXT, then HTTPS well-known) through the guarded resolver.
func (s *Server) resolveHandle(w http.ResponseWriter, r *http.Request, _ caller) error {
	raw := r.URL.Query().Get("handle")
	if raw == "" {
		return invalidRequest(`Params must have the property "handle"`)
	}
	h, err := syntax.ParseHandle(raw)
	if err != nil {
		return invalidRequest(`Invalid handle (got "` + abbreviate(raw) + `") at $.handle`)
	}
	h = h.Normalize()
	a, err := s.accounts.Store.AccountByHandle(r.Context(), h)
	if err == nil {
		return writeJSON(w, map[string]string{"did": a.DID.String()})
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if s.isServiceHandle(h.String()) || s.handles == nil {
		return errUnresolved
	}
	did, err := s.handles.ResolveHandle(r.Context(), h)
	if err != nil {
		s.log.Debug("resolve handle failed", "handle", h, "err", err)
		return errUnresolved
	}
	return writeJSON(w, map[string]string{"did": did.String()})
}

// errUnresolved is what the official PDS answers for a handle that
// resolves nowhere.
var errUnresolved = invalidRequest("Unable to resolve handle")

// checkHandleSyntax is the lexicon's format check of a handle in a body,
// worded as the official PDS words it; the handle rules come after.
func checkHandleSyntax(raw string) error {
	if _, err := syntax.ParseHandle(raw); err != nil {
		return invalidRequest(`Invalid handle (got "` + abbreviate(raw) + `") at $.handle`)
	}
	return nil
}

func (s *Server) isServiceHandle(h string) bool {
	for _, d := range s.handleDomains {
		if strings.HasSuffix(h, d) {
			return true
		}
	}
	return false
}

func (s *Server) updateHandle(w http.ResponseWriter, r *http.Request, c caller) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	handle := in.str("handle", true)
	if in.err != nil {
		return in.err
	}
	if err := checkHandleSyntax(handle); err != nil {
		return err
	}
	return s.accounts.UpdateHandle(r.Context(), c.DID, handle)
}

func (s *Server) getRecommendedDidCredentials(w http.ResponseWriter, r *http.Request, c caller) error {
	cred, err := s.accounts.RecommendedCredentials(r.Context(), c.DID)
	if err != nil {
		return err
	}
	return writeJSON(w, cred)
}
