package keyring

import (
	"context"
	"fmt"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Rewriter rewrites stored keys in one transaction (store.Store does): it
// calls fn with every account's stored key and stores what fn returns in
// its place, leaving the row as it is when fn returns nil. An error from
// fn rolls every change back and is returned.
type Rewriter interface {
	RewriteSigningKeys(ctx context.Context, fn func(did syntax.DID, stored []byte) ([]byte, error)) (int, error)
}

// Reseal rewrites every stored key from under from to under to, in one
// store transaction; nil means plain. It returns how many rows changed and
// how many keys there are. Plain keys are always read. A key already in
// the target form is checked and left as it is, so running Reseal again
// after it succeeded, or after a key was added with the new secret,
// changes nothing more. On any error nothing is written.
func Reseal(ctx context.Context, st Rewriter, from, to *Sealer) (changed, total int, err error) {
	changed, err = st.RewriteSigningKeys(ctx, func(did syntax.DID, stored []byte) ([]byte, error) {
		total++
		next, err := reseal(did.String(), stored, from, to)
		if err != nil {
			return nil, fmt.Errorf("signing key of %s: %w", did, err)
		}
		return next, nil
	})
	if err != nil {
		return 0, 0, err
	}
	return changed, total, nil
}

func reseal(did string, stored []byte, from, to *Sealer) ([]byte, error) {
	switch {
	case to == nil && isPlain(stored):
		return nil, nil
	case to != nil && to.sealedHere(stored):
		_, err := to.Open(did, stored)
		return nil, err
	}
	plain, err := decode(from, did, stored)
	if err != nil {
		return nil, err
	}
	if to == nil {
		return plain, nil
	}
	return to.Seal(did, plain)
}

// Prepare brings the store in line with this Keyring's secret before it
// serves: with a secret, plain keys are sealed (all in one transaction, so
// a crash leaves them all plain or all sealed, never lost) and every sealed
// key must open; without one, any sealed key is refused with ErrNoSecret.
// It returns how many keys it sealed. A server that starts has only keys
// it can read.
func (k *Keyring) Prepare(ctx context.Context, st Rewriter) (sealed int, err error) {
	sealed, _, err = Reseal(ctx, st, k.sealer, k.sealer)
	return sealed, err
}
