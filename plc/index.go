package plc

import (
	"context"
	"fmt"
	"slices"

	"github.com/did-method-plc/go-didplc/didplc"
)

// index is the in-memory view of every accepted operation and the
// didplc.OpStore that the library's VerifyOperation reads. The journal is
// the durable copy; Open rebuilds the index from it.
//
// index does no locking: Directory holds its write lock around
// VerifyOperation and CommitOperations (so no other write can move a head
// in between) and its read lock around reads.
type index struct {
	dids map[string]*didLog
	// all holds every entry in commit order, for /export.
	all []*didplc.OpEntry
}

// didLog is one DID's operations in commit order, nullified ones included.
type didLog struct {
	entries []*didplc.OpEntry
	byCID   map[string]*didplc.OpEntry
	head    *didplc.OpEntry
}

var _ didplc.OpStore = (*index)(nil)

func newIndex() *index {
	return &index{dids: make(map[string]*didLog)}
}

// GetEntry returns nil, nil when the DID has no operation with that CID,
// which VerifyOperation turns into "prev cid does not exist" (a rejection),
// not a store failure.
func (x *index) GetEntry(_ context.Context, did string, cid string) (*didplc.OpEntry, error) {
	l := x.dids[did]
	if l == nil {
		return nil, nil
	}
	return l.byCID[cid], nil
}

// GetLatest returns the DID's current (never nullified) operation, or nil.
func (x *index) GetLatest(_ context.Context, did string) (*didplc.OpEntry, error) {
	l := x.dids[did]
	if l == nil {
		return nil, nil
	}
	return l.head, nil
}

// GetAllEntries returns the DID's entries, nullified ones included, oldest
// first. The slice is the index's own: callers must not modify it.
func (x *index) GetAllEntries(_ context.Context, did string) ([]*didplc.OpEntry, error) {
	l := x.dids[did]
	if l == nil {
		return nil, nil
	}
	return l.entries, nil
}

// CommitOperations applies verified operations: each becomes its DID's
// head, the operations it forks away from are marked nullified, and its
// prev's allowed keys shrink to the keys ranked above the one that signed
// it. That last step is how the recovery rule is enforced later: a fork
// from the same prev must be signed by a strictly higher-priority key.
//
// Every operation is checked before any is applied, so a refused batch
// leaves the index as it was.
func (x *index) CommitOperations(_ context.Context, ops []*didplc.PreparedOperation) error {
	for _, p := range ops {
		if err := x.check(p); err != nil {
			return err
		}
	}
	for _, p := range ops {
		x.apply(p)
	}
	return nil
}

// check reports whether apply(p) would be consistent: the head p was
// verified against is still the head, p is not already in the log, and
// every operation it names is.
func (x *index) check(p *didplc.PreparedOperation) error {
	l := x.dids[p.DID]
	head := ""
	if l != nil && l.head != nil {
		head = l.head.OpCid
	}
	if head != p.PrevHead {
		return fmt.Errorf("%w: %s: head is %q, operation was verified against %q", didplc.ErrHeadMismatch, p.DID, head, p.PrevHead)
	}
	if l == nil {
		return nil
	}
	if _, dup := l.byCID[p.OpCid]; dup {
		// VerifyOperation does not let a resubmission through (the copy
		// would need a key ranked above the one that signed the original),
		// but two entries under one CID would corrupt the index.
		return fmt.Errorf("%w: operation %s is already in the log", didplc.ErrInvalidOperation, p.OpCid)
	}
	for _, cid := range p.NullifiedOps {
		if l.byCID[cid] == nil {
			return fmt.Errorf("commit %s: nullified operation %s not in the log", p.OpCid, cid)
		}
	}
	if p.PrevHead != "" && l.byCID[p.Op.PrevCIDStr()] == nil {
		return fmt.Errorf("commit %s: prev %s not in the log", p.OpCid, p.Op.PrevCIDStr())
	}
	return nil
}

// apply records p; check(p) must have passed.
func (x *index) apply(p *didplc.PreparedOperation) {
	l := x.dids[p.DID]
	if l == nil {
		l = &didLog{byCID: make(map[string]*didplc.OpEntry)}
		x.dids[p.DID] = l
	}
	for _, cid := range p.NullifiedOps {
		l.byCID[cid].Nullified = true
	}
	if p.PrevHead != "" {
		prev := l.byCID[p.Op.PrevCIDStr()]
		prev.AllowedKeys = prev.AllowedKeys[:p.KeyIndex]
		prev.LastChild = p.OpCid
	}
	e := &didplc.OpEntry{
		DID:         p.DID,
		CreatedAt:   p.CreatedAt,
		AllowedKeys: slices.Clone(p.Op.EquivalentRotationKeys()),
		Op:          p.Op,
		OpCid:       p.OpCid,
	}
	l.entries = append(l.entries, e)
	l.byCID[p.OpCid] = e
	l.head = e
	x.all = append(x.all, e)
}
