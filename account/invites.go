package account

import (
	"context"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/store"
)

// InviteCodes are the codes made for one account.
type InviteCodes struct {
	Account string
	Codes   []string
}

// maxInviteUses and maxInviteCodes bound one admin request.
const (
	maxInviteUses  = 10000
	maxInviteCodes = 1000
)

// CreateInviteCodes makes count codes of uses each for every account in
// forAccounts ("admin" when empty, as the official PDS does).
func (s *Service) CreateInviteCodes(ctx context.Context, count, uses int, forAccounts []string) ([]InviteCodes, error) {
	if uses < 1 || uses > maxInviteUses {
		return nil, invalidRequest("useCount must be between 1 and %d", maxInviteUses)
	}
	if count < 1 || count > maxInviteCodes {
		return nil, invalidRequest("codeCount must be between 1 and %d", maxInviteCodes)
	}
	if len(forAccounts) == 0 {
		forAccounts = []string{"admin"}
	}
	now := time.Now().UTC()
	var (
		rows []store.InviteCode
		out  []InviteCodes
	)
	for _, acct := range forAccounts {
		group := InviteCodes{Account: acct}
		for range count {
			code := s.newInviteCode()
			group.Codes = append(group.Codes, code)
			rows = append(rows, store.InviteCode{Code: code, Available: uses, ForAccount: acct, CreatedBy: "admin", CreatedAt: now})
		}
		out = append(out, group)
	}
	if err := s.store.CreateInviteCodes(ctx, rows); err != nil {
		return nil, err
	}
	return out, nil
}

// newInviteCode follows the official shape: the hostname with dots as
// dashes, then two groups of five random base32 characters.
func (s *Service) newInviteCode() string {
	return strings.ReplaceAll(s.Hostname, ".", "-") + "-" + randomString(5) + "-" + randomString(5)
}

// AccountInviteCodes lists the codes made for did; includeUsed=false drops
// codes with no use left.
func (s *Service) AccountInviteCodes(ctx context.Context, did string, includeUsed bool) ([]store.InviteCode, error) {
	codes, err := s.store.AccountInviteCodes(ctx, syntax.DID(did))
	if err != nil {
		return nil, err
	}
	if includeUsed {
		return codes, nil
	}
	kept := codes[:0]
	for _, c := range codes {
		if len(c.Uses) < c.Available {
			kept = append(kept, c)
		}
	}
	return kept, nil
}

// DisableInviteCodes disables codes, and every code of the given accounts.
func (s *Service) DisableInviteCodes(ctx context.Context, codes, accounts []string) error {
	for _, a := range accounts {
		if a == "admin" {
			return invalidRequest("cannot disable admin invite codes")
		}
	}
	return s.store.DisableInviteCodes(ctx, codes, accounts)
}
