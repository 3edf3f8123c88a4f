package e2e

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestBlobBadInput sends bad blob uploads, references and reads to the
// built binary, on disk and on S3, and checks each gets the status and
// XRPC error the official PDS (0.4.217, observed on loopback:
// /work/scratch/official-blob-behaviour.md) returns. Where the official
// PDS answers a client's mistake with a 500, Hearth answers a 4xx; those
// rows say what the official sends. After every case no repository head
// has moved, no blob row has appeared, changed or gone, and the temporary
// area holds exactly the uploads no record references yet.
//
// Then an upload aborted mid-stream (the client closes the connection
// after half the body) leaves nothing, and the same bytes uploaded in
// full afterwards work.
func TestBlobBadInput(t *testing.T) {
	for _, backend := range []string{"disk", "s3"} {
		t.Run(backend, func(t *testing.T) { testBlobBadInput(t, backend) })
	}
}

// blobCase is one bad request and the answer it must get.
type blobCase struct {
	name         string
	method, nsid string
	header       http.Header
	body         string
	// headOnly sends only the request head, with this Content-Length,
	// over a raw connection: what the server answers before any body.
	headOnly    int64
	wantStatus  int
	wantError   string
	wantMessage string
	// official is the official PDS's answer where it differs.
	official string
}

// badInputLimit is PDS_BLOB_UPLOAD_LIMIT in TestBlobBadInput: above 5
// MiB, so that the aborted upload is past its first S3 part.
const badInputLimit = 16 << 20

