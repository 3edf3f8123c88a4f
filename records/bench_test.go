package records

import (
	"context"
	"fmt"
	"testing"

	"github.com/hearth-pds/hearth/repo"
)

// BenchmarkApply is the record write path below HTTP, on SQLite: one
// createRecord, and one applyWrites of 200 creates, per op.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{1, repo.MaxWrites} {
		b.Run(fmt.Sprintf("creates=%d", n), func(b *testing.B) {
			svc, _, _ := newService(b)
			ctx := context.Background()
			writes := make([]Write, n)
			for i := 0; b.Loop(); i++ {
				for j := range writes {
					writes[j] = Write{Action: repo.Create, Collection: "app.bsky.feed.post", Record: post(fmt.Sprint(i, " ", j))}
				}
				if _, err := svc.Apply(ctx, Request{Repo: did, Caller: did, Writes: writes}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
