package blobstore

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/minio/minio-go/v7"
	"github.com/multiformats/go-multihash"

	"github.com/hearth-pds/hearth/config"
)

// FuzzNames: whatever DID and key get past the checks name a file two
// levels below its folder and an S3 key of exactly three segments, so no
// input reaches outside the store's folders or prefixes.
func FuzzNames(f *testing.F) {
	for _, s := range []struct{ did, key string }{
		{"did:plc:ewvi7nxzyoun6zhxrhs64oiz", "h3ujqxdpn7vzrj6xy2rmv3v5x2kr6u7pxgbaz4xyc2pvcjeqnwia"},
		{"did:web:localhost%3A2583", "abc"},
		{"did:web:..", ".."},
		{"did:plc:../../etc", "../passwd"},
		{"did:plc:a/b", "a\\b"},
		{"../did:plc:x", "x\x00y"},
	} {
		f.Add(s.did, s.key)
	}
	mh, _ := multihash.Sum([]byte("x"), multihash.SHA2_256, -1)
	c := cid.NewCidV1(cid.Raw, mh)
	d := &Disk{location: "/blobs", tmp: "/blobs/tempt", quarantine: "/blobs/quarantine"}
	f.Fuzz(func(t *testing.T, rawDID, key string) {
		if checkTemp(rawDID, key) != nil {
			return
		}
		for _, p := range []struct{ path, root string }{
			{d.tmpPath(rawDID, key), d.tmp},
			{d.storedPath(rawDID, c), d.location},
			{d.quarantinePath(rawDID, c), d.quarantine},
		} {
			rel, err := filepath.Rel(p.root, p.path)
			if err != nil || len(strings.Split(rel, string(filepath.Separator))) != 2 || strings.HasPrefix(rel, "..") {
				t.Fatalf("DID %q, key %q: %s is not two levels below %s", rawDID, key, p.path, p.root)
			}
		}
		for _, k := range []string{tmpKey(rawDID, key), storedKey(rawDID, c), quarantineKey(rawDID, c)} {
			parts := strings.Split(k, "/")
			if len(parts) != 3 || parts[1] != rawDID || parts[1] == "." || parts[1] == ".." || parts[2] == ".." {
				t.Fatalf("DID %q, key %q: S3 key %q is not prefix/did/name", rawDID, key, k)
			}
		}
	})
}

func TestBucketLookup(t *testing.T) {
	for _, tt := range []struct {
		endpoint  string
		bucket    string
		pathStyle bool
		want      minio.BucketLookupType
	}{
		{"https://s3.amazonaws.com", "blobs", false, minio.BucketLookupDNS},
		{"https://fsn1.your-objectstorage.com", "blobs", false, minio.BucketLookupDNS},
		{"https://fsn1.your-objectstorage.com", "blobs", true, minio.BucketLookupPath},
		{"http://127.0.0.1:7070", "blobs", false, minio.BucketLookupPath},
		{"http://[::1]:9000", "blobs", false, minio.BucketLookupPath},
		{"https://s3.example.com", "my.blobs", false, minio.BucketLookupPath},
		{"http://s3.example.com", "my.blobs", false, minio.BucketLookupDNS},
		{"https://s3.example.com", "My_Blobs", false, minio.BucketLookupPath},
	} {
		u, err := url.Parse(tt.endpoint)
		if err != nil {
			t.Fatal(err)
		}
		if got := bucketLookup(tt.pathStyle, *u, tt.bucket); got != tt.want {
			t.Errorf("bucketLookup(%v, %s, %s) = %v, want %v", tt.pathStyle, tt.endpoint, tt.bucket, got, tt.want)
		}
	}
}

func TestNewS3Endpoint(t *testing.T) {
	for _, tt := range []struct {
		endpoint string
		ok       bool
	}{
		{"", true},
		{"https://abc.r2.cloudflarestorage.com", true},
		{"http://127.0.0.1:7070", true},
		{"http://127.0.0.1:7070/", true},
		{"127.0.0.1:7070", false},
		{"ftp://example.com", false},
		{"https://example.com/bucket", false},
		{"https://user:pw@example.com", false},
	} {
		_, err := NewS3(config.S3{Bucket: "b", Endpoint: tt.endpoint}, nil)
		if (err == nil) != tt.ok {
			t.Errorf("NewS3(endpoint %q): %v, want ok=%v", tt.endpoint, err, tt.ok)
		}
	}
	if _, err := NewS3(config.S3{}, nil); err == nil {
		t.Error("NewS3 without a bucket succeeded")
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(config.Blobstore{DiskLocation: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*Disk); !ok {
		t.Errorf("Open with a disk location gave a %T", s)
	}
	if _, err := Open(config.Blobstore{DiskLocation: dir, S3: config.S3{Bucket: "b"}}, nil); err == nil {
		t.Error("Open with both a disk location and a bucket succeeded")
	}
	if _, err := Open(config.Blobstore{}, nil); err == nil {
		t.Error("Open with nothing configured succeeded")
	}
}

func TestContentRangeTotal(t *testing.T) {
	for _, tt := range []struct {
		in    string
		total int64
		ok    bool
	}{
		{"bytes 0-9/10000", 10000, true},
		{"bytes 5-9999/10000", 10000, true},
		{"bytes */10000", 10000, true},
		{"", 0, false},
		{"bytes 0-9/*", 0, false},
		{"items 0-9/10", 0, false},
	} {
		total, ok := contentRangeTotal(tt.in)
		if total != tt.total || ok != tt.ok {
			t.Errorf("contentRangeTotal(%q) = %d, %v; want %d, %v", tt.in, total, ok, tt.total, tt.ok)
		}
	}
}

func TestTempKeyFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k := newTempKey()
		if err := checkTempKey(k); err != nil || len(k) != 52 || strings.ToLower(k) != k || seen[k] {
			t.Fatalf("newTempKey() = %q (%v)", k, err)
		}
		seen[k] = true
	}
}
