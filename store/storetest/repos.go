package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/store"
)

func frameEvent(did syntax.DID, kind store.EventKind) store.NewEvent {
	return store.NewEvent{DID: did, Kind: kind, Encode: func(seq int64, at time.Time) ([]byte, error) {
		return fmt.Appendf(nil, "%s#%d", kind, seq), nil
	}}
}

func testCommits(t *testing.T, s store.Store) {
	a := newAccount(1)
	a.Events = []store.NewEvent{frameEvent(a.DID, "identity"), frameEvent(a.DID, "account"), frameEvent(a.DID, "commit")}
	evs, err := s.CreateAccount(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Seq != 1 || evs[2].Seq != 3 || string(evs[2].Frame) != "commit#3" {
		t.Fatalf("account events = %+v", evs)
	}

	c1 := store.Commit{
		DID: a.DID, PrevCID: a.RootCID, CID: CIDOf("c1"), Rev: "rev2",
		Blocks: []store.Block{{CID: CIDOf("b1"), Content: []byte("one")}},
		Puts: []store.RecordRef{
			{Collection: "app.bsky.feed.post", RKey: "3k2", CID: CIDOf("r2")},
			{Collection: "app.bsky.feed.post", RKey: "3k1", CID: CIDOf("r1")},
			{Collection: "app.bsky.feed.post", RKey: "3k3", CID: CIDOf("r3")},
			{Collection: "app.bsky.actor.profile", RKey: "self", CID: CIDOf("p")},
		},
		Events: []store.NewEvent{frameEvent(a.DID, "commit")},
	}
	evs, err = s.ApplyCommit(ctx, c1)
	if err != nil || len(evs) != 1 || evs[0].Seq != 4 {
		t.Fatalf("ApplyCommit = %+v, %v", evs, err)
	}
	// A commit built on the old head is refused and writes nothing.
	stale := c1
	stale.CID, stale.Rev, stale.Blocks = CIDOf("c-stale"), "rev3", []store.Block{{CID: CIDOf("stale"), Content: []byte("x")}}
	if _, err := s.ApplyCommit(ctx, stale); !errors.Is(err, store.ErrRepoChanged) {
		t.Errorf("stale commit: got %v, want ErrRepoChanged", err)
	}
	if _, err := s.Block(ctx, a.DID, CIDOf("stale")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stale commit left a block: %v", err)
	}
	if _, err := s.ApplyCommit(ctx, store.Commit{DID: "did:plc:nobody", PrevCID: CIDOf("x"), CID: CIDOf("y")}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("commit to an unknown repo: %v", err)
	}
	root, _ := s.RepoRoot(ctx, a.DID)
	if root.CID != CIDOf("c1") || root.Rev != "rev2" {
		t.Errorf("head = %+v", root)
	}
	if b, err := s.Block(ctx, a.DID, CIDOf("b1")); err != nil || string(b) != "one" {
		t.Errorf("Block = %q, %v", b, err)
	}

	list, _ := s.ListRecords(ctx, a.DID, "app.bsky.feed.post", 2, "", false)
	if len(list) != 2 || list[0].RKey != "3k3" || list[1].RKey != "3k2" {
		t.Errorf("ListRecords newest first = %+v", list)
	}
	list, _ = s.ListRecords(ctx, a.DID, "app.bsky.feed.post", 10, "3k2", false)
	if len(list) != 1 || list[0].RKey != "3k1" {
		t.Errorf("ListRecords after cursor = %+v", list)
	}
	list, _ = s.ListRecords(ctx, a.DID, "app.bsky.feed.post", 10, "3k1", true)
	if len(list) != 2 || list[0].RKey != "3k2" {
		t.Errorf("ListRecords reverse after cursor = %+v", list)
	}
	cols, _ := s.Collections(ctx, a.DID)
	if len(cols) != 2 || cols[0] != "app.bsky.actor.profile" {
		t.Errorf("Collections = %v", cols)
	}

	c2 := store.Commit{DID: a.DID, PrevCID: CIDOf("c1"), CID: CIDOf("c2"), Rev: "rev3",
		Blocks:   []store.Block{{CID: CIDOf("r1b"), Content: []byte("r1b")}, {CID: CIDOf("kept"), Content: []byte("k")}},
		Puts:     []store.RecordRef{{Collection: "app.bsky.feed.post", RKey: "3k1", CID: CIDOf("r1b")}},
		Deletes:  []store.RecordRef{{Collection: "app.bsky.feed.post", RKey: "3k2"}},
		Removed:  []cid.Cid{CIDOf("b1")},
		Released: []cid.Cid{CIDOf("r2"), CIDOf("p")}}
	if _, err := s.ApplyCommit(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Record(ctx, a.DID, "app.bsky.feed.post", "3k1"); err != nil || r.CID != CIDOf("r1b") || r.Rev != "rev3" {
		t.Errorf("updated record = %+v, %v", r, err)
	}
	if _, err := s.Record(ctx, a.DID, "app.bsky.feed.post", "3k2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted record: %v", err)
	}

	if _, err := s.Block(ctx, a.DID, CIDOf("b1")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removed block kept: %v", err)
	}
	if _, err := s.Block(ctx, a.DID, CIDOf("r1b")); err != nil {
		t.Errorf("new block missing: %v", err)
	}

	var since []cid.Cid
	s.BlocksSince(ctx, a.DID, a.Rev, func(b store.Block) error { since = append(since, b.CID); return nil })
	if len(since) != 2 {
		t.Errorf("BlocksSince(%s) = %v", a.Rev, since)
	}
	repos, err := s.ListRepos(ctx, "", 10)
	if err != nil || len(repos) != 1 || repos[0].Head != CIDOf("c2") || !repos[0].Active {
		t.Errorf("ListRepos = %+v, %v", repos, err)
	}
}

// Concurrent writers get distinct, gapless sequence numbers, visible in
// order.
func testEventSequence(t *testing.T, s store.Store) {
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := s.AppendEvents(ctx, []store.NewEvent{frameEvent(syntax.DID(fmt.Sprint("did:plc:w", w)), "identity")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var all []store.Event
	for after := int64(0); ; {
		page, err := s.EventsAfter(ctx, after, 37)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
	if len(all) != writers*each {
		t.Fatalf("%d events, want %d", len(all), writers*each)
	}
	for i, e := range all {
		if e.Seq != int64(i+1) || string(e.Frame) != fmt.Sprintf("identity#%d", e.Seq) {
			t.Fatalf("event %d = seq %d frame %q", i, e.Seq, e.Frame)
		}
	}
	oldest, newest, _ := s.EventBounds(ctx)
	if oldest != 1 || newest != writers*each {
		t.Errorf("EventBounds = %d, %d", oldest, newest)
	}
	// Pruning everything keeps the newest, so numbering continues.
	if _, err := s.PruneEvents(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	oldest, newest, _ = s.EventBounds(ctx)
	if oldest != newest || newest != writers*each {
		t.Errorf("after pruning, EventBounds = %d, %d", oldest, newest)
	}
	evs, _ := s.AppendEvents(ctx, []store.NewEvent{frameEvent("did:plc:x", "identity")})
	if evs[0].Seq != writers*each+1 {
		t.Errorf("seq after pruning = %d", evs[0].Seq)
	}
}

// RecordsSince lists what was written after a rev, oldest first, and
// nothing when no record is as old as the rev asked about.
func testRecordsSince(t *testing.T, s store.Store) {
	a, other := newAccount(1), newAccount(2)
	mustCreate(t, s, a)
	mustCreate(t, s, other)
	head := map[syntax.DID]cid.Cid{a.DID: a.RootCID, other.DID: other.RootCID}
	commit := func(did syntax.DID, rev syntax.TID, puts ...store.RecordRef) {
		t.Helper()
		c := store.Commit{DID: did, PrevCID: head[did], CID: CIDOf("c" + rev.String() + did.String()), Rev: rev, Puts: puts}
		if _, err := s.ApplyCommit(ctx, c); err != nil {
			t.Fatalf("commit %s: %v", rev, err)
		}
		head[did] = c.CID
	}
	post := func(rkey syntax.RecordKey, name string) store.RecordRef {
		return store.RecordRef{Collection: "app.bsky.feed.post", RKey: rkey, CID: CIDOf(name)}
	}
	commit(a.DID, "3m1aaaaaaaaaa", post("3ka", "a1"), post("3kb", "b1"))
	commit(a.DID, "3m2aaaaaaaaaa", post("3kc", "c1"), store.RecordRef{Collection: "app.bsky.actor.profile", RKey: "self", CID: CIDOf("p1")})
	commit(a.DID, "3m3aaaaaaaaaa", post("3ka", "a2"))
	commit(other.DID, "3m4aaaaaaaaaa", post("3kz", "z1"))

	// Each record's CID is named after its value (cidOf): the names are
	// what the table lists.
	names := map[cid.Cid]string{}
	for _, n := range []string{"a1", "b1", "c1", "p1", "a2", "z1"} {
		names[CIDOf(n)] = n
	}
	keys := func(rs []store.IndexedRecord) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Rev.String()+" "+r.Collection.String()+"/"+r.RKey.String()+" "+names[r.CID])
		}
		return out
	}
	for _, tt := range []struct {
		name  string
		since syntax.TID
		limit int
		want  []string
	}{
		{"after the first commit", "3m1aaaaaaaaaa", 10, []string{
			"3m2aaaaaaaaaa app.bsky.actor.profile/self p1",
			"3m2aaaaaaaaaa app.bsky.feed.post/3kc c1",
			"3m3aaaaaaaaaa app.bsky.feed.post/3ka a2",
		}},
		{"limited", "3m1aaaaaaaaaa", 2, []string{
			"3m2aaaaaaaaaa app.bsky.actor.profile/self p1",
			"3m2aaaaaaaaaa app.bsky.feed.post/3kc c1",
		}},
		{"up to date", "3m3aaaaaaaaaa", 10, nil},
		{"ahead", "3m9aaaaaaaaaa", 10, nil},
		// No record is that old: the rev predates the repository here.
		{"before every record", a.Rev, 10, nil},
		{"empty", "", 10, nil},
	} {
		got, err := s.RecordsSince(ctx, a.DID, tt.since, tt.limit)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if fmt.Sprint(keys(got)) != fmt.Sprint(tt.want) {
			t.Errorf("%s: RecordsSince(%q, %d) = %q, want %q", tt.name, tt.since, tt.limit, keys(got), tt.want)
		}
		for _, r := range got {
			if time.Since(r.IndexedAt) > time.Minute || time.Until(r.IndexedAt) > time.Second {
				t.Errorf("%s: %s indexed at %v, want about now", tt.name, r.RKey, r.IndexedAt)
			}
		}
	}
}
