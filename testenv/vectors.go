package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// interopFolders maps each kind of atproto interop vectors
// (github.com/bluesky-social/atproto-interop-tests) to the folder of the
// indigo module that ships a copy of them as its own test data.
var interopFolders = map[string]string{
	"syntax":     "atproto/syntax/testdata",
	"crypto":     "atproto/atcrypto/testdata",
	"data-model": "atproto/atdata/testdata",
	"firehose":   "atproto/repo/testdata", // commit-proof-fixtures.json
	"mst":        "atproto/repo/mst/testdata",
}

var (
	indigoOnce sync.Once
	indigoDir  string
	indigoErr  error
)

// InteropVectors returns the folder holding the interop vectors of one
// kind ("syntax", "crypto", "data-model", "firehose", "mst") in the indigo
// module go.mod pins, so the vectors are always the ones of the library
// the tests check and need no checkout beside the repository. It fails the
// test, never skips it, when the module or the folder cannot be found.
func InteropVectors(t testing.TB, kind string) string {
	t.Helper()
	sub, ok := interopFolders[kind]
	if !ok {
		t.Fatalf("testenv: no interop vectors of kind %q", kind)
	}
	indigoOnce.Do(func() {
		cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/bluesky-social/indigo")
		cmd.Dir = RepoRoot(t)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		indigoDir, indigoErr = strings.TrimSpace(string(out)), err
	})
	if indigoErr != nil || indigoDir == "" {
		t.Fatalf("testenv: locate the indigo module (go list -m github.com/bluesky-social/indigo): %q, %v; run go mod download", indigoDir, indigoErr)
	}
	dir := filepath.Join(indigoDir, filepath.FromSlash(sub))
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("testenv: interop vectors %q: %v", kind, err)
	}
	return dir
}
