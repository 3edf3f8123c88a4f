package account

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

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
// without the bound a burst of sign-ups or logins would hold 19 MiB each.
var hashSlots = make(chan struct{}, runtime.NumCPU())

func argonKey(password string, salt []byte, iters, mem uint32, threads uint8, keyLen uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey([]byte(password), salt, iters, mem, threads, keyLen)
}

// hashPassword returns a PHC-formatted argon2id hash with a random salt.
func hashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	return encodeArgon(password, salt), nil
}

// hashAppPassword hashes an app password with a salt derived from the
// account's DID. The hash is deterministic per account so login can look the
// password up by hash instead of trying every app password of the account;
// app passwords are server-generated with ~80 bits of entropy, so a
// per-account salt costs them nothing.
func hashAppPassword(did, password string) string {
	salt := sha256.Sum256([]byte("hearth app password\x00" + did))
	return encodeArgon(password, salt[:16])
}

func encodeArgon(password string, salt []byte) string {
	key := argonKey(password, salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errBadHash = errors.New("unrecognised password hash")

// checkPassword compares password with a stored PHC hash in constant time.
// Parameters are read from the hash, so raising them later keeps old hashes
// valid.
func checkPassword(password, encoded string) (bool, error) {
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
	got := argonKey(password, salt, iters, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
