package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Statements are prepared once per query text and reused: SQLite spends a
// good part of a small transaction parsing SQL otherwise (measured: about a
// fifth of a createRecord's CPU). database/sql keeps one prepared copy per
// pool connection; inside a transaction, Tx.StmtContext reuses the
// writer connection's copy.
//
// The writer has one connection, which a transaction holds: preparing on
// it then would wait for the transaction itself. So a query first seen
// inside a transaction runs unprepared and is prepared once the
// transaction ends (see Store.tx).
type stmts struct {
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool
}

// get returns the prepared statement for query; inTx says the pool's only
// connection may be busy, in which case a miss is deferred.
func (c *stmts) get(ctx context.Context, db *sql.DB, query string, inTx bool) (*sql.Stmt, error) {
	c.mu.Lock()
	if st, ok := c.m[query]; ok {
		c.mu.Unlock()
		return st, nil
	}
	if inTx {
		if c.pending == nil {
			c.pending = make(map[string]bool)
		}
		c.pending[query] = true
		c.mu.Unlock()
		return nil, nil
	}
	c.mu.Unlock()
	// Prepare without the lock: it may wait for a connection, and a
	// transaction holding the writer's only one may need the lock to
	// finish.
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[query]; ok {
		st.Close()
		return old, nil
	}
	if c.m == nil {
		c.m = make(map[string]*sql.Stmt)
	}
	c.m[query] = st
	return st, nil
}

// preparePending prepares the queries deferred during transactions.
func (c *stmts) preparePending(ctx context.Context, db *sql.DB) {
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for q := range pending {
		c.get(ctx, db, q, false) // a failure here shows up, unprepared, at the next use
	}
}

func (c *stmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

// row is what QueryRow gives, or the error of preparing it.
type row interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (s *Store) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, _ := s.writeStmts.get(ctx, s.write, query, true)
	if st == nil {
		return tx.ExecContext(ctx, query, args...)
	}
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

func (s *Store) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	st, _ := s.writeStmts.get(ctx, s.write, query, true)
	if st == nil {
		return tx.QueryContext(ctx, query, args...)
	}
	return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) row {
	st, _ := s.writeStmts.get(ctx, s.write, query, true)
	if st == nil {
		return tx.QueryRowContext(ctx, query, args...)
	}
	return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}

func (s *Store) readQuery(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.readStmts.get(ctx, s.read, query, false)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *Store) readRow(ctx context.Context, query string, args ...any) row {
	st, err := s.readStmts.get(ctx, s.read, query, false)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// readColumn runs a read query whose rows are one column each, scanned
// through scan (a pointer for the string types, cidColumn for CIDs).
func readColumn[T any](ctx context.Context, s *Store, what, query string, scan func(*T) any, args ...any) ([]T, error) {
	rows, err := s.readQuery(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(scan(&v)); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
