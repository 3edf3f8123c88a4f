package lexicons

import (
	"testing"

	"github.com/bluesky-social/indigo/atproto/lexicon"
)

func TestCatalog(t *testing.T) {
	cat, n, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("%d schemas embedded; run `go generate ./lexicons` (scripts/test.sh does)", n)
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
