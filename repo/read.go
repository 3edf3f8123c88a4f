package repo

import (
	"bytes"
	"context"
	"fmt"

	atrepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// Reads walk the tree from the BlockSource at the root they are given and
// never use the write cache: a cached tree is being changed by the writer
// while readers run, and a read at an explicit root needs no invalidation.
// They cost one block read per tree level.

// LoadHead reads the commit c of repository did and returns it as a Head.
// It fails when the commit belongs to another DID or does not parse.
func LoadHead(ctx context.Context, src BlockSource, did syntax.DID, c cid.Cid) (Head, error) {
	commit, err := readCommit(ctx, src, c)
	if err != nil {
		return Head{}, err
	}
	if commit.DID != did.String() {
		return Head{}, fmt.Errorf("commit %s is %s's, not %s's", c, commit.DID, did)
	}
	return Head{DID: did, Commit: c, Rev: syntax.TID(commit.Rev), Data: commit.Data}, nil
}

func readCommit(ctx context.Context, src BlockSource, c cid.Cid) (*atrepo.Commit, error) {
	data, err := src.GetBlock(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", c, err)
	}
	var commit atrepo.Commit
	if err := commit.UnmarshalCBOR(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("decode commit %s: %w", c, err)
	}
	if err := commit.VerifyStructure(); err != nil {
		return nil, fmt.Errorf("commit %s: %w", c, err)
	}
	return &commit, nil
}

// NextRev returns a rev for the commit after one at rev after: the clock's
// next TID, or after+1 when the clock is behind it (a clock that went back,
// or a repository imported with revs from a faster clock). Relays refuse a
// rev that does not increase.
func NextRev(clock *syntax.TIDClock, after syntax.TID) syntax.TID {
	next := clock.Next()
	if after == "" || next.String() > after.String() {
		return next
	}
	return syntax.NewTIDFromInteger(after.Integer() + 1)
}

// searchPath follows key down the tree rooted at root, calling visit with
// each node's CID and bytes, and returns the value of key (nil if absent).
// The path ends where key is found or where its place holds no subtree: the
// nodes passed to visit are exactly a proof of presence or absence.
func searchPath(ctx context.Context, src BlockSource, root cid.Cid, key []byte, visit func(Block)) (*cid.Cid, error) {
	c, height := root, -1
	for {
		data, err := src.GetBlock(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("read tree node %s: %w", c, err)
		}
		n, err := decodeNode(c, data, height)
		if err != nil {
			return nil, err
		}
		if visit != nil {
			visit(Block{CID: c, Data: data})
		}
		found, slot := locate(n, key)
		switch {
		case found >= 0:
			return n.Entries[found].Value, nil
		case slot < 0:
			return nil, nil
		}
		c, height = *n.Entries[slot].ChildCID, n.Height-1
	}
}

// GetRecord returns the CID and bytes of the record collection/rkey in the
// tree rooted at data, or ErrRecordNotFound.
func GetRecord(ctx context.Context, src BlockSource, data cid.Cid, collection syntax.NSID, rkey syntax.RecordKey) (cid.Cid, []byte, error) {
	path := collection.String() + "/" + rkey.String()
	v, err := searchPath(ctx, src, data, []byte(path), nil)
	if err != nil {
		return cid.Undef, nil, err
	}
	if v == nil {
		return cid.Undef, nil, fmt.Errorf("%w: %s", ErrRecordNotFound, path)
	}
	rec, err := src.GetBlock(ctx, *v)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("read record %s: %w", path, err)
	}
	return *v, rec, nil
}

// RecordProof returns the blocks of a com.atproto.sync.getRecord CAR for
// collection/rkey at commit commitCID: the commit (first; the CAR's root),
// the tree nodes on the record's search path and, when the record exists,
// the record. When it does not exist the same path proves it: it ends at the
// node where the key would sit, which has no subtree there. found reports
// which of the two the blocks prove.
func RecordProof(ctx context.Context, src BlockSource, commitCID cid.Cid, collection syntax.NSID, rkey syntax.RecordKey) (blocks []Block, found bool, err error) {
	commitData, err := src.GetBlock(ctx, commitCID)
	if err != nil {
		return nil, false, fmt.Errorf("read commit %s: %w", commitCID, err)
	}
	commit, err := readCommit(ctx, src, commitCID)
	if err != nil {
		return nil, false, err
	}
	blocks = []Block{{CID: commitCID, Data: commitData}}
	path := collection.String() + "/" + rkey.String()
	v, err := searchPath(ctx, src, commit.Data, []byte(path), func(b Block) { blocks = append(blocks, b) })
	if err != nil {
		return nil, false, err
	}
	if v == nil {
		return blocks, false, nil
	}
	rec, err := src.GetBlock(ctx, *v)
	if err != nil {
		return nil, false, fmt.Errorf("read record %s: %w", path, err)
	}
	return append(blocks, Block{CID: *v, Data: rec}), true, nil
}

