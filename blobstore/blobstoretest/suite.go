// Package blobstoretest is the conformance suite every blobstore.Store
// passes: the error contract, idempotence, ranged reads, concurrency,
// bounded memory on large uploads, and the exact official layout of what
// lands in the folder or bucket.
package blobstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/hearth-pds/hearth/blobstore"
)

// Harness is one fresh, empty store and the means to look behind it.
type Harness struct {
	Store blobstore.Store

	// Stored, Temp and Quarantined name where the official PDS keeps a
	// permanent, temporary and quarantined object, as templates over
	// {did}, {cid} and {key}, in the form Objects returns. Each backend's
	// test writes them out literally from the official source, so the
	// suite checks the layout rather than the store's own idea of it.
	Stored, Temp, Quarantined string

	// Objects lists every object the backend holds, sorted: bucket keys, or
	// file paths relative to a folder, with '/' separators.
	Objects func(t testing.TB) []string

	// PutObject writes an object straight into the backend under a name
	// in the Objects form, as an official PDS would have left it.
	PutObject func(t testing.TB, name string, data []byte)
}

// MemoryLimit is the most the live heap may grow while 50 MB stream
// through PutTemp or Get: a few part buffers, not the blob.
const MemoryLimit = 16 << 20

// Run runs the suite; newHarness makes a fresh store for each subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"PutTempMakePermanentGet", testPutGet},
		{"Sizes", testSizes},
		{"MakePermanentIdempotent", testMakePermanentIdempotent},
		{"GetRange", testGetRange},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"DeleteTemp", testDeleteTemp},
		{"DeleteAll", testDeleteAll},
		{"Quarantine", testQuarantine},
		{"WalkTemps", testWalkTemps},
		{"FailedUploadLeavesNothing", testFailedUpload},
		{"InvalidNames", testInvalidNames},
		{"AdoptOfficialObjects", testAdopt},
		{"ConcurrentPuts", testConcurrentPuts},
		{"LargeStreamBoundedMemory", testLargeStream},
		{"Check", func(t *testing.T, h Harness) {
			if err := h.Store.Check(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newHarness(t)) })
	}
}

const (
	alice = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	bob   = "did:plc:ragtjsm2j2vknwkz3zp4oxrd"
	// A did:web with a port: its percent sign and colons go into names
	// as they are, as the official PDS writes them.
	carol = "did:web:localhost%3A2583"
)

func name(tmpl string, did string, c cid.Cid, key string) string {
	r := strings.NewReplacer("{did}", did, "{cid}", c.String(), "{key}", key)
	return r.Replace(tmpl)
}

func (h Harness) stored(did string, c cid.Cid) string {
	return name(h.Stored, did, c, "")
}
func (h Harness) temp(did string, key string) string { return name(h.Temp, did, cid.Undef, key) }
func (h Harness) quarantined(did string, c cid.Cid) string {
	return name(h.Quarantined, did, c, "")
}

func (h Harness) wantObjects(t testing.TB, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := h.Objects(t); !slices.Equal(got, want) {
		t.Fatalf("objects:\n got %q\nwant %q", got, want)
	}
}

// blobCID is the CID of a blob as the PDS computes it: CIDv1, raw codec,
// sha2-256.
func blobCID(t testing.TB, data []byte) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, mh)
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	rng.Read(b)
	return b
}

// put stores data as a permanent blob of did and returns its CID.
func put(t testing.TB, s blobstore.Store, did string, data []byte) cid.Cid {
	t.Helper()
	ctx := context.Background()
	key, n, err := s.PutTemp(ctx, did, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("PutTemp: %v", err)
	}
	if n != int64(len(data)) {
		t.Fatalf("PutTemp size = %d, want %d", n, len(data))
	}
	c := blobCID(t, data)
	if err := s.MakePermanent(ctx, did, key, c); err != nil {
		t.Fatalf("MakePermanent: %v", err)
	}
	return c
}

