package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hearth-pds/hearth/identity/diddoc"
	"github.com/hearth-pds/hearth/outbound"
	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/serviceauth"
)

// The official PDS's defaults (PDS_PROXY_HEADERS_TIMEOUT,
// PDS_PROXY_BODY_TIMEOUT, PDS_PROXY_MAX_RESPONSE_SIZE).
const (
	DefaultHeadersTimeout  = 10 * time.Second
	DefaultBodyTimeout     = 30 * time.Second
	DefaultMaxResponseSize = 10 << 20
)

// Config configures a Proxy.
type Config struct {
	// AppView receives app.bsky.* and every other method without a more
	// specific default (PDS_BSKY_APP_VIEW_URL, PDS_BSKY_APP_VIEW_DID).
	AppView Upstream
	// ModService receives the tools.ozone methods of the official list
	// (PDS_MOD_SERVICE_URL, _DID); ReportService receives createReport
	// (PDS_REPORT_SERVICE_URL, _DID).
	ModService    Upstream
	ReportService Upstream
	// AllowPrivate lets upstreams be plain http and on private or
	// loopback addresses (PDS_DISABLE_SSRF_PROTECTION, dev mode).
	AllowPrivate bool
	// HeadersTimeout bounds the wait for an upstream's response headers,
	// BodyTimeout the silence between two chunks of its body;
	// MaxResponseSize caps a response body in bytes. Zero values take the
	// official defaults.
	HeadersTimeout  time.Duration
	BodyTimeout     time.Duration
	MaxResponseSize int64
	Logger          *slog.Logger
}

// Tokens mints service-auth tokens for hosted accounts
// (serviceauth.Issuer does).
type Tokens interface {
	Token(ctx context.Context, iss, aud, lxm string) (string, error)
}

// Documents resolves DID documents (diddoc.Resolver does).
type Documents interface {
	Resolve(ctx context.Context, did string) (*diddoc.Document, error)
}

var (
	_ Tokens    = (*serviceauth.Issuer)(nil)
	_ Documents = (*diddoc.Resolver)(nil)
)

// Proxy forwards XRPC requests this server does not serve itself.
type Proxy struct {
	cfg       Config
	tokens    Tokens
	docs      Documents
	transport http.RoundTripper
	log       *slog.Logger
}

// New builds a Proxy. Upstream connections go through the outbound guard
// (public addresses over https only) unless cfg.AllowPrivate.
func New(cfg Config, tokens Tokens, docs Documents) *Proxy {
	if cfg.HeadersTimeout <= 0 {
		cfg.HeadersTimeout = DefaultHeadersTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.MaxResponseSize <= 0 {
		cfg.MaxResponseSize = DefaultMaxResponseSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Proxy{cfg: cfg, tokens: tokens, docs: docs, transport: newTransport(cfg), log: cfg.Logger}
}

// newTransport is the outbound guard's transport with the proxy's own
// limits: a response-header timeout, no overall timeout
// (bodies stream as long as they keep moving), no automatic decompression
// (bodies pass through as encoded), and enough idle connections per host
// for a busy AppView.
func newTransport(cfg Config) http.RoundTripper {
	t := outbound.Transport(cfg.AllowPrivate, cfg.HeadersTimeout)
	t.ResponseHeaderTimeout = cfg.HeadersTimeout
	t.DisableCompression = true
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	t.ForceAttemptHTTP2 = false
	if cfg.AllowPrivate {
		return t
	}
	return httpsOnly{t}
}

// httpsOnly refuses plain-http upstreams, as the official agent does when
// SSRF protection is on.
type httpsOnly struct{ next http.RoundTripper }

func (h httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		return nil, fmt.Errorf("forbidden protocol %q", r.URL.Scheme+":")
	}
	return h.next.RoundTrip(r)
}

// errBadTokenMethod: a protected method, or a privileged one without a
// privileged session.
var errBadTokenMethod = refusal.New("InvalidToken", "Bad token method")

// Route checks a request for a method not served here before its caller
// is known, in the official order: protected methods are refused, then
// the upstream is picked (the atproto-proxy header's service, else the
// default one for nsid). The router then authenticates the caller and
// calls Forward.
func (p *Proxy) Route(r *http.Request, nsid string) (Target, error) {
	if serviceauth.Protected(nsid) {
		return Target{}, errBadTokenMethod
	}
	return p.resolveTarget(r.Context(), r.Header, nsid)
}

// Forward sends the request to t with a service-auth token of the
// authenticated caller's and streams the answer back; privileged methods
// need a privileged caller.
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, nsid string, t Target, c serviceauth.Caller) error {
	if err := authorize(w, nsid, c); err != nil {
		return err
	}
	token, err := p.tokens.Token(r.Context(), c.DID, t.aud, nsid)
	if err != nil {
		return err
	}
	return p.forward(w, r, t.origin, token)
}

// authorize marks the response private, as the official verifier does,
// and refuses privileged methods to callers without a privileged session.
func authorize(w http.ResponseWriter, nsid string, c serviceauth.Caller) error {
	setAuthHeaders(w)
	if serviceauth.Privileged(nsid) && !c.Privileged {
		return errBadTokenMethod
	}
	return nil
}

func setAuthHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "private")
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Authorization") {
				return
			}
		}
	}
	h.Add("Vary", "Authorization")
}
