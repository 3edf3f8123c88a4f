package repo

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	atrepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"
	cbg "github.com/whyrusleeping/cbor-gen"

	"github.com/hearth-pds/hearth/testenv"
)

const testDID = syntax.DID("did:plc:hearthtestrepo0000000000")

var testCollections = []syntax.NSID{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow"}

// record encodes a small DAG-CBOR record {"text": text, "$type": typ}
// (keys in DAG-CBOR order: shorter first).
func record(typ syntax.NSID, text string) []byte {
	var buf bytes.Buffer
	w := cbg.NewCborWriter(&buf)
	str := func(s string) {
		_ = w.WriteMajorTypeHeader(cbg.MajTextString, uint64(len(s)))
		_, _ = w.WriteString(s)
	}
	_ = w.WriteMajorTypeHeader(cbg.MajMap, 2)
	str("text")
	str(text)
	str("$type")
	str(typ.String())
	return buf.Bytes()
}

// fixture is a repository under test: its store, head, key and the model
// of what it should contain.
type fixture struct {
	t      testing.TB
	ctx    context.Context
	src    *MemorySource
	key    *atcrypto.PrivateKeyK256
	head   Head
	clock  *syntax.TIDClock
	model  map[string][]byte // path -> record bytes
	engine *Engine
}

func newFixture(t testing.TB, cacheBytes int64) *fixture {
	t.Helper()
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: context.Background(), key: key, clock: syntax.NewTIDClock(1),
		model: map[string][]byte{}, engine: NewEngine(cacheBytes)}
	rev := f.clock.Next()
	root, blocks, err := Genesis(testDID.String(), key, rev.String())
	if err != nil {
		t.Fatal(err)
	}
	f.src = NewMemorySource(blocks...)
	if f.head, err = LoadHead(f.ctx, f.src, testDID, root); err != nil {
		t.Fatal(err)
	}
	return f
}

// apply runs one Apply with the fixture's engine and, on success, stores
// its blocks, deletes what it reports removed and advances the head.
func (f *fixture) apply(writes []Write) (*Result, error) {
	return f.applyWith(f.engine, writes)
}

func (f *fixture) applyWith(e *Engine, writes []Write) (*Result, error) {
	res, err := e.Apply(f.ctx, f.src, f.head, f.key, NextRev(f.clock, f.head.Rev), writes)
	if err != nil {
		return nil, err
	}
	f.src.Put(res.Blocks...)
	f.src.Delete(res.Removed...)
	f.head = Head{DID: f.head.DID, Commit: res.Commit.CID, Rev: res.Commit.Rev, Data: res.Commit.Data}
	for _, w := range writes {
		if w.Action == Delete {
			delete(f.model, w.Path())
		} else {
			f.model[w.Path()] = w.Record
		}
	}
	return res, nil
}

// canonicalRoot is the root indigo computes for the model from scratch.
func (f *fixture) canonicalRoot() cid.Cid {
	f.t.Helper()
	m := make(map[string]cid.Cid, len(f.model))
	for k, v := range f.model {
		c, err := cidFor(v)
		if err != nil {
			f.t.Fatal(err)
		}
		m[k] = c
	}
	tree, err := mst.LoadTreeFromMap(m)
	if err != nil {
		f.t.Fatal(err)
	}
	root, err := tree.RootCID()
	if err != nil {
		f.t.Fatal(err)
	}
	return *root
}

