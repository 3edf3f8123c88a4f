package blobstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/multiformats/go-multihash"

	"github.com/hearth-pds/hearth/blobstore"
	"github.com/hearth-pds/hearth/blobstore/blobstoretest"
	"github.com/hearth-pds/hearth/config"
	"github.com/hearth-pds/hearth/testenv"
)

// s3Server is a versitygw started for one test, with a raw client to make
// buckets and look at keys behind the store's back.
type s3Server struct {
	endpoint, access, secret, bucket string
	raw                              *minio.Client
	buckets                          atomic.Int64
}

func startS3(t *testing.T) *s3Server {
	srv := &s3Server{}
	srv.endpoint, srv.access, srv.secret, srv.bucket = testenv.StartS3(t)
	raw, err := minio.New(strings.TrimPrefix(srv.endpoint, "http://"), &minio.Options{
		Creds:        credentials.NewStaticV4(srv.access, srv.secret, ""),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.raw = raw
	return srv
}

func (srv *s3Server) config(bucket string) config.S3 {
	return config.S3{
		Bucket:          bucket,
		Region:          "us-east-1",
		Endpoint:        srv.endpoint,
		ForcePathStyle:  true,
		AccessKeyID:     srv.access,
		SecretAccessKey: config.Secret(srv.secret),
		UploadTimeout:   time.Minute,
		RequestTimeout:  10 * time.Second,
	}
}

// newBucket makes an empty bucket, so every subtest sees only its own keys.
func (srv *s3Server) newBucket(t *testing.T) string {
	bucket := fmt.Sprintf("blobs-%d", srv.buckets.Add(1))
	if err := srv.raw.MakeBucket(t.Context(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return bucket
}

func (srv *s3Server) keys(t testing.TB, bucket string) []string {
	t.Helper()
	var out []string
	for obj := range srv.raw.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		out = append(out, obj.Key)
	}
	slices.Sort(out)
	return out
}

// The official layout in a bucket (packages/aws/src/s3.ts):
// blocks/<did>/<cid>, tmp/<did>/<key>, quarantine/<did>/<cid>, the DID as
// it is.
func TestS3Conformance(t *testing.T) {
	srv := startS3(t)
	blobstoretest.Run(t, func(t *testing.T) blobstoretest.Harness {
		bucket := srv.newBucket(t)
		s, err := blobstore.NewS3(srv.config(bucket), nil)
		if err != nil {
			t.Fatal(err)
		}
		return blobstoretest.Harness{
			Store:       s,
			Stored:      "blocks/{did}/{cid}",
			Temp:        "tmp/{did}/{key}",
			Quarantined: "quarantine/{did}/{cid}",
			Objects:     func(t testing.TB) []string { return srv.keys(t, bucket) },
			PutObject: func(t testing.TB, name string, data []byte) {
				if _, err := srv.raw.PutObject(context.Background(), bucket, name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

// TestS3UploadTimeout: PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS bounds the whole
// upload, a slow client included, and a timed-out upload leaves nothing.
func TestS3UploadTimeout(t *testing.T) {
	srv := startS3(t)
	cfg := srv.config(srv.bucket)
	cfg.UploadTimeout = 300 * time.Millisecond
	s, err := blobstore.NewS3(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	did := "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	start := time.Now()
	_, _, err = s.PutTemp(t.Context(), did, slowReader{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PutTemp of a stalled body: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("PutTemp gave up after %v, want about %v", d, cfg.UploadTimeout)
	}
	if keys := srv.keys(t, srv.bucket); len(keys) != 0 {
		t.Errorf("bucket holds %q after a timed-out upload", keys)
	}
}

// slowReader sends a byte every 50 ms, forever.
type slowReader struct{}

func (slowReader) Read(p []byte) (int, error) {
	time.Sleep(50 * time.Millisecond)
	p[0] = 'x'
	return 1, nil
}

func TestS3CheckAndOpen(t *testing.T) {
	srv := startS3(t)
	cfg := config.Blobstore{S3: srv.config(srv.bucket)}
	s, err := blobstore.Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*blobstore.S3); !ok {
		t.Fatalf("Open with a bucket gave a %T, want *blobstore.S3", s)
	}
	if err := s.Check(t.Context()); err != nil {
		t.Fatal(err)
	}

	missing := srv.config("no-such-bucket")
	s, err = blobstore.NewS3(missing, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); err == nil {
		t.Error("Check of a missing bucket succeeded")
	}
	// A missing bucket is a misconfiguration, never "blob not found".
	_, _, err = s.Get(t.Context(), "did:plc:ewvi7nxzyoun6zhxrhs64oiz", cidOf(t, []byte("x")))
	if err == nil || errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Get from a missing bucket: %v, want an error other than ErrNotFound", err)
	}

	wrongKey := srv.config(srv.bucket)
	wrongKey.SecretAccessKey = "wrong"
	s, err = blobstore.NewS3(wrongKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); err == nil {
		t.Error("Check with a wrong secret key succeeded")
	}
}

func cidOf(t testing.TB, data []byte) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, mh)
}
