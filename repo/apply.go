package repo

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	cbg "github.com/whyrusleeping/cbor-gen"
)

// MaxWrites is the most writes one Apply accepts: the limit of the #commit
// event's ops list, and of com.atproto.repo.applyWrites.
const MaxWrites = 200

// Head is a repository's current state as the store knows it.
type Head struct {
	DID syntax.DID
	// Commit is the CID of the current signed commit.
	Commit cid.Cid
	// Rev is the current commit's rev.
	Rev syntax.TID
	// Data is the root of the current tree (the commit's data field).
	Data cid.Cid
}

// Action is what a write or an op does to a record; the values are the
// #commit op action names.
type Action string

// The three actions.
const (
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
)

// Write is one record change asked of Apply.
type Write struct {
	Action     Action
	Collection syntax.NSID
	RKey       syntax.RecordKey
	// Record is the record's DAG-CBOR encoding, for Create and Update; nil
	// for Delete. Apply only checks it is a CBOR map: lexicon validation and
	// the JSON to DAG-CBOR conversion are the caller's.
	Record []byte
}

// Path is the record's repository path, collection/rkey: its key in the
// tree.
func (w Write) Path() string { return w.Collection.String() + "/" + w.RKey.String() }

// Op is one record change a commit made, as the #commit event lists it.
type Op struct {
	Action Action
	Path   string
	// CID is the new record's CID; cid.Undef for Delete.
	CID cid.Cid
	// Prev is the record's CID before the commit; cid.Undef for Create.
	Prev cid.Cid
}

// Commit describes a commit Apply produced.
type Commit struct {
	CID cid.Cid
	Rev syntax.TID
	// Data is the new tree root.
	Data cid.Cid
	// PrevData is the tree root before the commit (the #commit prevData).
	PrevData cid.Cid
	// Since is the rev of the commit this one follows (the #commit since).
	Since syntax.TID
}

// Result is what the caller writes and publishes for one commit.
type Result struct {
	Commit Commit
	// Ops are the changes in the order of the writes. An update whose record
	// is byte-identical to the current one changes nothing and has no op, so
	// Ops can be shorter than the writes (or empty: the commit then only
	// advances the rev).
	Ops []Op
	// Blocks are the blocks to store in the commit's transaction: the commit,
	// the new tree nodes and the new records. Storing a block that already
	// exists must be a no-op.
	Blocks []Block
	// EventBlocks are the #commit event's blocks, commit first: Blocks plus
	// the unchanged tree nodes a consumer needs to invert the ops and check
	// PrevData. Write them with WriteCAR and Commit.CID as the root.
	EventBlocks []Block
	// Removed are blocks of this repository no longer referenced by its
	// head: tree nodes the commit replaced and the previous commit. Records
	// are not listed (two keys can share a record block; the store's record
	// index knows whether any row still names a record CID). A store that
	// shares blocks between repositories must count references before
	// deleting.
	Removed []cid.Cid
}

// Engine applies writes to repositories. It keeps the trees of recently
// written repositories in memory (see Cache) so a write costs the changed
// nodes, not a reload. It is safe for concurrent use across repositories;
// writes to one repository must be serialized by the caller.
type Engine struct {
	cache *Cache
}

// NewEngine returns an Engine whose tree cache holds about cacheBytes
// (DefaultCacheBytes when 0; a negative value disables caching).
func NewEngine(cacheBytes int64) *Engine {
	return &Engine{cache: NewCache(cacheBytes)}
}

// Cache returns the engine's tree cache, for metrics and invalidation.
func (e *Engine) Cache() *Cache { return e.cache }

// mutation is one change to a tree key: val is nil for a delete.
type mutation struct {
	key    []byte
	val    *cid.Cid
	action Action
}

