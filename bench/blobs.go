package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// BlobCollection is the record type the blob loads reference blobs from:
// a type no lexicon describes, so both servers take any blob in it.
const BlobCollection = "com.example.blobholder"

// Blob is a blob as uploadBlob answers it and records reference it.
type Blob struct {
	Type string `json:"$type"`
	Ref  struct {
		Link string `json:"$link"`
	} `json:"ref"`
	MimeType string `json:"mimeType"`
	Size     int64  `json:"size"`
}

// CID is the blob's CID.
func (b Blob) CID() string { return b.Ref.Link }

// BlobSource makes blobs of one size, each with distinct bytes: a PNG
// signature and header (so both servers sniff image/png and neither
// compresses it when serving), a counter, then random bytes shared by
// every blob of the source. Making one costs no copy of the shared part.
type BlobSource struct {
	size int
	base []byte
	next atomic.Uint64
}

// pngHead is a PNG signature and IHDR chunk.
var pngHead = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

// NewBlobSource makes blobs of size bytes (at least 64).
func NewBlobSource(size int, seed uint64) (*BlobSource, error) {
	if size < 64 {
		return nil, fmt.Errorf("blob size %d: want at least 64 bytes", size)
	}
	base := make([]byte, size)
	copy(base, pngHead)
	r := rand.NewChaCha8([32]byte{0: byte(seed), 1: byte(seed >> 8), 2: 0x5b})
	r.Read(base[len(pngHead)+16:])
	return &BlobSource{size: size, base: base}, nil
}

// Size is the size of every blob of the source.
func (s *BlobSource) Size() int { return s.size }

// Next returns a reader of a blob no earlier call returned.
func (s *BlobSource) Next() io.Reader {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:], s.next.Add(1))
	id[8] = 0xb1 // marks bench blobs in a hex dump
	return io.MultiReader(
		bytes.NewReader(s.base[:len(pngHead)]),
		bytes.NewReader(id[:]),
		bytes.NewReader(s.base[len(pngHead)+16:]),
	)
}

// UploadBlob calls com.atproto.repo.uploadBlob with size bytes from body,
// sent with their Content-Length, as clients send files.
func (c *Client) UploadBlob(ctx context.Context, accessJWT, contentType string, body io.Reader, size int64) (Blob, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/xrpc/com.atproto.repo.uploadBlob", body)
	if err != nil {
		return Blob{}, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", Bearer(accessJWT))
	resp, err := c.http.Do(req)
	if err != nil {
		return Blob{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Blob{}, err
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil {
			e.Message = strings.TrimSpace(string(b[:min(len(b), 200)]))
		}
		return Blob{}, e
	}
	var out struct{ Blob Blob }
	if err := json.Unmarshal(b, &out); err != nil {
		return Blob{}, fmt.Errorf("uploadBlob: decode answer: %w", err)
	}
	if out.Blob.Size != size {
		return Blob{}, fmt.Errorf("uploadBlob: the server took %d of %d bytes", out.Blob.Size, size)
	}
	return out.Blob, nil
}

// HoldBlob creates a record of BlobCollection referencing b, which makes
// it permanent and servable by getBlob.
func (c *Client) HoldBlob(ctx context.Context, accessJWT, did string, b Blob) error {
	_, err := c.CreateRecord(ctx, accessJWT, did, BlobCollection, map[string]any{"$type": BlobCollection, "file": b})
	return err
}

// GetBlob downloads com.atproto.sync.getBlob of did's blob cid to its end
// and returns its size; the bytes are discarded.
func (c *Client) GetBlob(ctx context.Context, did, cid string) (int64, error) {
	u := c.base + "/xrpc/com.atproto.sync.getBlob?did=" + url.QueryEscape(did) + "&cid=" + url.QueryEscape(cid)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil {
			e.Message = strings.TrimSpace(string(b))
		}
		return 0, e
	}
	return io.Copy(io.Discard, io.LimitReader(resp.Body, maxDownload+1))
}

// ParseSize reads a byte count with an optional k, m or g suffix (KiB,
// MiB, GiB): "64k", "1m", "16m", "1048576".
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, strings.TrimSuffix(t, "m")
	case strings.HasSuffix(t, "g"):
		mult, t = 1<<30, strings.TrimSuffix(t, "g")
	}
	var n int64
	if _, err := fmt.Sscanf(t, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != t {
		return 0, fmt.Errorf("size %q: want a number of bytes, with an optional k, m or g", s)
	}
	return n * mult, nil
}

// FormatSize writes n bytes the way ParseSize reads them, in the largest
// unit that divides it: 64KiB, 1MiB, 1000B.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
