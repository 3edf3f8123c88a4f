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
