// Package keyring holds the accounts' repo signing keys: it makes them,
// seals them for the store, and reads, opens, parses and caches them for
// whoever signs (commits in records, service-auth tokens in serviceauth,
// DID document credentials in account). It is the only place a stored key
// is turned into an atcrypto.PrivateKey, and the only cache of private keys.
//
// # Encryption at rest
//
// With HEARTH_KEY_ENCRYPTION_SECRET set (at least 32 random bytes, given as
// 64 or more hex characters), keys are stored sealed with
// XChaCha20-Poly1305 under a key derived from the secret with HKDF-SHA256
// and a fixed info string. The secret must be random, not a passphrase:
// HKDF makes guessing no slower.
//
// Terminology:
//   - plain: the 32 raw bytes of a K-256 private key, as the store held
//     keys before encryption existed, and still does without a secret.
//   - sealed: "HKS1", a 4-byte key id, a 24-byte random nonce, then the
//     encrypted key and its tag; 80 bytes. The key id is derived from the
//     secret separately from the encryption key, so a wrong secret is told
//     apart from altered bytes without trying to decrypt.
//
// # Tricky bits
//
//   - Plain and sealed are told apart by length (a plain key is always
//     exactly 32 bytes, a sealed one 80) and the sealed form by its prefix,
//     which also carries the version. Anything else is ErrFormat.
//   - The account's DID is associated data: a sealed key copied into
//     another account's row does not open (ErrTampered), so a database
//     edit cannot make one account sign with another's key.
//   - Existing plain keys are sealed at start-up (Prepare), not on first
//     read: a key is then never plain on disk after a server with the
//     secret has started, including the keys of accounts that never write,
//     and the read path never writes. All are sealed in one transaction:
//     a crash leaves every key plain or every key sealed, none lost.
//   - Prepare also opens every sealed key, so a wrong or missing secret
//     stops `hearth serve` at start-up with an error naming
//     HEARTH_KEY_ENCRYPTION_SECRET, instead of failing writes later. It
//     reads every key on every start: one indexed scan and one AEAD open
//     per account, about a microsecond each.
//   - Rotation (Reseal, `hearth keys rotate`) also rewrites every key in
//     one transaction. Keys already sealed with the new secret are left
//     as they are, so a rerun is harmless. The server must be stopped: one
//     still running keeps sealing new accounts' keys with the old secret,
//     which the next start then refuses.
//
// # What can go wrong
//
//   - Losing the secret loses every sealed key, and with them the ability
//     to sign for the accounts (their did:plc rotation keys are the
//     server's, so identities can be re-keyed, but not silently). Back the
//     secret up apart from the database.
//   - The cache holds parsed private keys in memory, bounded by
//     DefaultCacheSize; encryption at rest protects the database and its
//     backups, not a running process.
package keyring
