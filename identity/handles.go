package identity

import (
	"context"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// HandleResolver resolves handles hosted elsewhere: DNS TXT at
// _atproto.<handle>, then https://<handle>/.well-known/atproto-did, through
// indigo's identity package and the outbound guard.
type HandleResolver struct {
	dir *identity.BaseDirectory
}

// NewHandleResolver builds a resolver; allowPrivate is for dev mode and tests.
func NewHandleResolver(allowPrivate bool) *HandleResolver {
	client := GuardedClient(allowPrivate, 10*time.Second)
	return &HandleResolver{dir: &identity.BaseDirectory{
		HTTPClient: *client,
		UserAgent:  "hearth",
	}}
}

// ResolveHandle returns the DID a handle claims, or an error wrapping
// identity.ErrHandleNotFound when it claims none.
func (r *HandleResolver) ResolveHandle(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	did, err := r.dir.ResolveHandle(ctx, h)
	if err != nil {
		return "", fmt.Errorf("resolve handle %s: %w", h, err)
	}
	return did, nil
}
