package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/hearth-pds/hearth/bench"
	"github.com/hearth-pds/hearth/testenv"
)

// blobServer is a hearth binary with its blob store, on disk or on a
// versitygw the test can stop, and what the blob tests look at: the
// temporary area of the store and the blob rows of the database.
type blobServer struct {
	*testenv.Hearth
	backend string
	s3      *testenv.S3Server // nil on disk
	c       *client
}

// startBlobServer starts hearth on backend "disk" or "s3" with extraEnv.
func startBlobServer(t *testing.T, backend string, extraEnv ...string) *blobServer {
	t.Helper()
	s := &blobServer{backend: backend}
	env := extraEnv
	if backend == "s3" {
		s.s3 = testenv.StartS3Server(t)
		env = append(s.s3.Env(), extraEnv...)
	}
	s.Hearth = testenv.StartHearth(t, testenv.StartEmbeddedPLC(t), env...)
	s.c = &client{t: t, base: s.URL, admin: s.AdminPassword}
	return s
}

// account signs up handle (with its own invite) and logs in.
func (s *blobServer) account(handle string) session {
	s.c.t.Helper()
	s.c.signUp(handle, handle+"@example.com", handle+"-password", s.c.invite(1))
	return s.c.login(handle, handle+"-password")
}

// temps lists what the store holds in did's temporary area: files in the
// disk temp folder, or objects and unfinished multipart uploads under
// tmp/<did>/ in the bucket.
func (s *blobServer) temps(t *testing.T, did string) []string {
	t.Helper()
	if s.s3 != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		objects, uploads, err := s.s3.Objects(ctx, "tmp/"+did+"/")
		if err != nil {
			t.Fatalf("list the bucket's tmp/: %v", err)
		}
		for _, u := range uploads {
			objects = append(objects, "unfinished multipart upload "+u)
		}
		return objects
	}
	dir := filepath.Join(s.DataDir, "blocks", "tempt", did)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

// waitNoTemps fails the test unless did's temporary area empties within d.
func (s *blobServer) waitNoTemps(t *testing.T, did string, d time.Duration) {
	t.Helper()
	s.waitTemps(t, did, 0, d)
}

// blobRow is one row of the blob table.
type blobRow = testenv.BlobRow

// blobRows reads did's blob rows.
func (s *blobServer) blobRows(t *testing.T, did string) map[string]blobRow {
	t.Helper()
	return s.BlobRows(t, did)
}

// uploaded is com.atproto.repo.uploadBlob's answer.
type uploaded struct {
	Blob struct {
		Type string `json:"$type"`
		Ref  struct {
			Link string `json:"$link"`
		} `json:"ref"`
		MimeType string `json:"mimeType"`
		Size     int64  `json:"size"`
	} `json:"blob"`
}

// ref is the blob as a record references it.
func (u uploaded) ref() string {
	b, _ := json.Marshal(u.Blob)
	return string(b)
}

// upload posts body (size bytes; -1 sends it chunked) to uploadBlob and
// returns the status and the answer.
func upload(t *testing.T, base string, header http.Header, body io.Reader, size int64) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/xrpc/com.atproto.repo.uploadBlob", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header = header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("uploadBlob: %v", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("uploadBlob: read answer: %v", err)
	}
	return resp.StatusCode, out
}

// mustUpload uploads b with contentType and returns the blob.
func mustUpload(t *testing.T, base, token, contentType string, b []byte) uploaded {
	t.Helper()
	status, body := upload(t, base, merge(bearer(token), ctype(contentType)), strings.NewReader(string(b)), int64(len(b)))
	if status != http.StatusOK {
		t.Fatalf("uploadBlob: %d %s", status, body)
	}
	var u uploaded
	if err := json.Unmarshal(body, &u); err != nil {
		t.Fatalf("uploadBlob answer %s: %v", body, err)
	}
	if want := rawCID(b); u.Blob.Ref.Link != want || u.Blob.Size != int64(len(b)) {
		t.Fatalf("uploadBlob: got %s (%d bytes), want %s (%d bytes)", u.Blob.Ref.Link, u.Blob.Size, want, len(b))
	}
	return u
}

