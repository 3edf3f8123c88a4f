// Package interop runs the atproto interop test vectors
// (github.com/bluesky-social/atproto-interop-tests) against the libraries
// Hearth builds on and against Hearth's own rules, so that a change in
// either that breaks agreement with the rest of the network fails a test.
//
// It holds tests only. The vectors are not vendored: they are read from the
// copy the pinned indigo module ships as its own test data (located with
// `go list -m`, see testenv.InteropVectors), so they are the vectors of the
// library version Hearth builds on, and a clone tested alone runs them all.
// When they cannot be found the tests fail; they never skip. Two MST vector
// files indigo does not ship (mst/key_heights.json, mst/common_prefix.json)
// are read by the repo package's tests from ../shared/interop, and skipped
// when absent.
//
// Covered so far: syntax (handles, DIDs, NSIDs, AT-URIs, TIDs, record keys,
// datetimes, CIDs, languages, URIs, at-identifiers) and crypto (signature
// verification incl. high-S and DER rejection, did:key encoding, key pairs).
// Every vector file in a covered folder must be claimed by a test, so new
// vectors cannot be silently skipped.
package interop
