package repo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// bigRepo builds a repository of n records directly in a MemorySource (a
// single mutate, no per-record commits) and returns its fixture.
func bigRepo(tb testing.TB, did syntax.DID, n int, cacheBytes int64) *fixture {
	tb.Helper()
	f := newFixture(tb, cacheBytes)
	t, err := loadTree(f.ctx, f.src, f.head.Data)
	if err != nil {
		tb.Fatal(err)
	}
	muts := make([]mutation, 0, n)
	var records []Block
	post := syntax.NSID("app.bsky.feed.post")
	for i := range n {
		rec := record(post, text(i))
		c, err := cidFor(rec)
		if err != nil {
			tb.Fatal(err)
		}
		records = append(records, Block{CID: c, Data: rec})
		key := post.String() + "/" + f.clock.Next().String()
		muts = append(muts, mutation{key: []byte(key), val: &c, action: Create})
		f.model[key] = rec
	}
	d, err := mutate(f.ctx, f.src, t, muts)
	if err != nil {
		tb.Fatal(err)
	}
	f.src.Put(records...)
	f.src.Put(d.newNodes...)
	rev := f.clock.Next()
	commit, err := signCommit(did.String(), f.key, rev.String(), d.root)
	if err != nil {
		tb.Fatal(err)
	}
	f.src.Put(commit)
	f.head = Head{DID: did, Commit: commit.CID, Rev: rev, Data: d.root}
	return f
}

// TestCacheHitsAndStaleHead: a cached tree is reused for the head it was
// left at, and ignored for any other head (a commit the store failed to
// write), which then loads from the store and is still correct.
func TestCacheHitsAndStaleHead(t *testing.T) {
	f := newFixture(t, 0)
	post := syntax.NSID("app.bsky.feed.post")
	create := func() Write {
		return Write{Action: Create, Collection: post, RKey: syntax.RecordKey(f.clock.Next().String()), Record: record(post, "x")}
	}
	for range 5 {
		if _, err := f.apply([]Write{create()}); err != nil {
			t.Fatal(err)
		}
	}
	s := f.engine.Cache().Stats()
	if s.Hits != 4 || s.Misses != 1 || s.Repos != 1 {
		t.Fatalf("stats after 5 commits: %+v", s)
	}
	// A commit whose blocks are never stored: the store stays at the head.
	lost, err := f.engine.Apply(f.ctx, f.src, f.head, f.key, NextRev(f.clock, f.head.Rev), []Write{create()})
	if err != nil {
		t.Fatal(err)
	}
	before := reachable(t, f.src, f.head.Data)
	oldCommit := f.head.Commit
	_ = lost
	res, err := f.apply([]Write{create()})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, f, res, before, oldCommit)
}

