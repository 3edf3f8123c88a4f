package repo

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"

	atrepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// checkExport exports the fixture's repository and loads it with indigo:
// the signature verifies and every record, and only those, is there. It
// then checks the reads against the model.
func checkExport(t *testing.T, f *fixture) {
	t.Helper()
	var car bytes.Buffer
	if err := ExportCAR(f.ctx, &car, f.src, f.head.Commit); err != nil {
		t.Fatal(err)
	}
	commit, r, err := atrepo.LoadRepoFromCAR(f.ctx, bytes.NewReader(car.Bytes()))
	if err != nil {
		t.Fatalf("indigo LoadRepoFromCAR: %v", err)
	}
	pub, _ := f.key.PublicKey()
	if err := commit.VerifySignature(pub); err != nil {
		t.Fatalf("exported commit signature: %v", err)
	}
	if r.MST.IsPartial() {
		t.Fatal("exported tree is partial")
	}
	if err := r.MST.Verify(); err != nil {
		t.Fatalf("exported tree: %v", err)
	}
	count := 0
	if err := r.MST.Walk(func(key []byte, _ cid.Cid) error { count++; return nil }); err != nil {
		t.Fatal(err)
	}
	if count != len(f.model) {
		t.Fatalf("exported %d records, model has %d", count, len(f.model))
	}
	for path, want := range f.model {
		nsid, rkey, _ := syntax.ParseRepoPath(path)
		got, _, err := r.GetRecordBytes(f.ctx, nsid, rkey)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("exported %s: %v", path, err)
		}
	}

	// Our reader agrees, the commit comes first, and nothing repeats
	// except records shared by keys.
	cr, err := NewCARReader(bytes.NewReader(car.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if cr.Roots()[0] != f.head.Commit {
		t.Fatal("CAR root is not the commit")
	}
	first, err := cr.Next()
	if err != nil || first.CID != f.head.Commit {
		t.Fatalf("first block %s, %v", first.CID, err)
	}
	// Streamable order: every later block is named by a block before it.
	named := map[cid.Cid]bool{commit.Data: true}
	for {
		b, err := cr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if !named[b.CID] {
			t.Fatalf("block %s comes before any block naming it", b.CID)
		}
		if nd, err := mst.NodeDataFromCBOR(bytes.NewReader(b.Data)); err == nil && b.CID != first.CID {
			n := nd.Node(&b.CID)
			for _, e := range n.Entries {
				if e.IsChild() {
					named[*e.ChildCID] = true
				} else {
					named[*e.Value] = true
				}
			}
		}
	}

	checkReads(t, f)
}

// checkReads compares GetRecord, ListRecords and RecordProof with the model.
func checkReads(t *testing.T, f *fixture) {
	t.Helper()
	byColl := map[syntax.NSID][]string{}
	for path := range f.model {
		nsid, rkey, _ := syntax.ParseRepoPath(path)
		byColl[nsid] = append(byColl[nsid], rkey.String())
		c, data, err := GetRecord(f.ctx, f.src, f.head.Data, nsid, rkey)
		want, _ := cidFor(f.model[path])
		if err != nil || c != want || !bytes.Equal(data, f.model[path]) {
			t.Fatalf("GetRecord %s: %s %v", path, c, err)
		}
	}
	if _, _, err := GetRecord(f.ctx, f.src, f.head.Data, "app.bsky.feed.post", "nope"); !errors.Is(err, ErrRecordNotFound) {
		t.Fatalf("GetRecord of a missing record: %v", err)
	}
	for _, nsid := range append(testCollections, "app.bsky.feed.postgate", "app.bsky.feed") {
		want := byColl[nsid]
		sort.Strings(want)
		for _, reverse := range []bool{false, true} {
			exp := slices.Clone(want)
			if reverse {
				slices.Reverse(exp)
			}
			all := listAll(t, f, nsid, ListOptions{Reverse: reverse})
			if !slices.Equal(all, exp) {
				t.Fatalf("ListRecords %s reverse=%v: %d records, want %d", nsid, reverse, len(all), len(exp))
			}
			paged := listAll(t, f, nsid, ListOptions{Reverse: reverse, Limit: 7})
			if !slices.Equal(paged, exp) {
				t.Fatalf("paged ListRecords %s reverse=%v differs", nsid, reverse)
			}
		}
	}

	// Proofs: a few present records and absent neighbours of each.
	n := 0
	for path := range f.model {
		if n++; n > 20 {
			break
		}
		nsid, rkey, _ := syntax.ParseRepoPath(path)
		checkProof(t, f, nsid, rkey, true)
		checkProof(t, f, nsid, syntax.RecordKey(rkey.String()+"a"), false)
		checkProof(t, f, nsid, syntax.RecordKey(strings.TrimRight(rkey.String(), "2")+"1"), false)
	}
	checkProof(t, f, "app.bsky.feed.post", "zzzzzzzzzzzzz", false)
	checkProof(t, f, "aaa.aaa.aaa", "a", false)
}

// listAll pages through ListRecords with opts' limit and direction.
func listAll(t *testing.T, f *fixture, nsid syntax.NSID, opts ListOptions) []string {
	t.Helper()
	var out []string
	for {
		page, err := ListRecords(f.ctx, f.src, f.head.Data, nsid, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			out = append(out, r.RKey.String())
			if want, _ := cidFor(f.model[nsid.String()+"/"+r.RKey.String()]); want != r.CID {
				t.Fatalf("ListRecords CID of %s", r.RKey)
			}
		}
		if opts.Limit == 0 || len(page) < opts.Limit {
			return out
		}
		opts.Cursor = page[len(page)-1].RKey
	}
}

// checkProof verifies a RecordProof CAR with indigo: the commit is signed,
// and the partial tree in it answers the lookup without missing a node.
func checkProof(t *testing.T, f *fixture, nsid syntax.NSID, rkey syntax.RecordKey, wantFound bool) {
	t.Helper()
	path := nsid.String() + "/" + rkey.String()
	if _, ok := f.model[path]; ok != wantFound {
		return // the made-up absent key happens to exist
	}
	blocks, found, err := RecordProof(f.ctx, f.src, f.head.Commit, nsid, rkey)
	if err != nil {
		t.Fatal(err)
	}
	if found != wantFound {
		t.Fatalf("proof of %s: found %v", path, found)
	}
	var car bytes.Buffer
	if err := WriteCAR(&car, f.head.Commit, blocks); err != nil {
		t.Fatal(err)
	}
	commit, r, err := atrepo.LoadRepoFromCAR(f.ctx, &car)
	if err != nil {
		t.Fatalf("proof of %s: %v", path, err)
	}
	pub, _ := f.key.PublicKey()
	if err := commit.VerifySignature(pub); err != nil {
		t.Fatal(err)
	}
	got, err := r.MST.Get([]byte(path))
	if err != nil {
		t.Fatalf("proof of %s does not answer the lookup: %v", path, err)
	}
	if found {
		data, _, err := r.GetRecordBytes(f.ctx, nsid, rkey)
		if err != nil || !bytes.Equal(data, f.model[path]) {
			t.Fatalf("proof of %s: record %v", path, err)
		}
	} else if got != nil {
		t.Fatalf("proof of absent %s finds %s", path, got)
	}
}
