package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hearth-pds/hearth/bench"
)

// Blob phases: uploadBlob and getBlob throughput at each blob size.
const (
	phaseBlobUpload = "blobs-upload"
	phaseBlobGet    = "blobs-get"
)

// Bounds of the blob phases, whatever the flags say.
const (
	maxBlobSize  = 100 << 20 // the official installer's PDS_BLOB_UPLOAD_LIMIT
	maxBlobBytes = 8 << 30   // bytes moved by one phase
)

// blobOptions are the blob phases' flags.
type blobOptions struct {
	BlobSizes []int64 // bytes, one phase per size
	BlobN     int     // requests per phase, at most
	BlobBytes int64   // bytes per phase, at most: fewer requests for big blobs
	BlobTime  time.Duration
	BlobHeld  int // getBlob: distinct blobs read in turn
}

func (o *blobOptions) flags(fs *flag.FlagSet, sizes *string) {
	fs.StringVar(sizes, "blob-sizes", "64k,1m,16m", "blobs-upload, blobs-get: blob sizes (k, m suffixes), one phase each")
	fs.IntVar(&o.BlobN, "blob-n", 400, "blobs-upload, blobs-get: requests per size, at most")
	fs.Func("blob-bytes", "blobs-upload, blobs-get: bytes moved per size, at most (default 512m): fewer requests for big blobs", func(s string) error {
		n, err := bench.ParseSize(s)
		o.BlobBytes = n
		return err
	})
	fs.DurationVar(&o.BlobTime, "blob-time", 2*time.Minute, "blobs-upload, blobs-get: time bound of each size")
	fs.IntVar(&o.BlobHeld, "blob-held", 16, "blobs-get: distinct blobs uploaded, referenced and then read in turn")
}

func (o *blobOptions) parse(sizes string) error {
	if o.BlobBytes == 0 {
		o.BlobBytes = 512 << 20
	}
	o.BlobSizes = nil
	for _, f := range strings.Split(sizes, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		n, err := bench.ParseSize(f)
		if err != nil {
			return fmt.Errorf("-blob-sizes: %w", err)
		}
		o.BlobSizes = append(o.BlobSizes, n)
	}
	switch {
	case o.BlobN < 1 || o.BlobN > maxRequests:
		return fmt.Errorf("-blob-n must be in [1, %d]", maxRequests)
	case o.BlobBytes < 1 || o.BlobBytes > maxBlobBytes:
		return fmt.Errorf("-blob-bytes must be in [1, %s]", bench.FormatSize(maxBlobBytes))
	case o.BlobTime <= 0 || o.BlobTime > maxDuration:
		return fmt.Errorf("-blob-time must be in (0, %s]", maxDuration)
	case o.BlobHeld < 1 || o.BlobHeld > 1000:
		return errors.New("-blob-held must be in [1, 1000]")
	}
	for _, n := range o.BlobSizes {
		if n < 64 || n > maxBlobSize {
			return fmt.Errorf("-blob-sizes: %s is not in [64, %s]", bench.FormatSize(n), bench.FormatSize(maxBlobSize))
		}
	}
	return nil
}

// requests is how many requests a phase on blobs of size makes.
func (o *blobOptions) requests(size int64) int {
	return int(max(1, min(int64(o.BlobN), o.BlobBytes/size)))
}

// blobPhase runs blobs-upload or blobs-get at every size, one account
// per phase, and reports MB/s (10^6 bytes) beside the request figures.
func (s *session) blobPhase(ctx context.Context, name string) ([]Phase, error) {
	o := s.o
	if len(o.BlobSizes) == 0 {
		return nil, errors.New("-blob-sizes: no size")
	}
	w, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	var out []Phase
	for i, size := range o.BlobSizes {
		src, err := bench.NewBlobSource(int(size), uint64(i)+1)
		if err != nil {
			return nil, err
		}
		n := o.requests(size)
		label := name + "-" + bench.FormatSize(size)
		fmt.Fprintf(s.log, "load: %s: %s: %d requests ...\n", o.Label, label, n)
		var op func(ctx context.Context, worker int) error
		switch name {
		case phaseBlobUpload:
			op = func(ctx context.Context, _ int) error {
				_, err := s.c.UploadBlob(ctx, w.token, "image/png", src.Next(), size)
				return err
			}
		case phaseBlobGet:
			// Blobs referenced by records: only those are served.
			held := make([]string, min(o.BlobHeld, n))
			for j := range held {
				b, err := s.c.UploadBlob(ctx, w.token, "image/png", src.Next(), size)
				if err != nil {
					return nil, fmt.Errorf("upload a blob to read: %w", err)
				}
				if err := s.c.HoldBlob(ctx, w.token, w.did, b); err != nil {
					return nil, fmt.Errorf("reference a blob to read: %w", err)
				}
				held[j] = b.CID()
			}
			var next atomic.Int64
			op = func(ctx context.Context, _ int) error {
				c := held[(next.Add(1)-1)%int64(len(held))]
				got, err := s.c.GetBlob(ctx, w.did, c)
				if err == nil && got != size {
					err = fmt.Errorf("getBlob: %d bytes, want %d", got, size)
				}
				return err
			}
		default:
			return nil, fmt.Errorf("unknown phase %q", name)
		}
		ph, err := s.measure(ctx, label, o.Concurrency, n, o.BlobTime, 2, op)
		if err != nil {
			return nil, err
		}
		if ph.Extra == nil {
			ph.Extra = map[string]float64{}
		}
		ph.Extra["MB/s"] = ph.OpsPerSec * float64(size) / 1e6
		ph.Note = fmt.Sprintf("%s blobs (image/png), %d clients", bench.FormatSize(size), o.Concurrency)
		out = append(out, ph)
	}
	return out, nil
}
