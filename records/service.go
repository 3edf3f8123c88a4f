// Package records is the record API of a PDS: it turns createRecord,
// putRecord, deleteRecord and applyWrites into one signed commit per call,
// validated against the official lexicons, stored with its firehose event in
// one transaction, and published to subscribers; and it reads records back.
//
// Writes to one repository are serialized here (a lock per DID) so each
// commit is built on the head the store still holds; different
// repositories only share the store's write lock, for the length of one
// transaction.
package records

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/store"
)

// Store is what the record service reads and writes; store/sqlite
// implements it. Errors are the store package's (store.ErrNotFound,
// store.ErrRepoChanged, store.ErrBlobNotFound).
type Store interface {
	AccountByDID(ctx context.Context, did syntax.DID) (*store.Account, error)
	AccountByHandle(ctx context.Context, handle syntax.Handle) (*store.Account, error)
	SigningKey(ctx context.Context, did syntax.DID) ([]byte, error)
	Blob(ctx context.Context, did syntax.DID, c cid.Cid) (*store.Blob, error)

	RepoRoot(ctx context.Context, did syntax.DID) (*store.RepoRoot, error)
	ApplyCommit(ctx context.Context, c store.Commit) ([]store.Event, error)
	Block(ctx context.Context, did syntax.DID, c cid.Cid) ([]byte, error)
	BlocksSince(ctx context.Context, did syntax.DID, sinceRev syntax.TID, fn func(store.Block) error) error
	Record(ctx context.Context, did syntax.DID, collection syntax.NSID, rkey syntax.RecordKey) (*store.RecordRef, error)
	ListRecords(ctx context.Context, did syntax.DID, collection syntax.NSID, limit int, cursor string, reverse bool) ([]store.RecordRef, error)
	Collections(ctx context.Context, did syntax.DID) ([]syntax.NSID, error)
	ListRepos(ctx context.Context, cursor string, limit int) ([]store.RepoInfo, error)
}

// Publisher hands stored events to firehose subscribers; it must not block.
type Publisher interface {
	Publish(events ...store.Event)
}

// BlobMover makes an uploaded blob permanent when a record first
// references it; it must be idempotent (a retried commit moves again).
type BlobMover interface {
	MakePermanent(ctx context.Context, did syntax.DID, tempKey string, c cid.Cid) error
}

// Signer gives an account's repo signing key (keyring.Keyring does, and
// caches it).
type Signer interface {
	SigningKey(ctx context.Context, did string) (atcrypto.PrivateKey, error)
}

// Service applies and reads record writes.
type Service struct {
	store   Store
	keys    Signer
	blobs   BlobMover
	engine  *repo.Engine
	events  Publisher
	catalog lexicon.Catalog
	log     *slog.Logger
	clock   *syntax.TIDClock

	locks sync.Map // DID → *sync.Mutex
	heads sync.Map // DID → repo.Head of the last commit made here
}

// New builds a Service. catalog may be nil (every type is then unknown).
func New(st Store, keys Signer, blobs BlobMover, engine *repo.Engine, events Publisher, catalog lexicon.Catalog, log *slog.Logger) *Service {
	return &Service{store: st, keys: keys, blobs: blobs, engine: engine, events: events, catalog: catalog, log: log, clock: syntax.NewTIDClock(0)}
}

// Write is one record change asked for by a client.
type Write struct {
	Action     repo.Action
	Collection string
	RKey       string // optional for creates
	// Record is the record as JSON data-model values, for creates and
	// updates.
	Record map[string]any
	// SwapRecord, when set, is the CID the record must have now; an empty
	// string means it must not exist.
	SwapRecord *string
}

// Request is one call's writes.
type Request struct {
	// Repo is the repository the client names, by DID or handle; Caller
	// is the authenticated account, which must own it.
	Repo   syntax.AtIdentifier
	Caller syntax.DID
	// Validate is the lexicon validation mode: nil validates known types
	// and accepts unknown ones; true requires a known, valid type; false
	// skips validation.
	Validate *bool
	Writes   []Write
	// SwapCommit, when set, is the commit CID the repository must be at.
	SwapCommit string
}

// Result is one write's outcome.
type Result struct {
	Action           repo.Action
	URI              string
	CID              string // empty for deletes
	ValidationStatus string // "valid", "unknown", or "" when not validated
}

// CommitMeta identifies the commit a request made.
type CommitMeta struct {
	CID string
	Rev string
}

// Response is what a request produced. Commit is nil when nothing changed
// (a delete of a missing record).
type Response struct {
	Commit  *CommitMeta
	Results []Result
}

func (s *Service) lock(did string) func() {
	m, _ := s.locks.LoadOrStore(did, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// Apply validates writes and makes one commit of them, in four steps,
// each the one owner of its checks: prepare (the request alone: the write
// count, the account and each write's names and record), plan (against
// the head and the record index: swaps, existence, no-op writes), build
// (blobs claimed and the commit signed) and commit (stored with its event
// and published).
func (s *Service) Apply(ctx context.Context, req Request) (*Response, error) {
	c, err := s.prepareCall(ctx, req)
	if err != nil {
		return nil, err
	}
	unlock := s.lock(c.did.String())
	defer unlock()
	pl, err := s.plan(ctx, c)
	if err != nil {
		return nil, err
	}
	// Writes that all changed nothing make no commit; an empty request
	// makes an empty one (the official PDS does, advancing the rev).
	if !pl.changed && len(c.writes) > 0 {
		return &Response{Results: pl.results}, nil
	}
	b, err := s.build(ctx, c.did, pl)
	if err != nil {
		return nil, err
	}
	if err := s.commit(ctx, b); err != nil {
		return nil, err
	}
	return &Response{Commit: &CommitMeta{CID: b.commit.CID.String(), Rev: b.commit.Rev.String()}, Results: pl.results}, nil
}

func accountInactive(a *store.Account) error {
	if a.TakedownRef != "" {
		return refusal.New("RepoTakendown", "Repo has been takendown: "+a.DID.String())
	}
	return refusal.New("RepoDeactivated", "Repo has been deactivated: "+a.DID.String())
}

// blockSource reads one repository's blocks from the store.
type blockSource struct {
	store Store
	did   syntax.DID
}

func (b blockSource) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := b.store.Block(ctx, b.did, c)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", repo.ErrBlockNotFound, c)
	}
	return data, err
}

var _ repo.BlockSource = blockSource{}
