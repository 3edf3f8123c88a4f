package keyring

import (
	"bytes"
	"context"
	"errors"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

const (
	alice = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	bob   = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
)

// memStore is a store of keys that rewrites them as one transaction: fn
// works on a copy that replaces the map only when every call succeeded.
type memStore struct {
	keys  map[string][]byte
	reads int
}

func (m *memStore) SigningKey(_ context.Context, did syntax.DID) ([]byte, error) {
	m.reads++
	k, ok := m.keys[did.String()]
	if !ok {
		return nil, errors.New("not found")
	}
	return k, nil
}

func (m *memStore) RewriteSigningKeys(_ context.Context, fn func(did syntax.DID, key []byte) ([]byte, error)) (int, error) {
	next := maps.Clone(m.keys)
	changed := 0
	for _, did := range slices.Sorted(maps.Keys(m.keys)) {
		k, err := fn(syntax.DID(did), m.keys[did])
		if err != nil {
			return 0, err
		}
		if k != nil {
			next[did] = k
			changed++
		}
	}
	m.keys = next
	return changed, nil
}

func sealer(t *testing.T, b byte) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{b}, MinSecretLen))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newKey(t *testing.T) *atcrypto.PrivateKeyK256 {
	t.Helper()
	k, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealRoundTrip(t *testing.T) {
	s := sealer(t, 1)
	plain := newKey(t).Bytes()
	sealed, err := s.Seal(alice, plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) == len(plain) || !IsSealed(sealed) || bytes.Contains(sealed, plain) {
		t.Fatalf("sealed form %x does not hide or differ from the plain key", sealed)
	}
	if again, _ := s.Seal(alice, plain); bytes.Equal(again, sealed) {
		t.Error("two seals of one key are equal: the nonce is not fresh")
	}
	got, err := s.Open(alice, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Errorf("Open = %x, want %x", got, plain)
	}
}

// TestOpenRefuses alters a sealed key every way the store could hold it
// wrongly and checks each gives its error, never a key.
func TestOpenRefuses(t *testing.T) {
	s := sealer(t, 1)
	sealed, err := s.Seal(alice, newKey(t).Bytes())
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name   string
		opener *Sealer
		did    string
		stored []byte
		want   error
	}{
		{"wrong secret", sealer(t, 2), alice, sealed, ErrWrongSecret},
		{"key sealed for another account", s, bob, sealed, ErrTampered},
		{"nonce altered", s, alice, flip(headerLen), ErrTampered},
		{"ciphertext altered", s, alice, flip(headerLen + 24), ErrTampered},
		{"tag altered", s, alice, flip(len(sealed) - 1), ErrTampered},
		{"key id altered", s, alice, flip(len(magic)), ErrWrongSecret},
		{"version altered", s, alice, flip(len(magic) - 1), ErrFormat},
		{"truncated", s, alice, sealed[:len(sealed)-1], ErrFormat},
		{"plain key given to Open", s, alice, newKey(t).Bytes(), ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opener.Open(tt.did, tt.stored)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("Open = %x, %v; want nil, %v", got, err, tt.want)
			}
		})
	}
	for _, err := range []error{ErrWrongSecret, ErrNoSecret, ErrTampered} {
		if !strings.Contains(err.Error(), "HEARTH_KEY_ENCRYPTION_SECRET") {
			t.Errorf("%q does not name HEARTH_KEY_ENCRYPTION_SECRET", err)
		}
	}
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := NewSealer(make([]byte, MinSecretLen-1)); err == nil {
		t.Error("NewSealer accepted a 31-byte secret")
	}
}

// TestKeyringReads reads keys as a server would: plain keys with or
// without a secret, sealed keys only with theirs, each parsed once.
func TestKeyringReads(t *testing.T) {
	s := sealer(t, 1)
	plainKey, sealedKey := newKey(t), newKey(t)
	sealed, _ := s.Seal(bob, sealedKey.Bytes())
	st := &memStore{keys: map[string][]byte{alice: plainKey.Bytes(), bob: sealed}}
	ctx := context.Background()

	tests := []struct {
		name   string
		sealer *Sealer
		did    string
		want   *atcrypto.PrivateKeyK256
		err    error
	}{
		{"plain key, no secret", nil, alice, plainKey, nil},
		{"plain key, secret set", s, alice, plainKey, nil},
		{"sealed key, its secret", s, bob, sealedKey, nil},
		{"sealed key, no secret", nil, bob, nil, ErrNoSecret},
		{"sealed key, wrong secret", sealer(t, 2), bob, nil, ErrWrongSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := New(st, tt.sealer)
			got, err := k.SigningKey(ctx, tt.did)
			if !errors.Is(err, tt.err) {
				t.Fatalf("SigningKey: %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				if !strings.Contains(err.Error(), tt.did) {
					t.Errorf("error %q does not name %s", err, tt.did)
				}
				return
			}
			if !got.Equal(tt.want) {
				t.Errorf("SigningKey returned another key")
			}
		})
	}
}

