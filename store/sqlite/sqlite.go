// Package sqlite implements store.Store on one SQLite database file, through
// the pure-Go modernc.org/sqlite driver (a static binary, and the driver
// Litestream embeds, so continuous backup can later run in-process).
//
// SQLite allows one writer at a time. Rather than let concurrent writers
// collide on SQLITE_BUSY, the store keeps two pools: a single writer
// connection whose transactions start IMMEDIATE (taking the write lock up
// front, so a transaction never has to be retried halfway), and a pool of
// read-only connections that WAL mode lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hearth-pds/hearth/datetime"
	"github.com/hearth-pds/hearth/store"
)

// FileName is Hearth's SQLite store inside the data directory. Its own
// name keeps it apart from the official PDS's files in the same folder.
const FileName = "hearth.sqlite"

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store on SQLite.
type Store struct {
	write      *sql.DB
	read       *sql.DB
	writeStmts stmts
	readStmts  stmts
}

var _ store.Store = (*Store)(nil)

// Open opens (creating when absent) the database at path and applies every
// pending migration.
func Open(ctx context.Context, path string) (*Store, error) {
	pragmas := []string{"busy_timeout(10000)", "foreign_keys(1)", "journal_mode(WAL)", "synchronous(NORMAL)"}
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append(pragmas, extra...) {
			q.Add("_pragma", p)
		}
		return "file:" + path + "?" + q.Encode()
	}
	// The writer gets 8 MiB of page cache: the block index of a large
	// repository outgrows the 2 MiB default, and every insert then reads.
	// Readers keep the default, so memory stays bounded with the pool.
	write, err := sql.Open("sqlite", dsn("cache_size(-8192)")+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite writer %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	s := &Store{write: write}
	if err := s.migrate(ctx); err != nil {
		write.Close()
		return nil, err
	}
	read, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite readers %s: %w", path, err)
	}
	read.SetMaxOpenConns(max(4, runtime.NumCPU()*2))
	read.SetMaxIdleConns(2)
	s.read = read
	return s, nil
}

// Close closes both pools.
func (s *Store) Close() error {
	s.readStmts.close()
	s.writeStmts.close()
	return errors.Join(s.read.Close(), s.write.Close())
}

// Ping checks both pools answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	var one int
	if err := s.readRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// migrate applies the embedded migrations not yet recorded in
// schema_migration, each in its own transaction, in version order.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migration (
		version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("create schema_migration: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number: %w", base, err)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", base, err)
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := s.queryRow(ctx, tx, "SELECT count(*) FROM schema_migration WHERE version = ?", version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := s.exec(ctx, tx, "INSERT INTO schema_migration (version, applied_at) VALUES (?, ?)", version, fmtTime(time.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", base, err)
		}
	}
	return nil
}

// tx runs fn in a write transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		s.writeStmts.preparePending(context.WithoutCancel(ctx), s.write)
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.writeStmts.preparePending(context.WithoutCancel(ctx), s.write)
	return nil
}

// Every stored time is in datetime.Layout, the form the official PDS
// stores and the API returns.

func fmtTime(t time.Time) string { return t.UTC().Format(datetime.Layout) }

func fmtTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return fmtTime(*t)
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(datetime.Layout, s)
	return t
}

func parseTimePtr(s sql.NullString) *time.Time {
	if !s.Valid {
		return nil
	}
	t := parseTime(s.String)
	return &t
}

func nullString[T ~string](s T) any {
	if s == "" {
		return nil
	}
	return string(s)
}

// uniqueViolation reports whether err is a UNIQUE or PRIMARY KEY violation,
// and on which "table.column" list.
func uniqueViolation(err error) (string, bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return "", false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		msg := se.Error()
		if i := strings.LastIndex(msg, "failed: "); i >= 0 {
			msg = msg[i+len("failed: "):]
		}
		if i := strings.Index(msg, " ("); i >= 0 {
			msg = msg[:i]
		}
		return msg, true
	}
	return "", false
}
