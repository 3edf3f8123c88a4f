//go:build tools

// Package tools pins the versions of the external programs Hearth's tests
// drive, so `go build` in this module builds exactly them: goat (indigo's
// CLI), versitygw (an S3-compatible server over a local folder, the real S3
// peer of the blobstore tests) and staticcheck (the linter of `make lint`).
package tools

import (
	_ "github.com/bluesky-social/indigo/cmd/goat"
	_ "github.com/versity/versitygw/cmd/versitygw"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
