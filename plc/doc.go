// Package plc is an embedded PLC directory: the did:plc HTTP API, verifying
// operation signatures and the rotation-key chain as the public directory does.
// Hearth's dev mode and its tests run it on loopback.
//
// # Terminology
//
//   - Operation: a signed change to a DID's state (rotation keys,
//     verification methods, alsoKnownAs, services), naming the operation it
//     follows by CID in "prev". A tombstone is an operation that deactivates
//     the DID. The genesis operation has no prev; the DID is the first 24
//     base32 characters of the SHA-256 of its DAG-CBOR.
//   - Head: a DID's current operation, the newest that is not nullified.
//   - Fork and nullification: an operation whose prev is not the head
//     rewrites history. It is accepted only if signed by a rotation key
//     (of prev) ranked above the one that signed the first operation it
//     displaces, within 72 hours of that operation; the displaced
//     operations stay in the audit log, marked nullified.
//
// # Verification
//
// The chain rules (signatures, prev, forks, the 72-hour window,
// tombstones) are go-didplc's VerifyOperation, run against index, this
// package's implementation of the library's OpStore. What the library does
// not check, this package does before it: the JSON shape of a submitted
// operation (DecodeOperation: every field present and typed, nothing
// unknown, no legacy "create"), and the operation's own content
// (checkSubmitted: 1 to 5 rotation keys, every key a K-256 or P-256
// did:key).
//
// # Persistence
//
// Accepted operations are appended to one JSON-lines file in the directory
// given to Open, fsynced before the submission is acknowledged. Only the
// operation and its timestamp are written; nullification and the keys
// still allowed to fork from each operation are derived, so no line is
// ever rewritten. Open replays the file through the same verification,
// so a damaged or edited file is detected, not trusted. A torn last line
// (a crash during an append, which was never acknowledged) is cut off; damage
// anywhere else makes Open fail rather than silently lose history.
//
// # Tricky bits
//
//   - Timestamps strictly increase across the directory (the clock is
//     nudged by a millisecond when it stands still or goes back): the
//     library refuses an operation not later than its prev, and /export
//     pages by time.
//   - An operation is hashed and verified from what was decoded, not from
//     the bytes received. That is why decoding is strict: a field the Go
//     types would drop would make the directory verify and serve a
//     different operation from the one its author signed.
//
// # Differences from the reference server
//
// The reference is npm @did-plc/server 0.0.1. Where it departs from the
// spec or from the public directory, this package follows those instead
// (TestReferenceDivergences pins each case down):
//
//   - A genesis under a DID with more than 24 hash characters: the
//     reference accepts any longer prefix of the hash; the spec's DID has 24.
//   - Operations with unknown fields: the reference keeps (and hashes)
//     them; the public directory's schema is strict now. Refused here.
//   - Signatures: the reference accepts high-S P-256 signatures, DER K-256
//     signatures and "="-padded base64url; the spec requires verifiers to
//     refuse all three.
//   - A prev that is not a CID, a body that is not JSON, a body over
//     100 KiB: the reference answers 500 (400 or 413 here).
//   - A tombstoned DID: the reference answers 404 for its document and
//     data, the public directory (and this package) 410.
//   - DID documents use the Multikey form the public directory serves,
//     not the reference's older EcdsaSecp256k1VerificationKey2019 form.
//   - The reference's in-memory store (what tests run) judges a second
//     fork from the same prev, and an update of a nullified operation,
//     against nullified operations; its PostgreSQL store, the public
//     directory and this package do not.
//   - Not implemented: the public directory's rate limits and its newer
//     limits on operation size and field counts; the reference 0.0.1 has
//     neither.
package plc