// RecordRef names one record of a listing.
type RecordRef struct {
	RKey syntax.RecordKey
	CID  cid.Cid
}

// ListOptions select a page of ListRecords.
type ListOptions struct {
	// Cursor, when set, is the record key the previous page ended with;
	// the page starts after it in the listing's order.
	Cursor syntax.RecordKey
	// Limit caps the page (0: no cap).
	Limit int
	// Reverse lists in descending key order.
	Reverse bool
}

// ListRecords lists the records of collection in the tree rooted at data in
// record key order, walking only the subtrees that can hold the page. The
// store's record index answers listRecords faster; this is the tree's own
// answer, for checks and for stores without the index.
func ListRecords(ctx context.Context, src BlockSource, data cid.Cid, collection syntax.NSID, opts ListOptions) ([]RecordRef, error) {
	prefix := collection.String() + "/"
	// Keys of the collection lie strictly between prefix and prefix with its
	// last byte '/' raised to '0'.
	r := keyRange{lo: prefix, hi: collection.String() + "0", hasHi: true}
	if opts.Cursor != "" {
		if opts.Reverse {
			r.hi = prefix + opts.Cursor.String()
		} else {
			r.lo = prefix + opts.Cursor.String()
		}
	}
	var out []RecordRef
	w := rangeWalker{ctx: ctx, src: src, r: r, reverse: opts.Reverse, fn: func(key string, v cid.Cid) bool {
		out = append(out, RecordRef{RKey: syntax.RecordKey(key[len(prefix):]), CID: v})
		return opts.Limit <= 0 || len(out) < opts.Limit
	}}
	if _, err := w.walk(data, -1, keyRange{}); err != nil {
		return nil, err
	}
	return out, nil
}

// keyRange is an open interval of keys: lo < key (lo "" is unbounded, since
// keys are never empty) and key < hi when hasHi.
type keyRange struct {
	lo, hi string
	hasHi  bool
}

// overlaps reports whether a subtree whose keys lie in s can hold keys of r.
func (r keyRange) overlaps(s keyRange) bool {
	if s.hasHi && s.hi <= r.lo {
		return false
	}
	if r.hasHi && s.lo != "" && s.lo >= r.hi {
		return false
	}
	return true
}

func (r keyRange) contains(k string) bool {
	return k > r.lo && (!r.hasHi || k < r.hi)
}

type rangeWalker struct {
	ctx     context.Context
	src     BlockSource
	r       keyRange
	reverse bool
	fn      func(key string, v cid.Cid) bool // false stops the walk
}

// walk visits the keys of r in the subtree c (whose keys lie in bounds) in
// order; it returns false once fn asked to stop.
func (w *rangeWalker) walk(c cid.Cid, height int, bounds keyRange) (bool, error) {
	n, err := loadNode(w.ctx, w.src, c, height)
	if err != nil {
		return false, err
	}
	for j := range n.Entries {
		i := j
		if w.reverse {
			i = len(n.Entries) - 1 - j
		}
		e := n.Entries[i]
		if e.IsValue() {
			k := string(e.Key)
			if w.r.contains(k) && !w.fn(k, *e.Value) {
				return false, nil
			}
			continue
		}
		// A subtree lies between the keys beside it (or the node's bounds).
		sub := bounds
		if i > 0 {
			sub.lo = string(n.Entries[i-1].Key)
		}
		if i+1 < len(n.Entries) {
			sub.hi, sub.hasHi = string(n.Entries[i+1].Key), true
		}
		if !w.r.overlaps(sub) {
			continue
		}
		more, err := w.walk(*e.ChildCID, n.Height-1, sub)
		if err != nil || !more {
			return more, err
		}
	}
	return true, nil
}
