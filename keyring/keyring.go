package keyring

import (
	"context"
	"fmt"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"sync"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// Store reads an account's stored signing key, plain or sealed
// (store.Store does).
type Store interface {
	SigningKey(ctx context.Context, did syntax.DID) ([]byte, error)
}

// DefaultCacheSize is how many parsed keys a Keyring keeps. A parsed key
// is a few hundred bytes; a miss costs one indexed row read, one AEAD open
// and one parse, tens of microseconds against the milliseconds of a commit.
const DefaultCacheSize = 4096

// Keyring is the one holder of account signing keys: it makes them, seals
// them for the store, and reads, opens, parses and caches them. It is safe
// for concurrent use.
type Keyring struct {
	store  Store
	sealer *Sealer // nil: keys are stored plain

	mu    sync.Mutex
	cache map[string]atcrypto.PrivateKey
	max   int
}

// New builds a Keyring reading from st. sealer nil stores new keys plain
// and refuses sealed ones with ErrNoSecret.
func New(st Store, sealer *Sealer) *Keyring {
	return &Keyring{store: st, sealer: sealer, cache: map[string]atcrypto.PrivateKey{}, max: DefaultCacheSize}
}

// Generate makes a fresh K-256 signing key for an account about to be
// created. It is not stored or cached: the caller seals it (Seal) once the
// DID is known and stores it with the account.
func (k *Keyring) Generate() (atcrypto.PrivateKeyExportable, error) {
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return key, nil
}

// Seal returns the bytes to store for did's key: sealed when a secret is
// set, the plain key otherwise.
func (k *Keyring) Seal(did string, key atcrypto.PrivateKeyExportable) ([]byte, error) {
	if k.sealer == nil {
		return key.Bytes(), nil
	}
	return k.sealer.Seal(did, key.Bytes())
}

// SigningKey returns did's signing key. Errors: the store's (ErrNotFound
// wrapped), or ErrNoSecret, ErrWrongSecret, ErrTampered, ErrFormat
// wrapped with the DID; never a key that is not the one sealed.
func (k *Keyring) SigningKey(ctx context.Context, did string) (atcrypto.PrivateKey, error) {
	k.mu.Lock()
	key, ok := k.cache[did]
	k.mu.Unlock()
	if ok {
		return key, nil
	}
	stored, err := k.store.SigningKey(ctx, syntax.DID(did))
	if err != nil {
		return nil, fmt.Errorf("signing key of %s: %w", did, err)
	}
	plain, err := decode(k.sealer, did, stored)
	if err != nil {
		return nil, fmt.Errorf("signing key of %s: %w", did, err)
	}
	parsed, err := atcrypto.ParsePrivateBytesK256(plain)
	if err != nil {
		return nil, fmt.Errorf("parse signing key of %s: %w", did, err)
	}
	k.remember(did, parsed)
	return parsed, nil
}

// remember caches a parsed key. When the cache is full an arbitrary entry
// goes (map iteration order is random): the accounts that write keep
// coming back, the others cost one miss.
func (k *Keyring) remember(did string, key atcrypto.PrivateKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.cache) >= k.max {
		for d := range k.cache {
			delete(k.cache, d)
			break
		}
	}
	k.cache[did] = key
}

// Forget drops did's cached key, for an account deleted or whose key was
// replaced.
func (k *Keyring) Forget(did string) {
	k.mu.Lock()
	delete(k.cache, did)
	k.mu.Unlock()
}
