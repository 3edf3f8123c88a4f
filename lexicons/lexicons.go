// Package lexicons holds the official lexicon schemas and a catalog to
// validate records against them with indigo's lexicon package.
//
// The schemas are those the indigo module go.mod pins ships, compacted one
// per line into schemas.jsonl by `go generate ./lexicons` and committed, so
// every way of building the binary (make, go build, go install) embeds
// them. A test fails when the committed file differs from what the pinned
// module ships: after a bump of indigo, run `go generate ./lexicons`.
package lexicons

//go:generate go run ./internal/gen

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/bluesky-social/indigo/atproto/lexicon"
)

//go:embed schemas.jsonl
var schemas []byte

var (
	once    sync.Once
	catalog *lexicon.BaseCatalog
	loadErr error
)

// Lazy is a lexicon.Catalog that parses the embedded schemas on first
// use, so a server that has not validated a record yet does not hold them
// in memory.
type Lazy struct{}

var _ lexicon.Catalog = Lazy{}

// Resolve implements lexicon.Catalog.
func (Lazy) Resolve(ref string) (*lexicon.Schema, error) {
	cat, _, err := Catalog()
	if err != nil {
		return nil, err
	}
	return cat.Resolve(ref)
}

// Count reports how many schema files are embedded, without parsing them.
func Count() int { return bytes.Count(schemas, []byte("\n")) }

// Catalog returns the catalog of embedded schemas and how many files it
// holds, parsing them on the first call.
func Catalog() (*lexicon.BaseCatalog, int, error) {
	once.Do(func() {
		catalog = lexicon.NewBaseCatalog()
		for line := range bytes.Lines(schemas) {
			var sf lexicon.SchemaFile
			if err := json.Unmarshal(line, &sf); err != nil {
				loadErr = fmt.Errorf("load lexicon schemas: %w", err)
				return
			}
			if err := catalog.AddSchemaFile(sf); err != nil {
				loadErr = fmt.Errorf("load lexicon schema %s: %w", sf.ID, err)
				return
			}
		}
	})
	return catalog, Count(), loadErr
}
