// Package interop runs the atproto interop test vectors
// (github.com/bluesky-social/atproto-interop-tests) against the libraries
// Hearth builds on and against Hearth's own rules, so that a change in
// either that breaks agreement with the rest of the network fails a test.
//
// It holds tests only. The vectors are not vendored: they are read from
// ../shared/interop next to the repository root (the folder with go.mod);
// when that folder is absent the tests skip and say so.
//
// Covered so far: syntax (handles, DIDs, NSIDs, AT-URIs, TIDs, record keys,
// datetimes, CIDs, languages, URIs, at-identifiers) and crypto (signature
// verification incl. high-S and DER rejection, did:key encoding, key pairs).
// Every vector file in a covered folder must be claimed by a test, so new
// vectors cannot be silently skipped.
package interop