// TestCacheBound: many repositories through a small cache stay within its
// bound, evict the least recently written, and keep producing right roots.
func TestCacheBound(t *testing.T) {
	const max = 256 << 10
	e := NewEngine(max)
	var fs []*fixture
	for i := range 12 {
		f := bigRepo(t, syntax.DID(fmt.Sprintf("did:plc:bound%d", i)), 300, -1)
		f.engine = e
		fs = append(fs, f)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 30 {
		for i, f := range fs {
			if round%3 == 0 && i%2 == 1 {
				continue // some repositories go cold
			}
			res, err := f.apply(randomWrites(f, rng, 1+rng.IntN(5), true, [3]int{3, 1, 2}))
			if err != nil {
				t.Fatal(err)
			}
			if want := f.canonicalRoot(); res.Commit.Data != want {
				t.Fatalf("root %s, want %s", res.Commit.Data, want)
			}
			if s := e.Cache().Stats(); s.Bytes > max {
				t.Fatalf("cache holds %d bytes, bound %d", s.Bytes, max)
			}
		}
	}
	s := e.Cache().Stats()
	if s.Evictions == 0 || s.Hits == 0 {
		t.Fatalf("stats: %+v", s)
	}
	t.Logf("%+v", s)
}

// TestCacheTrim: a tree grown past its share is cut back to its top levels
// and later writes load what they need again.
func TestCacheTrim(t *testing.T) {
	f := bigRepo(t, testDID, 3000, 64<<10) // a tree may hold 8 KiB
	rng := rand.New(rand.NewPCG(3, 4))
	for range 40 {
		res, err := f.apply(randomWrites(f, rng, 10, true, [3]int{2, 1, 2}))
		if err != nil {
			t.Fatal(err)
		}
		if want := f.canonicalRoot(); res.Commit.Data != want {
			t.Fatalf("root %s, want %s", res.Commit.Data, want)
		}
	}
	if s := f.engine.Cache().Stats(); s.Trims == 0 || s.Bytes > 64<<10/8 {
		t.Fatalf("stats: %+v", s)
	}
	checkReads(t, f)
}

// TestCacheConcurrent: writers to different repositories share one engine
// (run with -race).
func TestCacheConcurrent(t *testing.T) {
	e := NewEngine(256 << 10)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		f := newFixture(t, 0)
		f.engine = e
		f.head.DID = syntax.DID(fmt.Sprintf("did:plc:concurrent%d", w))
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for range 60 {
				res, err := f.apply(randomWrites(f, rng, 1+rng.IntN(4), true, [3]int{3, 1, 1}))
				if err != nil {
					errs <- err
					return
				}
				if want := f.canonicalRoot(); res.Commit.Data != want {
					errs <- fmt.Errorf("root %s, want %s", res.Commit.Data, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestNodeCostEstimate keeps nodeCost honest: the estimate for a fully
// decoded tree is within a factor of two of the heap it really takes.
func TestNodeCostEstimate(t *testing.T) {
	f := bigRepo(t, testDID, 20000, -1)
	var keys [][]byte
	for k := range f.model {
		keys = append(keys, []byte(k))
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	lt, err := loadTree(context.Background(), f.src, f.head.Data)
	if err != nil {
		t.Fatal(err)
	}
	ld := &loader{ctx: context.Background(), src: f.src, t: lt}
	for _, k := range keys {
		if err := ld.hydrate(lt.tree.Root, k); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	heap := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	runtime.KeepAlive(lt)
	runtime.KeepAlive(f)
	runtime.KeepAlive(keys)
	ratio := float64(lt.size) / float64(heap)
	t.Logf("estimate %d bytes, heap %d bytes, ratio %.2f", lt.size, heap, ratio)
	if ratio < 0.5 || ratio > 2 {
		t.Fatalf("estimate %d is off the measured %d by more than 2x", lt.size, heap)
	}
}

// BenchmarkApplyCreate measures one create at repository sizes 1k, 10k and
// 100k with a warm cache (the steady state of an active account), with
// sequential TIDs (new posts) and random ones (writes all over the tree),
// and cold (cache disabled: every write loads its paths from the store).
func BenchmarkApplyCreate(b *testing.B) {
	for _, mode := range []string{"sequential", "random", "cold"} {
		for _, n := range []int{1000, 10000, 100000} {
			b.Run(fmt.Sprintf("%s/%dk", mode, n/1000), func(b *testing.B) {
				cache := int64(0)
				if mode == "cold" {
					cache = -1
				}
				f := bigRepo(b, testDID, n, cache)
				rng := rand.New(rand.NewPCG(5, 6))
				post := syntax.NSID("app.bsky.feed.post")
				rec := record(post, "benchmark")
				write := func() []Write {
					rkey := syntax.RecordKey(f.clock.Next().String())
					if mode == "random" {
						rkey = randomTID(rng)
					}
					return []Write{{Action: Create, Collection: post, RKey: rkey, Record: rec}}
				}
				if _, err := f.apply(write()); err != nil { // warm the cache
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := f.apply(write()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSign is the floor under every commit: one K-256 signature.
func BenchmarkSign(b *testing.B) {
	key, _ := atcrypto.GeneratePrivateKeyK256()
	c := mustCID(b, "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454")
	for b.Loop() {
		if _, err := signCommit(testDID.String(), key, "3kabcdefghijk", c); err != nil {
			b.Fatal(err)
		}
	}
}
