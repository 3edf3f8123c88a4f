package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/ipfs/go-cid"
)

// lazyTree is an indigo MST of which only some nodes are decoded: the rest
// are child entries with a ChildCID and no Child, read from a BlockSource
// when an operation needs them. indigo's Insert and Remove refuse to cross an
// unloaded child (mst.ErrPartialTree), so before each mutation hydrate loads
// every node the mutation can touch.
type lazyTree struct {
	tree mst.Tree
	// size estimates the memory held by the decoded nodes (see nodeCost).
	size int64
}

// loadTree decodes the root node of the tree whose root is data.
func loadTree(ctx context.Context, src BlockSource, data cid.Cid) (*lazyTree, error) {
	root, err := loadNode(ctx, src, data, -1)
	if err != nil {
		return nil, err
	}
	return &lazyTree{tree: mst.Tree{Root: root}, size: nodeCost(root)}, nil
}

// loadNode reads and decodes one node. height is the layer the parent
// expects (parent's height - 1), or -1 for a root, whose layer is that of its
// keys. The check against the keys' own layer catches a damaged or
// non-canonical tree before indigo's algorithms build on a wrong height.
func loadNode(ctx context.Context, src BlockSource, c cid.Cid, height int) (*mst.Node, error) {
	data, err := src.GetBlock(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("read tree node %s: %w", c, err)
	}
	return decodeNode(c, data, height)
}

// decodeNode is loadNode once the block is read.
func decodeNode(c cid.Cid, data []byte, height int) (*mst.Node, error) {
	nd, err := mst.NodeDataFromCBOR(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: decode node %s: %v", ErrInvalidTree, c, err)
	}
	n := nd.Node(&c)
	switch {
	case len(n.Entries) == 0:
		if height >= 0 {
			return nil, fmt.Errorf("%w: empty inner node %s", ErrInvalidTree, c)
		}
		n.Height = 0
	case n.Height < 0:
		// A node with no keys of its own, only a pointer one layer down.
		if height < 0 {
			return nil, fmt.Errorf("%w: root %s has no keys", ErrInvalidTree, c)
		}
		n.Height = height
	case height >= 0 && n.Height != height:
		return nil, fmt.Errorf("%w: node %s holds layer %d keys at layer %d", ErrInvalidTree, c, n.Height, height)
	}
	if n.Height == 0 {
		for _, e := range n.Entries {
			if e.IsChild() {
				return nil, fmt.Errorf("%w: child below layer 0 in %s", ErrInvalidTree, c)
			}
		}
	}
	return &n, nil
}

// loader loads children of a lazyTree on demand and reports each node it
// visits, so a caller can collect proofs or remember what a write touched.
type loader struct {
	ctx   context.Context
	src   BlockSource
	t     *lazyTree
	visit func(n *mst.Node)
}

// child returns the decoded child of entry i of n, loading it if needed.
func (l *loader) child(n *mst.Node, i int) (*mst.Node, error) {
	e := &n.Entries[i]
	if e.Child != nil {
		return e.Child, nil
	}
	if e.ChildCID == nil {
		return nil, fmt.Errorf("%w: child entry without link", ErrInvalidTree)
	}
	c, err := loadNode(l.ctx, l.src, *e.ChildCID, n.Height-1)
	if err != nil {
		return nil, err
	}
	e.Child = c
	l.t.size += nodeCost(c)
	return c, nil
}

// hydrate loads and visits every node an insert or remove of key can read:
// the search path of key and, where key is present, the inner spines of the
// subtrees on both sides of it.
//
// Why that set: all of indigo's traversals (findInsertionIndex, compareKey,
// split, proveMutation) descend along the key's position in whatever subtree
// they start from, and a removal merges the two neighbouring subtrees along
// their facing spines, which are again the key's position in them. The same
// set, taken in the tree after a commit, is what a consumer needs to invert
// the operation on key (see proofBlocks).
func (l *loader) hydrate(n *mst.Node, key []byte) error {
	for {
		if l.visit != nil {
			l.visit(n)
		}
		found, slot := locate(n, key)
		if found >= 0 {
			for _, i := range [2]int{found - 1, found + 1} {
				if i < 0 || i >= len(n.Entries) || !n.Entries[i].IsChild() {
					continue
				}
				c, err := l.child(n, i)
				if err != nil {
					return err
				}
				if err := l.hydrate(c, key); err != nil {
					return err
				}
			}
			return nil
		}
		if slot < 0 {
			return nil
		}
		c, err := l.child(n, slot)
		if err != nil {
			return err
		}
		n = c
	}
}

// locate finds key in n: found is the index of the value entry equal to key
// (or -1); otherwise slot is the index of the child entry whose range would
// hold key (or -1 when there is none).
func locate(n *mst.Node, key []byte) (found, slot int) {
	slot = -1
	for i := range n.Entries {
		e := &n.Entries[i]
		if e.IsChild() {
			slot = i
			continue
		}
		switch c := bytes.Compare(key, e.Key); {
		case c == 0:
			return i, -1
		case c < 0:
			return -1, slot
		}
		slot = -1
	}
	return -1, slot
}