func testBlobBadInput(t *testing.T, backend string) {
	s := startBlobServer(t, backend, "PDS_BLOB_UPLOAD_LIMIT="+strconv.Itoa(badInputLimit))
	// describeServer tells clients the configured limit.
	var desc struct{ BlobUploadLimit int64 }
	s.c.mustGetJSON("com.atproto.server.describeServer", nil, &desc)
	if desc.BlobUploadLimit != badInputLimit {
		t.Errorf("describeServer blobUploadLimit %d, want %d", desc.BlobUploadLimit, badInputLimit)
	}
	alice := s.account("alice" + backend + ".test")
	bob := s.account("bob" + backend + ".test")
	auth := bearer(alice.AccessJwt)
	jsonAuth := merge(auth, ctype("application/json"))

	// Alice: an upload no record references yet (temp), a video upload,
	// and an image in a post (permanent). Bob: an upload of his own.
	temp := mustUpload(t, s.URL, alice.AccessJwt, "image/png", pngBytes(10, 1000))
	mp4 := append([]byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\x00\x00\x00\x08free"), noiseBytes(14, 64)...)
	video := mustUpload(t, s.URL, alice.AccessJwt, "video/mp4", mp4)
	kept := mustUpload(t, s.URL, alice.AccessJwt, "image/png", pngBytes(12, 500))
	var postOut struct{ URI, CID string }
	s.c.mustPostJSON("com.atproto.repo.createRecord", auth, postWithImage(alice.DID, kept.ref(), ""), &postOut)
	bobs := mustUpload(t, s.URL, bob.AccessJwt, "image/png", pngBytes(11, 1000))
	if temp.Blob.MimeType != "image/png" || video.Blob.MimeType != "video/mp4" {
		t.Fatalf("sniffed types: %s, %s", temp.Blob.MimeType, video.Blob.MimeType)
	}
	never := rawCID(noiseBytes(13, 100))
	size := strconv.FormatInt(temp.Blob.Size, 10)
	wrongSize := strconv.FormatInt(temp.Blob.Size+1, 10)
	blobRef := func(c, mime, size string) string {
		return `{"$type":"blob","ref":{"$link":"` + c + `"},"mimeType":"` + mime + `","size":` + size + `}`
	}
	notFound := func(c string) string { return "Could not find blob: " + c }

	refresh := s.c.login("alice"+backend+".test", "alice"+backend+".test-password").RefreshJwt
	head := getLatestCommit(t, s.URL, alice.DID)
	bobHead := getLatestCommit(t, s.URL, bob.DID)
	rows, bobRows := s.blobRows(t, alice.DID), s.blobRows(t, bob.DID)
	if len(rows) != 3 || len(bobRows) != 1 {
		t.Fatalf("blob rows: alice %+v, bob %+v", rows, bobRows)
	}
	temps := len(s.temps(t, alice.DID))
	if temps != 2 {
		t.Fatalf("alice's temporary area: %q, want the two unreferenced uploads", s.temps(t, alice.DID))
	}

	const (
		internal   = "500 InternalServerError"
		sameByCode = "same, read from source (not recorded)"
	)
	getBlobOf := func(did, c string) string {
		return "com.atproto.sync.getBlob?did=" + did + "&cid=" + c
	}
	tests := []blobCase{
		// References in records.
		{name: "record: declared size wrong", method: "POST", nsid: "com.atproto.repo.createRecord", header: jsonAuth,
			body:       postWithImage(alice.DID, blobRef(temp.Blob.Ref.Link, "image/png", wrongSize), ""),
			wantStatus: 400, wantError: "InvalidSize", wantMessage: "Referenced Size does not match stored blob. Expected: " + size + ", Got: " + wrongSize},
		{name: "record: declared size 0", method: "POST", nsid: "com.atproto.repo.createRecord", header: jsonAuth,
			body:       holder(alice.DID, blobRef(temp.Blob.Ref.Link, "image/png", "0")),
			wantStatus: 400, wantError: "InvalidSize", wantMessage: "Referenced Size does not match stored blob. Expected: " + size + ", Got: 0", official: sameByCode},
		{name: "record: mimeType wrong", method: "POST", nsid: "com.atproto.repo.createRecord", header: jsonAuth,
			body:       postWithImage(alice.DID, blobRef(temp.Blob.Ref.Link, "image/jpeg", size), ""),
			wantStatus: 400, wantError: "InvalidMimeType", wantMessage: "Referenced Mimetype does not match stored blob. Expected: image/png, Got: image/jpeg"},
		{name: "record: mimeType and size wrong (type checked first)", method: "POST", nsid: "com.atproto.repo.createRecord", header: jsonAuth,
			body:       postWithImage(alice.DID, blobRef(temp.Blob.Ref.Link, "image/jpeg", wrongSize), ""),
			wantStatus: 400, wantError: "InvalidMimeType", wantMessage: "Referenced Mimetype does not match stored blob. Expected: image/png, Got: image/jpeg"},
		{name: "record: mimeType in other case", method: "POST", nsid: "com.atproto.repo.createRecord", header: jsonAuth,
			body:       holder(alice.DID, blobRef(temp.Blob.Ref.Link, "IMAGE/PNG", size)),
			wantStatus: 400, wantError: "InvalidMimeType", wantMessage: "Referenced Mimetype does not match stored blob. Expected: image/png, Got: IMAGE/PNG"},
		{name: "record: another account's blob", method: "POST", nsid: "com.atproto.repo.createRecord", header: jsonAuth,
			body:       postWithImage(alice.DID, bobs.ref(), ""),
			wantStatus: 400, wantError: "BlobNotFound", wantMessage: notFound(bobs.Blob.Ref.Link)},
		{name: "record: another account's blob, validate false", method: "POST", nsid: "com.atproto.repo.createRecord", header: jsonAuth,
			body:       postWithImage(alice.DID, bobs.ref(), `,"validate":false`),
			wantStatus: 400, wantError: "BlobNotFound", wantMessage: notFound(bobs.Blob.Ref.Link)},
		{name: "putRecord: another account's blob", method: "POST", nsid: "com.atproto.repo.putRecord", header: jsonAuth,
			body:       `{"repo":"` + alice.DID + `","collection":"com.example.blobholder","rkey":"one","record":{"file":` + bobs.ref() + `}}`,
			wantStatus: 400, wantError: "BlobNotFound", wantMessage: notFound(bobs.Blob.Ref.Link), official: sameByCode},
		{name: "applyWrites: another account's blob after a good write", method: "POST", nsid: "com.atproto.repo.applyWrites", header: jsonAuth,
			body: `{"repo":"` + alice.DID + `","writes":[` +
				`{"$type":"com.atproto.repo.applyWrites#create","collection":"com.example.blobholder","value":{"file":` + temp.ref() + `}},` +
				`{"$type":"com.atproto.repo.applyWrites#create","collection":"com.example.blobholder","value":{"file":` + bobs.ref() + `}}]}`,
			wantStatus: 400, wantError: "BlobNotFound", wantMessage: notFound(bobs.Blob.Ref.Link), official: sameByCode},
		{name: "record: blob never uploaded", method: "POST", nsid: "com.atproto.repo.createRecord", header: jsonAuth,
			body:       postWithImage(alice.DID, blobRef(never, "image/png", "100"), ""),
			wantStatus: 400, wantError: "BlobNotFound", wantMessage: notFound(never)},
		{name: "record: video in embed.images", method: "POST", nsid: "com.atproto.repo.createRecord", header: jsonAuth,
			body:       postWithImage(alice.DID, video.ref(), ""),
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: "Invalid app.bsky.feed.post record: blob mimetype doesn't match accepted: video/mp4",
			official: `same status and name; message Invalid app.bsky.feed.post record: Expected "image/*" (got "video/mp4") at $.record.embed.images[0].image.mimeType`},
		{name: "record: legacy blob", method: "POST", nsid: "com.atproto.repo.createRecord", header: jsonAuth,
			body:       holder(alice.DID, `{"cid":"`+temp.Blob.Ref.Link+`","mimeType":"image/png"}`),
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: "Legacy blobs are not allowed (" + temp.Blob.Ref.Link + ")"},

		// getBlob.
		{name: "getBlob: unknown CID", method: "GET", nsid: getBlobOf(alice.DID, never),
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: "Blob not found"},
		{name: "getBlob: malformed CID", method: "GET", nsid: getBlobOf(alice.DID, "notacid"),
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: `Invalid CID string (got "notacid") at $.cid`, official: internal},
		{name: "getBlob: no cid", method: "GET", nsid: "com.atproto.sync.getBlob?did=" + alice.DID,
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: `Params must have the property "cid"`, official: internal},
		{name: "getBlob: another account's blob, with the other DID", method: "GET", nsid: getBlobOf(bob.DID, kept.Blob.Ref.Link),
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: "Blob not found"},
		{name: "getBlob: another account's upload, with its owner's DID", method: "GET", nsid: getBlobOf(bob.DID, bobs.Blob.Ref.Link),
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: "Blob not found"},
		{name: "getBlob: upload no record references", method: "GET", nsid: getBlobOf(alice.DID, temp.Blob.Ref.Link),
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: "Blob not found"},
		{name: "getBlob: a record's CID (dag-cbor)", method: "GET", nsid: getBlobOf(alice.DID, postOut.CID),
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: "Blob not found"},
		{name: "getBlob: unknown DID", method: "GET", nsid: getBlobOf("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", kept.Blob.Ref.Link),
			wantStatus: 400, wantError: "RepoNotFound", wantMessage: "Could not find repo for DID: did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"},

		// uploadBlob.
		{name: "upload: no Content-Type", method: "POST", nsid: "com.atproto.repo.uploadBlob", header: auth, body: "hello",
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: "Request encoding (Content-Type) required but not provided"},
		{name: "upload: Content-Type garbage", method: "POST", nsid: "com.atproto.repo.uploadBlob", header: merge(auth, ctype("garbage")), body: "hello",
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: "Request encoding (Content-Type) required but not provided"},
		{name: "upload: no body", method: "POST", nsid: "com.atproto.repo.uploadBlob", header: merge(auth, ctype("image/png")),
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: "A request body is expected but none was provided"},
		{name: "upload: no auth", method: "POST", nsid: "com.atproto.repo.uploadBlob", header: ctype("image/png"), body: "hello",
			wantStatus: 401, wantError: "AuthMissing", wantMessage: "Authentication Required"},
		{name: "upload: no auth, no Content-Type, over the limit (auth first)", method: "POST", nsid: "com.atproto.repo.uploadBlob", headOnly: 6_000_000,
			wantStatus: 401, wantError: "AuthMissing", wantMessage: "Authentication Required"},
		{name: "upload: over the limit by one byte, head only", method: "POST", nsid: "com.atproto.repo.uploadBlob", header: merge(auth, ctype("image/png")), headOnly: badInputLimit + 1,
			wantStatus: 413, wantError: "PayloadTooLarge", wantMessage: "request entity too large"},
		{name: "upload: admin password", method: "POST", nsid: "com.atproto.repo.uploadBlob", header: merge(basic(s.AdminPassword), ctype("image/png")), body: "hello",
			wantStatus: 400, wantError: "InvalidToken", wantMessage: "Unexpected authorization type"},
		{name: "upload: refresh token", method: "POST", nsid: "com.atproto.repo.uploadBlob", header: merge(bearer(refresh), ctype("image/png")), body: "hello",
			wantStatus: 400, wantError: "InvalidToken", wantMessage: "Invalid token type"},
		{name: "upload: bearer that is no JWT", method: "POST", nsid: "com.atproto.repo.uploadBlob", header: merge(bearer("nope"), ctype("image/png")), body: "hello",
			wantStatus: 400, wantError: "InvalidToken", wantMessage: "Token could not be verified", official: internal},
		{name: "upload: unknown Content-Encoding", method: "POST", nsid: "com.atproto.repo.uploadBlob",
			header: merge(auth, ctype("image/png"), http.Header{"Content-Encoding": {"bogus"}}), body: "hello",
			wantStatus: 415, wantError: "UnsupportedMediaType", wantMessage: "unsupported content-encoding"},
		{name: "upload: Content-Encoding br", method: "POST", nsid: "com.atproto.repo.uploadBlob",
			header: merge(auth, ctype("image/png"), http.Header{"Content-Encoding": {"br"}}), body: "hello",
			wantStatus: 415, wantError: "UnsupportedMediaType", wantMessage: "unsupported content-encoding", official: "200, stored decoded (read from source, not recorded)"},
		{name: "upload: Content-Encoding gzip, body not gzip", method: "POST", nsid: "com.atproto.repo.uploadBlob",
			header: merge(auth, ctype("image/png"), http.Header{"Content-Encoding": {"gzip"}}), body: "hello, not gzip",
			wantStatus: 400, wantError: "InvalidRequest", wantMessage: "Request body does not match its Content-Encoding: gzip: invalid header", official: "not recorded"},
		{name: "upload: Content-Encoding gzip, over the limit once decoded", method: "POST", nsid: "com.atproto.repo.uploadBlob",
			header: merge(auth, ctype("application/octet-stream"), http.Header{"Content-Encoding": {"gzip"}}), body: string(gzipped(make([]byte, badInputLimit+1))),
			wantStatus: 413, wantError: "PayloadTooLarge", wantMessage: "request entity too large", official: sameByCode},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				status int
				body   []byte
			)
			if tc.headOnly > 0 {
				resp, answer, _, _ := rawExchange(t, s.Addr, requestHead(s.Addr, tc.nsid, tc.header, tc.headOnly), nil, 10*time.Second)
				status, body = resp.StatusCode, answer
			} else {
				status, body = s.c.raw(tc.method, tc.nsid, tc.header, tc.body)
			}
			name, msg := xrpcErrorOf(body)
			if status != tc.wantStatus || name != tc.wantError || (tc.wantMessage != "" && msg != tc.wantMessage) {
				t.Errorf("got %d %s\nwant %d %s %q", status, body, tc.wantStatus, tc.wantError, tc.wantMessage)
			}
			official := "same"
			if tc.official != "" {
				official = tc.official
			}
			t.Logf("%d %s %q (official: %s)", status, name, msg, official)

			// Nothing moved.
			if got := getLatestCommit(t, s.URL, alice.DID); got != head {
				t.Errorf("alice's head moved: %+v -> %+v", head, got)
				head = got
			}
			if got := getLatestCommit(t, s.URL, bob.DID); got != bobHead {
				t.Errorf("bob's head moved: %+v -> %+v", bobHead, got)
				bobHead = got
			}
			s.checkRows(t, alice.DID, rows)
			s.checkRows(t, bob.DID, bobRows)
			if got := s.temps(t, alice.DID); len(got) != temps {
				t.Errorf("alice's temporary area: %q, want %d uploads", got, temps)
			}
		})
	}

	t.Run("Content-Encoding undone", func(t *testing.T) {
		// The official PDS stores the decoded bytes: their CID, size and type.
		for _, tc := range []struct {
			coding string
			encode func([]byte) []byte
		}{
			{"gzip", gzipped},
			{"x-gzip", gzipped},
			{"deflate", deflated},
			{"identity", func(b []byte) []byte { return b }},
			{"deflate, gzip", func(b []byte) []byte { return gzipped(deflated(b)) }},
		} {
			plain := pngBytes(uint64(30+len(tc.coding)), 3000)
			packed := tc.encode(plain)
			status, answer := upload(t, s.URL, merge(auth, ctype("application/octet-stream"), http.Header{"Content-Encoding": {tc.coding}}),
				bytes.NewReader(packed), int64(len(packed)))
			var u uploaded
			json.Unmarshal(answer, &u)
			if status != http.StatusOK || u.Blob.Ref.Link != rawCID(plain) || u.Blob.Size != int64(len(plain)) || u.Blob.MimeType != "image/png" {
				t.Errorf("Content-Encoding %s: got %d %s, want 200 with cid %s, %d bytes, image/png", tc.coding, status, answer, rawCID(plain), len(plain))
				continue
			}
			if status, out := s.holdBlob(t, alice, u.ref()); status != http.StatusOK {
				t.Fatalf("reference the decoded blob: %d %s", status, out)
			}
			if status, got := getBlob(t, s.URL, alice.DID, u.Blob.Ref.Link); status != http.StatusOK || !bytes.Equal(got, plain) {
				t.Errorf("Content-Encoding %s: getBlob %d, identical to the decoded bytes: %v", tc.coding, status, bytes.Equal(got, plain))
			}
		}
		head = getLatestCommit(t, s.URL, alice.DID)
		rows = s.blobRows(t, alice.DID)
		if got := s.temps(t, alice.DID); len(got) != temps {
			t.Errorf("alice's temporary area: %q, want %d uploads", got, temps)
		}
	})

	t.Run("upload aborted mid-stream", func(t *testing.T) {
		// 12 MiB: on S3 past the first 5 MiB part, so a multipart upload
		// is under way when the client goes.
		blob := noiseBytes(20, 12<<20)
		var listedBefore, listed struct{ CIDs []string }
		s.c.mustGetJSON("com.atproto.sync.listBlobs?did="+alice.DID, nil, &listedBefore)
		reqHead := requestHead(s.Addr, "com.atproto.repo.uploadBlob", merge(auth, ctype("application/octet-stream")), int64(len(blob)))
		conn, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(append([]byte(reqHead), blob[:len(blob)/2]...)); err != nil {
			t.Fatal(err)
		}
		// The server is mid-upload: a temp file on disk, a multipart
		// upload begun on S3 (6 MiB is past the first 5 MiB part).
		s.waitTemps(t, alice.DID, temps+1, 5*time.Second)
		t.Logf("%s: half the body sent, in the temporary area: %q", backend, s.temps(t, alice.DID))
		conn.Close()

		// The server notices at once: nothing stored, no row, nothing listed.
		s.waitTemps(t, alice.DID, temps, 5*time.Second)
		s.checkRows(t, alice.DID, rows)
		s.c.mustGetJSON("com.atproto.sync.listBlobs?did="+alice.DID, nil, &listed)
		if !slices.Equal(listed.CIDs, listedBefore.CIDs) {
			t.Errorf("listBlobs after the abort: %v, want %v", listed.CIDs, listedBefore.CIDs)
		}
		if got := getLatestCommit(t, s.URL, alice.DID); got != head {
			t.Errorf("alice's head moved: %+v -> %+v", head, got)
		}

		// The same bytes, in full, work: uploaded, referenced, served.
		full := mustUpload(t, s.URL, alice.AccessJwt, "application/octet-stream", blob)
		if status, out := s.holdBlob(t, alice, full.ref()); status != http.StatusOK {
			t.Fatalf("reference the re-uploaded blob: %d %s", status, out)
		}
		status, got := getBlob(t, s.URL, alice.DID, full.Blob.Ref.Link)
		if status != http.StatusOK || !bytes.Equal(got, blob) {
			t.Fatalf("getBlob of the re-uploaded blob: %d, %d bytes, identical %v", status, len(got), bytes.Equal(got, blob))
		}
		if got := s.temps(t, alice.DID); len(got) != temps {
			t.Errorf("alice's temporary area after the full upload was referenced: %q, want %d uploads", got, temps)
		}
	})
}

// waitTemps waits up to d for did's temporary area to hold exactly want
// uploads (an aborted request is noticed a moment after the client goes).
func (s *blobServer) waitTemps(t *testing.T, did string, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := s.temps(t, did)
		if len(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("temporary area of %s after %s: %q, want %d uploads", did, d, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postWithImage is a createRecord body: a post embedding one image.
func postWithImage(did, blobRef, extra string) string {
	return `{"repo":"` + did + `","collection":"app.bsky.feed.post"` + extra + `,"record":{"$type":"app.bsky.feed.post","text":"a picture","createdAt":"2026-11-22T10:00:00.000Z",` +
		`"embed":{"$type":"app.bsky.embed.images","images":[{"alt":"","image":` + blobRef + `}]}}}`
}

// holder is a createRecord body: a record of a type no lexicon describes,
// holding one blob.
func holder(did, blobRef string) string {
	return `{"repo":"` + did + `","collection":"com.example.blobholder","record":{"$type":"com.example.blobholder","file":` + blobRef + `}}`
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func deflated(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}
