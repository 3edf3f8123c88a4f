package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/store"
)

func testBlobs(t *testing.T, s store.Store) {
	a := newAccount(1)
	mustCreate(t, s, a)
	old := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Millisecond)
	for _, b := range []store.Blob{
		{DID: a.DID, CID: CIDOf("blobA"), MimeType: "image/png", Size: 10, TempKey: "tmpA", CreatedAt: old},
		{DID: a.DID, CID: CIDOf("blobB"), MimeType: "image/jpeg", Size: 20, TempKey: "tmpB", CreatedAt: old},
		{DID: a.DID, CID: CIDOf("blobC"), MimeType: "image/jpeg", Size: 30, TempKey: "tmpC", CreatedAt: time.Now()},
	} {
		if existing, err := s.PutBlob(ctx, b); err != nil || existing != nil {
			t.Fatalf("PutBlob(%s) = %v, %v", b.CID, existing, err)
		}
	}
	again, err := s.PutBlob(ctx, store.Blob{DID: a.DID, CID: CIDOf("blobA"), MimeType: "image/png", Size: 10, TempKey: "other", CreatedAt: time.Now()})
	if err != nil || again == nil || again.TempKey != "tmpA" {
		t.Fatalf("second upload of blobA = %+v, %v; want the existing row", again, err)
	}

	commit := func(prev, c cid.Cid, rev syntax.TID, puts, deletes []store.RecordRef, refs []store.BlobRef) error {
		_, err := s.ApplyCommit(ctx, store.Commit{DID: a.DID, PrevCID: prev, CID: c, Rev: rev, Puts: puts, Deletes: deletes, BlobRefs: refs})
		return err
	}
	post := store.RecordRef{Collection: "app.bsky.feed.post", RKey: "p1", CID: CIDOf("r1")}
	if err := commit(a.RootCID, CIDOf("c1"), "rev2", []store.RecordRef{post}, nil,
		[]store.BlobRef{{Collection: post.Collection, RKey: post.RKey, CID: CIDOf("blobA")}, {Collection: post.Collection, RKey: post.RKey, CID: CIDOf("blobMissing")}}); !errors.Is(err, store.ErrBlobNotFound) {
		t.Fatalf("commit referencing a blob never uploaded: %v", err)
	}
	if err := commit(a.RootCID, CIDOf("c1"), "rev2", []store.RecordRef{post}, nil,
		[]store.BlobRef{{Collection: post.Collection, RKey: post.RKey, CID: CIDOf("blobA")}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Blob(ctx, a.DID, CIDOf("blobA")); b.TempKey != "" || b.ReleasedAt != nil {
		t.Errorf("referenced blob = %+v, want permanent", b)
	}
	if list, _ := s.ListBlobs(ctx, a.DID, "", "", 10); len(list) != 1 || list[0] != CIDOf("blobA") {
		t.Errorf("ListBlobs = %v", list)
	}
	if list, _ := s.ListBlobs(ctx, a.DID, "rev2", "", 10); len(list) != 0 {
		t.Errorf("ListBlobs since rev2 = %v", list)
	}
	// Only the old, never-referenced upload is collectable.
	coll, _ := s.CollectableBlobs(ctx, time.Now().Add(-time.Hour), 10)
	if len(coll) != 1 || coll[0].CID != CIDOf("blobB") {
		t.Errorf("CollectableBlobs = %+v", coll)
	}
	// Deleting the post releases blobA.
	if err := commit(CIDOf("c1"), CIDOf("c2"), "rev3", nil, []store.RecordRef{post}, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Blob(ctx, a.DID, CIDOf("blobA")); b.ReleasedAt == nil {
		t.Errorf("unreferenced blob not released: %+v", b)
	}
	coll, _ = s.CollectableBlobs(ctx, time.Now().Add(time.Minute), 10)
	if len(coll) != 3 {
		t.Errorf("CollectableBlobs after release = %+v", coll)
	}
	if ok, err := s.DeleteBlob(ctx, a.DID, CIDOf("blobA")); err != nil || !ok {
		t.Errorf("DeleteBlob = %v, %v", ok, err)
	}
	if _, err := s.Blob(ctx, a.DID, CIDOf("blobA")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted blob: %v", err)
	}
	// A referenced blob is never deleted.
	if err := commit(CIDOf("c2"), CIDOf("c3"), "rev4", []store.RecordRef{post}, nil, []store.BlobRef{{Collection: post.Collection, RKey: post.RKey, CID: CIDOf("blobC")}}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.DeleteBlob(ctx, a.DID, CIDOf("blobC")); ok {
		t.Error("referenced blob deleted")
	}
	// An update that drops the reference releases it.
	if err := commit(CIDOf("c3"), CIDOf("c4"), "rev5", []store.RecordRef{{Collection: post.Collection, RKey: post.RKey, CID: CIDOf("r2")}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Blob(ctx, a.DID, CIDOf("blobC")); b.ReleasedAt == nil {
		t.Errorf("blob dropped by an update not released: %+v", b)
	}
}
