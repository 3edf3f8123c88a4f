package keyring

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkOpen is what Prepare pays per sealed key at every start-up.
func BenchmarkOpen(b *testing.B) {
	s, _ := NewSealer(bytes.Repeat([]byte{1}, MinSecretLen))
	sealed, _ := s.Seal(alice, bytes.Repeat([]byte{7}, plainLen))
	for b.Loop() {
		s.Open(alice, sealed)
	}
}

// BenchmarkSigningKeyMiss is a cache miss without the store's row read:
// open and parse.
func BenchmarkSigningKeyMiss(b *testing.B) {
	s, _ := NewSealer(bytes.Repeat([]byte{1}, MinSecretLen))
	key, _ := New(nil, nil).Generate()
	sealed, _ := s.Seal(alice, key.Bytes())
	k := New(&memStore{keys: map[string][]byte{alice: sealed}}, s)
	ctx := context.Background()
	for b.Loop() {
		k.Forget(alice)
		k.SigningKey(ctx, alice)
	}
}
