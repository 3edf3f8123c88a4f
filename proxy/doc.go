// Package proxy forwards the XRPC methods Hearth does not serve itself to
// the services that do, as the official PDS does: the service an
// atproto-proxy header names ("did#service_id", resolved through the DID
// document), else the configured default (the AppView for everything but
// the moderation methods and createReport). Each request carries a
// service-auth token of the caller's, signed with their repo key, for that
// service and that method; the caller's own token never leaves the server.
//
// # The official behaviour, recorded against @atproto/pds 0.4.217
//
//   - Order: protected methods are refused first (400 InvalidToken "Bad
//     token method", even without credentials); then the upstream is
//     picked, so a malformed header or an unknown service is a 400 before
//     any auth; then the session (401 AuthMissing); then privileged
//     methods (chat) need a full session or a privileged app password
//     (400 InvalidToken "Bad token method").
//   - Request headers passed on: accept-encoding (the client's, identity
//     when absent), accept-language, atproto-accept-labelers,
//     x-bsky-topics, and for POST content-type, content-encoding and the
//     body as is. No user-agent, cookie or forwarding headers.
//   - Response headers passed back: content-length, -encoding, -type,
//     -language, atproto-repo-rev, atproto-content-labelers, retry-after,
//     with the upstream status; bodies stream through undecoded. The
//     response is marked Cache-Control: private, Vary: Authorization.
//   - Upstream errors (status >= 400) become an XRPC error with the
//     upstream's status (500 becomes 502) and its error name and message,
//     or the status's standard ones; no upstream header is passed on.
//     No answer, a refused address or no headers within 10 s is 502
//     UpstreamFailure "Upstream service unreachable".
//   - A body larger than 10 MiB, or silent for 30 s, is cut: the status
//     and headers are already out, so the client sees a broken transfer.
//   - getFeed, createReport and the push registrations are routes of
//     their own there (see local.go and push.go): getFeed's parameters are
//     checked before the session, and createReport authenticates before
//     it looks at the proxy header. getServiceAuth is a route of Hearth's
//     table (xrpc), served by serviceauth.Issuer.
//
// # Who does what
//
// The router (xrpc) owns auth. For the catch-all it calls Route (the
// protected-method refusal and the choice of upstream, which come before
// the session), then authenticates, then calls Forward with the caller.
// The local routes are ordinary handlers of its route table, called with
// the caller known. This package never calls back into the router.
//
// # Where we differ, on purpose
//
// The official PDS answers some bad input with a 500 (its checks throw):
// a proxy header naming something that is not a did:plc or did:web, bad
// getFeed parameters, a feed whose record the AppView does not have, and
// any error of the report service. Like the
// rest of Hearth we answer those with a 400 saying what is wrong, or pass
// the upstream's error on as the catch-all does.
//
// # Tricky bits
//
//   - Only the endpoint's origin is used: a path in a DID document's
//     service endpoint is ignored, as the official HTTP agent ignores it.
//   - Outside dev mode (PDS_DISABLE_SSRF_PROTECTION) upstreams must be
//     https on public addresses, checked at connect time after DNS.
package proxy
