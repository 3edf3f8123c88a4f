// Package testenv starts what the end-to-end, interop and benchmark tests
// run against, each on loopback and free ports and stopped when the test
// ends:
//
//   - the hearth binary ([StartHearth], built once per test process by
//     [Binary] unless HEARTH_BIN names one; [PlainInstall] builds it as
//     `go install` would), which tests may [Hearth.Kill] and
//     [Hearth.Restart];
//   - PLC directories: Hearth's embedded one ([StartEmbeddedPLC]) and the
//     reference implementation ([StartReferencePLC]);
//   - an S3 server ([StartS3Server]), scripted stand-ins for the AppView
//     and other services ([StartServices]), and the pinned peers (Node.js
//     scripts through [RunNode], [Goat]).
//
// Tests observe the server through XRPC, as clients do. The one exception,
// [Hearth.BlobRows], reads the store's file for what no XRPC method shows.
package testenv
