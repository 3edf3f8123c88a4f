// Command gen writes lexicons/schemas.jsonl from the lexicon schemas the
// indigo module that go.mod pins ships (see package bundle). It runs as
// `go generate ./lexicons` after a bump of indigo; its output is committed,
// so a plain `go build` or `go install` embeds the schemas.
package main

import (
	"fmt"
	"os"

	"github.com/hearth-pds/hearth/lexicons/internal/bundle"
)

func main() {
	b, err := bundle.FromModule()
	if err == nil {
		err = os.WriteFile("schemas.jsonl", b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lexicons gen:", err)
		os.Exit(1)
	}
}
