package records

import (
	"bytes"
	"fmt"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/hearth-pds/hearth/datetime"
	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/sequencer"
	"github.com/hearth-pds/hearth/store"
)

// commitEvent builds the #commit event of a commit (sync v1.1): its ops
// with prev CIDs, prevData, and the blocks a consumer needs to verify and
// invert it, as a CAR rooted at the commit.
func commitEvent(did syntax.DID, res *repo.Result) (store.NewEvent, error) {
	var car bytes.Buffer
	if err := repo.WriteCAR(&car, res.Commit.CID, res.EventBlocks); err != nil {
		return store.NewEvent{}, fmt.Errorf("encode commit blocks: %w", err)
	}
	ops := make([]*comatproto.SyncSubscribeRepos_RepoOp, 0, len(res.Ops))
	for _, op := range res.Ops {
		o := &comatproto.SyncSubscribeRepos_RepoOp{Action: string(op.Action), Path: op.Path}
		if op.CID.Defined() {
			l := lexutil.LexLink(op.CID)
			o.Cid = &l
		}
		if op.Prev.Defined() {
			l := lexutil.LexLink(op.Prev)
			o.Prev = &l
		}
		ops = append(ops, o)
	}
	evt := &comatproto.SyncSubscribeRepos_Commit{
		Repo:   did.String(),
		Commit: lexutil.LexLink(res.Commit.CID),
		Rev:    res.Commit.Rev.String(),
		Blocks: car.Bytes(),
		Ops:    ops,
		Blobs:  []lexutil.LexLink{},
	}
	if res.Commit.Since != "" {
		since := res.Commit.Since.String()
		evt.Since = &since
	}
	if res.Commit.PrevData.Defined() {
		l := lexutil.LexLink(res.Commit.PrevData)
		evt.PrevData = &l
	}
	return store.NewEvent{DID: did, Kind: store.KindCommit, Encode: func(seq int64, at time.Time) ([]byte, error) {
		e := *evt
		e.Time = at.UTC().Format(datetime.Layout)
		return sequencer.EncodeCommit(seq, &e)
	}}, nil
}

// recordCID is a record's CID: CIDv1, DAG-CBOR, sha2-256.
func recordCID(data []byte) (cid.Cid, error) {
	sum, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		return cid.Undef, fmt.Errorf("hash record: %w", err)
	}
	return cid.NewCidV1(cid.DagCBOR, sum), nil
}
