package repo

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	atrepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// TestApplySequences drives repositories through many commits and checks
// each one against indigo: the root equals the root indigo computes for the
// same records from scratch, the #commit event passes VerifyCommitMessage
// (records present, every op inverted back to prevData, which is what
// exercises the proof blocks around splits and merges), the persisted blocks
// are exactly the new tree nodes, and Removed is exactly the nodes that left
// the tree (they are deleted from the store, so a wrong one breaks a later
// load).
func TestApplySequences(t *testing.T) {
	tests := []struct {
		name       string
		cacheBytes int64
		steps      int
		maxBatch   int
		random     bool   // random TIDs, else the clock's sequential ones
		weights    [3]int // create, update, delete
		coldEvery  int    // every n steps use an engine with no cache
		drain      bool   // finish by deleting every record
	}{
		{name: "sequential creates", steps: 300, maxBatch: 1, weights: [3]int{1, 0, 0}},
		{name: "random creates", steps: 300, maxBatch: 1, random: true, weights: [3]int{1, 0, 0}},
		{name: "random mixed single", steps: 400, maxBatch: 1, random: true, weights: [3]int{5, 2, 3}},
		{name: "sequential mixed batches", steps: 150, maxBatch: 12, weights: [3]int{5, 2, 3}, drain: true},
		{name: "random mixed batches", steps: 150, maxBatch: 25, random: true, weights: [3]int{5, 2, 3}, drain: true},
		{name: "delete heavy batches", steps: 120, maxBatch: 30, random: true, weights: [3]int{3, 1, 3}, drain: true},
		{name: "cold loads", steps: 200, maxBatch: 6, random: true, weights: [3]int{5, 2, 3}, coldEvery: 3, drain: true},
		{name: "tiny cache", cacheBytes: 4 << 10, steps: 200, maxBatch: 6, random: true, weights: [3]int{5, 2, 3}},
		{name: "no cache", cacheBytes: -1, steps: 100, maxBatch: 6, random: true, weights: [3]int{5, 2, 3}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			f := newFixture(t, tt.cacheBytes)
			cold := NewEngine(-1)
			n := 0
			step := func(writes []Write) {
				e := f.engine
				if tt.coldEvery > 0 && n%tt.coldEvery == 0 {
					e = cold
				}
				n++
				before := reachable(t, f.src, f.head.Data)
				oldCommit := f.head.Commit
				res, err := f.applyWith(e, writes)
				if err != nil {
					t.Fatalf("step %d: %v", n, err)
				}
				checkResult(t, f, res, before, oldCommit)
			}
			for s := 0; s < tt.steps; s++ {
				step(randomWrites(f, rng, 1+rng.IntN(tt.maxBatch), tt.random, tt.weights))
			}
			if tt.drain {
				for len(f.model) > 0 {
					var writes []Write
					size := 1 + rng.IntN(tt.maxBatch)
					for p := range f.model {
						nsid, rkey, _ := syntax.ParseRepoPath(p)
						writes = append(writes, Write{Action: Delete, Collection: nsid, RKey: rkey})
						if len(writes) == size {
							break
						}
					}
					step(writes)
				}
				// An emptied tree takes new records again.
				step(randomWrites(f, rng, 3, tt.random, [3]int{1, 0, 0}))
			}
			checkExport(t, f)
		})
	}
}

