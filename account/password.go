package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: one of OWASP's equivalent settings (9 MiB, 4
// passes) rather than its 19 MiB one: the same cost to an attacker, half
// the memory a sign-up holds, which keeps a small PDS small. Parameters are
// stored in each hash, so they can be raised later without breaking logins.
const (
	argonTime    = 4
	argonMemory  = 9 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

var b64 = base64.RawStdEncoding

// hashSlots bounds concurrent argon2 runs. Hashing is CPU-bound, so more
// than one per core buys no throughput, while each run holds argonMemory:
// without the bound a burst of sign-ups or logins would hold 9 MiB each.
var hashSlots = make(chan struct{}, runtime.NumCPU())

// hashWait bounds how long a request queues for a slot, on top of its own
// context (which ends when the client goes away). A run takes ~30 ms, so a
// core clears over a hundred runs in that time; a request still queued
// after it is refused with ErrHashBusy rather than kept, so a flood of
// logins cannot pile up work no client is still waiting for. A variable so
// tests can shorten it.
var hashWait = 5 * time.Second

// argonRuns counts argon2 runs, so tests can prove that the login paths do
// the same work without relying on the clock alone.
var argonRuns atomic.Int64

// argonKey derives an argon2id key once a slot is free. It fails with
// ErrHashBusy (wrapping the context's cause) when ctx ends or hashWait
// passes first; the run itself is not interrupted once started.
func argonKey(ctx context.Context, password string, salt []byte, iters, mem uint32, threads uint8, keyLen uint32) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, hashWait)
	defer cancel()
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrHashBusy, context.Cause(ctx))
	}
	defer func() { <-hashSlots }()
	argonRuns.Add(1)
	return argon2.IDKey([]byte(password), salt, iters, mem, threads, keyLen), nil
}

// hashPassword returns a PHC-formatted argon2id hash with a random salt.
func hashPassword(ctx context.Context, password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	return encodeArgon(ctx, password, salt)
}

// hashAppPassword hashes an app password with a salt derived from the
// account's DID. The hash is deterministic per account so login can look the
// password up by hash instead of trying every app password of the account;
// app passwords are server-generated with ~80 bits of entropy, so a
// per-account salt costs them nothing.
func hashAppPassword(ctx context.Context, did, password string) (string, error) {
	salt := sha256.Sum256([]byte("hearth app password\x00" + did))
	return encodeArgon(ctx, password, salt[:16])
}

func encodeArgon(ctx context.Context, password string, salt []byte) (string, error) {
	key, err := argonKey(ctx, password, salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	if err != nil {
		return "", err
	}
	return phc(salt, key), nil
}

// phc formats an argon2id hash made with the current parameters.
func phc(salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// dummyHash stands in for the password hash of an account that does not
// exist, so checking it costs what checking a real one made today costs.
// Its key is all zeroes: finding a password that derives it is as hard as
// inverting argon2id.
var dummyHash = phc(make([]byte, 16), make([]byte, argonKeyLen))

var errBadHash = errors.New("unrecognised password hash")

// checkPassword compares password with a stored PHC hash in constant time.
// Parameters are read from the hash, so raising them later keeps old hashes
// valid.
func checkPassword(ctx context.Context, password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil {
		return false, errBadHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return false, errBadHash
	}
	got, err := argonKey(ctx, password, salt, iters, mem, threads, uint32(len(want)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
