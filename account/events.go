package account

import (
	"bytes"
	"fmt"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/datetime"
	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/sequencer"
	"github.com/hearth-pds/hearth/store"
)

// Publisher hands stored events to firehose subscribers; it must not block.
type Publisher interface {
	Publish(events ...store.Event)
}

func stamp(at time.Time) string { return at.UTC().Format(datetime.Layout) }

// identityEvent announces a DID's handle (or a change of its document).
func identityEvent(did, handle string) store.NewEvent {
	return store.NewEvent{DID: syntax.DID(did), Kind: store.KindIdentity, Encode: func(seq int64, at time.Time) ([]byte, error) {
		e := &comatproto.SyncSubscribeRepos_Identity{Did: did, Time: stamp(at)}
		if handle != "" {
			e.Handle = &handle
		}
		return sequencer.EncodeIdentity(seq, e)
	}}
}

// accountEvent announces an account's hosting status.
func accountEvent(did string, active bool, status string) store.NewEvent {
	return store.NewEvent{DID: syntax.DID(did), Kind: store.KindAccount, Encode: func(seq int64, at time.Time) ([]byte, error) {
		e := &comatproto.SyncSubscribeRepos_Account{Did: did, Active: active, Time: stamp(at)}
		if status != "" {
			e.Status = &status
		}
		return sequencer.EncodeAccount(seq, e)
	}}
}

// syncEvent announces a repository's current commit (#sync): a CAR of the
// commit block alone, from which a relay restarts the repository.
func syncEvent(did, rev string, commit repo.Block) (store.NewEvent, error) {
	var car bytes.Buffer
	if err := repo.WriteCAR(&car, commit.CID, []repo.Block{commit}); err != nil {
		return store.NewEvent{}, fmt.Errorf("encode sync event: %w", err)
	}
	return store.NewEvent{DID: syntax.DID(did), Kind: store.KindSync, Encode: func(seq int64, at time.Time) ([]byte, error) {
		return sequencer.EncodeSync(seq, &comatproto.SyncSubscribeRepos_Sync{Did: did, Blocks: car.Bytes(), Rev: rev, Time: stamp(at)})
	}}, nil
}

// genesisEvents are the events of a new account, in the official PDS's
// order: its identity, its status, the first commit (no ops, no since)
// and a #sync carrying that commit, so a relay can start the repository
// from either.
func genesisEvents(did, handle string, root cid.Cid, rev string, blocks []repo.Block) ([]store.NewEvent, error) {
	var all bytes.Buffer
	if err := repo.WriteCAR(&all, root, blocks); err != nil {
		return nil, fmt.Errorf("encode genesis blocks: %w", err)
	}
	commit := store.NewEvent{DID: syntax.DID(did), Kind: store.KindCommit, Encode: func(seq int64, at time.Time) ([]byte, error) {
		return sequencer.EncodeCommit(seq, &comatproto.SyncSubscribeRepos_Commit{
			Repo:   did,
			Commit: lexutil.LexLink(root),
			Rev:    rev,
			Blocks: all.Bytes(),
			Ops:    []*comatproto.SyncSubscribeRepos_RepoOp{},
			Blobs:  []lexutil.LexLink{},
			Time:   stamp(at),
		})
	}}
	var sync store.NewEvent
	for _, b := range blocks {
		if b.CID == root {
			var err error
			if sync, err = syncEvent(did, rev, b); err != nil {
				return nil, err
			}
		}
	}
	if sync.Encode == nil {
		return nil, fmt.Errorf("genesis blocks lack the commit %s", root)
	}
	return []store.NewEvent{identityEvent(did, handle), accountEvent(did, true, ""), commit, sync}, nil
}