// Apply makes one signed commit of writes on top of head with the account's
// key. rev is the new commit's rev and must sort after head.Rev (use
// NextRev). On error nothing the caller can see has changed: it returns no
// blocks, and its cached tree is either untouched or dropped.
//
// Errors: ErrTooManyWrites, ErrInvalidWrite, ErrDuplicatePath,
// ErrRevNotIncreasing; ErrRecordExists for a create of an existing record,
// ErrRecordNotFound for an update or delete of a missing one (both wrapped
// with the path); anything else is a store failure (ErrBlockNotFound: a
// damaged repository) or a signing failure.
func (e *Engine) Apply(ctx context.Context, src BlockSource, head Head, key atcrypto.PrivateKey, rev syntax.TID, writes []Write) (*Result, error) {
	if len(writes) > MaxWrites {
		return nil, fmt.Errorf("%w: %d > %d", ErrTooManyWrites, len(writes), MaxWrites)
	}
	if head.Rev != "" && rev.String() <= head.Rev.String() {
		return nil, fmt.Errorf("%w: %s after %s", ErrRevNotIncreasing, rev, head.Rev)
	}
	muts, records, err := prepare(writes)
	if err != nil {
		return nil, err
	}

	t := e.cache.take(head.DID, head.Data)
	if t == nil {
		if t, err = loadTree(ctx, src, head.Data); err != nil {
			return nil, err
		}
	}
	d, err := mutate(ctx, src, t, muts)
	if err != nil {
		if d != nil && d.tidy {
			e.cache.put(head.DID, head.Data, t)
		}
		return nil, err
	}

	commit, err := signCommit(head.DID.String(), key, rev.String(), d.root)
	if err != nil {
		return nil, err // the tree is already changed: let it go
	}
	res := &Result{
		Commit: Commit{CID: commit.CID, Rev: rev, Data: d.root, PrevData: head.Data, Since: head.Rev},
		Ops:    d.ops,
	}
	res.Blocks = append(res.Blocks, commit)
	res.Blocks = append(res.Blocks, d.newNodes...)
	res.Blocks = append(res.Blocks, recordBlocks(records, d.ops)...)
	res.EventBlocks = make([]Block, 0, len(res.Blocks)+len(d.proofNodes))
	res.EventBlocks = append(res.EventBlocks, res.Blocks...)
	res.EventBlocks = append(res.EventBlocks, d.proofNodes...)
	res.Removed = d.removed
	if head.Commit.Defined() && head.Commit != commit.CID {
		res.Removed = append(res.Removed, head.Commit)
	}
	e.cache.put(head.DID, d.root, t)
	return res, nil
}

// prepare checks the writes and turns them into tree mutations; records
// maps each new record CID to its bytes.
func prepare(writes []Write) ([]mutation, map[cid.Cid][]byte, error) {
	muts := make([]mutation, 0, len(writes))
	records := make(map[cid.Cid][]byte)
	seen := make(map[string]bool, len(writes))
	for _, w := range writes {
		path := w.Path()
		if seen[path] {
			return nil, nil, fmt.Errorf("%w: %s", ErrDuplicatePath, path)
		}
		seen[path] = true
		m := mutation{key: []byte(path), action: w.Action}
		switch w.Action {
		case Create, Update:
			if err := checkRecord(w.Record); err != nil {
				return nil, nil, fmt.Errorf("%w: %s: %v", ErrInvalidWrite, path, err)
			}
			c, err := cidFor(w.Record)
			if err != nil {
				return nil, nil, err
			}
			m.val = &c
			records[c] = w.Record
		case Delete:
			if w.Record != nil {
				return nil, nil, fmt.Errorf("%w: %s: delete with a record", ErrInvalidWrite, path)
			}
		default:
			return nil, nil, fmt.Errorf("%w: %s: action %q", ErrInvalidWrite, path, w.Action)
		}
		muts = append(muts, m)
	}
	return muts, records, nil
}

// checkRecord is the cheap structural check: one well-formed CBOR item that
// is a map. Trailing bytes would change the CID without changing the
// record, so they are refused too.
func checkRecord(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("empty record")
	}
	if b[0]>>5 != cbg.MajMap {
		return fmt.Errorf("record is not a CBOR map")
	}
	if err := cbg.ValidateCBOR(b); err != nil {
		return fmt.Errorf("record is not CBOR: %v", err)
	}
	r := bytes.NewReader(b)
	if err := skipCBOR(r); err != nil {
		return fmt.Errorf("record is not CBOR: %v", err)
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d bytes after the record", r.Len())
	}
	return nil
}

// skipCBOR reads one CBOR item (already validated) from r.
func skipCBOR(r *bytes.Reader) error {
	for remaining := 1; remaining > 0; remaining-- {
		maj, extra, err := cbg.CborReadHeader(r)
		if err != nil {
			return err
		}
		switch maj {
		case cbg.MajByteString, cbg.MajTextString:
			if _, err := r.Seek(int64(extra), 1); err != nil {
				return err
			}
		case cbg.MajTag:
			remaining++
		case cbg.MajArray:
			remaining += int(extra)
		case cbg.MajMap:
			remaining += 2 * int(extra)
		}
	}
	return nil
}

// recordBlocks returns the blocks of the records the ops created or changed.
func recordBlocks(records map[cid.Cid][]byte, ops []Op) []Block {
	var out []Block
	seen := make(map[cid.Cid]bool)
	for _, op := range ops {
		if op.Action == Delete || seen[op.CID] {
			continue
		}
		seen[op.CID] = true
		out = append(out, Block{CID: op.CID, Data: records[op.CID]})
	}
	return out
}

// diff is the outcome of mutate.
type diff struct {
	root       cid.Cid
	ops        []Op
	newNodes   []Block
	proofNodes []Block
	removed    []cid.Cid
	// tidy: the tree was not changed (the error came from a check), so it
	// can go back to the cache as it is.
	tidy bool
}

