package proxy

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-pds/hearth/refusal"
)

// PipeOptions shape the token of a piped request.
type PipeOptions struct {
	// Issuer is the caller's DID; empty sends no token.
	Issuer string
	// Audience and Method replace the upstream's DID and the method in the
	// token (getFeed addresses the feed generator for getFeedSkeleton).
	Audience string
	Method   string
}

// Piped is an upstream's successful answer to a piped request, its body
// not read yet. Close it (or Write it) when done.
type Piped struct {
	// Header holds the upstream headers the official PDS relays (content
	// length, encoding, type and language, atproto-repo-rev,
	// atproto-content-labelers, retry-after).
	Header http.Header
	// ContentType is the upstream's, or application/json.
	ContentType string
	// Body is the upstream body, still encoded as Header's
	// Content-Encoding says; reading fails past MaxResponseSize or after
	// BodyTimeout without data.
	Body io.ReadCloser

	limit int64 // the proxy's MaxResponseSize
}

// Pipethrough forwards a GET or HEAD request to the upstream for nsid
// (the atproto-proxy header's service, else the default one) and returns
// the answer for the caller to relay or rewrite: the official pipethrough,
// used by methods the PDS serves itself on top of the AppView (getFeed
// here; read-after-write views). It asks for an encoding the PDS can read
// itself (identity first). An upstream's error answer comes back as an
// *refusal.Error whose cause is an *UpstreamAnswer.
func (p *Proxy) Pipethrough(r *http.Request, nsid string, opts PipeOptions) (*Piped, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, refusal.ErrInternal
	}
	t, err := p.resolveTarget(r.Context(), r.Header, nsid)
	if err != nil {
		return nil, err
	}
	ae, err := proxiedContentEncoding(r.Header.Values("Accept-Encoding"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(r.Context())
	out, err := http.NewRequestWithContext(ctx, r.Method, t.origin+r.URL.RequestURI(), nil)
	if err != nil {
		cancel()
		return nil, errUnreachable
	}
	copyHeaders(out.Header, r.Header, "Accept-Language", "Atproto-Accept-Labelers", "X-Bsky-Topics")
	out.Header.Set("Accept-Encoding", ae)
	out.Header.Set("User-Agent", "")
	if opts.Issuer != "" {
		aud, lxm := t.aud, nsid
		if opts.Audience != "" {
			aud = opts.Audience
		}
		if opts.Method != "" {
			lxm = opts.Method
		}
		token, err := p.tokens.Token(r.Context(), opts.Issuer, aud, lxm)
		if err != nil {
			cancel()
			return nil, err
		}
		out.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		cancel()
		p.log.Warn("upstream unreachable", "origin", t.origin, "err", err)
		return nil, errUnreachable
	}
	if resp.StatusCode >= 400 {
		defer cancel()
		defer resp.Body.Close()
		return nil, p.upstreamError(resp)
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/json"
	}
	return &Piped{
		Header:      responseHeaders(resp.Header, true),
		ContentType: ct,
		Body:        newCappedBody(resp.Body, cancel, p.cfg.MaxResponseSize, p.cfg.BodyTimeout),
		limit:       p.cfg.MaxResponseSize,
	}, nil
}

// Write relays the answer with status 200, as the official PDS writes a
// handler's piped output, and closes the body.
func (pd *Piped) Write(w http.ResponseWriter) error {
	defer pd.Body.Close()
	h := w.Header()
	for name, vals := range pd.Header {
		h[name] = vals
	}
	h.Set("Content-Type", pd.ContentType)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, pd.Body); err != nil {
		// Headers are out: the only way left to fail is to cut the stream.
		panic(errAborted)
	}
	return nil
}

// Decoded reads the whole body, undoing a gzip or deflate content
// encoding, and closes it: for a caller that rewrites the answer. Any
// other encoding is an error.
func (pd *Piped) Decoded() ([]byte, error) {
	defer pd.Body.Close()
	// The capped body enforces the size limit on the encoded bytes; the
	// decoded ones are held to the same limit.
	limit := pd.limit
	if limit <= 0 {
		limit = DefaultMaxResponseSize
	}
	return decodeBody(pd.Body, pd.Header.Get("Content-Encoding"), limit)
}

// cappedBody enforces the response size cap and the idle timeout on a
// piped body.
type cappedBody struct {
	r      io.ReadCloser
	cancel context.CancelFunc
	left   int64
	idle   *time.Timer
	wait   time.Duration
}

func newCappedBody(r io.ReadCloser, cancel context.CancelFunc, limit int64, idle time.Duration) *cappedBody {
	return &cappedBody{r: r, cancel: cancel, left: limit, idle: time.AfterFunc(idle, cancel), wait: idle}
}

func (c *cappedBody) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.idle.Reset(c.wait)
		c.left -= int64(n)
		if c.left < 0 {
			return 0, errTooLarge
		}
	}
	return n, err
}

func (c *cappedBody) Close() error {
	c.idle.Stop()
	err := c.r.Close()
	c.cancel()
	return err
}

// The official encoding preferences for piped requests (preferCompressed
// off): identity first, then what the client also accepts.
var uncompressedPrefs = []struct {
	name string
	q    float64
}{{"identity", 1.0}, {"gzip", 0.3}, {"deflate", 0.2}, {"br", 0.1}}

// proxiedContentEncoding is the official buildProxiedContentEncoding:
// the PDS's preferences filtered by what the client accepts, identity
// kept unless the client refuses it (then "*;q=0"), 406 NotAcceptable
// when nothing is left, and 400 for a malformed header.
func proxiedContentEncoding(header []string) (string, error) {
	accept := map[string]float64{}
	for _, h := range header {
		if h == "" {
			continue
		}
		for _, def := range strings.Split(h, ",") {
			name, q, err := parseAcceptEncoding(def)
			if err != nil {
				return "", err
			}
			accept[name] = q
		}
	}
	var parts []string
	identity, allowed := false, false
	for _, pref := range uncompressedPrefs {
		q, ok := accept[pref.name]
		if !ok {
			q, ok = accept["*"]
		}
		keep := ok && q > 0
		if pref.name == "identity" {
			keep = !ok || q > 0
		}
		if !keep {
			continue
		}
		if pref.name == "identity" {
			identity = true
		}
		allowed = true
		parts = append(parts, pref.name+";q="+strconv.FormatFloat(pref.q, 'f', -1, 64))
	}
	if !identity {
		parts = append(parts, "*;q=0")
	}
	if !allowed {
		return "", refusal.New("NotAcceptable", "this service does not support any of the requested encodings")
	}
	return strings.Join(parts, ","), nil
}

func parseAcceptEncoding(def string) (string, float64, error) {
	bad := refusal.InvalidRequest(`Invalid accept-encoding: "%s"`, def)
	parts := strings.SplitN(strings.TrimSpace(def), ";", 3)
	if len(parts) > 2 || parts[0] == "" || strings.Contains(parts[0], "=") {
		return "", 0, bad
	}
	q := 1.0
	if len(parts) == 2 {
		kv := strings.SplitN(parts[1], "=", 3)
		if len(kv) != 2 || (kv[0] != "q" && kv[0] != "Q") {
			return "", 0, bad
		}
		f, err := strconv.ParseFloat(kv[1], 64)
		if err != nil || !(f == 0 || (f <= 1 && f >= 0.001)) {
			return "", 0, bad
		}
		q = f
	}
	return strings.ToLower(parts[0]), q, nil
}
