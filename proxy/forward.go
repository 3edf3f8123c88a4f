package proxy

import (
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearth-pds/hearth/refusal"
)

// errUnreachable: no response from the upstream (refused, unreachable,
// refused by the outbound guard, or no headers within HeadersTimeout).
var errUnreachable = refusal.New("UpstreamFailure", "Upstream service unreachable")

// errAborted makes the HTTP server cut the client's connection: the
// response has started and cannot become an error any more.
var errAborted = http.ErrAbortHandler

// forward streams r to origin with token and streams the answer back:
// the catch-all path (the official proxyHandler). The client's
// accept-encoding is passed on as is (identity when absent), so the body
// is relayed without decoding.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, origin, token string) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, r.Method, origin+r.URL.RequestURI(), nil)
	if err != nil {
		return errUnreachable
	}
	h := out.Header
	ae := strings.Join(r.Header.Values("Accept-Encoding"), ", ")
	if ae == "" {
		ae = "identity"
	}
	h.Set("Accept-Encoding", ae)
	copyHeaders(h, r.Header, "Accept-Language", "Atproto-Accept-Labelers", "X-Bsky-Topics")
	if r.Method == http.MethodPost {
		copyHeaders(h, r.Header, "Content-Type", "Content-Encoding")
		out.Body = r.Body
		out.ContentLength = r.ContentLength
		if out.ContentLength == 0 {
			out.Body = http.NoBody
		}
	}
	h.Set("Authorization", "Bearer "+token)
	h.Set("User-Agent", "") // none, as the official agent sends

	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		p.log.Warn("upstream unreachable", "origin", origin, "err", err)
		return errUnreachable
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return p.upstreamError(resp)
	}
	dst := w.Header()
	for name, vals := range responseHeaders(resp.Header, true) {
		dst[name] = vals
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return nil
	}
	if err := p.relay(w, resp.Body, cancel); err != nil {
		var cw clientWriteError
		if errors.As(err, &cw) {
			p.log.Debug("client went away during a proxied response", "origin", origin, "err", err)
		} else {
			p.log.Warn("relaying upstream response failed", "origin", origin, "err", err)
		}
		panic(errAborted)
	}
	return nil
}

// clientWriteError: the client, not the upstream, failed the relay.
type clientWriteError struct{ error }

func (e clientWriteError) Unwrap() error { return e.error }

// relayBuffers are reused across relays.
var relayBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// errTooLarge: an upstream body went over MaxResponseSize.
var errTooLarge = errors.New("upstream response larger than the proxy's limit")

// relay copies an upstream body to w as it arrives, within
// MaxResponseSize, cancelling the upstream request when the body stalls
// longer than BodyTimeout.
func (p *Proxy) relay(w http.ResponseWriter, body io.Reader, cancel context.CancelFunc) error {
	idle := time.AfterFunc(p.cfg.BodyTimeout, cancel)
	defer idle.Stop()
	rc := http.NewResponseController(w)
	bp := relayBuffers.Get().(*[]byte)
	defer relayBuffers.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := body.Read(buf)
		if n > 0 {
			idle.Reset(p.cfg.BodyTimeout)
			total += int64(n)
			if total > p.cfg.MaxResponseSize {
				return errTooLarge
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return clientWriteError{werr}
			}
			// A short read drained what the upstream had sent so far:
			// pass it on now rather than wait for more.
			if n < len(buf) {
				rc.Flush()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func copyHeaders(dst, src http.Header, names ...string) {
	for _, n := range names {
		if v := src.Values(n); len(v) > 0 {
			dst[http.CanonicalHeaderKey(n)] = []string{strings.Join(v, ", ")}
		}
	}
}

// forwardedResponseHeaders are relayed from upstream responses besides
// the content headers, as the official PDS relays them.
var forwardedResponseHeaders = []string{"Atproto-Repo-Rev", "Atproto-Content-Labelers", "Retry-After"}

// responseHeaders picks the upstream headers the official PDS relays:
// content length, encoding, type and language (unless contentHeaders is
// false) and forwardedResponseHeaders, repeated values joined.
func responseHeaders(src http.Header, contentHeaders bool) http.Header {
	out := http.Header{}
	if contentHeaders {
		copyHeaders(out, src, "Content-Length", "Content-Encoding", "Content-Type", "Content-Language")
	}
	for _, n := range forwardedResponseHeaders {
		if v := src.Values(n); len(v) > 0 {
			out[n] = []string{strings.Join(v, ",")}
		}
	}
	return out
}

// UpstreamAnswer is an upstream's error response as received: the cause
// of the refusal the proxy passes on, for logs and for read after write
// (which answers a getPostThread NotFound from local records when the
// AppView's Rev, its atproto-repo-rev header, is known; the header is not
// relayed).
type UpstreamAnswer struct {
	Status int
	Rev    string
}

func (a *UpstreamAnswer) Error() string {
	return "upstream answered " + strconv.Itoa(a.Status)
}

// UpstreamRev is the atproto-repo-rev of the upstream answer behind err,
// "" when err is not an upstream's answer or it had none.
func UpstreamRev(err error) string {
	var a *UpstreamAnswer
	if errors.As(err, &a) {
		return a.Rev
	}
	return ""
}

// upstreamError reads an upstream error response into the refusal the
// official PDS answers with: the upstream's status (500 becomes 502), its
// error name and message when its body is an XRPC error, else the
// status's standard name and text. Name and Message are empty for a
// status XRPC has no name for (the body then has neither field); no
// upstream header goes with it.
func (p *Proxy) upstreamError(resp *http.Response) *refusal.Error {
	var payload struct {
		Error   any `json:"error"`
		Message any `json:"message"`
	}
	if isJSON, known := jsonContentType(resp.Header.Get("Content-Type")); isJSON || !known {
		if body, err := decoded(resp, p.cfg.MaxResponseSize); err == nil {
			_ = json.Unmarshal(body, &payload)
		}
	}
	status := resp.StatusCode
	if status == http.StatusInternalServerError {
		status = http.StatusBadGateway
	}
	e := &refusal.Error{Status: status, Cause: &UpstreamAnswer{Status: resp.StatusCode, Rev: resp.Header.Get("Atproto-Repo-Rev")}}
	e.Name, _ = payload.Error.(string)
	e.Message, _ = payload.Message.(string)
	name, text := refusal.ForStatus(status)
	if e.Name == "" {
		e.Name = name
	}
	if e.Message == "" {
		e.Message = text
	}
	return e
}

// jsonContentType mirrors the official isJsonContentType: known is false
// when there is no content type at all.
func jsonContentType(ct string) (isJSON, known bool) {
	if ct == "" {
		return false, false
	}
	return jsonType.MatchString(ct), true
}

var jsonType = regexp.MustCompile(`(?i)application/(?:\w+\+)?json`)

// decoded reads a whole (small) body, undoing gzip or deflate encoding.
func decoded(resp *http.Response, limit int64) ([]byte, error) {
	return decodeBody(resp.Body, resp.Header.Get("Content-Encoding"), limit)
}

func decodeBody(body io.Reader, encoding string, limit int64) ([]byte, error) {
	var r io.Reader = io.LimitReader(body, limit+1)
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		r = gz
	case "deflate":
		r = flate.NewReader(r)
	default:
		return nil, errors.New("unsupported content encoding")
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}
