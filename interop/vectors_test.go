package interop

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// vectorDir returns <repo root>/../shared/interop/<sub>, or skips the test
// when it is absent: the vectors live outside the repository.
func vectorDir(t *testing.T, sub string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory: cannot find the repository root")
		}
		dir = parent
	}
	vectors := filepath.Join(filepath.Dir(dir), "shared", "interop", sub)
	if _, err := os.Stat(vectors); err != nil {
		t.Skipf("interop vectors not found at %s (../shared/interop/%s from the repository root): skipping; check out github.com/bluesky-social/atproto-interop-tests there to run these tests", vectors, sub)
	}
	return vectors
}

// readLines returns the vector lines of a text file: every line that is
// neither empty nor a comment ("#..."). Lines are not trimmed, since
// surrounding whitespace is what some vectors test.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var lines []string
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		t.Fatalf("%s has no vectors", path)
	}
	return lines
}

// short keeps failure messages readable for the 8 KiB vectors.
func short(s string) string {
	if len(s) > 80 {
		return s[:60] + "..." + s[len(s)-10:] + " (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return s
}
