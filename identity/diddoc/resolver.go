package diddoc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hearth-pds/hearth/outbound"
)

// Config configures a Resolver. Zero durations take the official defaults.
type Config struct {
	// PLCURL is the did:plc directory (PDS_DID_PLC_URL).
	PLCURL string
	// StaleTTL is the age after which a cached document is refreshed in the
	// background (PDS_DID_CACHE_STALE_TTL, 1 h); MaxTTL the age after which
	// it is not served any more (PDS_DID_CACHE_MAX_TTL, 24 h).
	StaleTTL time.Duration
	MaxTTL   time.Duration
	// Timeout bounds one fetch (PDS_ID_RESOLVER_TIMEOUT, 3 s).
	Timeout time.Duration
	// AllowPrivate lets did:web documents come from private and loopback
	// addresses (dev mode, PDS_DISABLE_SSRF_PROTECTION).
	AllowPrivate bool
	// MaxEntries bounds the cache (default 50,000 documents).
	MaxEntries int
	// PLCClient talks to the PLC directory, which the operator configures
	// and so is not guarded; default a plain client.
	PLCClient *http.Client
	Logger    *slog.Logger
}

// maxDocument bounds a fetched document; real ones are a few KiB.
const maxDocument = 256 << 10

// Resolver resolves DID documents through a bounded in-memory cache.
// It is safe for concurrent use.
type Resolver struct {
	cfg  Config
	plc  *http.Client
	web  *http.Client
	log  *slog.Logger
	now  func() time.Time
	mu   sync.Mutex
	docs map[string]entry
	// inflight deduplicates concurrent fetches of one DID.
	inflight map[string]*fetch
}

type entry struct {
	doc     *Document
	updated time.Time
}

type fetch struct {
	done chan struct{}
	doc  *Document
	err  error
}

// New builds a Resolver.
func New(cfg Config) *Resolver {
	if cfg.StaleTTL <= 0 {
		cfg.StaleTTL = time.Hour
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = 24 * time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 50_000
	}
	if cfg.PLCURL == "" {
		cfg.PLCURL = "https://plc.directory"
	}
	r := &Resolver{
		cfg:      cfg,
		plc:      cfg.PLCClient,
		web:      outbound.Client(cfg.AllowPrivate, cfg.Timeout),
		log:      cfg.Logger,
		now:      time.Now,
		docs:     make(map[string]entry),
		inflight: make(map[string]*fetch),
	}
	if r.plc == nil {
		r.plc = &http.Client{Timeout: cfg.Timeout}
	}
	// Redirects are refused, as the official resolver does (redirect: 'error').
	noRedirect := func(*http.Request, []*http.Request) error { return errors.New("redirect refused") }
	r.web.CheckRedirect = noRedirect
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Resolve returns the document of did: from the cache while it is younger
// than MaxTTL (refreshing it in the background once older than StaleTTL),
// else from its directory. It returns an error wrapping ErrNotFound when
// the directory does not know the DID.
func (r *Resolver) Resolve(ctx context.Context, did string) (*Document, error) {
	r.mu.Lock()
	e, ok := r.docs[did]
	r.mu.Unlock()
	if ok {
		age := r.now().Sub(e.updated)
		if age <= r.cfg.MaxTTL {
			if age > r.cfg.StaleTTL {
				go r.refresh(did)
			}
			return e.doc, nil
		}
	}
	return r.fetchShared(ctx, did)
}

// Refresh fetches did's document from its directory, bypassing the cache,
// for a caller that found a cached one wrong (a signature that does not
// verify after a key rotation).
func (r *Resolver) Refresh(ctx context.Context, did string) (*Document, error) {
	return r.fetchShared(ctx, did)
}

// Forget drops did from the cache.
func (r *Resolver) Forget(did string) {
	r.mu.Lock()
	delete(r.docs, did)
	r.mu.Unlock()
}

func (r *Resolver) refresh(did string) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	defer cancel()
	if _, err := r.fetchShared(ctx, did); err != nil && !errors.Is(err, ErrNotFound) {
		r.log.Warn("refreshing did document failed", "did", did, "err", err)
	}
}

// fetchShared fetches did once for all concurrent callers and updates the
// cache with the result.
func (r *Resolver) fetchShared(ctx context.Context, did string) (*Document, error) {
	r.mu.Lock()
	f, ok := r.inflight[did]
	if !ok {
		f = &fetch{done: make(chan struct{})}
		r.inflight[did] = f
		r.mu.Unlock()
		// The fetch outlives a caller that gives up: others may wait on it.
		go func() {
			fctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
			defer cancel()
			f.doc, f.err = r.fetch(fctx, did)
			r.mu.Lock()
			delete(r.inflight, did)
			switch {
			case f.err == nil:
				r.store(did, f.doc)
			case errors.Is(f.err, ErrNotFound):
				delete(r.docs, did)
			}
			r.mu.Unlock()
			close(f.done)
		}()
	} else {
		r.mu.Unlock()
	}
	select {
	case <-f.done:
		return f.doc, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("resolve %s: %w", did, ctx.Err())
	}
}

// store caches doc; r.mu is held. When full, an arbitrary entry makes room
// (map order is random), which is enough to bound memory.
func (r *Resolver) store(did string, doc *Document) {
	if _, ok := r.docs[did]; !ok && len(r.docs) >= r.cfg.MaxEntries {
		for k := range r.docs {
			delete(r.docs, k)
			break
		}
	}
	r.docs[did] = entry{doc: doc, updated: r.now()}
}

func (r *Resolver) fetch(ctx context.Context, did string) (*Document, error) {
	var (
		u      string
		client *http.Client
	)
	switch {
	case strings.HasPrefix(did, "did:plc:"):
		u = strings.TrimRight(r.cfg.PLCURL, "/") + "/" + url.PathEscape(did)
		client = r.plc
	case strings.HasPrefix(did, "did:web:"):
		host, err := webHost(did)
		if err != nil {
			return nil, err
		}
		scheme := "https"
		if h, _, _ := strings.Cut(host, ":"); h == "localhost" {
			scheme = "http"
		}
		u = scheme + "://" + host + "/.well-known/did.json"
		client = r.web
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedMethod, did)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", did, err)
	}
	req.Header.Set("Accept", "application/did+ld+json,application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", did, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, did)
	case resp.StatusCode/100 != 2 && strings.HasPrefix(did, "did:web:"):
		// The official did:web resolver treats any failure status as absence.
		return nil, fmt.Errorf("%w: %s (HTTP %d)", ErrNotFound, did, resp.StatusCode)
	case resp.StatusCode/100 != 2:
		return nil, fmt.Errorf("resolve %s: HTTP %d", did, resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("resolve %s: read: %w", did, err)
	}
	if len(raw) > maxDocument {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrMalformed, did, maxDocument)
	}
	return Parse(did, raw)
}

// webHost turns did:web:example.com%3A8080 into example.com:8080. Paths
// (more colon-separated parts) are not supported in atproto.
func webHost(did string) (string, error) {
	id := strings.TrimPrefix(did, "did:web:")
	if id == "" || strings.Contains(id, ":") {
		return "", fmt.Errorf("%w: unsupported did:web %s", ErrUnsupportedMethod, did)
	}
	host, err := url.PathUnescape(id)
	if err != nil || host == "" || strings.ContainsAny(host, "/?#@") {
		return "", fmt.Errorf("%w: bad did:web host in %s", ErrMalformed, did)
	}
	return host, nil
}
