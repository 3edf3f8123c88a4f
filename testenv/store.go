package testenv

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/hearth-pds/hearth/store/sqlite"
)

// BlobRow is one row of the store's blob table.
type BlobRow struct {
	CID, MimeType, TempKey string
	Size                   int64
}

// BlobRows reads did's blob rows from the running server's store file,
// read-only (WAL lets a reader in beside the server). It is SQL outside
// store/sqlite because the blob tests assert what only the store knows:
// that an upload no record uses yet is kept with its temporary key, size
// and MIME type, and that a refused one left no row. No XRPC method shows
// uploads that are not yet committed (listBlobs lists committed ones).
func (h *Hearth) BlobRows(t testing.TB, did string) map[string]BlobRow {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(h.DataDir, sqlite.FileName)+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT cid, mime_type, size, coalesce(temp_key, '') FROM blob WHERE did = ?", did)
	if err != nil {
		t.Fatalf("testenv: read blob rows: %v", err)
	}
	defer rows.Close()
	out := map[string]BlobRow{}
	for rows.Next() {
		var r BlobRow
		if err := rows.Scan(&r.CID, &r.MimeType, &r.Size, &r.TempKey); err != nil {
			t.Fatal(err)
		}
		out[r.CID] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
