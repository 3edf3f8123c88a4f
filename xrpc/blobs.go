package xrpc

import (
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/refusal"
)

func (s *Server) uploadBlob(w http.ResponseWriter, r *http.Request, c caller) error {
	if r.Body == nil || r.Body == http.NoBody {
		return invalidRequest("A request body is expected but none was provided")
	}
	b, err := s.blobs.Upload(r.Context(), syntax.DID(c.DID), r.Header.Get("Content-Type"), r.ContentLength, decodedBody(r))
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"blob": map[string]any{
		"$type": "blob", "ref": map[string]string{"$link": b.CID.String()}, "mimeType": b.MimeType, "size": b.Size,
	}})
}

var errUnsupportedEncoding = refusal.WithStatus(http.StatusUnsupportedMediaType, "UnsupportedMediaType", "unsupported content-encoding")

// decodedBody undoes an upload's Content-Encoding, as the official PDS
// does: the blob is the content, not its packing for transfer, and the
// size limit applies to the decoded bytes. The codings are undone from
// the first read on, so that the checks made before it (type, declared
// length) answer first, in the official order. Brotli, which the
// official PDS also decodes, has no decoder in the standard library and
// is refused like an unknown coding (415), never stored as it came.
func decodedBody(r *http.Request) io.Reader {
	var codings []string
	for _, v := range r.Header.Values("Content-Encoding") {
		if strings.TrimSpace(v) == "" {
			continue
		}
		for _, c := range strings.Split(v, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	for _, c := range codings {
		if c != "gzip" && c != "x-gzip" && c != "deflate" {
			return errReader{errUnsupportedEncoding}
		}
	}
	if len(codings) == 0 {
		return r.Body
	}
	return &decoder{src: &sourceReader{r: r.Body}, codings: codings}
}

// decoder undoes codings (in the order listed, the last applied first)
// once it is first read.
type decoder struct {
	src     *sourceReader
	codings []string
	r       io.Reader
}

func (d *decoder) Read(p []byte) (int, error) {
	if d.r == nil {
		r := io.Reader(d.src)
		for i := len(d.codings) - 1; i >= 0; i-- {
			var err error
			if d.codings[i] == "deflate" {
				r, err = zlib.NewReader(r)
			} else {
				r, err = gzip.NewReader(r)
			}
			if err != nil {
				return 0, d.fail(err)
			}
		}
		d.r = r
	}
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = d.fail(err)
	}
	return n, err
}

// fail tells a client that sent bytes its Content-Encoding does not
// describe (400) from a body that broke off (the connection's error).
func (d *decoder) fail(err error) error {
	if d.src.err != nil && d.src.err != io.EOF {
		return d.src.err
	}
	return invalidRequest("Request body does not match its Content-Encoding: " + err.Error())
}

// sourceReader remembers the error of the body under a decoder.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// syncGetBlob serves a blob's bytes. The headers keep a browser from
// running what a user uploaded: it is always an attachment, never sniffed,
// and sandboxed if opened anyway.
func (s *Server) syncGetBlob(w http.ResponseWriter, r *http.Request, _ caller) error {
	p := params(r)
	did, raw := syncDID(p), p.str("cid", true)
	if p.err != nil {
		return p.err
	}
	c, err := cid.Decode(raw)
	if err != nil {
		return invalidRequest(`Invalid CID string (got "` + abbreviate(raw) + `") at $.cid`)
	}
	if err := s.records.Servable(r.Context(), did); err != nil {
		return err
	}
	meta, err := s.blobs.Stat(r.Context(), did, c)
	if err != nil {
		return err
	}
	offset, length, partial, ok := parseRange(r.Header.Get("Range"), meta.Size)
	if !ok {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", meta.Size))
		return refusal.WithStatus(http.StatusRequestedRangeNotSatisfiable, "InvalidRequest", "Range not satisfiable")
	}
	body, err := s.blobs.Read(r.Context(), meta, offset, length)
	if err != nil {
		return err
	}
	defer body.Close()
	h := w.Header()
	h.Set("Content-Type", meta.MimeType)
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", `attachment; filename="`+c.String()+`"`)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "private")
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", offset, offset+length-1, meta.Size))
		status = http.StatusPartialContent
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, body); err != nil {
		s.log.Debug("getBlob copy ended early", "did", did, "cid", c, "err", err)
	}
	return nil
}

// parseRange reads a single-range "bytes=" header against a blob of size
// bytes. Without a usable header it returns the whole blob; ok is false
// only for a well-formed range that lies outside the blob (416).
func parseRange(header string, size int64) (offset, length int64, partial, ok bool) {
	spec, found := strings.CutPrefix(header, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, size, false, true
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, size, false, true
	}
	switch {
	case first == "":
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n <= 0 {
			return 0, size, false, true
		}
		n = min(n, size)
		return size - n, n, true, size > 0
	default:
		start, err := strconv.ParseInt(first, 10, 64)
		if err != nil || start < 0 {
			return 0, size, false, true
		}
		if start >= size {
			return 0, 0, false, false
		}
		end := size - 1
		if last != "" {
			e, err := strconv.ParseInt(last, 10, 64)
			if err != nil || e < start {
				return 0, size, false, true
			}
			end = min(e, size-1)
		}
		return start, end - start + 1, true, true
	}
}

func (s *Server) syncListBlobs(w http.ResponseWriter, r *http.Request, _ caller) error {
	p := params(r)
	did, since, cursor, limit := syncDID(p), p.str("since", false), p.str("cursor", false), p.integer("limit", 500, 1, 1000)
	if p.err != nil {
		return p.err
	}
	if err := s.records.Servable(r.Context(), did); err != nil {
		return err
	}
	list, err := s.blobs.List(r.Context(), did, syntax.TID(since), cursor, limit)
	if err != nil {
		return err
	}
	cids := make([]string, len(list))
	for i, c := range list {
		cids[i] = c.String()
	}
	body := map[string]any{"cids": cids}
	if len(cids) > 0 {
		body["cursor"] = cids[len(cids)-1]
	}
	return writeJSON(w, body)
}

func (s *Server) listMissingBlobs(w http.ResponseWriter, r *http.Request, c caller) error {
	p := params(r)
	cursor, limit := p.str("cursor", false), p.integer("limit", 500, 1, 1000)
	if p.err != nil {
		return p.err
	}
	refs, err := s.blobs.Missing(r.Context(), syntax.DID(c.DID), cursor, limit)
	if err != nil {
		return err
	}
	out := make([]map[string]string, 0, len(refs))
	for _, ref := range refs {
		out = append(out, map[string]string{"cid": ref.CID.String(), "recordUri": "at://" + c.DID + "/" + ref.Collection.String() + "/" + ref.RKey.String()})
	}
	body := map[string]any{"blobs": out}
	if len(refs) > 0 {
		body["cursor"] = refs[len(refs)-1].CID.String()
	}
	return writeJSON(w, body)
}
