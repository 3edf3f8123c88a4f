// Package handle holds the rules a PDS applies to handles it hosts: syntax,
// normalization, disallowed TLDs, service-domain constraints and reserved words.
//
// The rules are the official PDS's (packages/pds/src/handle and
// account-manager in bluesky-social/atproto): same order of checks, same
// XRPC error names, same messages, because clients show them. The reserved
// words and the slur check are our own, covering the same ground.
//
// # Terminology
//
//   - Service domain: a suffix such as ".pds.example.com" under which this
//     server hands out handles (PDS_SERVICE_HANDLE_DOMAINS). A service
//     handle is one label in front of it: alice.pds.example.com.
//   - External (custom) handle: any other domain. Its owner proves it with
//     DNS or /.well-known/atproto-did; that check needs the network and is
//     the caller's (identity), not this package's.
//
// # Tricky bits
//
//   - Account creation has no DID yet, so it cannot prove an external
//     handle: those are refused with UnsupportedDomain, and the user
//     switches to a custom domain after sign-up.
//   - Admins (updateAccountHandle) skip the slur and reserved checks, not the
//     shape checks; see [Rules.ValidateAdmin].
//   - The rules are registration policy, not protocol syntax: handles on
//     .local or .onion are valid atproto handles elsewhere (resolving them
//     must still work), they just cannot be registered here.
package handle
