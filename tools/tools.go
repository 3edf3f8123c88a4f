//go:build tools

// Package tools pins the versions of the external programs Hearth's tests
// drive (goat, indigo's CLI), so `go build` in this module builds exactly them.
package tools

import _ "github.com/bluesky-social/indigo/cmd/goat"
