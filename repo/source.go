package repo

import (
	"context"
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"
)

// BlockSource reads the blocks of one repository. The store implements it
// over its block table (inside the write transaction when used by Apply, so
// that what Apply reads is what the transaction will commit on top of);
// MemorySource is an in-memory one for tests and CAR imports.
//
// Blocks are trusted: this package does not re-hash what a BlockSource
// returns (CARReader does, for untrusted input).
type BlockSource interface {
	// GetBlock returns the bytes of block c. When the source has no such
	// block it returns an error for which errors.Is(err, ErrBlockNotFound)
	// holds; any other error is a failure of the source and is passed up,
	// wrapped, to the caller. The returned slice is not modified by this
	// package; the source may reuse it once the call that read it returns
	// only if it never hands the same slice to two calls at once.
	GetBlock(ctx context.Context, c cid.Cid) ([]byte, error)
}

// MemorySource is a BlockSource over a map, safe for concurrent use.
type MemorySource struct {
	mu     sync.RWMutex
	blocks map[cid.Cid][]byte
}

var _ BlockSource = (*MemorySource)(nil)

// NewMemorySource returns a MemorySource holding blocks.
func NewMemorySource(blocks ...Block) *MemorySource {
	s := &MemorySource{blocks: make(map[cid.Cid][]byte, len(blocks))}
	s.Put(blocks...)
	return s
}

// Put adds blocks; a block already present is left as is.
func (s *MemorySource) Put(blocks ...Block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range blocks {
		if _, ok := s.blocks[b.CID]; !ok {
			s.blocks[b.CID] = b.Data
		}
	}
}

// Delete removes blocks; unknown CIDs are ignored.
func (s *MemorySource) Delete(cids ...cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cids {
		delete(s.blocks, c)
	}
}

// Len is the number of blocks held.
func (s *MemorySource) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.blocks)
}

// GetBlock implements BlockSource.
func (s *MemorySource) GetBlock(_ context.Context, c cid.Cid) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.blocks[c]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrBlockNotFound, c)
	}
	return b, nil
}
