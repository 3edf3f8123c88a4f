// Package config reads Hearth's configuration: the official PDS environment
// variables (PDS_*) with the official defaults, validated once at start-up.
//
// This is the only package that reads the environment. Everything else
// takes the sub-struct it needs (Service, Blobstore, Identity, ...), so
// tests can build any configuration in code without touching os.Setenv.
//
// # Contract
//
//   - Names and meanings are the official PDS's (packages/pds/src/config in
//     bluesky-social/atproto), so an existing pds.env works unchanged. Every
//     other official variable is accepted and reported back as ignored;
//     PDS_* and HEARTH_* names nobody reads are reported by [UnknownNames]
//     (typos).
//   - A variable Hearth reads for a feature that has not landed (rate
//     limits, email, OAuth, repository import, the official database
//     locations) is parsed and checked but changes nothing; [NotYetSet]
//     names those set, with why, for a start-up warning. Nothing is
//     accepted silently.
//   - Start-up fails with one error listing every problem ([errors.Join] of
//     [*VarError]), each naming its variable and, for values the operator
//     has to make, how to make one.
//   - Parsing is stricter than the official one, which silently treats
//     "yes" or "3000abc" as unset or as 3000: here those are errors.
//   - Secrets ([Secret], [Secrets]) never print: not through fmt (any verb),
//     slog, or JSON. [Config.String] and [Config.LogValue] show the whole
//     configuration with them redacted.
//
// # Where we differ from the official defaults, and why
//
//   - PDS_PORT defaults to 3000, the value the official Docker image sets
//     (the library itself says 2583).
//   - PDS_HOSTNAME is required (the library falls back to localhost, which
//     silently turns a misconfigured production server into a dev one).
//   - With no blobstore configured we use <data directory>/blocks, the
//     official installer's layout, where the official PDS refuses to start.
//   - LOG_ENABLED defaults to true (the library says false; the installer
//     writes true).
package config
