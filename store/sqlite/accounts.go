package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/store"
)

// CreateAccount writes the account, its key, its invite use and its first
// commit in one transaction.
func (s *Store) CreateAccount(ctx context.Context, a store.NewAccount) ([]store.Event, error) {
	var events []store.Event
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO account
			(did, handle, email, password_hash, email_confirmed_at, invites_disabled, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			a.DID, nullString(a.Handle), a.Email, a.PasswordHash, fmtTimePtr(a.EmailConfirmedAt),
			a.InvitesDisabled, fmtTime(a.CreatedAt))
		if cols, ok := uniqueViolation(err); ok {
			switch {
			case strings.Contains(cols, "handle"):
				return store.ErrHandleTaken
			case strings.Contains(cols, "email"):
				return store.ErrEmailTaken
			default:
				return store.ErrDIDTaken
			}
		}
		if err != nil {
			return fmt.Errorf("insert account: %w", err)
		}
		if a.InviteCode != "" {
			if err := s.useInvite(ctx, tx, a.InviteCode, a.DID, a.CreatedAt); err != nil {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, "INSERT INTO signing_key (did, private_key) VALUES (?, ?)", a.DID, a.SigningKey); err != nil {
			return fmt.Errorf("insert signing key: %w", err)
		}
		for _, b := range a.Blocks {
			if _, err := s.exec(ctx, tx, "INSERT OR IGNORE INTO repo_block (did, cid, rev, content) VALUES (?, ?, ?, ?)",
				a.DID, b.CID.String(), a.Rev, b.Content); err != nil {
				return fmt.Errorf("insert repo block: %w", err)
			}
		}
		if _, err := s.exec(ctx, tx, "INSERT INTO repo_root (did, cid, rev) VALUES (?, ?, ?)", a.DID, a.RootCID.String(), a.Rev); err != nil {
			return fmt.Errorf("insert repo root: %w", err)
		}
		events, err = s.appendEvents(ctx, tx, a.Events)
		return err
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// useInvite consumes one use of code: the availability check and the use
// row are in the caller's write transaction, so two sign-ups racing for the
// last use cannot both win.
func (s *Store) useInvite(ctx context.Context, tx *sql.Tx, code string, did syntax.DID, at time.Time) error {
	var available, disabled, used int
	err := s.queryRow(ctx, tx, `SELECT available, disabled,
		(SELECT count(*) FROM invite_code_use u WHERE u.code = c.code)
		FROM invite_code c WHERE code = ?`, code).Scan(&available, &disabled, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrInviteUnavailable
	}
	if err != nil {
		return fmt.Errorf("read invite code: %w", err)
	}
	if disabled != 0 || used >= available {
		return store.ErrInviteUnavailable
	}
	if _, err := s.exec(ctx, tx, "INSERT INTO invite_code_use (code, used_by, used_at) VALUES (?, ?, ?)", code, did, fmtTime(at)); err != nil {
		return fmt.Errorf("insert invite use: %w", err)
	}
	return nil
}

const accountColumns = `did, coalesce(handle, ''), email, password_hash, email_confirmed_at,
	invites_disabled, created_at, deactivated_at, coalesce(takedown_ref, '')`

func (s *Store) accountWhere(ctx context.Context, where string, arg any) (*store.Account, error) {
	var (
		a                      store.Account
		did, handle            string
		confirmed, deactivated sql.NullString
		created                string
	)
	err := s.readRow(ctx, "SELECT "+accountColumns+" FROM account WHERE "+where, arg).Scan(
		&did, &handle, &a.Email, &a.PasswordHash, &confirmed, &a.InvitesDisabled, &created, &deactivated, &a.TakedownRef)
	a.DID, a.Handle = syntax.DID(did), syntax.Handle(handle)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read account: %w", err)
	}
	a.CreatedAt = parseTime(created)
	a.EmailConfirmedAt = parseTimePtr(confirmed)
	a.DeactivatedAt = parseTimePtr(deactivated)
	return &a, nil
}

// AccountByDID implements store.Store.
func (s *Store) AccountByDID(ctx context.Context, did syntax.DID) (*store.Account, error) {
	return s.accountWhere(ctx, "did = ?", did.String())
}

// AccountByHandle implements store.Store.
func (s *Store) AccountByHandle(ctx context.Context, handle syntax.Handle) (*store.Account, error) {
	return s.accountWhere(ctx, "handle = ?", handle.String())
}

// AccountByEmail implements store.Store.
func (s *Store) AccountByEmail(ctx context.Context, email string) (*store.Account, error) {
	return s.accountWhere(ctx, "email = ?", email)
}

// UpdateHandle implements store.Store.
func (s *Store) UpdateHandle(ctx context.Context, did syntax.DID, handle syntax.Handle, evs []store.NewEvent) ([]store.Event, error) {
	return s.updateAccount(ctx, evs, "UPDATE account SET handle = ? WHERE did = ?", handle, did)
}

// updateAccount runs one UPDATE of an account row and appends events in
// the same transaction: ErrNotFound when no row matched, ErrHandleTaken
// when the update would give two accounts one handle.
func (s *Store) updateAccount(ctx context.Context, evs []store.NewEvent, query string, args ...any) ([]store.Event, error) {
	var events []store.Event
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, query, args...)
		if _, ok := uniqueViolation(err); ok {
			return store.ErrHandleTaken
		}
		if err != nil {
			return fmt.Errorf("update account: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		events, err = s.appendEvents(ctx, tx, evs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// SigningKey implements store.Store.
func (s *Store) SigningKey(ctx context.Context, did syntax.DID) ([]byte, error) {
	var key []byte
	err := s.readRow(ctx, "SELECT private_key FROM signing_key WHERE did = ?", did).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	return key, nil
}

// RewriteSigningKeys implements store.Store. Every key is read before fn
// is called, so rows are not updated under an open cursor.
func (s *Store) RewriteSigningKeys(ctx context.Context, fn func(did syntax.DID, key []byte) ([]byte, error)) (int, error) {
	changed := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		type row struct {
			did string
			key []byte
		}
		rows, err := s.query(ctx, tx, "SELECT did, private_key FROM signing_key ORDER BY did")
		if err != nil {
			return fmt.Errorf("read signing keys: %w", err)
		}
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.did, &r.key); err != nil {
				rows.Close()
				return fmt.Errorf("read signing keys: %w", err)
			}
			all = append(all, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read signing keys: %w", err)
		}
		for _, r := range all {
			next, err := fn(syntax.DID(r.did), r.key)
			if err != nil {
				return err
			}
			if next == nil {
				continue
			}
			if _, err := s.exec(ctx, tx, "UPDATE signing_key SET private_key = ? WHERE did = ?", next, r.did); err != nil {
				return fmt.Errorf("update signing key: %w", err)
			}
			changed++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return changed, nil
}

// RepoRoot implements store.Store.
func (s *Store) RepoRoot(ctx context.Context, did syntax.DID) (*store.RepoRoot, error) {
	r := store.RepoRoot{DID: did}
	var rev string
	err := s.readRow(ctx, "SELECT cid, rev FROM repo_root WHERE did = ?", did.String()).Scan(cidColumn{&r.CID}, &rev)
	r.Rev = syntax.TID(rev)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read repo root: %w", err)
	}
	return &r, nil
}

// SetDeactivated implements store.Store.
func (s *Store) SetDeactivated(ctx context.Context, did syntax.DID, at *time.Time, evs []store.NewEvent) ([]store.Event, error) {
	return s.updateAccount(ctx, evs, "UPDATE account SET deactivated_at = ? WHERE did = ?", fmtTimePtr(at), did)
}

// Preferences implements store.Store.
func (s *Store) Preferences(ctx context.Context, did syntax.DID) ([]byte, error) {
	var prefs []byte
	err := s.readRow(ctx, "SELECT preferences FROM account_pref WHERE did = ?", did).Scan(&prefs)
	if errors.Is(err, sql.ErrNoRows) {
		return []byte("[]"), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read preferences: %w", err)
	}
	return prefs, nil
}

// PutPreferences implements store.Store.
func (s *Store) PutPreferences(ctx context.Context, did syntax.DID, prefs []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO account_pref (did, preferences) VALUES (?, ?)
			ON CONFLICT (did) DO UPDATE SET preferences = excluded.preferences`, did, prefs)
		if err != nil {
			return fmt.Errorf("store preferences: %w", err)
		}
		return nil
	})
}