// mutate applies muts to t. It first checks every mutation against the
// tree before the commit, so the record errors leave the tree untouched;
// after that an error leaves t in an unknown state and t must be dropped.
func mutate(ctx context.Context, src BlockSource, t *lazyTree, muts []mutation) (*diff, error) {
	// Nodes of the tree before the commit, found clean (decoded from the
	// store or encoded by an earlier commit) before anything changed them.
	before := make(map[*mst.Node]probe)
	remember := func(n *mst.Node) {
		if _, ok := before[n]; ok || n.Dirty || n.CID == nil {
			return
		}
		if p, ok := probeFor(n); ok {
			before[n] = p
		}
	}
	ld := &loader{ctx: ctx, src: src, t: t, visit: remember}

	ops := make([]Op, 0, len(muts))
	active := muts[:0:0]
	for _, m := range muts {
		if err := ld.hydrate(t.tree.Root, m.key); err != nil {
			return &diff{tidy: true}, err
		}
		prev, err := t.tree.Get(m.key)
		if err != nil {
			return &diff{tidy: true}, fmt.Errorf("look up %s: %w", m.key, err)
		}
		op := Op{Action: m.action, Path: string(m.key)}
		switch {
		case m.action == Create && prev != nil:
			return &diff{tidy: true}, fmt.Errorf("%w: %s", ErrRecordExists, m.key)
		case m.action != Create && prev == nil:
			return &diff{tidy: true}, fmt.Errorf("%w: %s", ErrRecordNotFound, m.key)
		case m.action == Update && *prev == *m.val:
			continue // nothing changes, and an op with cid == prev cannot be inverted
		}
		if prev != nil {
			op.Prev = *prev
		}
		if m.val != nil {
			op.CID = *m.val
		}
		ops = append(ops, op)
		active = append(active, m)
	}

	for _, m := range active {
		if err := ld.hydrate(t.tree.Root, m.key); err != nil {
			return nil, err
		}
		var prev *cid.Cid
		var err error
		if m.val != nil {
			prev, err = t.tree.Insert(m.key, *m.val)
		} else {
			prev, err = t.tree.Remove(m.key)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", m.action, m.key, err)
		}
		if (prev == nil) != (m.action == Create) {
			return nil, fmt.Errorf("%s %s: tree disagreed with the check before it", m.action, m.key)
		}
		if t.tree.Root.IsEmpty() && t.tree.Root.Height != 0 {
			// A tree emptied by removals keeps its old layer; indigo would
			// grow a chain of keyless nodes under it on the next insert.
			t.tree.Root = &mst.Node{Height: 0, Dirty: true}
		}
	}

	// The inversion proof is taken in the tree after the commit: that is the
	// tree a consumer starts from. Collect the nodes, then encode.
	var proofPath []*mst.Node
	ld.visit = func(n *mst.Node) {
		remember(n)
		proofPath = append(proofPath, n)
	}
	for _, m := range active {
		if err := ld.hydrate(t.tree.Root, m.key); err != nil {
			return nil, err
		}
	}
	if len(active) == 0 {
		// A commit that changes nothing still has to show its tree's root:
		// a consumer loads the tree from the event's blocks.
		proofPath = append(proofPath, t.tree.Root)
	}

	oldCIDs := make(map[cid.Cid]bool, len(before))
	for _, p := range before {
		oldCIDs[p.cid] = true
	}
	d := &diff{ops: ops}
	emitted := make(map[cid.Cid]bool)
	root, err := encodeDirty(t.tree.Root, func(n *mst.Node, c cid.Cid, data []byte) {
		emitted[c] = true
		b := Block{CID: c, Data: data}
		if oldCIDs[c] {
			d.proofNodes = append(d.proofNodes, b) // re-encoded, unchanged
			return
		}
		d.newNodes = append(d.newNodes, b)
		t.size += nodeCost(n)
	})
	if err != nil {
		return nil, err
	}
	d.root = root
	for _, n := range proofPath {
		if n.CID == nil || emitted[*n.CID] {
			continue
		}
		data, err := nodeBytes(ctx, src, n)
		if err != nil {
			return nil, err
		}
		emitted[*n.CID] = true
		d.proofNodes = append(d.proofNodes, Block{CID: *n.CID, Data: data})
	}

	// Size bookkeeping and the removed list: every node of the old tree the
	// commit could have replaced was remembered; those no longer found in
	// the new tree are garbage.
	for _, p := range before {
		if !present(t.tree.Root, p) {
			d.removed = append(d.removed, p.cid)
			t.size -= p.cost
		}
	}
	sort.Slice(d.removed, func(i, j int) bool { return d.removed[i].KeyString() < d.removed[j].KeyString() })
	return d, nil
}
