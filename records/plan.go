package records

import (
	"context"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/store"
)

// plan is a call run against its repository's head and record index: one
// result per write, and the net change of each path for the commit.
type plan struct {
	src      blockSource
	head     repo.Head // the head the commit is built on
	results  []Result
	writes   []repo.Write // one per changed path, in the order paths first appear
	blobRefs []store.BlobRef
	claims   []atdata.Blob
	// changed: some write did something (a request whose writes all
	// changed nothing makes no commit).
	changed bool
}

// planHead reads the head the commit will follow and checks swapCommit
// against it.
func (s *Service) planHead(ctx context.Context, c *call) (*plan, error) {
	root, err := s.store.RepoRoot(ctx, c.did)
	if err != nil {
		return nil, fmt.Errorf("repo root of %s: %w", c.did, err)
	}
	if c.swapCommit.Defined() && c.swapCommit != root.CID {
		return nil, refusal.New("InvalidSwap", "Commit was at "+root.CID.String())
	}
	pl := &plan{src: blockSource{store: s.store, did: c.did}}
	if pl.head, err = s.head(ctx, pl.src, c.did, root.CID); err != nil {
		return nil, err
	}
	return pl, nil
}

// pathState is one path as the writes before the current one left it.
type pathState struct {
	collection syntax.NSID
	rkey       syntax.RecordKey
	before     cid.Cid   // record CID in the index before the call (cid.Undef: absent)
	now        cid.Cid   // record CID after the writes so far
	put        *prepared // the write that put now
}

// plan runs the writes in order, each checked against the path as the
// writes before it in the call left it, which is the official PDS's rule
// (it applies them one by one to the tree): a path may be named more than
// once, so create then delete, create then update, update then update,
// update then delete and delete then create of one path are accepted, and
// a second create of a path, or an update or delete of one the call
// already deleted, are refused (the official fails those with a 500 from
// its tree; Hearth names the mistake). The official's #commit then lists
// one op per write, each with the prev the record index had before the
// call (its transactor's formatCommit), so create then delete is a create
// op and a delete op without prev, and the record ends absent. Consumers
// refuse that: indigo's VerifyCommitMessage finds a create whose record is
// not in the tree, and NormalizeOps a path named twice. Hearth's commit
// carries the net change per path instead: create then delete of a new
// path is no op (the commit still advances the rev), delete then create
// an update, and so on. The XRPC answer has one result per write, as the
// official's.
//
// The repository must be locked.
func (s *Service) plan(ctx context.Context, c *call) (*plan, error) {
	did := c.did
	pl, err := s.planHead(ctx, c)
	if err != nil {
		return nil, err
	}
	// One state per path, in the order paths first appear; the map finds
	// a path named again.
	states := make([]pathState, 0, len(c.writes))
	index := make(map[string]int, len(c.writes))
	pl.results = make([]Result, 0, len(c.writes))
	for i := range c.writes {
		p := &c.writes[i]
		path := p.collection.String() + "/" + p.rkey.String()
		n, ok := index[path]
		if !ok {
			current, err := s.store.Record(ctx, did, p.collection, p.rkey)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			st := pathState{collection: p.collection, rkey: p.rkey}
			if err == nil {
				st.before, st.now = current.CID, current.CID
			}
			n = len(states)
			index[path] = n
			states = append(states, st)
		}
		res, changed, err := states[n].step(did, p)
		if err != nil {
			return nil, err
		}
		pl.results = append(pl.results, res)
		pl.changed = pl.changed || changed
	}
	pl.net(states)
	return pl, nil
}

// net adds the commit's writes: each path's change from before the call
// to after it. Only records the commit leaves in the repository claim
// their blobs (one created and deleted in the call references nothing).
func (pl *plan) net(paths []pathState) {
	pl.writes = make([]repo.Write, 0, len(paths))
	for i := range paths {
		st := &paths[i]
		switch {
		case st.before == st.now:
			continue
		case !st.now.Defined():
			pl.writes = append(pl.writes, repo.Write{Action: repo.Delete, Collection: st.collection, RKey: st.rkey})
			continue
		}
		action := repo.Update
		if !st.before.Defined() {
			action = repo.Create
		}
		p := st.put
		pl.writes = append(pl.writes, repo.Write{Action: action, Collection: p.collection, RKey: p.rkey, Record: p.cbor})
		for _, b := range p.blobs {
			pl.blobRefs = append(pl.blobRefs, store.BlobRef{Collection: p.collection, RKey: p.rkey, CID: b.Ref.CID()})
			pl.claims = append(pl.claims, b)
		}
	}
}

// step applies one write to its path and returns the write's result;
// changed is false for a write that changes nothing (deleteRecord of an
// absent record, a record rewritten as it is).
func (st *pathState) step(did syntax.DID, p *prepared) (res Result, changed bool, err error) {
	exists := st.now.Defined()
	if p.action == repo.Delete && !exists && p.lenient {
		// deleteRecord of what is not there changes nothing, whatever its
		// swap says, as with the official PDS: no commit.
		return Result{Action: repo.Delete, URI: p.uri(did)}, false, nil
	}
	if p.swapRecord != nil {
		switch {
		case *p.swapRecord == "" && exists:
			return res, false, refusal.New("InvalidSwap", "Record was at "+st.now.String())
		case *p.swapRecord != "" && (!exists || st.now.String() != *p.swapRecord):
			if exists {
				return res, false, refusal.New("InvalidSwap", "Record was at "+st.now.String())
			}
			return res, false, refusal.New("InvalidSwap", "Record was at null")
		}
	}
	action := p.action
	switch {
	case action == repo.Create && exists && p.upsert:
		action = repo.Update
	case action == repo.Create && exists:
		return res, false, invalidRequest("Record already exists: %s", p.uri(did))
	case action == repo.Update && !exists && p.upsert:
		action = repo.Create
	case action == repo.Update && !exists:
		return res, false, invalidRequest("Could not find record: %s", p.uri(did))
	case action == repo.Update && st.now == p.cid:
		// Rewriting a record as it is changes nothing: no commit, as with
		// the official PDS.
		return Result{Action: repo.Update, URI: p.uri(did), CID: p.cid.String(), ValidationStatus: p.status}, false, nil
	case action == repo.Delete && !exists:
		return res, false, invalidRequest("Could not find record: %s", p.uri(did))
	}
	if action == repo.Delete {
		st.now, st.put = cid.Undef, nil
		return Result{Action: action, URI: p.uri(did)}, true, nil
	}
	st.now, st.put = p.cid, p
	return Result{Action: action, URI: p.uri(did), CID: p.cid.String(), ValidationStatus: p.status}, true, nil
}

// head returns the repository head at commit c: remembered from the last
// commit made here when it is still the current one (the store decides),
// read from the commit block otherwise.
func (s *Service) head(ctx context.Context, src repo.BlockSource, did syntax.DID, c cid.Cid) (repo.Head, error) {
	if h, ok := s.heads.Load(did.String()); ok && h.(repo.Head).Commit == c {
		return h.(repo.Head), nil
	}
	return repo.LoadHead(ctx, src, did, c)
}
