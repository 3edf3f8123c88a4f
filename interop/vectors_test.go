package interop

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

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
