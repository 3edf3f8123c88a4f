package lexicons

import (
	"bytes"
	"testing"

	"github.com/bluesky-social/indigo/atproto/lexicon"

	"github.com/hearth-pds/hearth/lexicons/internal/bundle"
)

func TestCatalog(t *testing.T) {
	cat, n, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("%d schemas embedded, want the official set (over 100)", n)
	}
	post := map[string]any{"$type": "app.bsky.feed.post", "text": "hello", "createdAt": "2026-11-22T07:00:00.000Z"}
	if err := lexicon.ValidateRecord(cat, post, "app.bsky.feed.post", 0); err != nil {
		t.Errorf("valid post refused: %v", err)
	}
	delete(post, "createdAt")
	if err := lexicon.ValidateRecord(cat, post, "app.bsky.feed.post", 0); err == nil {
		t.Error("post without createdAt accepted")
	}
}

// TestSchemasMatchPinnedIndigo fails when schemas.jsonl is not what the
// indigo module go.mod pins ships, e.g. after a bump of indigo without
// `go generate ./lexicons`.
func TestSchemasMatchPinnedIndigo(t *testing.T) {
	want, err := bundle.FromModule()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(schemas, want) {
		gotN, wantN := bytes.Count(schemas, []byte("\n")), bytes.Count(want, []byte("\n"))
		t.Fatalf("schemas.jsonl (%d schemas) differs from the pinned %s (%d schemas): run `go generate ./lexicons` and commit the result", gotN, bundle.Module, wantN)
	}
}
