// Package account holds the account lifecycle of a PDS: sign-up with its
// identity and first commit, password and app-password login, sessions
// (access and refresh JWTs compatible with the official PDS), and invites.
//
// It has no SQL and no HTTP: it works on store.Store and returns the
// sentinel errors of errors.go, which the xrpc package maps to XRPC error
// names in one place.
package account