// checkResult checks one Apply result against the fixture after it.
func checkResult(t *testing.T, f *fixture, res *Result, before map[cid.Cid]bool, oldCommit cid.Cid) {
	t.Helper()
	if want := f.canonicalRoot(); res.Commit.Data != want {
		t.Fatalf("root %s, indigo computes %s for the same records", res.Commit.Data, want)
	}
	f.verifyEvent(res)

	after := reachable(t, f.src, f.head.Data)
	persisted := blockSet(res.Blocks)
	delete(persisted, res.Commit.CID)
	for _, op := range res.Ops {
		if op.Action != Delete {
			delete(persisted, op.CID)
		}
	}
	for c := range after {
		if !before[c] && !persisted[c] {
			t.Fatalf("new node %s not in Blocks", c)
		}
	}
	for c := range persisted {
		if before[c] || !after[c] {
			t.Fatalf("Blocks holds %s, which is not a new node (old %v, in new tree %v)", c, before[c], after[c])
		}
	}
	removed := map[cid.Cid]bool{}
	for _, c := range res.Removed {
		removed[c] = true
	}
	if !removed[oldCommit] {
		t.Fatalf("previous commit %s not in Removed", oldCommit)
	}
	delete(removed, oldCommit)
	for c := range before {
		if !after[c] && !removed[c] {
			t.Fatalf("node %s left the tree but is not in Removed", c)
		}
	}
	for c := range removed {
		if !before[c] {
			t.Fatalf("Removed lists %s, which was not in the old tree", c)
		}
	}
	if res.EventBlocks[0].CID != res.Commit.CID {
		t.Fatal("event blocks do not start with the commit")
	}
	event := blockSet(res.EventBlocks)
	for _, b := range res.Blocks {
		if !event[b.CID] {
			t.Fatalf("persisted block %s missing from the event", b.CID)
		}
	}
}

// randomWrites makes a batch of distinct valid writes against the model.
func randomWrites(f *fixture, rng *rand.Rand, n int, random bool, weights [3]int) []Write {
	var writes []Write
	used := map[string]bool{}
	total := weights[0] + weights[1] + weights[2]
	for tries := 0; len(writes) < n && tries < 4*n; tries++ {
		r := rng.IntN(total)
		var w Write
		switch {
		case r < weights[0]:
			nsid := testCollections[rng.IntN(len(testCollections))]
			rkey := syntax.RecordKey(f.clock.Next().String())
			if random {
				rkey = randomTID(rng)
			}
			w = Write{Action: Create, Collection: nsid, RKey: rkey, Record: record(nsid, text(rng.IntN(1<<30)))}
			if _, ok := f.model[w.Path()]; ok {
				continue
			}
		case r < weights[0]+weights[1]:
			nsid, rkey, ok := f.randomPath(rng)
			if !ok {
				continue
			}
			w = Write{Action: Update, Collection: nsid, RKey: rkey, Record: record(nsid, text(rng.IntN(1<<30)))}
		default:
			nsid, rkey, ok := f.randomPath(rng)
			if !ok {
				continue
			}
			w = Write{Action: Delete, Collection: nsid, RKey: rkey}
		}
		if used[w.Path()] {
			continue
		}
		used[w.Path()] = true
		writes = append(writes, w)
	}
	return writes
}

// TestApplyErrors: each refused batch leaves the head, the store and the
// cached tree as they were, and the next commit is still correct.
func TestApplyErrors(t *testing.T) {
	post := syntax.NSID("app.bsky.feed.post")
	rec := record(post, "hello")
	create := func(rkey string) Write {
		return Write{Action: Create, Collection: post, RKey: syntax.RecordKey(rkey), Record: rec}
	}
	tests := []struct {
		name   string
		writes []Write
		rev    func(f *fixture) syntax.TID
		want   error
	}{
		{name: "create existing", writes: []Write{create("zz1"), create("a0")}, want: ErrRecordExists},
		{name: "update missing", writes: []Write{create("zz1"), {Action: Update, Collection: post, RKey: "nope", Record: rec}}, want: ErrRecordNotFound},
		{name: "delete missing", writes: []Write{{Action: Delete, Collection: post, RKey: "nope"}}, want: ErrRecordNotFound},
		{name: "duplicate path", writes: []Write{create("zz1"), {Action: Delete, Collection: post, RKey: "zz1"}}, want: ErrDuplicatePath},
		{name: "record not a map", writes: []Write{{Action: Create, Collection: post, RKey: "zz2", Record: []byte{0x01}}}, want: ErrInvalidWrite},
		{name: "record with trailing bytes", writes: []Write{{Action: Create, Collection: post, RKey: "zz2", Record: append(append([]byte{}, rec...), 0)}}, want: ErrInvalidWrite},
		{name: "record truncated", writes: []Write{{Action: Create, Collection: post, RKey: "zz2", Record: rec[:len(rec)-1]}}, want: ErrInvalidWrite},
		{name: "delete with record", writes: []Write{{Action: Delete, Collection: post, RKey: "a0", Record: rec}}, want: ErrInvalidWrite},
		{name: "unknown action", writes: []Write{{Action: "upsert", Collection: post, RKey: "a0", Record: rec}}, want: ErrInvalidWrite},
		{name: "too many", writes: make([]Write, MaxWrites+1), want: ErrTooManyWrites},
		{name: "rev not increasing", writes: []Write{create("zz3")}, rev: func(f *fixture) syntax.TID { return f.head.Rev }, want: ErrRevNotIncreasing},
	}
	f := newFixture(t, 0)
	var seed []Write
	for i := range 200 {
		seed = append(seed, create("a"+text(i)[7:]))
	}
	if _, err := f.apply(seed); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, blocks := f.head, f.src.Len()
			rev := NextRev(f.clock, f.head.Rev)
			if tt.rev != nil {
				rev = tt.rev(f)
			}
			res, err := f.engine.Apply(f.ctx, f.src, f.head, f.key, rev, tt.writes)
			if !errors.Is(err, tt.want) || res != nil {
				t.Fatalf("got %v, %v; want %v", res, err, tt.want)
			}
			if f.head != head || f.src.Len() != blocks {
				t.Fatal("a refused Apply changed the head or the store")
			}
			// The cached tree must still be the head's: a good commit now
			// gives indigo's root.
			before := reachable(t, f.src, f.head.Data)
			good, err := f.apply([]Write{create("b" + string(f.clock.Next()))})
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, f, good, before, head.Commit)
		})
	}
}