// randomPath picks an existing path at random (false if none).
func (f *fixture) randomPath(rng *rand.Rand) (syntax.NSID, syntax.RecordKey, bool) {
	if len(f.model) == 0 {
		return "", "", false
	}
	paths := make([]string, 0, len(f.model))
	for p := range f.model {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	nsid, rkey, err := syntax.ParseRepoPath(paths[rng.IntN(len(paths))])
	if err != nil {
		f.t.Fatal(err)
	}
	return nsid, rkey, true
}

// commitEvent builds the #commit message a sequencer would send for res.
func commitEvent(t testing.TB, did syntax.DID, res *Result) *comatproto.SyncSubscribeRepos_Commit {
	t.Helper()
	var car bytes.Buffer
	if err := WriteCAR(&car, res.Commit.CID, res.EventBlocks); err != nil {
		t.Fatal(err)
	}
	msg := &comatproto.SyncSubscribeRepos_Commit{
		Repo:     did.String(),
		Rev:      res.Commit.Rev.String(),
		Commit:   lexutil.LexLink(res.Commit.CID),
		Blocks:   car.Bytes(),
		Blobs:    []lexutil.LexLink{},
		Time:     syntax.DatetimeNow().String(),
		PrevData: (*lexutil.LexLink)(&res.Commit.PrevData),
		Ops:      []*comatproto.SyncSubscribeRepos_RepoOp{},
	}
	if res.Commit.Since != "" {
		s := res.Commit.Since.String()
		msg.Since = &s
	}
	for _, op := range res.Ops {
		rop := &comatproto.SyncSubscribeRepos_RepoOp{Action: string(op.Action), Path: op.Path}
		if op.CID.Defined() {
			c := lexutil.LexLink(op.CID)
			rop.Cid = &c
		}
		if op.Prev.Defined() {
			p := lexutil.LexLink(op.Prev)
			rop.Prev = &p
		}
		msg.Ops = append(msg.Ops, rop)
	}
	// Round-trip through the wire encoding, as a consumer would see it.
	var wire bytes.Buffer
	if err := msg.MarshalCBOR(&wire); err != nil {
		t.Fatal(err)
	}
	var got comatproto.SyncSubscribeRepos_Commit
	if err := got.UnmarshalCBOR(&wire); err != nil {
		t.Fatal(err)
	}
	return &got
}

// verifyEvent checks res the way a relay does: indigo's VerifyCommitMessage
// (records present, ops inverted to prevData) and the commit signature.
func (f *fixture) verifyEvent(res *Result) {
	f.t.Helper()
	msg := commitEvent(f.t, f.head.DID, res)
	if _, err := atrepo.VerifyCommitMessage(f.ctx, msg); err != nil {
		f.t.Fatalf("VerifyCommitMessage: %v", err)
	}
	commit, _, err := atrepo.LoadCommitFromCAR(f.ctx, bytes.NewReader(msg.Blocks))
	if err != nil {
		f.t.Fatal(err)
	}
	pub, err := f.key.PublicKey()
	if err != nil {
		f.t.Fatal(err)
	}
	if err := commit.VerifySignature(pub); err != nil {
		f.t.Fatalf("commit signature: %v", err)
	}
	if commit.Data != res.Commit.Data || commit.Rev != res.Commit.Rev.String() {
		f.t.Fatalf("commit block says data %s rev %s, result says %s %s", commit.Data, commit.Rev, res.Commit.Data, res.Commit.Rev)
	}
}

// reachable returns the CIDs of the tree nodes under root in src.
func reachable(t testing.TB, src BlockSource, root cid.Cid) map[cid.Cid]bool {
	t.Helper()
	out := map[cid.Cid]bool{}
	var walk func(c cid.Cid, h int)
	walk = func(c cid.Cid, h int) {
		n, err := loadNode(context.Background(), src, c, h)
		if err != nil {
			t.Fatalf("walk tree: %v", err)
		}
		out[c] = true
		for _, e := range n.Entries {
			if e.IsChild() {
				walk(*e.ChildCID, n.Height-1)
			}
		}
	}
	walk(root, -1)
	return out
}

// sharedMSTVectors returns ../shared/interop/mst from the module root, or
// skips: key_heights.json and common_prefix.json are interop vectors the
// pinned indigo module does not ship (the other vectors are read from it,
// through testenv.InteropVectors, and fail when missing).
func sharedMSTVectors(t testing.TB) string {
	t.Helper()
	p := filepath.Join(testenv.RepoRoot(t), "..", "shared", "interop", "mst")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("mst interop vectors not found at %s (a checkout of bluesky-social/atproto-interop-tests expected there; indigo does not ship them)", p)
	}
	return p
}

func blockSet(blocks []Block) map[cid.Cid]bool {
	m := make(map[cid.Cid]bool, len(blocks))
	for _, b := range blocks {
		m[b.CID] = true
	}
	return m
}

func randomTID(rng *rand.Rand) syntax.RecordKey {
	// Anywhere between 2023 and 2026, any clock id: inserts land all over
	// the tree, unlike the clock's sequential TIDs which always land right.
	micros := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro() + rng.Int64N(3*365*24*3600*1e6)
	return syntax.RecordKey(syntax.NewTID(micros, uint(rng.IntN(1024))).String())
}

func text(i int) string { return fmt.Sprintf("record %d", i) }
