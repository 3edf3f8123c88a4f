package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	atrepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/testenv"
)

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// TestKeyHeights: the layer our loader assigns a decoded node is the layer
// of its keys (mst/key_heights.json).
func TestKeyHeights(t *testing.T) {
	var cases []struct {
		Key    string `json:"key"`
		Height int    `json:"height"`
	}
	readJSON(t, filepath.Join(sharedMSTVectors(t), "key_heights.json"), &cases)
	leaf := mustCID(t, "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454")
	for _, tc := range cases {
		if got := mst.HeightForKey([]byte(tc.Key)); got != tc.Height {
			t.Errorf("height of %q: %d, want %d", tc.Key, got, tc.Height)
		}
		if tc.Key == "" {
			continue // not a valid tree key
		}
		tree := mst.NewEmptyTree()
		if _, err := tree.Insert([]byte(tc.Key), leaf); err != nil {
			t.Fatal(err)
		}
		src := NewMemorySource()
		root, err := encodeDirty(tree.Root, func(_ *mst.Node, c cid.Cid, d []byte) { src.Put(Block{CID: c, Data: d}) })
		if err != nil {
			t.Fatal(err)
		}
		n, err := loadNode(context.Background(), src, root, -1)
		if err != nil {
			t.Fatal(err)
		}
		if n.Height != tc.Height {
			t.Errorf("decoded root of %q at layer %d, want %d", tc.Key, n.Height, tc.Height)
		}
	}
}

// TestCommonPrefix: node encoding compresses keys by the common prefix
// (mst/common_prefix.json), and decoding restores them.
func TestCommonPrefix(t *testing.T) {
	var cases []struct {
		Left  string `json:"left"`
		Right string `json:"right"`
		Len   int    `json:"len"`
	}
	readJSON(t, filepath.Join(sharedMSTVectors(t), "common_prefix.json"), &cases)
	leaf := mustCID(t, "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454")
	for _, tc := range cases {
		if got := mst.CountPrefixLen([]byte(tc.Left), []byte(tc.Right)); got != tc.Len {
			t.Errorf("prefix of %q, %q: %d, want %d", tc.Left, tc.Right, got, tc.Len)
		}
		if tc.Left == "" || tc.Left >= tc.Right {
			continue // not two ordered keys of one node
		}
		n := &mst.Node{Entries: []mst.NodeEntry{{Key: []byte(tc.Left), Value: &leaf}, {Key: []byte(tc.Right), Value: &leaf}}}
		nd := n.NodeData()
		if got := nd.Entries[1].PrefixLen; got != int64(tc.Len) {
			t.Errorf("encoded prefix of %q after %q: %d, want %d", tc.Right, tc.Left, got, tc.Len)
		}
		data, c, err := nd.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		// Decode without the layer check: these keys need not share a layer.
		back, err := mst.NodeDataFromCBOR(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		got := back.Node(c)
		if string(got.Entries[0].Key) != tc.Left || string(got.Entries[1].Key) != tc.Right {
			t.Errorf("round trip of %q, %q gave %q, %q", tc.Left, tc.Right, got.Entries[0].Key, got.Entries[1].Key)
		}
	}
}

// TestCommitProofFixtures runs firehose/commit-proof-fixtures.json through
// mutate, warm (the tree that built the "before" state) and cold (loaded
// from the store): the roots before and after match, our event includes
// every block the fixture lists as needed for the proof, and indigo inverts
// the ops on exactly our event's blocks back to the root before.
func TestCommitProofFixtures(t *testing.T) {
	var fixtures []struct {
		Comment          string   `json:"comment"`
		LeafValue        string   `json:"leafValue"`
		Keys             []string `json:"keys"`
		Adds             []string `json:"adds"`
		Dels             []string `json:"dels"`
		RootBeforeCommit string   `json:"rootBeforeCommit"`
		RootAfterCommit  string   `json:"rootAfterCommit"`
		BlocksInProof    []string `json:"blocksInProof"`
	}
	readJSON(t, filepath.Join(testenv.InteropVectors(t, "firehose"), "commit-proof-fixtures.json"), &fixtures)
	ctx := context.Background()
	for _, fx := range fixtures {
		for _, cold := range []bool{false, true} {
			name := fx.Comment
			if cold {
				name += "/cold"
			}
			t.Run(name, func(t *testing.T) {
				leaf := mustCID(t, fx.LeafValue)
				src := NewMemorySource()
				tree := &lazyTree{tree: mst.NewEmptyTree()}
				var seed []mutation
				for _, k := range fx.Keys {
					seed = append(seed, mutation{key: []byte(k), val: &leaf, action: Create})
				}
				d, err := mutate(ctx, src, tree, seed)
				if err != nil {
					t.Fatal(err)
				}
				src.Put(d.newNodes...)
				if got := d.root.String(); got != fx.RootBeforeCommit {
					t.Fatalf("root before: %s, want %s", got, fx.RootBeforeCommit)
				}
				if cold {
					if tree, err = loadTree(ctx, src, d.root); err != nil {
						t.Fatal(err)
					}
				}
				var muts []mutation
				var ops []atrepo.Operation
				for _, k := range fx.Adds {
					muts = append(muts, mutation{key: []byte(k), val: &leaf, action: Create})
					ops = append(ops, atrepo.Operation{Path: k, Value: &leaf})
				}
				for _, k := range fx.Dels {
					muts = append(muts, mutation{key: []byte(k), action: Delete})
					ops = append(ops, atrepo.Operation{Path: k, Prev: &leaf})
				}
				d, err = mutate(ctx, src, tree, muts)
				if err != nil {
					t.Fatal(err)
				}
				if got := d.root.String(); got != fx.RootAfterCommit {
					t.Fatalf("root after: %s, want %s", got, fx.RootAfterCommit)
				}
				event := append(append([]Block{}, d.newNodes...), d.proofNodes...)
				have := blockSet(event)
				for _, s := range fx.BlocksInProof {
					if !have[mustCID(t, s)] {
						t.Errorf("proof lacks %s", s)
					}
				}
				if len(event) != len(fx.BlocksInProof) {
					t.Logf("%d tree blocks in our event, fixture lists %d", len(event), len(fx.BlocksInProof))
				}

				// Invert with indigo on our blocks alone.
				bs := atrepo.NewTinyBlockstore()
				for _, b := range event {
					blk, _ := blocks.NewBlockWithCid(b.Data, b.CID)
					_ = bs.Put(ctx, blk)
				}
				inv, err := mst.LoadTreeFromStore(ctx, bs, d.root)
				if err != nil {
					t.Fatal(err)
				}
				ops, err = atrepo.NormalizeOps(ops)
				if err != nil {
					t.Fatal(err)
				}
				for _, op := range ops {
					if err := atrepo.InvertOp(inv, &op); err != nil {
						t.Fatalf("invert %s: %v", op.Path, err)
					}
				}
				back, err := inv.RootCID()
				if err != nil {
					t.Fatal(err)
				}
				if back.String() != fx.RootBeforeCommit {
					t.Fatalf("inverted root %s, want %s", back, fx.RootBeforeCommit)
				}
			})
		}
	}
}

func mustCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