// TestApplyNoopUpdate: an update to the same bytes has no op (indigo cannot
// invert an op whose cid equals its prev), and the tree is unchanged.
func TestApplyNoopUpdate(t *testing.T) {
	f := newFixture(t, 0)
	post := syntax.NSID("app.bsky.feed.post")
	w := Write{Action: Create, Collection: post, RKey: "3kabc", Record: record(post, "same")}
	if _, err := f.apply([]Write{w}); err != nil {
		t.Fatal(err)
	}
	data := f.head.Data
	w.Action = Update
	res, err := f.apply([]Write{w})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ops) != 0 || res.Commit.Data != data || res.Commit.PrevData != data {
		t.Fatalf("no-op update: ops %v, data %s (was %s)", res.Ops, res.Commit.Data, data)
	}
	f.verifyEvent(res)
}

// TestApplyOps checks the op fields the #commit event carries.
func TestApplyOps(t *testing.T) {
	f := newFixture(t, 0)
	post := syntax.NSID("app.bsky.feed.post")
	a, b := record(post, "a"), record(post, "b")
	ca, _ := cidFor(a)
	cb, _ := cidFor(b)
	res, err := f.apply([]Write{{Action: Create, Collection: post, RKey: "k1", Record: a}, {Action: Create, Collection: post, RKey: "k2", Record: a}})
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for _, blk := range res.Blocks {
		if blk.CID == ca {
			records++
		}
	}
	if records != 1 {
		t.Errorf("record shared by two keys stored %d times", records)
	}
	res, err = f.apply([]Write{{Action: Update, Collection: post, RKey: "k1", Record: b}, {Action: Delete, Collection: post, RKey: "k2"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Op{
		{Action: Update, Path: "app.bsky.feed.post/k1", CID: cb, Prev: ca},
		{Action: Delete, Path: "app.bsky.feed.post/k2", Prev: ca},
	}
	if len(res.Ops) != len(want) {
		t.Fatalf("ops: %+v", res.Ops)
	}
	for i := range want {
		if res.Ops[i] != want[i] {
			t.Errorf("op %d: got %+v, want %+v", i, res.Ops[i], want[i])
		}
	}
	if res.Commit.Since == "" || res.Commit.Since.String() >= res.Commit.Rev.String() {
		t.Errorf("since %q, rev %q", res.Commit.Since, res.Commit.Rev)
	}
	var found bool
	for _, blk := range res.Blocks {
		found = found || (blk.CID == cb && bytes.Equal(blk.Data, b))
	}
	if !found {
		t.Error("updated record block not persisted")
	}
}

// TestNextRev: the rev always increases, even when the clock is behind.
func TestNextRev(t *testing.T) {
	clock := syntax.NewTIDClock(0)
	future := syntax.NewTIDFromInteger(clock.Next().Integer() + 1<<40)
	tests := []struct {
		name  string
		after syntax.TID
	}{
		{"none", ""},
		{"past", syntax.NewTIDFromInteger(1 << 20)},
		{"future", future},
	}
	for _, tt := range tests {
		got := NextRev(clock, tt.after)
		if _, err := syntax.ParseTID(got.String()); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if tt.after != "" && got.String() <= tt.after.String() {
			t.Errorf("%s: %s not after %s", tt.name, got, tt.after)
		}
	}
}

// keyAtLayer returns the first record key after start whose path lives at
// the given tree layer.
func keyAtLayer(t *testing.T, nsid syntax.NSID, start uint64, layer int) (syntax.RecordKey, uint64) {
	t.Helper()
	for i := start; i < start+1<<24; i++ {
		rkey := syntax.RecordKey(syntax.NewTIDFromInteger(i).String())
		if mst.HeightForKey([]byte(nsid.String()+"/"+rkey.String())) == layer {
			return rkey, i
		}
	}
	t.Fatalf("no key at layer %d", layer)
	return "", 0
}

// TestApplySplitMerge builds the two structural cases by hand: deleting a
// key of a higher layer merges the subtrees on both sides of it (down to
// the bottom), and inserting it again splits them. Each event must pass
// VerifyCommitMessage, which only works with the neighbours' spines.
func TestApplySplitMerge(t *testing.T) {
	post := syntax.NSID("app.bsky.feed.post")
	for _, layer := range []int{1, 2} {
		t.Run(fmt.Sprintf("layer %d", layer), func(t *testing.T) {
			f := newFixture(t, 0)
			next := uint64(1) << 60
			var low []Write
			var rkey syntax.RecordKey
			for i := 0; i < 6; i++ {
				// Keys of every layer below, on both sides of the high key.
				rkey, next = keyAtLayer(t, post, next+1, i%layer)
				low = append(low, Write{Action: Create, Collection: post, RKey: rkey, Record: record(post, text(i))})
				if i == 2 {
					rkey, next = keyAtLayer(t, post, next+1, layer)
					low = append(low, Write{Action: Create, Collection: post, RKey: rkey, Record: record(post, "high")})
				}
			}
			high := low[3]
			step := func(writes []Write) {
				before := reachable(t, f.src, f.head.Data)
				old := f.head.Commit
				res, err := f.apply(writes)
				if err != nil {
					t.Fatal(err)
				}
				checkResult(t, f, res, before, old)
			}
			step(low)
			split := len(reachable(t, f.src, f.head.Data))
			step([]Write{{Action: Delete, Collection: post, RKey: high.RKey}})
			merged := len(reachable(t, f.src, f.head.Data))
			if merged >= split {
				t.Fatalf("deleting the layer %d key left %d nodes (had %d): no merge", layer, merged, split)
			}
			step([]Write{high})
			if got := len(reachable(t, f.src, f.head.Data)); got != split {
				t.Fatalf("re-inserting it gave %d nodes, want %d", got, split)
			}
			// The same in one batch with other changes around it.
			step([]Write{{Action: Delete, Collection: post, RKey: high.RKey}, {Action: Delete, Collection: post, RKey: low[0].RKey}, {Action: Update, Collection: post, RKey: low[5].RKey, Record: record(post, "changed")}})
			high.Action = Create
			step([]Write{high, low[0]})
		})
	}
}

// TestProofBlocksMatter guards the test above and TestApplySequences: with
// the proof blocks stripped from the events, VerifyCommitMessage must fail
// for some commits, or passing it would prove nothing.
func TestProofBlocksMatter(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	f := newFixture(t, 0)
	withProof, failed := 0, 0
	for range 300 {
		res, err := f.apply(randomWrites(f, rng, 1+rng.IntN(4), true, [3]int{5, 1, 4}))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.EventBlocks) == len(res.Blocks) {
			continue
		}
		withProof++
		stripped := *res
		stripped.EventBlocks = res.Blocks
		if _, err := atrepo.VerifyCommitMessage(f.ctx, commitEvent(t, f.head.DID, &stripped)); err != nil {
			failed++
		}
	}
	t.Logf("%d commits carried proof blocks; without them %d fail verification", withProof, failed)
	if failed == 0 {
		t.Fatal("no commit needed its proof blocks")
	}
}
