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
		return invalidRequest("handle must be a valid handle")
	}
	h = h.Normalize()
	a, err := s.accounts.Store.AccountByHandle(r.Context(), h.String())
	if err == nil {
		return writeJSON(w, map[string]string{"did": a.DID})
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if s.isServiceHandle(h.String()) || s.handles == nil {
		return &Error{http.StatusBadRequest, "HandleNotFound", "Unable to resolve handle"}
	}
	did, err := s.handles.ResolveHandle(r.Context(), h)
	if err != nil {
		s.log.Debug("resolve handle failed", "handle", h, "err", err)
		return &Error{http.StatusBadRequest, "HandleNotFound", "Unable to resolve handle"}
	}
	return writeJSON(w, map[string]string{"did": did.String()})
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
	var in struct {
		Handle string `json:"handle"`
	}
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	if in.Handle == "" {
		return invalidRequest(`Input must have the property "handle"`)
	}
	return s.accounts.UpdateHandle(r.Context(), c.DID, in.Handle)
}

func (s *Server) getRecommendedDidCredentials(w http.ResponseWriter, r *http.Request, c caller) error {
	cred, err := s.accounts.RecommendedCredentials(r.Context(), c.DID)
	if err != nil {
		return err
	}
	return writeJSON(w, cred)
}
