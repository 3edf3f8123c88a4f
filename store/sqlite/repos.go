package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/store"
)

// ApplyCommit implements store.Store. The head check and the update are
// in one write transaction, so two commits built on the same head cannot
// both land.
func (s *Store) ApplyCommit(ctx context.Context, c store.Commit) ([]store.Event, error) {
	var events []store.Event
	// Arguments go to the driver as plain strings: a string type such as
	// syntax.DID would cost database/sql a reflective conversion each.
	did, rev := c.DID.String(), c.Rev.String()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, "UPDATE repo_root SET cid = ?, rev = ? WHERE did = ? AND cid = ?", c.CID.String(), rev, did, c.PrevCID.String())
		if err != nil {
			return fmt.Errorf("update repo root: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			if err := s.queryRow(ctx, tx, "SELECT 1 FROM repo_root WHERE did = ?", did).Scan(&one); errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			return store.ErrRepoChanged
		}
		for _, b := range c.Removed {
			if _, err := s.exec(ctx, tx, "DELETE FROM repo_block WHERE did = ? AND cid = ?", did, b.String()); err != nil {
				return fmt.Errorf("delete replaced block: %w", err)
			}
		}
		if err := s.insertBlocks(ctx, tx, did, rev, c.Blocks); err != nil {
			return err
		}
		now := fmtTime(time.Now())
		for _, r := range c.Puts {
			_, err := s.exec(ctx, tx, `INSERT INTO record (did, collection, rkey, cid, rev, indexed_at) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (did, collection, rkey) DO UPDATE SET cid = excluded.cid, rev = excluded.rev, indexed_at = excluded.indexed_at`,
				did, r.Collection.String(), r.RKey.String(), r.CID.String(), rev, now)
			if err != nil {
				return fmt.Errorf("index record: %w", err)
			}
		}
		for _, r := range c.Deletes {
			if _, err := s.exec(ctx, tx, "DELETE FROM record WHERE did = ? AND collection = ? AND rkey = ?", did, r.Collection.String(), r.RKey.String()); err != nil {
				return fmt.Errorf("unindex record: %w", err)
			}
		}
		if err := s.applyBlobRefs(ctx, tx, c, now); err != nil {
			return err
		}
		for _, b := range cidTexts(c.Released) {
			_, err := s.exec(ctx, tx, `DELETE FROM repo_block WHERE did = ? AND cid = ?
				AND NOT EXISTS (SELECT 1 FROM record WHERE did = ? AND cid = ?)`, did, b, did, b)
			if err != nil {
				return fmt.Errorf("delete released record block: %w", err)
			}
		}
		events, err = s.appendEvents(ctx, tx, c.Events)
		return err
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

func (s *Store) insertBlocks(ctx context.Context, tx *sql.Tx, did, rev string, blocks []store.Block) error {
	if len(blocks) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO repo_block (did, cid, rev, content) VALUES (?, ?, ?, ?)")
	if err != nil {
		return fmt.Errorf("insert blocks: %w", err)
	}
	defer stmt.Close()
	for _, b := range blocks {
		if _, err := stmt.ExecContext(ctx, did, b.CID.String(), rev, b.Content); err != nil {
			return fmt.Errorf("insert block: %w", err)
		}
	}
	return nil
}

// appendEvents assigns the next sequence numbers and encodes each frame
// with its own. The writer connection is the only one that writes, so
// max(seq)+1 read inside the transaction cannot be taken by another, and
// sequence numbers become visible in order.
func (s *Store) appendEvents(ctx context.Context, tx *sql.Tx, evs []store.NewEvent) ([]store.Event, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	var last int64
	if err := s.queryRow(ctx, tx, "SELECT coalesce(max(seq), 0) FROM repo_event").Scan(&last); err != nil {
		return nil, fmt.Errorf("read last seq: %w", err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	out := make([]store.Event, 0, len(evs))
	for i, ev := range evs {
		seq := last + int64(i) + 1
		frame, err := ev.Encode(seq, at)
		if err != nil {
			return nil, fmt.Errorf("encode %s event: %w", ev.Kind, err)
		}
		if _, err := s.exec(ctx, tx, "INSERT INTO repo_event (seq, did, kind, sequenced_at, frame) VALUES (?, ?, ?, ?, ?)",
			seq, ev.DID.String(), string(ev.Kind), fmtTime(at), frame); err != nil {
			return nil, fmt.Errorf("insert event: %w", err)
		}
		out = append(out, store.Event{Seq: seq, DID: ev.DID, Kind: ev.Kind, Time: at, Frame: frame})
	}
	return out, nil
}

// AppendEvents implements store.Store.
func (s *Store) AppendEvents(ctx context.Context, evs []store.NewEvent) ([]store.Event, error) {
	var events []store.Event
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		events, err = s.appendEvents(ctx, tx, evs)
		return err
	})
	return events, err
}

// EventsAfter implements store.Store.
func (s *Store) EventsAfter(ctx context.Context, after int64, limit int) ([]store.Event, error) {
	rows, err := s.readQuery(ctx, "SELECT seq, did, kind, sequenced_at, frame FROM repo_event WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var (
			e  store.Event
			at string
		)
		if err := rows.Scan(&e.Seq, &e.DID, &e.Kind, &at, &e.Frame); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		e.Time = parseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// EventBounds implements store.Store.
func (s *Store) EventBounds(ctx context.Context) (int64, int64, error) {
	var oldest, newest int64
	err := s.readRow(ctx, "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM repo_event").Scan(&oldest, &newest)
	if err != nil {
		return 0, 0, fmt.Errorf("read event bounds: %w", err)
	}
	return oldest, newest, nil
}

// PruneEvents implements store.Store.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM repo_event WHERE sequenced_at < ?
			AND seq < (SELECT max(seq) FROM repo_event)`, fmtTime(before))
		if err != nil {
			return fmt.Errorf("prune events: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// Block implements store.Store.
func (s *Store) Block(ctx context.Context, did syntax.DID, c cid.Cid) ([]byte, error) {
	var b []byte
	err := s.readRow(ctx, "SELECT content FROM repo_block WHERE did = ? AND cid = ?", did.String(), c.String()).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read block: %w", err)
	}
	return b, nil
}

// BlocksSince implements store.Store.
func (s *Store) BlocksSince(ctx context.Context, did syntax.DID, sinceRev syntax.TID, fn func(store.Block) error) error {
	rows, err := s.readQuery(ctx, "SELECT cid, content FROM repo_block WHERE did = ? AND rev > ?", did, sinceRev)
	if err != nil {
		return fmt.Errorf("read blocks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b store.Block
		if err := rows.Scan(cidColumn{&b.CID}, &b.Content); err != nil {
			return fmt.Errorf("read blocks: %w", err)
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Record implements store.Store.
func (s *Store) Record(ctx context.Context, did syntax.DID, collection syntax.NSID, rkey syntax.RecordKey) (*store.RecordRef, error) {
	r := store.RecordRef{Collection: collection, RKey: rkey}
	var rev string
	err := s.readRow(ctx, "SELECT cid, rev FROM record WHERE did = ? AND collection = ? AND rkey = ?",
		did.String(), collection.String(), rkey.String()).Scan(cidColumn{&r.CID}, &rev)
	r.Rev = syntax.TID(rev)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read record: %w", err)
	}
	return &r, nil
}

// ListRecords implements store.Store.
func (s *Store) ListRecords(ctx context.Context, did syntax.DID, collection syntax.NSID, limit int, cursor string, reverse bool) ([]store.RecordRef, error) {
	q := "SELECT rkey, cid, rev FROM record WHERE did = ? AND collection = ?"
	args := []any{did, collection}
	switch {
	case cursor != "" && reverse:
		q += " AND rkey > ?"
		args = append(args, cursor)
	case cursor != "":
		q += " AND rkey < ?"
		args = append(args, cursor)
	}
	// Newest first by default: record keys are TIDs, which sort by time;
	// reverse lists oldest first, as the official PDS does.
	if reverse {
		q += " ORDER BY rkey ASC LIMIT ?"
	} else {
		q += " ORDER BY rkey DESC LIMIT ?"
	}
	args = append(args, limit)
	rows, err := s.readQuery(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	defer rows.Close()
	var out []store.RecordRef
	for rows.Next() {
		r := store.RecordRef{Collection: collection}
		if err := rows.Scan(&r.RKey, cidColumn{&r.CID}, &r.Rev); err != nil {
			return nil, fmt.Errorf("list records: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RecordsSince implements store.Store, in one statement so the check
// for an older record and the listing see the same state.
func (s *Store) RecordsSince(ctx context.Context, did syntax.DID, since syntax.TID, limit int) ([]store.IndexedRecord, error) {
	rows, err := s.readQuery(ctx, `SELECT collection, rkey, cid, rev, indexed_at FROM record
		WHERE did = ? AND rev > ? AND EXISTS (SELECT 1 FROM record WHERE did = ? AND rev <= ?)
		ORDER BY rev, collection, rkey LIMIT ?`, did, since, did, since, limit)
	if err != nil {
		return nil, fmt.Errorf("records since %s: %w", since, err)
	}
	defer rows.Close()
	var out []store.IndexedRecord
	for rows.Next() {
		var (
			r       store.IndexedRecord
			indexed string
		)
		if err := rows.Scan(&r.Collection, &r.RKey, cidColumn{&r.CID}, &r.Rev, &indexed); err != nil {
			return nil, fmt.Errorf("records since %s: %w", since, err)
		}
		r.IndexedAt = parseTime(indexed)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Collections implements store.Store.
func (s *Store) Collections(ctx context.Context, did syntax.DID) ([]syntax.NSID, error) {
	return readColumn(ctx, s, "list collections", "SELECT DISTINCT collection FROM record WHERE did = ? ORDER BY collection",
		func(n *syntax.NSID) any { return n }, did)
}

// ListRepos implements store.Store.
func (s *Store) ListRepos(ctx context.Context, cursor string, limit int) ([]store.RepoInfo, error) {
	rows, err := s.readQuery(ctx, `SELECT a.did, r.cid, r.rev, a.deactivated_at IS NULL AND a.takedown_ref IS NULL,
		CASE WHEN a.takedown_ref IS NOT NULL THEN 'takendown' WHEN a.deactivated_at IS NOT NULL THEN 'deactivated' ELSE '' END
		FROM account a JOIN repo_root r ON r.did = a.did WHERE a.did > ? ORDER BY a.did LIMIT ?`, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("list repos: %w", err)
	}
	defer rows.Close()
	var out []store.RepoInfo
	for rows.Next() {
		var r store.RepoInfo
		if err := rows.Scan(&r.DID, cidColumn{&r.Head}, &r.Rev, &r.Active, &r.Status); err != nil {
			return nil, fmt.Errorf("list repos: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
