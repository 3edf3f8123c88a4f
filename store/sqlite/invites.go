package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/store"
)

// CreateInviteCodes implements store.Store.
func (s *Store) CreateInviteCodes(ctx context.Context, codes []store.InviteCode) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, c := range codes {
			_, err := s.exec(ctx, tx, `INSERT INTO invite_code (code, available, disabled, for_account, created_by, created_at)
				VALUES (?, ?, ?, ?, ?, ?)`, c.Code, c.Available, c.Disabled, c.ForAccount, c.CreatedBy, fmtTime(c.CreatedAt))
			if _, ok := uniqueViolation(err); ok {
				return store.ErrDuplicate
			}
			if err != nil {
				return fmt.Errorf("insert invite code: %w", err)
			}
		}
		return nil
	})
}

// InviteCode implements store.Store.
func (s *Store) InviteCode(ctx context.Context, code string) (*store.InviteCode, error) {
	codes, err := s.inviteCodesWhere(ctx, "code = ?", code)
	if err != nil {
		return nil, err
	}
	if len(codes) == 0 {
		return nil, store.ErrNotFound
	}
	return &codes[0], nil
}

// AccountInviteCodes implements store.Store.
func (s *Store) AccountInviteCodes(ctx context.Context, did syntax.DID) ([]store.InviteCode, error) {
	return s.inviteCodesWhere(ctx, "for_account = ?", did)
}

func (s *Store) inviteCodesWhere(ctx context.Context, where string, arg any) ([]store.InviteCode, error) {
	rows, err := s.readQuery(ctx, `SELECT c.code, c.available, c.disabled, c.for_account, c.created_by, c.created_at,
		u.used_by, u.used_at
		FROM invite_code c LEFT JOIN invite_code_use u ON u.code = c.code
		WHERE c.`+where+` ORDER BY c.created_at, c.code, u.used_at`, arg)
	if err != nil {
		return nil, fmt.Errorf("read invite codes: %w", err)
	}
	defer rows.Close()
	var out []store.InviteCode
	for rows.Next() {
		var (
			c              store.InviteCode
			created        string
			usedBy, usedAt sql.NullString
		)
		if err := rows.Scan(&c.Code, &c.Available, &c.Disabled, &c.ForAccount, &c.CreatedBy, &created, &usedBy, &usedAt); err != nil {
			return nil, fmt.Errorf("read invite codes: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].Code != c.Code {
			c.CreatedAt = parseTime(created)
			out = append(out, c)
		}
		if usedBy.Valid {
			last := &out[len(out)-1]
			last.Uses = append(last.Uses, store.InviteUse{UsedBy: syntax.DID(usedBy.String), UsedAt: parseTime(usedAt.String)})
		}
	}
	return out, rows.Err()
}

// DisableInviteCodes implements store.Store.
func (s *Store) DisableInviteCodes(ctx context.Context, codes, accounts []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, set := range []struct {
			col  string
			vals []string
		}{{"code", codes}, {"for_account", accounts}} {
			if len(set.vals) == 0 {
				continue
			}
			args := make([]any, len(set.vals))
			for i, v := range set.vals {
				args[i] = v
			}
			q := "UPDATE invite_code SET disabled = 1 WHERE " + set.col + " IN (?" + strings.Repeat(",?", len(args)-1) + ")"
			if _, err := s.exec(ctx, tx, q, args...); err != nil {
				return fmt.Errorf("disable invite codes: %w", err)
			}
		}
		return nil
	})
}
