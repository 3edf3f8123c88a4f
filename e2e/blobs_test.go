package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/blobstore"
	"github.com/hearth-pds/hearth/config"
	"github.com/hearth-pds/hearth/testenv"
)

// TestBlobs: @atproto/api uploads an image, embeds it in a post and reads
// it back byte-identical; deleting the post releases the blob and the
// collector deletes it — on disk and on a real S3-compatible server
// (versitygw, started by the project's scripts).
func TestBlobs(t *testing.T) {
	for _, backend := range []string{"disk", "s3"} {
		t.Run(backend, func(t *testing.T) {
			env := []string{"HEARTH_BLOB_GRACE_MS=300", "HEARTH_BLOB_COLLECT_INTERVAL_MS=200"}
			var bs config.Blobstore
			if backend == "s3" {
				endpoint, key, secret, bucket := testenv.StartS3(t)
				bs.S3 = config.S3{Bucket: bucket, Region: "us-east-1", Endpoint: endpoint, ForcePathStyle: true,
					AccessKeyID: key, SecretAccessKey: config.Secret(secret), UploadTimeout: 20 * time.Second}
				env = append(env, "PDS_BLOBSTORE_S3_BUCKET="+bucket, "PDS_BLOBSTORE_S3_REGION=us-east-1",
					"PDS_BLOBSTORE_S3_ENDPOINT="+endpoint, "PDS_BLOBSTORE_S3_FORCE_PATH_STYLE=true",
					"PDS_BLOBSTORE_S3_ACCESS_KEY_ID="+key, "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY="+secret)
			}
			h := testenv.StartHearth(t, testenv.StartEmbeddedPLC(t), env...)
			if backend == "disk" {
				bs.DiskLocation = h.DataDir + "/blocks"
				bs.DiskTmpLocation = h.DataDir + "/blocks/tempt"
			}
			out := testenv.RunNode(t, "blobs.mjs", 2*time.Minute,
				"PDS_URL="+h.URL, "ADMIN_PASSWORD="+h.AdminPassword, "HANDLE=pic"+backend+".test")
			var got struct {
				DID, CID, URI, AccessJwt string
				Size                     int64
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("blobs.mjs output %q: %v", out, err)
			}

			// The bytes are where the official layout puts them.
			store, err := blobstore.Open(bs, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := cid.Decode(got.CID)
			ctx := context.Background()
			if size, err := store.Stat(ctx, got.DID, c); err != nil || size != got.Size {
				t.Fatalf("blob in the store: %d, %v", size, err)
			}

			// Delete the post: the blob is released, then collected.
			rkey := got.URI[strings.LastIndex(got.URI, "/")+1:]
			c2 := &client{t: t, base: h.URL}
			c2.mustPost("com.atproto.repo.deleteRecord", bearer(got.AccessJwt),
				`{"repo":"`+got.DID+`","collection":"app.bsky.feed.post","rkey":"`+rkey+`"}`)
			deadline := time.Now().Add(15 * time.Second)
			for {
				_, err := store.Stat(ctx, got.DID, c)
				if err != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("released blob still stored after 15 s")
				}
				time.Sleep(100 * time.Millisecond)
			}
			status, _ := c2.raw("GET", "com.atproto.sync.getBlob?did="+got.DID+"&cid="+got.CID, nil, "")
			if status != http.StatusBadRequest {
				t.Errorf("getBlob of a collected blob: %d", status)
			}
		})
	}
}
