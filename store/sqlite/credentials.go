package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/store"
)

// CreateAppPassword implements store.Store.
func (s *Store) CreateAppPassword(ctx context.Context, p store.AppPassword) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO app_password (did, name, password_hash, privileged, created_at)
		VALUES (?, ?, ?, ?, ?)`, p.DID, p.Name, p.PasswordHash, p.Privileged, fmtTime(p.CreatedAt))
	if _, ok := uniqueViolation(err); ok {
		return store.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("insert app password: %w", err)
	}
	return nil
}

// AppPasswordByHash implements store.Store.
func (s *Store) AppPasswordByHash(ctx context.Context, did syntax.DID, hash string) (*store.AppPassword, error) {
	p := store.AppPassword{DID: did, PasswordHash: hash}
	var created string
	err := s.readRow(ctx, `SELECT name, privileged, created_at FROM app_password
		WHERE did = ? AND password_hash = ?`, did, hash).Scan(&p.Name, &p.Privileged, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read app password: %w", err)
	}
	p.CreatedAt = parseTime(created)
	return &p, nil
}

// ListAppPasswords implements store.Store: newest first, as the official PDS lists them.
func (s *Store) ListAppPasswords(ctx context.Context, did syntax.DID) ([]store.AppPassword, error) {
	rows, err := s.readQuery(ctx, `SELECT name, privileged, created_at FROM app_password
		WHERE did = ? ORDER BY created_at DESC, name`, did)
	if err != nil {
		return nil, fmt.Errorf("list app passwords: %w", err)
	}
	defer rows.Close()
	var out []store.AppPassword
	for rows.Next() {
		p := store.AppPassword{DID: did}
		var created string
		if err := rows.Scan(&p.Name, &p.Privileged, &created); err != nil {
			return nil, fmt.Errorf("list app passwords: %w", err)
		}
		p.CreatedAt = parseTime(created)
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeleteAppPassword implements store.Store.
func (s *Store) DeleteAppPassword(ctx context.Context, did syntax.DID, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, "DELETE FROM app_password WHERE did = ? AND name = ?", did, name); err != nil {
			return fmt.Errorf("delete app password: %w", err)
		}
		if _, err := s.exec(ctx, tx, "DELETE FROM refresh_token WHERE did = ? AND app_password_name = ?", did, name); err != nil {
			return fmt.Errorf("revoke app password sessions: %w", err)
		}
		return nil
	})
}

// PutRefreshToken implements store.Store.
func (s *Store) PutRefreshToken(ctx context.Context, t store.RefreshToken) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.putRefreshToken(ctx, tx, t) })
}

func (s *Store) putRefreshToken(ctx context.Context, tx *sql.Tx, t store.RefreshToken) error {
	_, err := s.exec(ctx, tx, `INSERT INTO refresh_token (id, did, app_password_name, expires_at)
		VALUES (?, ?, ?, ?)`, t.ID, t.DID, nullString(t.AppPasswordName), fmtTime(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// RefreshToken implements store.Store.
func (s *Store) RefreshToken(ctx context.Context, id string) (*store.RefreshToken, error) {
	t := store.RefreshToken{ID: id}
	var expires string
	err := s.readRow(ctx, `SELECT did, coalesce(app_password_name, ''), expires_at
		FROM refresh_token WHERE id = ? AND expires_at > ?`, id, fmtTime(time.Now())).Scan(&t.DID, &t.AppPasswordName, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read refresh token: %w", err)
	}
	t.ExpiresAt = parseTime(expires)
	return &t, nil
}

// RotateRefreshToken implements store.Store. Expired tokens of the same
// account are swept on the way, which keeps the table from growing.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, next store.RefreshToken, graceUntil time.Time) (string, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := fmtTime(time.Now())
		var (
			expires string
			nextID  sql.NullString
		)
		err := s.queryRow(ctx, tx, "SELECT expires_at, next_id FROM refresh_token WHERE id = ? AND expires_at > ?", oldID, now).Scan(&expires, &nextID)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read refresh token: %w", err)
		}
		if nextID.Valid {
			next.ID = nextID.String
		}
		cut := expires
		if g := fmtTime(graceUntil); g < cut {
			cut = g
		}
		if _, err := s.exec(ctx, tx, "UPDATE refresh_token SET expires_at = ?, next_id = ? WHERE id = ?", cut, next.ID, oldID); err != nil {
			return fmt.Errorf("rotate refresh token: %w", err)
		}
		if _, err := s.exec(ctx, tx, "DELETE FROM refresh_token WHERE did = ? AND expires_at <= ?", next.DID, now); err != nil {
			return fmt.Errorf("sweep refresh tokens: %w", err)
		}
		_, err = s.exec(ctx, tx, `INSERT INTO refresh_token (id, did, app_password_name, expires_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`,
			next.ID, next.DID, nullString(next.AppPasswordName), fmtTime(next.ExpiresAt))
		if err != nil {
			return fmt.Errorf("insert refresh token: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return next.ID, nil
}

// RevokeRefreshToken implements store.Store.
func (s *Store) RevokeRefreshToken(ctx context.Context, id string) error {
	if _, err := s.write.ExecContext(ctx, "DELETE FROM refresh_token WHERE id = ?", id); err != nil {
		return fmt.Errorf("revoke refresh token: %w", err)
	}
	return nil
}
