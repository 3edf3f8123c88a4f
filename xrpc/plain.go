package xrpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/store"
)

// banner answers GET / with a short plain-text greeting, as the official
// PDS does, so a person who opens the URL learns what it is.
func (s *Server) banner(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Hearth %s\n\nAn AT Protocol Personal Data Server: it hosts accounts, their signed\nrepositories and blobs. Apps talk to it under /xrpc/.\n\nProtocol: https://atproto.com\n", s.version)
}

func (s *Server) robots(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, "# Hello!\n\n# Crawling the public API is allowed\nUser-agent: *\nAllow: /\n")
}

// health reports the version, or 503 when the store does not answer.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Error("health check: store unreachable", "err", err)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		writeJSON(w, map[string]string{"version": s.version, "error": "Service Unavailable"})
		return
	}
	writeJSON(w, map[string]string{"version": s.version})
}

// wellKnownDID answers the DID of the hosted handle named by the Host
// header: how handles under the service domain verify over HTTPS.
func (s *Server) wellKnownDID(w http.ResponseWriter, r *http.Request) {
	host := hostOnly(r.Host)
	a, err := s.accounts.Store.AccountByHandle(r.Context(), syntax.Handle(host))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("well-known did", "host", host, "err", err)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "User not found")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, a.DID)
}

// tlsCheck tells an on-demand TLS front (Caddy's "ask") whether to get a
// certificate for domain: yes for the PDS hostname and hosted handles.
func (s *Server) tlsCheck(w http.ResponseWriter, r *http.Request) {
	domain := strings.ToLower(strings.TrimSuffix(r.URL.Query().Get("domain"), "."))
	if domain == "" {
		writeError(w, invalidRequest("bad or missing domain query param"))
		return
	}
	if domain == s.describe.Hostname {
		writeJSON(w, map[string]bool{"success": true})
		return
	}
	hosted := false
	for _, d := range s.handleDomains {
		if strings.HasSuffix(domain, d) {
			hosted = true
			break
		}
	}
	if !hosted {
		writeError(w, invalidRequest("handles are not provided on this domain"))
		return
	}
	if _, err := s.accounts.Store.AccountByHandle(r.Context(), syntax.Handle(domain)); err != nil {
		writeError(w, &Error{http.StatusNotFound, "NotFound", "handle not found for this domain"})
		return
	}
	writeJSON(w, map[string]bool{"success": true})
}