// encodeDirty encodes every node changed since the tree was last encoded
// (indigo marks changed nodes, and the unchanged ones its proveMutation
// needed, Dirty), children first, and calls emit for each. It returns the
// root CID. Unlike indigo's WriteDiffBlocks it needs no blockstore and
// reports an entry that lost both its child and its link instead of encoding
// it as "no child".
func encodeDirty(n *mst.Node, emit func(n *mst.Node, c cid.Cid, data []byte)) (cid.Cid, error) {
	if !n.Dirty && n.CID != nil {
		return *n.CID, nil
	}
	for i := range n.Entries {
		e := &n.Entries[i]
		if !e.IsChild() {
			e.Dirty = false
			continue
		}
		if e.Child != nil && (e.Dirty || e.Child.Dirty || e.ChildCID == nil) {
			c, err := encodeDirty(e.Child, emit)
			if err != nil {
				return cid.Undef, err
			}
			e.ChildCID = &c
		}
		if e.ChildCID == nil {
			return cid.Undef, fmt.Errorf("%w: child entry without link", ErrInvalidTree)
		}
		e.Dirty = false
	}
	if err := checkShape(n); err != nil {
		return cid.Undef, err
	}
	nd := n.NodeData()
	data, c, err := nd.Bytes()
	if err != nil {
		return cid.Undef, fmt.Errorf("encode tree node: %w", err)
	}
	n.CID = c
	n.Dirty = false
	emit(n, *c, data)
	return *c, nil
}

// checkShape rejects the entry sequences NodeData would encode wrongly
// (it panics on some and silently drops a child on others).
func checkShape(n *mst.Node) error {
	prevChild := false
	for i, e := range n.Entries {
		switch {
		case e.IsChild() && e.IsValue():
			return fmt.Errorf("%w: entry is both key and child", ErrInvalidTree)
		case e.IsChild():
			if prevChild {
				return fmt.Errorf("%w: adjacent children at %d", ErrInvalidTree, i)
			}
			prevChild = true
		case e.IsValue():
			prevChild = false
		default:
			return fmt.Errorf("%w: empty entry at %d", ErrInvalidTree, i)
		}
	}
	if len(n.Entries) > 0 && !hasValue(n) && len(n.Entries) != 1 {
		return fmt.Errorf("%w: keyless node with %d entries", ErrInvalidTree, len(n.Entries))
	}
	return nil
}

func hasValue(n *mst.Node) bool {
	for _, e := range n.Entries {
		if e.IsValue() {
			return true
		}
	}
	return false
}

// nodeBytes returns the encoding of a clean node, re-encoding it rather
// than keeping every node's bytes in memory. A node whose stored form is not
// the canonical encoding (possible in an imported repository) re-encodes to
// another CID; its stored bytes are read back instead.
func nodeBytes(ctx context.Context, src BlockSource, n *mst.Node) ([]byte, error) {
	if n.CID == nil || n.Dirty {
		return nil, errors.New("node bytes of an unencoded node")
	}
	nd := n.NodeData()
	data, c, err := nd.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encode tree node: %w", err)
	}
	if *c == *n.CID {
		return data, nil
	}
	data, err = src.GetBlock(ctx, *n.CID)
	if err != nil {
		return nil, fmt.Errorf("read tree node %s: %w", n.CID, err)
	}
	return data, nil
}

// nodeCost estimates the heap held by a decoded node: the Node, its entry
// slice, key bytes and the CIDs it points to. It is an estimate for the cache
// bound, measured against runtime.MemStats in TestNodeCostEstimate.
func nodeCost(n *mst.Node) int64 {
	const (
		node  = 160 // Node struct, its CID pointer and CID string
		entry = 80  // NodeEntry in the slice, with append slack
		link  = 80  // a *cid.Cid: pointer target plus the string's bytes
	)
	c := int64(node)
	for _, e := range n.Entries {
		c += entry + int64(len(e.Key))
		if e.Value != nil {
			c += link
		}
		if e.ChildCID != nil {
			c += link
		}
	}
	return c
}

// probe says where a node of the tree before a commit can be looked for in
// the tree after it: a node is the same node only at the same layer, on the
// search path of any key it holds.
type probe struct {
	cid    cid.Cid
	height int
	key    []byte
	cost   int64
}

// probeFor returns the probe of a clean node, or false when the node holds
// no key reachable without loading more (then it is never reported removed:
// leaking a block is safe, deleting a live one is not).
func probeFor(n *mst.Node) (probe, bool) {
	if n.CID == nil {
		return probe{}, false
	}
	p := probe{cid: *n.CID, height: n.Height, cost: nodeCost(n)}
	for m := n; m != nil; {
		var next *mst.Node
		for _, e := range m.Entries {
			if e.IsValue() {
				p.key = e.Key
				return p, true
			}
			if e.Child != nil {
				next = e.Child
				break
			}
		}
		m = next
	}
	if len(n.Entries) == 0 {
		return p, true // the empty root: found only as the root
	}
	return probe{}, false
}

// present reports whether the node described by p is part of the tree under
// root (which must be encoded). The search follows p.key down to p.height;
// it never loads: a node that was loaded before the commit and survived it is
// still attached through loaded nodes.
func present(root *mst.Node, p probe) bool {
	n := root
	for {
		if n.CID != nil && *n.CID == p.cid {
			return true
		}
		if n.Height <= p.height || p.key == nil {
			return false
		}
		found, slot := locate(n, p.key)
		if found >= 0 || slot < 0 {
			return false
		}
		e := n.Entries[slot]
		if e.Child == nil {
			return e.ChildCID != nil && *e.ChildCID == p.cid
		}
		n = e.Child
	}
}

// trim unloads the children of nodes deeper than keep levels below the
// root, so a cached tree that grew by random-access writes shrinks back to
// its top, which every write needs. It returns the estimated size left.
func trim(n *mst.Node, keep int) int64 {
	size := nodeCost(n)
	for i := range n.Entries {
		e := &n.Entries[i]
		if e.Child == nil {
			continue
		}
		if keep <= 0 && e.ChildCID != nil && !e.Child.Dirty {
			e.Child = nil
			continue
		}
		size += trim(e.Child, keep-1)
	}
	return size
}
