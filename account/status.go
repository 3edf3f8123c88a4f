package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/store"
)

// Deactivate stops serving an account's repository until it is activated
// again; relays learn it from an #account event.
func (s *Service) Deactivate(ctx context.Context, did string) error {
	now := time.Now().UTC()
	stored, err := s.store.SetDeactivated(ctx, syntax.DID(did), &now, []store.NewEvent{accountEvent(did, false, "deactivated")})
	if errors.Is(err, store.ErrNotFound) {
		return ErrAccountNotFound
	}
	if err != nil {
		return err
	}
	s.Events.Publish(stored...)
	s.Logger.Info("account deactivated", "did", did)
	return nil
}

// Activate serves a deactivated account again. Like the official PDS it
// announces the account, its identity and its current commit (#sync), so
// relays that dropped the repository take it up from here.
func (s *Service) Activate(ctx context.Context, did string) error {
	a, err := s.account(ctx, did)
	if err != nil {
		return err
	}
	syncEvt, err := s.currentSyncEvent(ctx, did)
	if err != nil {
		return err
	}
	events := []store.NewEvent{accountEvent(did, true, ""), identityEvent(did, a.Handle.String()), syncEvt}
	stored, err := s.store.SetDeactivated(ctx, syntax.DID(did), nil, events)
	if err != nil {
		return err
	}
	s.Events.Publish(stored...)
	s.Logger.Info("account activated", "did", did)
	return nil
}

// currentSyncEvent is a #sync event for the repository's current commit.
func (s *Service) currentSyncEvent(ctx context.Context, did string) (store.NewEvent, error) {
	root, err := s.store.RepoRoot(ctx, syntax.DID(did))
	if err != nil {
		return store.NewEvent{}, fmt.Errorf("repo root of %s: %w", did, err)
	}
	data, err := s.store.Block(ctx, syntax.DID(did), root.CID)
	if err != nil {
		return store.NewEvent{}, fmt.Errorf("commit block of %s: %w", did, err)
	}
	return syncEvent(did, root.Rev.String(), repo.Block{CID: root.CID, Data: data})
}
