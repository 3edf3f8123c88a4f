package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hearth-pds/hearth/store"
	"github.com/hearth-pds/hearth/store/sqlite"
	"github.com/hearth-pds/hearth/store/storetest"
)

func open(t *testing.T) store.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hearth.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

// Reopening applies no migration twice and keeps the data.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hearth.sqlite")
	ctx := context.Background()
	for i := range 2 {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if i == 0 {
			if err := s.CreateInviteCodes(ctx, []store.InviteCode{{Code: "kept", Available: 1}}); err != nil {
				t.Fatal(err)
			}
		} else if _, err := s.InviteCode(ctx, "kept"); err != nil {
			t.Errorf("after reopen: %v", err)
		}
		s.Close()
	}
}