func TestKeyringCache(t *testing.T) {
	st := &memStore{keys: map[string][]byte{}}
	dids := []string{alice, bob, "did:plc:cccccccccccccccccccccccc"}
	for _, d := range dids {
		st.keys[d] = newKey(t).Bytes()
	}
	k := New(st, nil)
	k.max = 2
	ctx := context.Background()
	for range 3 {
		if _, err := k.SigningKey(ctx, alice); err != nil {
			t.Fatal(err)
		}
	}
	if st.reads != 1 {
		t.Errorf("three reads of one key read the store %d times, want 1", st.reads)
	}
	for _, d := range dids {
		k.SigningKey(ctx, d)
	}
	if len(k.cache) != 2 {
		t.Errorf("cache holds %d keys, want at most 2", len(k.cache))
	}
	k.Forget(alice)
	if _, ok := k.cache[alice]; ok {
		t.Error("Forget left the key cached")
	}
}

// TestGenerateAndSeal makes a key as account creation does and reads it back.
func TestGenerateAndSeal(t *testing.T) {
	for _, s := range []*Sealer{nil, sealer(t, 1)} {
		k := New(&memStore{keys: map[string][]byte{}}, s)
		key, err := k.Generate()
		if err != nil {
			t.Fatal(err)
		}
		stored, err := k.Seal(alice, key)
		if err != nil {
			t.Fatal(err)
		}
		if got := IsSealed(stored); got != (s != nil) {
			t.Errorf("secret set %v: stored sealed = %v", s != nil, got)
		}
		k.store.(*memStore).keys[alice] = stored
		got, err := k.SigningKey(context.Background(), alice)
		if err != nil || !got.Equal(key) {
			t.Errorf("read back: %v", err)
		}
	}
}

// TestReseal walks a store through what start-up and `hearth keys rotate`
// do: seal a plain store, rotate the secret, rerun, decrypt back to plain;
// and the refusals, which must leave the store as it was.
func TestReseal(t *testing.T) {
	ctx := context.Background()
	one, two := sealer(t, 1), sealer(t, 2)
	plain := map[string][]byte{alice: newKey(t).Bytes(), bob: newKey(t).Bytes()}
	st := &memStore{keys: maps.Clone(plain)}
	readable := func(s *Sealer) {
		t.Helper()
		for did, want := range plain {
			got, err := decode(s, did, st.keys[did])
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s after reseal: %v", did, err)
			}
		}
	}
	step := func(name string, from, to *Sealer, wantChanged int, wantErr error) {
		t.Helper()
		before := maps.Clone(st.keys)
		changed, total, err := Reseal(ctx, st, from, to)
		if !errors.Is(err, wantErr) {
			t.Fatalf("%s: %v, want %v", name, err, wantErr)
		}
		if err != nil {
			if !maps.EqualFunc(before, st.keys, bytes.Equal) {
				t.Fatalf("%s: a refused reseal changed the store", name)
			}
			return
		}
		if changed != wantChanged || total != len(plain) {
			t.Fatalf("%s: changed %d of %d, want %d of %d", name, changed, total, wantChanged, len(plain))
		}
	}

	k := New(st, one)
	n, err := k.Prepare(ctx, st)
	if err != nil || n != 2 {
		t.Fatalf("Prepare sealed %d: %v, want 2", n, err)
	}
	for did := range plain {
		if !IsSealed(st.keys[did]) {
			t.Fatalf("%s still plain after Prepare", did)
		}
	}
	readable(one)
	if n, err := k.Prepare(ctx, st); err != nil || n != 0 {
		t.Fatalf("second Prepare sealed %d: %v, want 0", n, err)
	}
	if _, err := New(st, nil).Prepare(ctx, st); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("Prepare without a secret on a sealed store: %v, want ErrNoSecret", err)
	}
	if _, err := New(st, two).Prepare(ctx, st); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("Prepare with a wrong secret: %v, want ErrWrongSecret", err)
	}

	step("rotate with the wrong old secret", two, sealer(t, 3), 0, ErrWrongSecret)
	step("rotate", one, two, 2, nil)
	readable(two)
	step("rotate again", one, two, 0, nil)
	step("rotate again, old secret already gone", nil, two, 0, nil)
	step("decrypt with the wrong secret", one, nil, 0, ErrWrongSecret)
	step("decrypt", two, nil, 2, nil)
	if !maps.EqualFunc(plain, st.keys, bytes.Equal) {
		t.Fatal("decrypted store differs from the original plain keys")
	}
	step("seal a plain store", nil, one, 2, nil)
	readable(one)

	st.keys[alice] = []byte("garbage")
	step("a row in no known form", one, two, 0, ErrFormat)
}

// FuzzOpen feeds Open arbitrary stored bytes: it must refuse or return the
// 32 bytes sealed, never panic.
func FuzzOpen(f *testing.F) {
	s, _ := NewSealer(bytes.Repeat([]byte{1}, MinSecretLen))
	sealed, _ := s.Seal(alice, bytes.Repeat([]byte{7}, plainLen))
	f.Add(sealed)
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, stored []byte) {
		if got, err := s.Open(alice, stored); err == nil && len(got) != plainLen {
			t.Errorf("Open returned %d bytes", len(got))
		}
	})
}
