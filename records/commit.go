package records

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/store"
)

// built is a signed commit ready to store.
type built struct {
	did    syntax.DID
	commit store.Commit
	head   repo.Head // the repository's head once the commit is stored
}

// build claims the blobs the plan's records reference and makes the
// signed commit with its #commit event. The plan owns the record checks,
// so an error of the engine's own checks here means the record index and
// the tree disagree: a damaged repository, an internal error.
func (s *Service) build(ctx context.Context, did syntax.DID, pl *plan) (*built, error) {
	if err := s.claimBlobs(ctx, did, pl.claims); err != nil {
		return nil, err
	}
	key, err := s.keys.SigningKey(ctx, did.String())
	if err != nil {
		return nil, err
	}
	rev := repo.NextRev(s.clock, pl.head.Rev)
	res, err := s.engine.Apply(ctx, pl.src, pl.head, key, rev, pl.writes)
	if err != nil {
		return nil, fmt.Errorf("apply writes to %s: %w", did, err)
	}
	event, err := commitEvent(did, res)
	if err != nil {
		return nil, err
	}
	b := &built{
		did:    did,
		commit: storeCommit(did, pl, res),
		head:   repo.Head{DID: did, Commit: res.Commit.CID, Rev: res.Commit.Rev, Data: res.Commit.Data},
	}
	b.commit.Events = []store.NewEvent{event}
	return b, nil
}

// storeCommit is the store's form of an engine result.
func storeCommit(did syntax.DID, pl *plan, res *repo.Result) store.Commit {
	commit := store.Commit{
		DID:      did,
		PrevCID:  pl.head.Commit,
		CID:      res.Commit.CID,
		Rev:      res.Commit.Rev,
		Removed:  res.Removed,
		BlobRefs: pl.blobRefs,
		Blocks:   make([]store.Block, len(res.Blocks)),
	}
	for i, b := range res.Blocks {
		commit.Blocks[i] = store.Block{CID: b.CID, Content: b.Data}
	}
	for _, op := range res.Ops {
		collection, rkey, _ := strings.Cut(op.Path, "/")
		ref := store.RecordRef{Collection: syntax.NSID(collection), RKey: syntax.RecordKey(rkey)}
		if op.Prev.Defined() {
			commit.Released = append(commit.Released, op.Prev)
		}
		if op.Action == repo.Delete {
			commit.Deletes = append(commit.Deletes, ref)
		} else {
			ref.CID = op.CID
			commit.Puts = append(commit.Puts, ref)
		}
	}
	return commit
}

// commit stores a built commit with its event, in one transaction, and
// publishes the event.
func (s *Service) commit(ctx context.Context, b *built) error {
	stored, err := s.store.ApplyCommit(ctx, b.commit)
	if err != nil {
		// The cached tree moved ahead of the store: drop it.
		s.engine.Cache().Forget(b.did)
		if errors.Is(err, store.ErrBlobNotFound) {
			return refusal.New("BlobNotFound", "Could not find blob: "+strings.TrimPrefix(err.Error(), store.ErrBlobNotFound.Error()+": "))
		}
		return fmt.Errorf("store commit: %w", err)
	}
	s.heads.Store(b.did.String(), b.head)
	s.events.Publish(stored...)
	return nil
}

// claimBlobs checks that the account uploaded every blob the writes
// reference and moves first-time ones out of the temporary area. Every
// reference is checked before any is moved, so a refused write moves
// nothing. The moves happen before the commit: if the commit then fails,
// a moved blob stays an unreferenced upload for the collector, never a
// reference to nothing.
func (s *Service) claimBlobs(ctx context.Context, did syntax.DID, refs []atdata.Blob) error {
	type move struct {
		key string
		c   cid.Cid
	}
	var moves []move
	seen := map[cid.Cid]bool{}
	for _, ref := range refs {
		c := ref.Ref.CID()
		if seen[c] {
			continue
		}
		seen[c] = true
		b, err := s.store.Blob(ctx, did, c)
		if errors.Is(err, store.ErrNotFound) || (err == nil && b.TakedownRef != "") {
			return refusal.New("BlobNotFound", "Could not find blob: "+c.String())
		}
		if err != nil {
			return err
		}
		if b.TempKey == "" {
			continue
		}
		// The first reference must describe the upload truthfully, as the
		// official PDS checks (later ones are not re-checked there either).
		if ref.MimeType != b.MimeType {
			return refusal.New("InvalidMimeType", fmt.Sprintf("Referenced Mimetype does not match stored blob. Expected: %s, Got: %s", b.MimeType, ref.MimeType))
		}
		if ref.Size != b.Size {
			return refusal.New("InvalidSize", fmt.Sprintf("Referenced Size does not match stored blob. Expected: %d, Got: %d", b.Size, ref.Size))
		}
		moves = append(moves, move{b.TempKey, c})
	}
	for _, m := range moves {
		if err := s.blobs.MakePermanent(ctx, did, m.key, m.c); err != nil {
			return fmt.Errorf("make blob %s of %s permanent: %w", m.c, did, err)
		}
	}
	return nil
}
