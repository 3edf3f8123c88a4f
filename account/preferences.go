package account

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// personalDetails is the preference holding the birth date; only full
// sessions see or set it, as with the official PDS.
const personalDetails = "app.bsky.actor.defs#personalDetailsPref"

// Preferences returns an account's app.bsky preferences; app-password
// sessions do not see the personal details.
func (s *Service) Preferences(ctx context.Context, did string, full bool) ([]json.RawMessage, error) {
	raw, err := s.store.Preferences(ctx, syntax.DID(did))
	if err != nil {
		return nil, err
	}
	var prefs []json.RawMessage
	if err := json.Unmarshal(raw, &prefs); err != nil {
		return nil, err
	}
	out := prefs[:0]
	for _, p := range prefs {
		if !full && prefType(p) == personalDetails {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// PutPreferences replaces an account's preferences. Each must be an object
// with a $type in the app.bsky namespace.
func (s *Service) PutPreferences(ctx context.Context, did string, prefs []json.RawMessage, full bool) error {
	for _, p := range prefs {
		t := prefType(p)
		if t == "" {
			return invalidRequest("Preference is missing a $type")
		}
		if !strings.HasPrefix(t, "app.bsky.") {
			return invalidRequest("Some preferences are not in the app.bsky namespace")
		}
		if t == personalDetails && !full {
			return invalidRequest("Do not have authorization to set preferences.")
		}
	}
	if !full {
		// An app-password session cannot see the personal details, so it
		// must not erase them either: keep the stored ones.
		current, err := s.Preferences(ctx, did, true)
		if err != nil {
			return err
		}
		for _, p := range current {
			if prefType(p) == personalDetails {
				prefs = append(prefs, p)
			}
		}
	}
	if prefs == nil {
		prefs = []json.RawMessage{}
	}
	b, err := json.Marshal(prefs)
	if err != nil {
		return err
	}
	return s.store.PutPreferences(ctx, syntax.DID(did), b)
}

func prefType(p json.RawMessage) string {
	var v struct {
		Type string `json:"$type"`
	}
	if json.Unmarshal(p, &v) != nil {
		return ""
	}
	return v.Type
}
