package blobstore

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// Errors returned by every Store. Compare with errors.Is: implementations
// wrap them with the object's name.
var (
	// ErrNotFound means the object asked for does not exist: no permanent
	// blob with that CID for that DID (a quarantined blob counts as absent),
	// or no temporary upload with that key.
	ErrNotFound = errors.New("blob not found")
	// ErrInvalidRange means a ranged read starts at or past the end of the
	// blob, or is malformed; HTTP answers it with 416.
	ErrInvalidRange = errors.New("range not satisfiable")
	// ErrInvalidName means a DID, CID or temporary key cannot name an
	// object: a programming error upstream, since handlers parse them first.
	// It is checked before any path or key is formed, so no input reaches
	// outside the store's own folders or prefixes.
	ErrInvalidName = errors.New("invalid blob name")
)

// Store keeps blob bytes, by account, in the official PDS's layout. It knows
// nothing of records or references: which blobs are in use, which temporary
// uploads are pending and which blobs are taken down is the database's
// business (see the package documentation for the lifecycle).
//
// All methods are safe for concurrent use. A DID, CID or key that does not
// validate yields ErrInvalidName before anything is read or written. Errors
// other than the sentinels above are I/O or transport failures, worth
// retrying or reporting as internal errors.
type Store interface {
	// PutTemp streams r into a new temporary object of did and returns its
	// key and the number of bytes written. It never holds the whole blob in
	// memory. The object is complete (and, on disk, synced) when PutTemp
	// returns; if r fails or ctx ends first, nothing is left behind and the
	// error is returned. PutTemp does not limit the size: wrap r (e.g.
	// http.MaxBytesReader) to enforce PDS_BLOB_UPLOAD_LIMIT.
	PutTemp(ctx context.Context, did string, r io.Reader) (key string, size int64, err error)

	// MakePermanent moves the temporary object key of did to the permanent
	// name of c. The caller vouches that the bytes hash to c. It is
	// idempotent: when the temporary object is gone but the permanent blob
	// exists (a retry, or a concurrent request that got there first) it
	// returns nil. It returns ErrNotFound when neither exists.
	MakePermanent(ctx context.Context, did string, key string, c cid.Cid) error

	// DeleteTemp removes a temporary object. Removing one that does not
	// exist is not an error.
	DeleteTemp(ctx context.Context, did string, key string) error

	// WalkTemps calls fn for every temporary object last modified before
	// olderThan, in no particular order, and stops at the first error fn
	// returns, which it returns. fn may call DeleteTemp. Objects that do not
	// fit the layout (a foreign file in the temp folder) are skipped.
	WalkTemps(ctx context.Context, olderThan time.Time, fn func(Temp) error) error

	// Get opens the permanent blob c of did and returns it with its size.
	// The caller must close it. ErrNotFound when absent or quarantined.
	Get(ctx context.Context, did string, c cid.Cid) (io.ReadCloser, int64, error)

	// GetRange opens length bytes of the permanent blob c of did from
	// offset; length -1, or a length past the end, reads to the end, and
	// length 0 reads nothing. It also returns the blob's total size, which
	// a Content-Range header needs. ErrInvalidRange when offset is at or
	// past the end of the blob, except that offset 0 is always accepted (an
	// empty blob then reads as nothing, so a whole-blob read needs no special
	// case), or when offset is negative or length below -1. ErrNotFound when
	// the blob is absent or quarantined.
	GetRange(ctx context.Context, did string, c cid.Cid, offset, length int64) (io.ReadCloser, int64, error)

	// Stat returns the size of the permanent blob c of did, or ErrNotFound.
	Stat(ctx context.Context, did string, c cid.Cid) (int64, error)

	// Delete removes the permanent blob c of did. Removing a blob that does
	// not exist is not an error. A quarantined copy is kept, as the official
	// PDS keeps it: it is evidence for moderators.
	Delete(ctx context.Context, did string, c cid.Cid) error

	// DeleteAll removes every object of did: permanent, temporary and
	// quarantined. It is for account deletion, and idempotent.
	DeleteAll(ctx context.Context, did string) error

	// Quarantine moves the permanent blob c of did out of reach of Get (a
	// takedown) without deleting it. It returns nil when the blob is
	// already quarantined, ErrNotFound when it is neither stored nor
	// quarantined.
	Quarantine(ctx context.Context, did string, c cid.Cid) error

	// Unquarantine reverses Quarantine, with the same idempotence: nil when
	// the blob is already back, ErrNotFound when it is in neither place.
	Unquarantine(ctx context.Context, did string, c cid.Cid) error

	// Check reports whether the store can be used: the folders exist (disk)
	// or the bucket exists and the credentials reach it (S3). It writes
	// nothing; `hearth check` and start-up logs use it.
	Check(ctx context.Context) error
}

// Temp describes a temporary object, as WalkTemps reports it.
type Temp struct {
	DID     string
	Key     string
	Size    int64
	ModTime time.Time
}

// Has reports whether the permanent blob c of did exists (and is not
// quarantined).
func Has(ctx context.Context, s Store, did string, c cid.Cid) (bool, error) {
	_, err := s.Stat(ctx, did, c)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	default:
		return false, err
	}
}

// newTempKey makes a temporary object's key as the official PDS does: 32
// random bytes in lower-case unpadded base32 (52 characters), so keys of
// both servers look alike in an adopted folder or bucket.
func newTempKey() string {
	var b [32]byte
	rand.Read(b[:])
	return tempKeyEncoding.EncodeToString(b[:])
}

var tempKeyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// checkDID checks that did can be one path element or key segment. A
// syntactically valid DID has no '/', no NUL and never equals "." or "..",
// and it starts with "did:", so it cannot collide with the "tempt" and
// "quarantine" folders that share the disk location with the DID folders.
func checkDID(did string) error {
	if _, err := syntax.ParseDID(did); err != nil {
		return fmt.Errorf("%w: DID %q: %v", ErrInvalidName, did, err)
	}
	return nil
}

// checkCID checks that c is defined; its string form (base32 for CIDv1,
// base58btc for v0, as the official PDS writes them) is then alphanumeric.
func checkCID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined CID", ErrInvalidName)
	}
	return nil
}

// checkTempKey accepts keys made of letters, digits, '-' and '_', up to
// 128 characters: ours and the official PDS's (52 base32 characters), and
// nothing that could climb out of a folder.
func checkTempKey(key string) error {
	if key == "" || len(key) > 128 {
		return fmt.Errorf("%w: temporary key of %d bytes", ErrInvalidName, len(key))
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: temporary key %q", ErrInvalidName, key)
		}
	}
	return nil
}

// checkRange validates a GetRange request against the blob's size and
// returns the number of bytes to read.
func checkRange(offset, length, size int64) (int64, error) {
	if err := checkRangeArgs(offset, length); err != nil {
		return 0, err
	}
	if offset > 0 && offset >= size {
		return 0, fmt.Errorf("%w: offset %d of a %d-byte blob", ErrInvalidRange, offset, size)
	}
	if length == -1 || length > size-offset {
		length = size - offset
	}
	return length, nil
}

func checkRangeArgs(offset, length int64) error {
	if offset < 0 || length < -1 {
		return fmt.Errorf("%w: offset %d, length %d", ErrInvalidRange, offset, length)
	}
	return nil
}

// ctxReader makes a long copy notice a cancelled context between reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readCloser joins a reader of part of an object with the closer of the
// whole.
type readCloser struct {
	io.Reader
	io.Closer
}
