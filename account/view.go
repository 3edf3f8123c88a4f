package account

import (
	"github.com/bluesky-social/indigo/atproto/syntax"

	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hearth-pds/hearth/store"
)

// Account is a hosted account as the HTTP layer sees it: everything a
// response may carry, without the password hash, which never leaves this
// package.
type Account struct {
	DID string
	// Handle is empty when the account has none.
	Handle         string
	Email          string
	EmailConfirmed bool
	// Status is "" when the account is active, else "deactivated" or
	// "takendown".
	Status string
}

// Active reports whether the account may act.
func (a *Account) Active() bool { return a.Status == "" }

func view(a *store.Account) *Account {
	return &Account{DID: a.DID.String(), Handle: a.Handle.String(), Email: a.Email, EmailConfirmed: a.EmailConfirmedAt != nil, Status: a.Status()}
}

// HandleDID returns the DID of the account hosted under handle (already
// normalized); ErrAccountNotFound when no account here has it.
func (s *Service) HandleDID(ctx context.Context, handle string) (string, error) {
	a, err := s.store.AccountByHandle(ctx, syntax.Handle(handle))
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrAccountNotFound
	}
	if err != nil {
		return "", fmt.Errorf("account of handle %s: %w", handle, err)
	}
	return a.DID.String(), nil
}

// DIDDocument returns the DID document of an account from the directory.
func (s *Service) DIDDocument(ctx context.Context, did string) (json.RawMessage, error) {
	return s.Identities.Document(ctx, did)
}
