package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// ErrHandleNotFound: the handle claims no DID, by DNS or by HTTPS.
var ErrHandleNotFound = errors.New("handle not found")

// HandleResolver resolves handles hosted elsewhere, as the handle spec
// says: a TXT record "did=<DID>" at _atproto.<handle>, else the body of
// https://<handle>/.well-known/atproto-did. The HTTPS fetch goes through
// the outbound guard, since the handle is user-supplied.
type HandleResolver struct {
	client  *http.Client
	dns     *net.Resolver
	timeout time.Duration
}

// NewHandleResolver builds a resolver; allowPrivate is for dev mode and tests.
func NewHandleResolver(allowPrivate bool) *HandleResolver {
	return &HandleResolver{
		client:  GuardedClient(allowPrivate, 10*time.Second),
		dns:     net.DefaultResolver,
		timeout: 10 * time.Second,
	}
}

// maxWellKnown bounds the well-known body: a DID is short.
const maxWellKnown = 2048

// ResolveHandle returns the DID a handle claims, or an error wrapping
// ErrHandleNotFound when it claims none.
func (r *HandleResolver) ResolveHandle(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
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
