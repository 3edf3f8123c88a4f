package xrpc

import (
	"encoding/json"
	"net/http"

	"github.com/hearth-pds/hearth/account"
)

func (s *Server) getPreferences(w http.ResponseWriter, r *http.Request, c caller) error {
	prefs, err := s.accounts.Preferences(r.Context(), c.DID, c.Scope != account.ScopeAppPass)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"preferences": prefs})
}

func (s *Server) putPreferences(w http.ResponseWriter, r *http.Request, c caller) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	if !in.has("preferences") {
		return missing("preferences")
	}
	var prefs []json.RawMessage
	if err := json.Unmarshal(in.m["preferences"], &prefs); err != nil {
		return wrongType("preferences", "array", in.m["preferences"])
	}
	return s.accounts.PutPreferences(r.Context(), c.DID, prefs, c.Scope != account.ScopeAppPass)
}

// readAfterWrite serves an AppView view with the caller's records the
// AppView has not indexed yet patched in (app.bsky.actor.getProfile,
// getProfiles, app.bsky.feed.getTimeline, getAuthorFeed, getActorLikes,
// getPostThread).
func (s *Server) readAfterWrite(w http.ResponseWriter, r *http.Request, c caller) error {
	return s.views.ServeView(w, r, r.PathValue("nsid"), c.DID)
}

// getFeed, createReport and push are served by the proxy with the caller
// known: app.bsky.feed.getFeed (through the feed generator),
// com.atproto.moderation.createReport and the push registrations.
func (s *Server) getFeed(w http.ResponseWriter, r *http.Request, c caller) error {
	return s.proxy.GetFeed(w, r, c.service())
}

func (s *Server) createReport(w http.ResponseWriter, r *http.Request, c caller) error {
	return s.proxy.CreateReport(w, r, c.service())
}

func (s *Server) push(w http.ResponseWriter, r *http.Request, c caller) error {
	return s.proxy.Push(w, r, r.PathValue("nsid"), c.service())
}

// subscribeRepos hands the request to the firehose, which upgrades it to
// a WebSocket or answers its own errors.
func (s *Server) subscribeRepos(w http.ResponseWriter, r *http.Request, _ caller) error {
	s.firehose.ServeHTTP(w, r)
	return nil
}
