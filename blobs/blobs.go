// Package blobs holds the blob lifecycle of a PDS: uploads streamed to the
// blob store while they are hashed and sniffed, serving, listing, and the
// collector that deletes uploads never referenced and blobs no record
// references any more.
//
// The official PDS never deletes an upload that no record took up
// (pds#309), so abandoned uploads fill disks and buckets; here a
// background collector removes them, and released blobs, after a grace
// period long enough for a client to upload then post.
package blobs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/store"
)

// Bytes is where blob contents live (a disk folder or an S3 bucket).
type Bytes interface {
	// PutTemp stores an upload under a new temporary key, streaming r.
	// On error nothing is left behind.
	PutTemp(ctx context.Context, did string, r io.Reader) (key string, size int64, err error)
	// MakePermanent moves an upload to its permanent place; idempotent.
	MakePermanent(ctx context.Context, did, key string, c cid.Cid) error
	// GetRange opens the part of a permanent blob from offset, length
	// bytes long (-1: to the end), and returns the blob's total size.
	GetRange(ctx context.Context, did string, c cid.Cid, offset, length int64) (io.ReadCloser, int64, error)
	// Delete removes a permanent blob; absent is not an error.
	Delete(ctx context.Context, did string, c cid.Cid) error
	// DeleteTemp removes an upload; absent is not an error.
	DeleteTemp(ctx context.Context, did, key string) error
}

// Errors of the service; xrpc renders them.
var (
	ErrTooLarge = refusal.New("PayloadTooLarge", "request entity too large")
	ErrNotFound = refusal.New("InvalidRequest", "Blob not found")
	errNoType   = refusal.New("InvalidRequest", "Request encoding (Content-Type) required but not provided")
)

// Error is the refusal type of every domain package.
type Error = refusal.Error

// Store is the blob metadata the service keeps; store/sqlite implements
// it. Errors are the store package's (store.ErrNotFound).
type Store interface {
	// PutBlob records an upload, or returns the account's existing row.
	PutBlob(ctx context.Context, b store.Blob) (existing *store.Blob, err error)
	Blob(ctx context.Context, did syntax.DID, c cid.Cid) (*store.Blob, error)
	ListBlobs(ctx context.Context, did syntax.DID, since syntax.TID, cursor string, limit int) ([]cid.Cid, error)
	MissingBlobs(ctx context.Context, did syntax.DID, cursor string, limit int) ([]store.BlobRef, error)
	CollectableBlobs(ctx context.Context, before time.Time, limit int) ([]store.Blob, error)
	DeleteBlob(ctx context.Context, did syntax.DID, c cid.Cid) (bool, error)
}

// Service runs uploads, reads and collection.
type Service struct {
	store Store
	bytes Bytes
	limit int64
	grace time.Duration
	log   *slog.Logger
}

// DefaultGrace is how long an unreferenced upload or a released blob is
// kept before the collector deletes it.
const DefaultGrace = time.Hour

// New builds a Service; limit is the largest upload in bytes
// (PDS_BLOB_UPLOAD_LIMIT), grace 0 means DefaultGrace.
func New(st Store, b Bytes, limit int64, grace time.Duration, log *slog.Logger) *Service {
	if grace <= 0 {
		grace = DefaultGrace
	}
	return &Service{store: st, bytes: b, limit: limit, grace: grace, log: log}
}

// MakePermanent lets the record service move uploads it commits.
func (s *Service) MakePermanent(ctx context.Context, did syntax.DID, key string, c cid.Cid) error {
	return s.bytes.MakePermanent(ctx, did.String(), key, c)
}

// Blob is an uploaded blob as clients reference it.
type Blob struct {
	CID      cid.Cid
	MimeType string
	Size     int64
}

// sniffLen is how much of an upload is kept to detect its type.
const sniffLen = 512

// Upload streams body into the blob store, never holding it whole: the
// CID is computed and the type sniffed as the bytes pass. declaredLength
// is the request's Content-Length (-1 if unknown); a body over the limit
// is refused before it is read when the length says so, else as soon as
// it crosses the limit.
func (s *Service) Upload(ctx context.Context, did syntax.DID, contentType string, declaredLength int64, body io.Reader) (*Blob, error) {
	headerType := strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0])
	if headerType == "" || !strings.Contains(headerType, "/") {
		return nil, errNoType
	}
	if declaredLength > s.limit {
		return nil, ErrTooLarge
	}
	in := &meter{r: body, limit: s.limit, hash: sha256.New()}
	key, _, err := s.bytes.PutTemp(ctx, did.String(), in)
	if err != nil {
		if in.over {
			return nil, ErrTooLarge
		}
		return nil, fmt.Errorf("store upload: %w", err)
	}
	sum, err := multihash.Encode(in.hash.Sum(nil), multihash.SHA2_256)
	if err != nil {
		s.bytes.DeleteTemp(ctx, did.String(), key)
		return nil, err
	}
	b := &Blob{CID: cid.NewCidV1(cid.Raw, sum), MimeType: mimeType(in.head, headerType), Size: in.n}
	existing, err := s.store.PutBlob(ctx, store.Blob{
		DID: did, CID: b.CID, MimeType: b.MimeType, Size: b.Size, TempKey: key, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		s.bytes.DeleteTemp(ctx, did.String(), key)
		return nil, err
	}
	if existing != nil {
		// Already uploaded: keep the first upload, drop this copy, so
		// repeated uploads do not pile up in the temporary area.
		s.bytes.DeleteTemp(ctx, did.String(), key)
		if existing.TakedownRef != "" {
			return nil, refusal.New("InvalidRequest", "Blob has been takendown, cannot re-upload")
		}
		b.MimeType = existing.MimeType
	}
	return b, nil
}