func readAll(t testing.TB, r io.ReadCloser) []byte {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func wantGet(t testing.TB, s blobstore.Store, did string, c cid.Cid, want []byte) {
	t.Helper()
	r, size, err := s.Get(t.Context(), did, c)
	if err != nil {
		t.Fatalf("Get %s: %v", c, err)
	}
	got := readAll(t, r)
	if size != int64(len(want)) || !bytes.Equal(got, want) {
		t.Fatalf("Get %s: %d bytes (size %d), want %d identical bytes", c, len(got), size, len(want))
	}
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func testPutGet(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	data := randomBytes(1, 100_000)
	c := blobCID(t, data)

	key, n, err := s.PutTemp(ctx, alice, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) {
		t.Fatalf("PutTemp size = %d, want %d", n, len(data))
	}
	// Same format as the official key: 32 random bytes, lower-case base32.
	if len(key) != 52 || strings.Trim(key, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		t.Errorf("temp key %q: want 52 lower-case base32 characters", key)
	}
	h.wantObjects(t, h.temp(alice, key))
	_, err = s.Stat(ctx, alice, c)
	wantErr(t, "Stat before MakePermanent", err, blobstore.ErrNotFound)

	if err := s.MakePermanent(ctx, alice, key, c); err != nil {
		t.Fatal(err)
	}
	h.wantObjects(t, h.stored(alice, c))
	wantGet(t, s, alice, c, data)
	if size, err := s.Stat(ctx, alice, c); err != nil || size != int64(len(data)) {
		t.Fatalf("Stat = %d, %v; want %d", size, err, len(data))
	}
	if ok, err := blobstore.Has(ctx, s, alice, c); err != nil || !ok {
		t.Fatalf("Has = %v, %v; want true", ok, err)
	}
	// Blobs are per account: the same CID of another DID is another object.
	_, err = s.Stat(ctx, bob, c)
	wantErr(t, "Stat of another DID", err, blobstore.ErrNotFound)
	if ok, err := blobstore.Has(ctx, s, bob, c); err != nil || ok {
		t.Fatalf("Has of another DID = %v, %v; want false", ok, err)
	}

	// A did:web with a percent-encoded port names objects as it is.
	c2 := put(t, s, carol, data)
	h.wantObjects(t, h.stored(alice, c), h.stored(carol, c2))
	wantGet(t, s, carol, c2, data)
}

// testSizes crosses the sizes where an implementation may change strategy
// (S3: the first buffer's growth, one PUT or a multipart upload of 5 MiB
// parts).
func testSizes(t *testing.T, h Harness) {
	const mib = 1 << 20
	for i, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 5*mib - 1, 5 * mib, 5*mib + 1, 10*mib + 3} {
		data := randomBytes(uint64(100+i), n)
		c := put(t, h.Store, alice, data)
		wantGet(t, h.Store, alice, c, data)
	}
}

func testMakePermanentIdempotent(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	data := randomBytes(2, 5000)
	c := blobCID(t, data)
	key, _, err := s.PutTemp(ctx, alice, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.MakePermanent(ctx, alice, key, c); err != nil {
			t.Fatalf("MakePermanent #%d: %v", i+1, err)
		}
	}
	// A second upload of the same bytes lands on the same blob.
	key2, _, err := s.PutTemp(ctx, alice, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if key2 == key {
		t.Fatalf("PutTemp reused key %q", key)
	}
	if err := s.MakePermanent(ctx, alice, key2, c); err != nil {
		t.Fatal(err)
	}
	h.wantObjects(t, h.stored(alice, c))
	wantGet(t, s, alice, c, data)

	other := blobCID(t, []byte("never uploaded"))
	err = s.MakePermanent(ctx, alice, "nosuchkey", other)
	wantErr(t, "MakePermanent of an unknown key", err, blobstore.ErrNotFound)
}

func testGetRange(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	data := randomBytes(3, 10_000)
	size := int64(len(data))
	c := put(t, s, alice, data)

	for _, tt := range []struct {
		offset, length int64
		want           []byte
	}{
		{0, 10, data[:10]},
		{0, -1, data},
		{5, -1, data[5:]},
		{9_999, 1, data[9_999:]},
		{9_990, 100, data[9_990:]}, // past the end: cut at the end
		{1234, 4321, data[1234 : 1234+4321]},
		{0, size, data},
		{0, 0, nil},
		{size - 1, 0, nil},
	} {
		r, total, err := s.GetRange(ctx, alice, c, tt.offset, tt.length)
		if err != nil {
			t.Fatalf("GetRange(%d, %d): %v", tt.offset, tt.length, err)
		}
		got := readAll(t, r)
		if total != size || !bytes.Equal(got, tt.want) {
			t.Errorf("GetRange(%d, %d) = %d bytes of %d, want %d bytes of %d", tt.offset, tt.length, len(got), total, len(tt.want), size)
		}
	}
	for _, tt := range []struct{ offset, length int64 }{
		{size, 1}, {size, -1}, {size, 0}, {size + 100, 10}, {-1, 10}, {0, -2},
	} {
		_, _, err := s.GetRange(ctx, alice, c, tt.offset, tt.length)
		wantErr(t, fmt.Sprintf("GetRange(%d, %d)", tt.offset, tt.length), err, blobstore.ErrInvalidRange)
	}
	_, _, err := s.GetRange(ctx, bob, c, 0, 10)
	wantErr(t, "GetRange of a missing blob", err, blobstore.ErrNotFound)

	_, _, err = s.GetRange(ctx, bob, c, 0, 0)
	wantErr(t, "GetRange of nothing of a missing blob", err, blobstore.ErrNotFound)

	// Offset 0 of an empty blob reads as nothing, whatever the length;
	// any other offset is past its end.
	empty := put(t, s, alice, nil)
	for _, length := range []int64{-1, 0, 1, 100} {
		r, total, err := s.GetRange(ctx, alice, empty, 0, length)
		if err != nil {
			t.Fatalf("GetRange(0, %d) of an empty blob: %v", length, err)
		}
		if got := readAll(t, r); len(got) != 0 || total != 0 {
			t.Errorf("GetRange(0, %d) of an empty blob = %d bytes of %d, want nothing", length, len(got), total)
		}
	}
	_, _, err = s.GetRange(ctx, alice, empty, 1, -1)
	wantErr(t, "GetRange(1, -1) of an empty blob", err, blobstore.ErrInvalidRange)
}

func testNotFound(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	c := blobCID(t, []byte("absent"))
	_, _, err := s.Get(ctx, alice, c)
	wantErr(t, "Get", err, blobstore.ErrNotFound)
	_, _, err = s.GetRange(ctx, alice, c, 0, 1)
	wantErr(t, "GetRange", err, blobstore.ErrNotFound)
	_, err = s.Stat(ctx, alice, c)
	wantErr(t, "Stat", err, blobstore.ErrNotFound)
	wantErr(t, "Quarantine", s.Quarantine(ctx, alice, c), blobstore.ErrNotFound)
	wantErr(t, "Unquarantine", s.Unquarantine(ctx, alice, c), blobstore.ErrNotFound)
	wantErr(t, "MakePermanent", s.MakePermanent(ctx, alice, absentKey, c), blobstore.ErrNotFound)
	// Deletes of absent objects succeed: they are what a retry does.
	for what, err := range map[string]error{
		"Delete":     s.Delete(ctx, alice, c),
		"DeleteTemp": s.DeleteTemp(ctx, alice, absentKey),
		"DeleteAll":  s.DeleteAll(ctx, alice),
	} {
		if err != nil {
			t.Errorf("%s of nothing: %v", what, err)
		}
	}
	h.wantObjects(t)
}

// absentKey is a well-formed temporary key no upload has.
const absentKey = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func testDelete(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	keep := put(t, s, alice, []byte("keep"))
	gone := put(t, s, alice, []byte("gone"))
	if err := s.Delete(ctx, alice, gone); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Get(ctx, alice, gone)
	wantErr(t, "Get after Delete", err, blobstore.ErrNotFound)
	if err := s.Delete(ctx, alice, gone); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	h.wantObjects(t, h.stored(alice, keep))
	wantGet(t, s, alice, keep, []byte("keep"))
}

func testDeleteTemp(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	data := []byte("abandoned upload")
	key, _, err := s.PutTemp(ctx, alice, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTemp(ctx, alice, key); err != nil {
		t.Fatal(err)
	}
	h.wantObjects(t)
	wantErr(t, "MakePermanent after DeleteTemp", s.MakePermanent(ctx, alice, key, blobCID(t, data)), blobstore.ErrNotFound)
	if err := s.DeleteTemp(ctx, alice, key); err != nil {
		t.Fatalf("second DeleteTemp: %v", err)
	}
}

func testDeleteAll(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	// example.com is a prefix of example.com.au: deleting the first must
	// not touch the second.
	web := "did:web:example.com"
	webAU := "did:web:example.com.au"
	for _, did := range []string{alice, web} {
		put(t, s, did, []byte("one "+did))
		q := put(t, s, did, []byte("two "+did))
		if err := s.Quarantine(ctx, did, q); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.PutTemp(ctx, did, strings.NewReader("pending "+did)); err != nil {
			t.Fatal(err)
		}
	}
	kept := []string{h.stored(bob, put(t, s, bob, []byte("bob's"))), h.stored(webAU, put(t, s, webAU, []byte("au")))}

	for _, did := range []string{alice, web} {
		if err := s.DeleteAll(ctx, did); err != nil {
			t.Fatal(err)
		}
	}
	h.wantObjects(t, kept...)
	if err := s.DeleteAll(ctx, alice); err != nil {
		t.Fatalf("second DeleteAll: %v", err)
	}
	// The account's folders can be used again (a re-created account).
	c := put(t, s, alice, []byte("again"))
	wantGet(t, s, alice, c, []byte("again"))
}

func testQuarantine(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	data := randomBytes(4, 3000)
	c := put(t, s, alice, data)

	for i := range 2 {
		if err := s.Quarantine(ctx, alice, c); err != nil {
			t.Fatalf("Quarantine #%d: %v", i+1, err)
		}
	}
	h.wantObjects(t, h.quarantined(alice, c))
	_, _, err := s.Get(ctx, alice, c)
	wantErr(t, "Get of a quarantined blob", err, blobstore.ErrNotFound)
	_, _, err = s.GetRange(ctx, alice, c, 0, 1)
	wantErr(t, "GetRange of a quarantined blob", err, blobstore.ErrNotFound)
	_, err = s.Stat(ctx, alice, c)
	wantErr(t, "Stat of a quarantined blob", err, blobstore.ErrNotFound)

	for i := range 2 {
		if err := s.Unquarantine(ctx, alice, c); err != nil {
			t.Fatalf("Unquarantine #%d: %v", i+1, err)
		}
	}
	h.wantObjects(t, h.stored(alice, c))
	wantGet(t, s, alice, c, data)

	// Deleting the blob keeps a quarantined copy, as the official PDS does.
	if err := s.Quarantine(ctx, alice, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, alice, c); err != nil {
		t.Fatal(err)
	}
	h.wantObjects(t, h.quarantined(alice, c))
}

func testWalkTemps(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	start := time.Now()
	want := map[blobstore.Temp]bool{}
	for i, did := range []string{alice, alice, bob, carol} {
		data := randomBytes(uint64(10+i), 100*(i+1))
		key, n, err := s.PutTemp(ctx, did, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		want[blobstore.Temp{DID: did, Key: key, Size: n}] = true
	}
	permanent := put(t, s, bob, []byte("not a temp"))

	collect := func(olderThan time.Time) map[blobstore.Temp]bool {
		got := map[blobstore.Temp]bool{}
		err := s.WalkTemps(ctx, olderThan, func(tmp blobstore.Temp) error {
			if tmp.ModTime.IsZero() {
				t.Errorf("temp %s/%s has no modification time", tmp.DID, tmp.Key)
			}
			tmp.ModTime = time.Time{}
			got[tmp] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := collect(time.Now().Add(time.Minute)); !mapsEqual(got, want) {
		t.Fatalf("WalkTemps(now+1m) = %v, want %v", got, want)
	}
	if got := collect(start.Add(-time.Hour)); len(got) != 0 {
		t.Fatalf("WalkTemps(an hour before the uploads) = %v, want none", got)
	}

	stop := errors.New("stop")
	calls := 0
	err := s.WalkTemps(ctx, time.Now().Add(time.Minute), func(blobstore.Temp) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("WalkTemps with a failing fn: %v after %d calls, want %v after 1", err, calls, stop)
	}

	// The collector's use: delete what the walk reports.
	err = s.WalkTemps(ctx, time.Now().Add(time.Minute), func(tmp blobstore.Temp) error {
		return s.DeleteTemp(ctx, tmp.DID, tmp.Key)
	})
	if err != nil {
		t.Fatal(err)
	}
	h.wantObjects(t, h.stored(bob, permanent))
}

func mapsEqual(a, b map[blobstore.Temp]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// testFailedUpload: an upload whose body fails, or whose request is
// cancelled, leaves no object, on either side of the S3 part size.
func testFailedUpload(t *testing.T, h Harness) {
	for _, n := range []int{1000, 6 << 20} {
		broken := io.MultiReader(bytes.NewReader(randomBytes(5, n)), errReader{})
		if _, _, err := h.Store.PutTemp(t.Context(), alice, broken); err == nil {
			t.Fatalf("PutTemp of a body failing after %d bytes succeeded", n)
		}

		ctx, cancel := context.WithCancel(t.Context())
		r := &cancelAfter{r: bytes.NewReader(randomBytes(6, 2*n)), n: n, cancel: cancel}
		if _, _, err := h.Store.PutTemp(ctx, alice, r); err == nil {
			t.Fatalf("PutTemp cancelled after %d bytes succeeded", n)
		}
		cancel()
	}
	h.wantObjects(t)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("client went away") }

type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	p = p[:min(len(p), max(c.n, 1))]
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func testInvalidNames(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	c := blobCID(t, []byte("x"))
	for _, did := range []string{"", "..", "did:plc:../../x", "did:plc:a/b", "did:plc:a\x00", "/etc", "did:plc:"} {
		_, _, err := s.PutTemp(ctx, did, strings.NewReader("x"))
		wantErr(t, fmt.Sprintf("PutTemp(%q)", did), err, blobstore.ErrInvalidName)
		_, _, err = s.Get(ctx, did, c)
		wantErr(t, fmt.Sprintf("Get(%q)", did), err, blobstore.ErrInvalidName)
		wantErr(t, fmt.Sprintf("DeleteAll(%q)", did), s.DeleteAll(ctx, did), blobstore.ErrInvalidName)
	}
	for _, key := range []string{"", "..", "../x", "a/b", "a\\b", ".hidden", strings.Repeat("a", 129)} {
		wantErr(t, fmt.Sprintf("MakePermanent(key %q)", key), s.MakePermanent(ctx, alice, key, c), blobstore.ErrInvalidName)
		wantErr(t, fmt.Sprintf("DeleteTemp(key %q)", key), s.DeleteTemp(ctx, alice, key), blobstore.ErrInvalidName)
	}
	_, _, err := s.Get(ctx, alice, cid.Undef)
	wantErr(t, "Get(undefined CID)", err, blobstore.ErrInvalidName)
	wantErr(t, "Delete(undefined CID)", s.Delete(ctx, alice, cid.Undef), blobstore.ErrInvalidName)
	h.wantObjects(t)
}

// testAdopt reads objects an official PDS left in the folder or bucket.
func testAdopt(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	stored, pending, quarantined := []byte("stored by the official PDS"), []byte("uploaded, not yet referenced"), []byte("taken down")
	sc, pc, qc := blobCID(t, stored), blobCID(t, pending), blobCID(t, quarantined)
	// A CIDv0 (base58btc "Qm…") is how some old blobs are named.
	v0 := cid.NewCidV0(must(multihash.Sum([]byte("v0 blob"), multihash.SHA2_256, -1)))
	const officialKey = "h3ujqxdpn7vzrj6xy2rmv3v5x2kr6u7pxgbaz4xyc2pvcjeqnwia"

	h.PutObject(t, h.stored(alice, sc), stored)
	h.PutObject(t, h.stored(alice, v0), []byte("v0 blob"))
	h.PutObject(t, h.temp(alice, officialKey), pending)
	h.PutObject(t, h.quarantined(alice, qc), quarantined)

	wantGet(t, s, alice, sc, stored)
	wantGet(t, s, alice, v0, []byte("v0 blob"))
	if err := s.MakePermanent(ctx, alice, officialKey, pc); err != nil {
		t.Fatal(err)
	}
	wantGet(t, s, alice, pc, pending)
	if err := s.Unquarantine(ctx, alice, qc); err != nil {
		t.Fatal(err)
	}
	wantGet(t, s, alice, qc, quarantined)
	h.wantObjects(t, h.stored(alice, sc), h.stored(alice, v0), h.stored(alice, pc), h.stored(alice, qc))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func testConcurrentPuts(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	const n = 24
	shared := randomBytes(7, 50_000)
	sharedCID := blobCID(t, shared)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	want := []string{h.stored(alice, sharedCID)}
	for i := range n {
		did := []string{alice, bob, carol}[i%3]
		data := randomBytes(uint64(1000+i), 20_000+i*1000)
		c := blobCID(t, data)
		want = append(want, h.stored(did, c))
		wg.Go(func() {
			// A blob of its own...
			key, _, err := s.PutTemp(ctx, did, bytes.NewReader(data))
			if err == nil {
				err = s.MakePermanent(ctx, did, key, c)
			}
			if err != nil {
				errs <- fmt.Errorf("blob %d: %w", i, err)
				return
			}
			r, _, err := s.Get(ctx, did, c)
			if err != nil {
				errs <- fmt.Errorf("get %d: %w", i, err)
				return
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, data) {
				errs <- fmt.Errorf("blob %d read back wrong (%v)", i, err)
			}
			// ...and the same bytes as everyone else, made permanent at once.
			key, _, err = s.PutTemp(ctx, alice, bytes.NewReader(shared))
			if err == nil {
				err = s.MakePermanent(ctx, alice, key, sharedCID)
			}
			if err != nil {
				errs <- fmt.Errorf("shared blob %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantGet(t, s, alice, sharedCID, shared)
	// Every blob is in place and no temporary object is left behind.
	h.wantObjects(t, want...)
}

// testLargeStream puts 50 MB from a generator (never held in memory) and
// reads it back, sampling the heap as the bytes flow.
func testLargeStream(t *testing.T, h Harness) {
	const size = 50 << 20
	ctx := t.Context()
	s := h.Store

	gen := newMeter(size)
	key, n, err := s.PutTemp(ctx, alice, gen)
	if err != nil {
		t.Fatal(err)
	}
	if n != size {
		t.Fatalf("PutTemp size = %d, want %d", n, size)
	}
	put := gen.done()
	c := cid.NewCidV1(cid.Raw, must(multihash.Encode(gen.sum.Sum(nil), multihash.SHA2_256)))
	if err := s.MakePermanent(ctx, alice, key, c); err != nil {
		t.Fatal(err)
	}

	r, got, err := s.Get(ctx, alice, c)
	if err != nil {
		t.Fatal(err)
	}
	sink := newMeter(0)
	if _, err := io.Copy(sink, r); err != nil {
		t.Fatal(err)
	}
	r.Close()
	get := sink.done()
	if got != size || !bytes.Equal(sink.sum.Sum(nil), gen.sum.Sum(nil)) {
		t.Fatalf("read back %d bytes differing from the 50 MB written", got)
	}
	t.Logf("streaming 50 MB: put: live heap +%.1f MiB at most, %.1f MiB allocated in all; get: +%.1f MiB, %.1f MiB allocated",
		mib(put.peakLive), mib(put.allocated), mib(get.peakLive), mib(get.allocated))
	for _, m := range []struct {
		what string
		heap heapUse
	}{{"PutTemp", put}, {"Get", get}} {
		if m.heap.peakLive > MemoryLimit {
			t.Errorf("%s: live heap grew by %.1f MiB, want at most %d MiB", m.what, mib(m.heap.peakLive), MemoryLimit>>20)
		}
		// Allocating less than the blob's size proves it is never copied
		// whole, even into garbage.
		if m.heap.allocated >= size {
			t.Errorf("%s: allocated %.1f MiB for a 50 MB blob", m.what, mib(m.heap.allocated))
		}
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// heapUse is what a meter saw: the largest growth of the live heap (after
// a GC) over the start, and the bytes allocated meanwhile.
type heapUse struct{ peakLive, allocated uint64 }

// meter generates (Read) or swallows (Write) bytes, hashing them. Every 4
// MiB it collects garbage and samples the live heap: what the store keeps
// while the bytes flow, not what the collector has yet to reclaim.
type meter struct {
	rng       *rand.ChaCha8
	left      int
	sum       hash.Hash
	start     runtime.MemStats
	peak      uint64
	sinceLast int
}

func newMeter(size int) *meter {
	m := &meter{rng: rand.NewChaCha8([32]byte{42}), left: size, sum: sha256.New()}
	runtime.GC()
	runtime.ReadMemStats(&m.start)
	m.peak = m.start.HeapAlloc
	return m
}

func (m *meter) Read(p []byte) (int, error) {
	if m.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), m.left)]
	m.rng.Read(p)
	m.left -= len(p)
	m.account(p)
	return len(p), nil
}

func (m *meter) Write(p []byte) (int, error) {
	m.account(p)
	return len(p), nil
}

func (m *meter) account(p []byte) {
	m.sum.Write(p)
	m.sinceLast += len(p)
	if m.sinceLast >= 4<<20 {
		m.sinceLast = 0
		m.sample()
	}
}

func (m *meter) sample() *runtime.MemStats {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	m.peak = max(m.peak, ms.HeapAlloc)
	return &ms
}

func (m *meter) done() heapUse {
	ms := m.sample()
	return heapUse{peakLive: m.peak - m.start.HeapAlloc, allocated: ms.TotalAlloc - m.start.TotalAlloc}
}
