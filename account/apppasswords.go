package account

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/store"
)

// AppPassword is a newly created app password; Password is shown once.
type AppPassword struct {
	Name       string
	Password   string
	Privileged bool
	CreatedAt  time.Time
}

const maxAppPasswordName = 100

// CreateAppPassword makes a server-generated app password (four groups of
// four base32 characters, ~80 bits) for did. Only a full session may do
// this; the caller checks the scope.
func (s *Service) CreateAppPassword(ctx context.Context, did, name string, privileged bool) (*AppPassword, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, invalidRequest("App password name is required")
	}
	if utf8.RuneCountInString(name) > maxAppPasswordName {
		return nil, invalidRequest("App password name is too long")
	}
	password := strings.Join([]string{randomString(4), randomString(4), randomString(4), randomString(4)}, "-")
	hash, err := hashAppPassword(ctx, did, password)
	if err != nil {
		return nil, err
	}
	p := store.AppPassword{
		DID:          syntax.DID(did),
		Name:         name,
		PasswordHash: hash,
		Privileged:   privileged,
		CreatedAt:    time.Now().UTC(),
	}
	if err := s.store.CreateAppPassword(ctx, p); errors.Is(err, store.ErrDuplicate) {
		return nil, invalidRequest("A password with this name already exists")
	} else if err != nil {
		return nil, err
	}
	return &AppPassword{Name: name, Password: password, Privileged: privileged, CreatedAt: p.CreatedAt}, nil
}

// ListAppPasswords lists an account's app passwords, without secrets.
func (s *Service) ListAppPasswords(ctx context.Context, did string) ([]store.AppPassword, error) {
	return s.store.ListAppPasswords(ctx, syntax.DID(did))
}

// RevokeAppPassword deletes an app password and ends its sessions.
func (s *Service) RevokeAppPassword(ctx context.Context, did, name string) error {
	return s.store.DeleteAppPassword(ctx, syntax.DID(did), name)
}