// mimeType prefers what the bytes say for binary formats (a PNG sent as
// image/jpeg is a PNG) and the client's word otherwise, as the official
// PDS does.
func mimeType(head []byte, declared string) string {
	sniffed := http.DetectContentType(head)
	if sniffed == "application/octet-stream" || strings.HasPrefix(sniffed, "text/") {
		return declared
	}
	return strings.TrimSpace(strings.SplitN(sniffed, ";", 2)[0])
}

// meter counts, hashes and keeps the head of a stream, failing once it
// passes its limit.
type meter struct {
	r     io.Reader
	limit int64
	n     int64
	hash  hash.Hash
	head  []byte
	over  bool
}

var errOverLimit = errors.New("upload over the size limit")

func (m *meter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if n > 0 {
		m.n += int64(n)
		if m.n > m.limit {
			m.over = true
			return 0, errOverLimit
		}
		m.hash.Write(p[:n])
		if room := sniffLen - len(m.head); room > 0 {
			m.head = append(m.head, p[:min(n, room)]...)
		}
	}
	return n, err
}

// Read opens a blob that Stat found servable, or the part of it from
// offset, length bytes long (-1: to the end), for sync.getBlob.
func (s *Service) Read(ctx context.Context, meta *store.Blob, offset, length int64) (io.ReadCloser, error) {
	r, _, err := s.bytes.GetRange(ctx, meta.DID.String(), meta.CID, offset, length)
	if err != nil {
		return nil, fmt.Errorf("read blob %s of %s: %w", meta.CID, meta.DID, err)
	}
	return r, nil
}

// Stat returns the metadata of a servable blob: uploads no record
// references, released and taken-down blobs are not served.
func (s *Service) Stat(ctx context.Context, did syntax.DID, c cid.Cid) (*store.Blob, error) {
	meta, err := s.store.Blob(ctx, did, c)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if meta.TempKey != "" || meta.ReleasedAt != nil || meta.TakedownRef != "" {
		return nil, ErrNotFound
	}
	return meta, nil
}

// List lists referenced blobs (sync.listBlobs).
func (s *Service) List(ctx context.Context, did syntax.DID, since syntax.TID, cursor string, limit int) ([]cid.Cid, error) {
	return s.store.ListBlobs(ctx, did, since, cursor, limit)
}

// Missing lists referenced blobs that are not stored (listMissingBlobs).
func (s *Service) Missing(ctx context.Context, did syntax.DID, cursor string, limit int) ([]store.BlobRef, error) {
	return s.store.MissingBlobs(ctx, did, cursor, limit)
}

// Collect deletes what is collectable now and returns how many blobs it
// deleted.
func (s *Service) Collect(ctx context.Context) (int, error) {
	const batch = 500
	total := 0
	for {
		list, err := s.store.CollectableBlobs(ctx, time.Now().Add(-s.grace), batch)
		if err != nil {
			return total, err
		}
		done := 0
		for _, b := range list {
			ok, err := s.store.DeleteBlob(ctx, b.DID, b.CID)
			if err != nil {
				return total, err
			}
			if !ok {
				continue // referenced again meanwhile
			}
			done++
			// The row is gone: delete both places the bytes may be (a
			// commit may have moved the upload before failing).
			if b.TempKey != "" {
				if err := s.bytes.DeleteTemp(ctx, b.DID.String(), b.TempKey); err != nil {
					s.log.Warn("delete collected upload", "did", b.DID, "cid", b.CID, "err", err)
				}
			}
			if err := s.bytes.Delete(ctx, b.DID.String(), b.CID); err != nil {
				s.log.Warn("delete collected blob", "did", b.DID, "cid", b.CID, "err", err)
			}
		}
		total += done
		if len(list) < batch || done == 0 {
			return total, nil
		}
	}
}

// RunCollector collects every interval until ctx ends.
func (s *Service) RunCollector(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n, err := s.Collect(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("collect blobs", "err", err)
		} else if n > 0 {
			s.log.Info("collected blobs", "count", n)
		}
	}
}
