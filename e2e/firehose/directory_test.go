package firehose

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// loopbackDirectory is an indigo identity.Directory that never leaves the
// machine: DID documents come from the test's PLC directory, and a handle
// is resolved by asking the PDS that hosts it
// (com.atproto.identity.resolveHandle) instead of DNS TXT or HTTPS
// well-known. Handles are still checked both ways, as indigo's own
// directory does: a DID's declared handle counts only if it resolves back
// to that DID.
type loopbackDirectory struct {
	plc    identity.BaseDirectory
	pdsURL string
	client *http.Client
}

var _ identity.Directory = (*loopbackDirectory)(nil)

// newLoopbackDirectory returns the directory behind indigo's cache, as
// relays and consumers use it; Purge drops an entry.
func newLoopbackDirectory(plcURL, pdsURL string) *identity.CacheDirectory {
	d := &loopbackDirectory{
		plc:    identity.BaseDirectory{PLCURL: plcURL, SkipHandleVerification: true},
		pdsURL: pdsURL,
		client: &http.Client{Timeout: 10 * time.Second},
	}
	return identity.NewCacheDirectory(d, 10_000, time.Hour, time.Second, time.Second)
}

func (d *loopbackDirectory) resolveHandle(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	u := d.pdsURL + "/xrpc/com.atproto.identity.resolveHandle?handle=" + url.QueryEscape(h.String())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: %v", identity.ErrHandleResolutionFailed, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: %s: %d", identity.ErrHandleNotFound, h, resp.StatusCode)
	}
	var out struct{ DID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("%w: %v", identity.ErrHandleResolutionFailed, err)
	}
	return syntax.ParseDID(out.DID)
}

func (d *loopbackDirectory) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	doc, err := d.plc.ResolveDID(ctx, did)
	if err != nil {
		return nil, err
	}
	ident := identity.ParseIdentity(doc)
	ident.Handle = syntax.HandleInvalid
	if declared, err := ident.DeclaredHandle(); err == nil {
		if got, err := d.resolveHandle(ctx, declared); err == nil && got == did {
			ident.Handle = declared
		}
	}
	return &ident, nil
}

func (d *loopbackDirectory) LookupHandle(ctx context.Context, h syntax.Handle) (*identity.Identity, error) {
	did, err := d.resolveHandle(ctx, h.Normalize())
	if err != nil {
		return nil, err
	}
	ident, err := d.LookupDID(ctx, did)
	if err != nil {
		return nil, err
	}
	if ident.Handle != h.Normalize() {
		return nil, fmt.Errorf("%w: %s", identity.ErrHandleMismatch, h)
	}
	return ident, nil
}

func (d *loopbackDirectory) Lookup(ctx context.Context, a syntax.AtIdentifier) (*identity.Identity, error) {
	if h, err := a.AsHandle(); err == nil {
		return d.LookupHandle(ctx, h)
	}
	did, err := a.AsDID()
	if err != nil {
		return nil, err
	}
	return d.LookupDID(ctx, did)
}

// Purge does nothing: the cache in front of it is what holds entries.
func (d *loopbackDirectory) Purge(context.Context, syntax.AtIdentifier) error { return nil }
