package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/outbound"
)

// ErrHandleNotFound: the handle claims no DID, by DNS or by HTTPS.
var ErrHandleNotFound = errors.New("handle not found")

// HandleResolver resolves handles hosted elsewhere, as the handle spec
// says: a TXT record "did=<DID>" at _atproto.<handle>, else the body of
// https://<handle>/.well-known/atproto-did. The HTTPS fetch goes through
// the outbound guard, since the handle is user-supplied.
//
// Answers are cached for ttl (PDS_DID_CACHE_STALE_TTL), failures for a
// minute, so a busy client cannot make the server hammer DNS or a slow
// handle host.
type HandleResolver struct {
	client  *http.Client
	dns     *net.Resolver
	timeout time.Duration
	ttl     time.Duration

	mu    sync.Mutex
	cache map[syntax.Handle]handleEntry
}

type handleEntry struct {
	did     syntax.DID
	err     error
	expires time.Time
}

// negativeTTL is how long a failed resolution is remembered.
const negativeTTL = time.Minute

// maxCachedHandles bounds the cache; when full it is emptied.
const maxCachedHandles = 10000

// NewHandleResolver builds a resolver; allowPrivate is for dev mode and
// tests, timeout bounds one resolution (PDS_ID_RESOLVER_TIMEOUT) and ttl
// how long an answer is kept.
func NewHandleResolver(allowPrivate bool, timeout, ttl time.Duration) *HandleResolver {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &HandleResolver{
		client:  outbound.Client(allowPrivate, timeout),
		dns:     net.DefaultResolver,
		timeout: timeout,
		ttl:     ttl,
		cache:   make(map[syntax.Handle]handleEntry),
	}
}

// maxWellKnown bounds the well-known body: a DID is short.
const maxWellKnown = 2048

// ResolveHandle returns the DID a handle claims, or an error wrapping
// ErrHandleNotFound when it claims none.
func (r *HandleResolver) ResolveHandle(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	r.mu.Lock()
	e, ok := r.cache[h]
	r.mu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e.did, e.err
	}
	did, err := r.resolve(ctx, h)
	if ctx.Err() == nil {
		e := handleEntry{did: did, err: err, expires: time.Now().Add(r.ttl)}
		if err != nil {
			e.expires = time.Now().Add(negativeTTL)
		}
		r.mu.Lock()
		if len(r.cache) >= maxCachedHandles {
			clear(r.cache)
		}
		r.cache[h] = e
		r.mu.Unlock()
	}
	return did, err
}

// Forget drops a cached answer, when a handle is known to have moved.
func (r *HandleResolver) Forget(h syntax.Handle) {
	r.mu.Lock()
	delete(r.cache, h)
	r.mu.Unlock()
}

func (r *HandleResolver) resolve(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	did, dnsErr := r.resolveDNS(ctx, h)
	if dnsErr == nil {
		return did, nil
	}
	did, httpErr := r.resolveHTTPS(ctx, h)
	if httpErr == nil {
		return did, nil
	}
	return "", fmt.Errorf("resolve handle %s: %w (dns: %v; https: %v)", h, ErrHandleNotFound, dnsErr, httpErr)
}

func (r *HandleResolver) resolveDNS(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	records, err := r.dns.LookupTXT(ctx, "_atproto."+h.String())
	if err != nil {
		return "", err
	}
	var found syntax.DID
	for _, rec := range records {
		v, ok := strings.CutPrefix(rec, "did=")
		if !ok {
			continue
		}
		did, err := syntax.ParseDID(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		if found != "" && found != did {
			return "", errors.New("several DIDs in TXT records")
		}
		found = did
	}
	if found == "" {
		return "", errors.New("no did= TXT record")
	}
	return found, nil
}

func (r *HandleResolver) resolveHTTPS(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+h.String()+"/.well-known/atproto-did", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "hearth")
	resp, err := r.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWellKnown))
	if err != nil {
		return "", err
	}
	return syntax.ParseDID(strings.TrimSpace(string(body)))
}
