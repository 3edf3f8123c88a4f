package sqlite

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// The store's structs carry typed identifiers (syntax.DID and the other
// string types pass through database/sql as text unchanged); CIDs are
// stored as their text form, and converted here only.

// cidColumn scans a CID stored as text into c.
type cidColumn struct{ c *cid.Cid }

func (col cidColumn) Scan(src any) error {
	var text string
	switch v := src.(type) {
	case string:
		text = v
	case []byte:
		text = string(v)
	default:
		return fmt.Errorf("scan CID: unexpected %T", src)
	}
	c, err := cid.Decode(text)
	if err != nil {
		return fmt.Errorf("scan CID %q: %w", text, err)
	}
	*col.c = c
	return nil
}

// cidTexts is the text form of a list of CIDs.
func cidTexts(cs []cid.Cid) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}
