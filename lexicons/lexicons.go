// Package lexicons holds the official lexicon schemas, read at build time
// from the indigo module go.mod pins (`go generate ./lexicons`, which
// `make build` and the test script run), and a catalog to validate records
// against them with indigo's lexicon package.
package lexicons

//go:generate go run ./internal/gen

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/lexicon"
)

//go:embed all:schemas
var schemas embed.FS

var (
	once    sync.Once
	catalog *lexicon.BaseCatalog
	count   int
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
func Count() int {
	n := 0
	fs.WalkDir(schemas, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			n++
		}
		return nil
	})
	return n
}

// Catalog returns the catalog of embedded schemas and how many files it
// holds. A binary built without `go generate` has none; callers then treat
// every record type as unknown, and should say so at start-up.
func Catalog() (*lexicon.BaseCatalog, int, error) {
	once.Do(func() {
		catalog = lexicon.NewBaseCatalog()
		fs.WalkDir(schemas, ".", func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
				count++
			}
			return nil
		})
		if count > 0 {
			if err := catalog.LoadEmbedFS(schemas); err != nil {
				loadErr = fmt.Errorf("load lexicon schemas: %w", err)
			}
		}
	})
	return catalog, count, loadErr
}
