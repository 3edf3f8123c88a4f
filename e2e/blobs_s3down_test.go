package e2e

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"
)

// TestBlobS3Unreachable stops the S3 server under a running hearth and
// checks that what needs it fails cleanly: uploads, getBlob and a record
// whose blob must leave the temporary area each get a 500 with the XRPC
// error shape (InternalServerError "Internal Server Error", what the
// official PDS's XRPC server sends for any error it does not map; its
// behaviour with S3 down was not recorded), within the S3 client's
// retries, and leave nothing: no blob row, no repository change, no
// object or multipart upload in the bucket. Reads that need only the
// database still work. Once S3 is back on the same address, the same
// requests succeed.
func TestBlobS3Unreachable(t *testing.T) {
	s := startBlobServer(t, "s3", "PDS_BLOB_UPLOAD_LIMIT="+itoa(16<<20))
	alice := s.account("down.test")
	auth := bearer(alice.AccessJwt)

	keptBytes := pngBytes(40, 2000)
	kept := mustUpload(t, s.URL, alice.AccessJwt, "image/png", keptBytes)
	s.c.mustPost("com.atproto.repo.createRecord", auth, postWithImage(alice.DID, kept.ref(), ""))
	pendingBytes := pngBytes(41, 2000)
	pending := mustUpload(t, s.URL, alice.AccessJwt, "image/png", pendingBytes)
	head := getLatestCommit(t, s.URL, alice.DID)
	rows := s.blobRows(t, alice.DID)
	if got := s.temps(t, alice.DID); len(got) != 1 {
		t.Fatalf("temporary area before: %q, want the one pending upload", got)
	}

	small := pngBytes(42, 100<<10)
	large := noiseBytes(43, 6<<20) // past the first part: a multipart upload
	s.s3.Stop()

	// Each failure: a 500 with the XRPC error body, and nothing changed.
	refused := func(name string, do func() (int, []byte)) {
		t.Helper()
		start := time.Now()
		status, body := do()
		took := time.Since(start)
		errName, msg := xrpcErrorOf(body)
		if status != http.StatusInternalServerError || errName != "InternalServerError" || msg != "Internal Server Error" {
			t.Errorf("%s with S3 down: got %d %s, want 500 InternalServerError", name, status, body)
		}
		t.Logf("S3 down: %s: %d %s in %s", name, status, bytes.TrimSpace(body), took.Round(10*time.Millisecond))
		if took > 30*time.Second {
			t.Errorf("%s with S3 down took %s", name, took)
		}
		if got := getLatestCommit(t, s.URL, alice.DID); got != head {
			t.Errorf("%s: head moved %+v -> %+v", name, head, got)
		}
		s.checkRows(t, alice.DID, rows)
	}
	refused("uploadBlob 100 KiB", func() (int, []byte) {
		return upload(t, s.URL, merge(auth, ctype("image/png")), bytes.NewReader(small), int64(len(small)))
	})
	refused("uploadBlob 6 MiB", func() (int, []byte) {
		return upload(t, s.URL, merge(auth, ctype("application/octet-stream")), bytes.NewReader(large), int64(len(large)))
	})
	refused("getBlob", func() (int, []byte) { return getBlob(t, s.URL, alice.DID, kept.Blob.Ref.Link) })
	refused("createRecord with a new blob", func() (int, []byte) {
		return s.c.raw("POST", "com.atproto.repo.createRecord", merge(auth, ctype("application/json")), postWithImage(alice.DID, pending.ref(), ""))
	})

	// What needs only the database still answers.
	var listed struct{ CIDs []string }
	s.c.mustGetJSON("com.atproto.sync.listBlobs?did="+alice.DID, nil, &listed)
	if len(listed.CIDs) != 1 || listed.CIDs[0] != kept.Blob.Ref.Link {
		t.Errorf("listBlobs with S3 down: %v", listed.CIDs)
	}
	s.c.mustPost("com.atproto.repo.createRecord", auth, `{"repo":"`+alice.DID+`","collection":"app.bsky.feed.post","record":{"text":"no blob","createdAt":"2026-11-22T10:00:00.000Z"}}`)
	head = getLatestCommit(t, s.URL, alice.DID)

	s.s3.Restart()
	// Nothing half-written in the bucket: the pending upload only, no
	// multipart upload left begun.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	objects, uploads, err := s.s3.Objects(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.temps(t, alice.DID); len(got) != 1 || len(uploads) != 0 {
		t.Errorf("bucket after S3 came back: temporary %q, multipart uploads %q (all objects %q)", got, uploads, objects)
	}

	// Recovery: the same requests work.
	for _, b := range [][]byte{small, large} {
		u := mustUpload(t, s.URL, alice.AccessJwt, "application/octet-stream", b)
		if status, out := s.holdBlob(t, alice, u.ref()); status != http.StatusOK {
			t.Fatalf("reference a blob uploaded after recovery: %d %s", status, out)
		}
		if status, got := getBlob(t, s.URL, alice.DID, u.Blob.Ref.Link); status != http.StatusOK || !bytes.Equal(got, b) {
			t.Errorf("getBlob after recovery: %d, identical %v", status, bytes.Equal(got, b))
		}
	}
	if status, got := getBlob(t, s.URL, alice.DID, kept.Blob.Ref.Link); status != http.StatusOK || !bytes.Equal(got, keptBytes) {
		t.Errorf("getBlob of the blob stored before the outage: %d, identical %v", status, bytes.Equal(got, keptBytes))
	}
	var out struct{ Commit latestCommit }
	s.c.mustPostJSON("com.atproto.repo.createRecord", auth, postWithImage(alice.DID, pending.ref(), ""), &out)
	if status, got := getBlob(t, s.URL, alice.DID, pending.Blob.Ref.Link); status != http.StatusOK || !bytes.Equal(got, pendingBytes) {
		t.Errorf("getBlob of the upload refused a record during the outage: %d, identical %v", status, bytes.Equal(got, pendingBytes))
	}
	if got := s.temps(t, alice.DID); len(got) != 0 {
		t.Errorf("temporary area after recovery: %q", got)
	}
}
