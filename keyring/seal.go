package keyring

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Errors of stored keys. Each is returned wrapped with the account's DID.
var (
	// ErrNoSecret: a key is sealed and no secret was given to open it.
	ErrNoSecret = errors.New("encrypted, and HEARTH_KEY_ENCRYPTION_SECRET is not set: set it to the secret the keys were encrypted with")
	// ErrWrongSecret: a key was sealed with another secret than the one
	// given (its key id differs).
	ErrWrongSecret = errors.New("encrypted with a different HEARTH_KEY_ENCRYPTION_SECRET: set the one the keys were encrypted with (`hearth keys rotate` changes it)")
	// ErrTampered: a sealed key names the secret given but does not open:
	// its bytes were altered, or it was copied from another account's row.
	ErrTampered = errors.New("does not decrypt with HEARTH_KEY_ENCRYPTION_SECRET: its stored bytes were altered or belong to another account")
	// ErrFormat: the stored bytes are neither a plain key nor a sealed form
	// this version reads.
	ErrFormat = errors.New("neither a plain 32-byte K-256 key nor an encrypted one this version of Hearth reads")
)

// MinSecretLen is the shortest secret NewSealer accepts, in bytes. The
// secret is expanded with HKDF, which adds no work against guessing, so it
// must be random already: 32 bytes from a generator, not a passphrase.
const MinSecretLen = 32

// The sealed form, version 1:
//
//	"HKS1" | key id (4) | nonce (24) | XChaCha20-Poly1305(key) with tag (32+16)
//
// 80 bytes, where a plain key is always exactly 32: the length tells the two
// apart, the prefix names the version. The associated data is the first 8
// bytes and the account's DID, so a sealed key opens only in its own row.
const (
	magic     = "HKS1"
	plainLen  = 32
	headerLen = len(magic) + idLen
	idLen     = 4
	sealedLen = headerLen + chacha20poly1305.NonceSizeX + plainLen + chacha20poly1305.Overhead
)

// HKDF info strings: fixed, versioned with the format, one per derived value.
const (
	infoSealKey = "hearth keyring v1: signing key encryption key"
	infoKeyID   = "hearth keyring v1: key id"
)

// Sealer encrypts and decrypts signing keys with one secret. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
	id   [idLen]byte
}

// NewSealer derives a sealing key and its key id from secret, which must be
// at least MinSecretLen random bytes.
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("key-encryption secret is %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	key, err := hkdf.Key(sha256.New, secret, nil, infoSealKey, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive sealing key: %w", err)
	}
	id, err := hkdf.Key(sha256.New, secret, nil, infoKeyID, idLen)
	if err != nil {
		return nil, fmt.Errorf("derive key id: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("sealing cipher: %w", err)
	}
	s := &Sealer{aead: aead}
	copy(s.id[:], id)
	return s, nil
}

// SealerFor is NewSealer of a configured secret, and nil (keys plain)
// when secret is nil.
func SealerFor(secret []byte) (*Sealer, error) {
	if secret == nil {
		return nil, nil
	}
	return NewSealer(secret)
}

// Seal encrypts a plain 32-byte key for did's row.
func (s *Sealer) Seal(did string, plain []byte) ([]byte, error) {
	if len(plain) != plainLen {
		return nil, fmt.Errorf("seal signing key of %s: %d bytes, want %d", did, len(plain), plainLen)
	}
	out := make([]byte, headerLen+chacha20poly1305.NonceSizeX, sealedLen)
	copy(out, magic)
	copy(out[len(magic):], s.id[:])
	nonce := out[headerLen:]
	rand.Read(nonce) // never fails (crypto/rand, Go 1.24+)
	return s.aead.Seal(out, nonce, plain, associated(out[:headerLen], did)), nil
}

// Open decrypts what Seal made for did's row.
func (s *Sealer) Open(did string, sealed []byte) ([]byte, error) {
	if !IsSealed(sealed) {
		return nil, ErrFormat
	}
	if !s.sealedHere(sealed) {
		return nil, ErrWrongSecret
	}
	nonce := sealed[headerLen : headerLen+chacha20poly1305.NonceSizeX]
	plain, err := s.aead.Open(nil, nonce, sealed[headerLen+len(nonce):], associated(sealed[:headerLen], did))
	if err != nil {
		return nil, ErrTampered
	}
	return plain, nil
}

// sealedHere reports whether sealed names this Sealer's key id.
func (s *Sealer) sealedHere(sealed []byte) bool {
	return IsSealed(sealed) && bytes.Equal(sealed[len(magic):headerLen], s.id[:])
}

func associated(header []byte, did string) []byte {
	return append(append(make([]byte, 0, len(header)+len(did)), header...), did...)
}

// IsSealed reports whether stored is in the sealed form (of any secret).
func IsSealed(stored []byte) bool {
	return len(stored) == sealedLen && string(stored[:len(magic)]) == magic
}

// isPlain reports whether stored is a plain key: exactly 32 bytes, which
// no sealed form is.
func isPlain(stored []byte) bool { return len(stored) == plainLen }

// decode returns the plain key of a stored value: plain keys as they are,
// sealed ones opened with s (nil when no secret is set).
func decode(s *Sealer, did string, stored []byte) ([]byte, error) {
	switch {
	case isPlain(stored):
		return stored, nil
	case !IsSealed(stored):
		return nil, ErrFormat
	case s == nil:
		return nil, ErrNoSecret
	}
	return s.Open(did, stored)
}
