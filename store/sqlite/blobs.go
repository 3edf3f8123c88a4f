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

// applyBlobRefs replaces the blob references of every record c writes or
// deletes, makes referenced blobs permanent and releases blobs left with
// no reference. It runs inside ApplyCommit's transaction.
func (s *Store) applyBlobRefs(ctx context.Context, tx *sql.Tx, c store.Commit, now string) error {
	type path struct {
		collection syntax.NSID
		rkey       syntax.RecordKey
	}
	touched := map[path]bool{}
	for _, r := range c.Puts {
		touched[path{r.Collection, r.RKey}] = true
	}
	for _, r := range c.Deletes {
		touched[path{r.Collection, r.RKey}] = true
	}
	did := c.DID.String()
	var dropped []string
	for p := range touched {
		rows, err := s.query(ctx, tx, "DELETE FROM record_blob WHERE did = ? AND collection = ? AND rkey = ? RETURNING blob_cid",
			did, p.collection.String(), p.rkey.String())
		if err != nil {
			return fmt.Errorf("clear blob references: %w", err)
		}
		for rows.Next() {
			var cid string
			if err := rows.Scan(&cid); err != nil {
				rows.Close()
				return fmt.Errorf("clear blob references: %w", err)
			}
			dropped = append(dropped, cid)
		}
		rows.Close()
	}
	for _, ref := range c.BlobRefs {
		res, err := s.exec(ctx, tx, "UPDATE blob SET temp_key = NULL, released_at = NULL WHERE did = ? AND cid = ?", did, ref.CID.String())
		if err != nil {
			return fmt.Errorf("make blob permanent: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s", store.ErrBlobNotFound, ref.CID)
		}
		if _, err := s.exec(ctx, tx, "INSERT OR IGNORE INTO record_blob (did, collection, rkey, blob_cid) VALUES (?, ?, ?, ?)",
			did, ref.Collection.String(), ref.RKey.String(), ref.CID.String()); err != nil {
			return fmt.Errorf("add blob reference: %w", err)
		}
	}
	for _, cid := range dropped {
		if _, err := s.exec(ctx, tx, `UPDATE blob SET released_at = ? WHERE did = ? AND cid = ?
			AND NOT EXISTS (SELECT 1 FROM record_blob WHERE did = ? AND blob_cid = ?)`, now, did, cid, did, cid); err != nil {
			return fmt.Errorf("release blob: %w", err)
		}
	}
	return nil
}

const blobColumns = "did, cid, mime_type, size, coalesce(temp_key, ''), created_at, released_at, coalesce(takedown_ref, '')"

func scanBlob(row interface{ Scan(...any) error }) (*store.Blob, error) {
	var (
		b        store.Blob
		created  string
		released sql.NullString
	)
	if err := row.Scan(&b.DID, cidColumn{&b.CID}, &b.MimeType, &b.Size, &b.TempKey, &created, &released, &b.TakedownRef); err != nil {
		return nil, err
	}
	b.CreatedAt = parseTime(created)
	b.ReleasedAt = parseTimePtr(released)
	return &b, nil
}

// PutBlob implements store.Store.
func (s *Store) PutBlob(ctx context.Context, b store.Blob) (*store.Blob, error) {
	var existing *store.Blob
	err := s.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanBlob(s.queryRow(ctx, tx, "SELECT "+blobColumns+" FROM blob WHERE did = ? AND cid = ?", b.DID, b.CID.String()))
		if err == nil {
			existing = old
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read blob: %w", err)
		}
		_, err = s.exec(ctx, tx, "INSERT INTO blob (did, cid, mime_type, size, temp_key, created_at) VALUES (?, ?, ?, ?, ?, ?)",
			b.DID, b.CID.String(), b.MimeType, b.Size, nullString(b.TempKey), fmtTime(b.CreatedAt))
		if err != nil {
			return fmt.Errorf("insert blob: %w", err)
		}
		return nil
	})
	return existing, err
}

// Blob implements store.Store.
func (s *Store) Blob(ctx context.Context, did syntax.DID, c cid.Cid) (*store.Blob, error) {
	b, err := scanBlob(s.readRow(ctx, "SELECT "+blobColumns+" FROM blob WHERE did = ? AND cid = ?", did, c.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read blob: %w", err)
	}
	return b, nil
}

// ListBlobs implements store.Store.
func (s *Store) ListBlobs(ctx context.Context, did syntax.DID, since syntax.TID, cursor string, limit int) ([]cid.Cid, error) {
	return readColumn(ctx, s, "list blobs", `SELECT DISTINCT rb.blob_cid FROM record_blob rb
		JOIN record r ON r.did = rb.did AND r.collection = rb.collection AND r.rkey = rb.rkey
		WHERE rb.did = ? AND r.rev > ? AND rb.blob_cid > ? ORDER BY rb.blob_cid LIMIT ?`,
		func(c *cid.Cid) any { return cidColumn{c} }, did, since, cursor, limit)
}

// MissingBlobs implements store.Store.
func (s *Store) MissingBlobs(ctx context.Context, did syntax.DID, cursor string, limit int) ([]store.BlobRef, error) {
	rows, err := s.readQuery(ctx, `SELECT rb.blob_cid, min(rb.collection || '/' || rb.rkey) FROM record_blob rb
		LEFT JOIN blob b ON b.did = rb.did AND b.cid = rb.blob_cid
		WHERE rb.did = ? AND b.cid IS NULL AND rb.blob_cid > ?
		GROUP BY rb.blob_cid ORDER BY rb.blob_cid LIMIT ?`, did, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("list missing blobs: %w", err)
	}
	defer rows.Close()
	var out []store.BlobRef
	for rows.Next() {
		var (
			ref  store.BlobRef
			path string
		)
		if err := rows.Scan(cidColumn{&ref.CID}, &path); err != nil {
			return nil, fmt.Errorf("list missing blobs: %w", err)
		}
		for i := range len(path) {
			if path[i] == '/' {
				ref.Collection, ref.RKey = syntax.NSID(path[:i]), syntax.RecordKey(path[i+1:])
				break
			}
		}
		out = append(out, ref)
	}
	return out, rows.Err()
}

// CollectableBlobs implements store.Store.
func (s *Store) CollectableBlobs(ctx context.Context, before time.Time, limit int) ([]store.Blob, error) {
	t := fmtTime(before)
	rows, err := s.readQuery(ctx, "SELECT "+blobColumns+` FROM blob
		WHERE (temp_key IS NOT NULL AND created_at < ?) OR (released_at IS NOT NULL AND released_at < ?)
		LIMIT ?`, t, t, limit)
	if err != nil {
		return nil, fmt.Errorf("list collectable blobs: %w", err)
	}
	defer rows.Close()
	var out []store.Blob
	for rows.Next() {
		b, err := scanBlob(rows)
		if err != nil {
			return nil, fmt.Errorf("list collectable blobs: %w", err)
		}
		out = append(out, *b)
	}
	return out, rows.Err()
}

// DeleteBlob implements store.Store.
func (s *Store) DeleteBlob(ctx context.Context, did syntax.DID, c cid.Cid) (bool, error) {
	var deleted bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM blob WHERE did = ? AND cid = ?
			AND NOT EXISTS (SELECT 1 FROM record_blob WHERE did = ? AND blob_cid = ?)`, did, c.String(), did, c.String())
		if err != nil {
			return fmt.Errorf("delete blob: %w", err)
		}
		n, _ := res.RowsAffected()
		deleted = n > 0
		return nil
	})
	return deleted, err
}
