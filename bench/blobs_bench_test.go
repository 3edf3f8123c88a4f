package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/hearth-pds/hearth/bench"
	"github.com/hearth-pds/hearth/testenv"
)

// Blob benchmarks: uploadBlob and getBlob through the built binary, with
// blobs on disk and on S3 (versitygw on loopback), at 64 KiB, 1 MiB and
// 16 MiB. b.SetBytes makes go test print MB/s beside ns/op:
//
//	go test -run '^$' -bench 'UploadBlob|GetBlob' ./bench/
//	go test -run '^$' -bench 'GetBlob/s3/16MiB' -benchtime 50x ./bench/
//
// The server is `hearth serve` from testenv, on 127.0.0.1 with logging
// off and the upload limit the official installer writes (100 MiB).

var blobSizes = []int{64 << 10, 1 << 20, 16 << 20}

// startBlobServer starts hearth with its blobs on backend ("disk" or "s3").
func startBlobServer(b *testing.B, backend string) *server {
	b.Helper()
	env := []string{"LOG_ENABLED=false", "PDS_BLOB_UPLOAD_LIMIT=104857600"}
	if backend == "s3" {
		env = append(env, testenv.StartS3Server(b).Env()...)
	}
	h := testenv.StartHearth(b, testenv.StartEmbeddedPLC(b), env...)
	c, err := bench.NewClient("http://"+h.Addr, 64, 60*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return &server{url: "http://" + h.Addr, admin: h.AdminPassword, pid: h.PID(), client: c, dataDir: h.DataDir}
}

// BenchmarkUploadBlob: one client, then 16 (each upload distinct bytes).
func BenchmarkUploadBlob(b *testing.B) {
	for _, backend := range []string{"disk", "s3"} {
		b.Run(backend, func(b *testing.B) {
			s := startBlobServer(b, backend)
			w := s.newWriter(b)
			for i, size := range blobSizes {
				src, err := bench.NewBlobSource(size, uint64(i)+1)
				if err != nil {
					b.Fatal(err)
				}
				op := func(ctx context.Context, _ int) error {
					_, err := s.client.UploadBlob(ctx, w.token, "image/png", src.Next(), int64(size))
					return err
				}
				b.Run(bench.FormatSize(int64(size)), func(b *testing.B) {
					b.Run("serial", func(b *testing.B) { b.SetBytes(int64(size)); s.measure(b, false, op) })
					b.Run("parallel", func(b *testing.B) {
						b.SetBytes(int64(size))
						b.SetParallelism(clients())
						s.measure(b, true, op)
					})
				})
			}
		})
	}
}

// BenchmarkGetBlob reads 16 blobs that records reference, in turn.
func BenchmarkGetBlob(b *testing.B) {
	for _, backend := range []string{"disk", "s3"} {
		b.Run(backend, func(b *testing.B) {
			s := startBlobServer(b, backend)
			w := s.newWriter(b)
			ctx := context.Background()
			for i, size := range blobSizes {
				src, err := bench.NewBlobSource(size, uint64(i)+1)
				if err != nil {
					b.Fatal(err)
				}
				held := make([]string, 16)
				for j := range held {
					blob, err := s.client.UploadBlob(ctx, w.token, "image/png", src.Next(), int64(size))
					if err != nil {
						b.Fatal(err)
					}
					if err := s.client.HoldBlob(ctx, w.token, w.did, blob); err != nil {
						b.Fatal(err)
					}
					held[j] = blob.CID()
				}
				op := func(ctx context.Context, i int) error {
					n, err := s.client.GetBlob(ctx, w.did, held[i%len(held)])
					if err == nil && n != int64(size) {
						b.Errorf("getBlob: %d bytes, want %d", n, size)
					}
					return err
				}
				b.Run(bench.FormatSize(int64(size)), func(b *testing.B) {
					b.Run("serial", func(b *testing.B) { b.SetBytes(int64(size)); s.measure(b, false, op) })
					b.Run("parallel", func(b *testing.B) {
						b.SetBytes(int64(size))
						b.SetParallelism(clients())
						s.measure(b, true, op)
					})
				})
			}
		})
	}
}