// holdBlob creates a com.example.blobholder record referencing blob (a
// ref as uploaded() gives it) and returns the status and answer.
func (s *blobServer) holdBlob(t *testing.T, sess session, blobRef string) (int, []byte) {
	t.Helper()
	return s.c.raw("POST", "com.atproto.repo.createRecord", merge(bearer(sess.AccessJwt), ctype("application/json")),
		`{"repo":"`+sess.DID+`","collection":"com.example.blobholder","record":{"$type":"com.example.blobholder","file":`+blobRef+`}}`)
}

// getBlob fetches a blob and returns the status and the bytes.
func getBlob(t *testing.T, base, did, c string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(base + "/xrpc/com.atproto.sync.getBlob?did=" + did + "&cid=" + c)
	if err != nil {
		t.Fatalf("getBlob: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("getBlob: read: %v", err)
	}
	return resp.StatusCode, b
}

// rawCID is the CID of b as a blob: CIDv1, raw codec, sha2-256.
func rawCID(b []byte) string {
	h := sha256.Sum256(b)
	return cidOfSum(h[:])
}

func cidOfSum(sum []byte) string {
	mh, err := multihash.Encode(sum, multihash.SHA2_256)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, mh).String()
}

// noise is n pseudo-random bytes from seed, generated as they are read:
// the test holds none of a large blob in memory, and the same seed gives
// the same bytes again.
func noise(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{0: byte(seed), 1: byte(seed >> 8), 2: 0xb1}), n)
}

// noiseBytes is noise held in memory, for small blobs.
func noiseBytes(seed uint64, n int) []byte {
	b, _ := io.ReadAll(noise(seed, int64(n)))
	return b
}

// pngBytes is a PNG signature and header chunk followed by n random bytes:
// sniffed as image/png, unique per seed.
func pngBytes(seed uint64, n int) []byte {
	head := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")
	return append(head, noiseBytes(seed, n)...)
}

// hashingReader hashes what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashingReader(r io.Reader) *hashingReader { return &hashingReader{r: r, h: sha256.New()} }

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) cid() string { return cidOfSum(h.h.Sum(nil)) }

// serverMemory reads the server's VmRSS, VmHWM and RssAnon.
func serverMemory(t *testing.T, pid int) bench.Memory {
	t.Helper()
	m, err := bench.ReadMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// resetPeak sets the server's VmHWM back to its current RSS (Linux
// /proc/PID/clear_refs, value 5), so a later VmHWM is the peak of what
// came after, not of start-up or sign-up.
func resetPeak(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS of pid %d: %v", pid, err)
	}
}

// rawExchange opens a TCP connection to addr, writes head (a request's
// line and headers, blank line included), then runs body, if any, in a
// goroutine to write the rest while it reads the response. It returns the
// response with its body read, how many bytes body had written when the
// response began to arrive, and how many it wrote in all (body stops at
// its first write error: the server closed the connection).
func rawExchange(t *testing.T, addr, head string, body func(w io.Writer) error, timeout time.Duration) (resp *http.Response, answer []byte, sentAtAnswer, sentTotal int64) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatalf("write request head: %v", err)
	}
	cw := &countingWriter{w: conn}
	done := make(chan struct{})
	if body != nil {
		go func() {
			defer close(done)
			body(cw)
		}()
	} else {
		close(done)
	}
	br := bufio.NewReader(conn)
	if _, err := br.Peek(1); err != nil {
		t.Fatalf("read response: %v", err)
	}
	sentAtAnswer = cw.n.Load()
	if resp, err = http.ReadResponse(br, nil); err != nil {
		t.Fatalf("read response: %v", err)
	}
	answer, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("the server neither read the rest of the body nor closed the connection within 5 s")
	}
	return resp, answer, sentAtAnswer, cw.n.Load()
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// requestHead is the head of a POST to nsid on host.
func requestHead(host, nsid string, header http.Header, contentLength int64) string {
	var b strings.Builder
	b.WriteString("POST /xrpc/" + nsid + " HTTP/1.1\r\nHost: " + host + "\r\n")
	for k, vs := range header {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	if contentLength >= 0 {
		b.WriteString("Content-Length: " + strconv.FormatInt(contentLength, 10) + "\r\n")
	} else {
		b.WriteString("Transfer-Encoding: chunked\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// xrpcErrorOf decodes an XRPC error body.
func xrpcErrorOf(b []byte) (name, message string) {
	var e struct{ Error, Message string }
	json.Unmarshal(b, &e)
	return e.Error, e.Message
}
