package interop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/hearth-pds/hearth/testenv"
)

// The data-model vectors run through the path records take: JSON from the
// client to data-model values (atdata.UnmarshalJSON), to DAG-CBOR
// (atdata.MarshalCBOR), to a CID; and back from CBOR to JSON for reads.

func TestDataModelFixtures(t *testing.T) {
	dir := testenv.InteropVectors(t, "data-model")
	var fixtures []struct {
		JSON       json.RawMessage `json:"json"`
		CBORBase64 string          `json:"cbor_base64"`
		CID        string          `json:"cid"`
	}
	readJSON(t, filepath.Join(dir, "data-model-fixtures.json"), &fixtures)
	for i, f := range fixtures {
		want, err := base64.RawStdEncoding.DecodeString(f.CBORBase64)
		if err != nil {
			t.Fatalf("fixture %d: cbor_base64: %v", i, err)
		}
		obj, err := atdata.UnmarshalJSON(f.JSON)
		if err != nil {
			t.Fatalf("fixture %d: UnmarshalJSON: %v", i, err)
		}
		got, err := atdata.MarshalCBOR(obj)
		if err != nil {
			t.Fatalf("fixture %d: MarshalCBOR: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("fixture %d: DAG-CBOR differs from the vector", i)
		}
		sum, _ := multihash.Sum(got, multihash.SHA2_256, -1)
		if c := cid.NewCidV1(cid.DagCBOR, sum).String(); c != f.CID {
			t.Errorf("fixture %d: CID %s, want %s", i, c, f.CID)
		}
		// Back to JSON, as getRecord renders a stored record.
		back, err := atdata.UnmarshalCBOR(want)
		if err != nil {
			t.Fatalf("fixture %d: UnmarshalCBOR: %v", i, err)
		}
		rendered, err := json.Marshal(back)
		if err != nil {
			t.Fatalf("fixture %d: render JSON: %v", i, err)
		}
		var a, b any
		json.Unmarshal(rendered, &a)
		json.Unmarshal(f.JSON, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("fixture %d: JSON round trip differs:\n got %s\nwant %s", i, rendered, f.JSON)
		}
	}
}

func TestDataModelValidity(t *testing.T) {
	dir := testenv.InteropVectors(t, "data-model")
	for _, tc := range []struct {
		file  string
		valid bool
	}{{"data-model-valid.json", true}, {"data-model-invalid.json", false}} {
		var vectors []struct {
			Note string          `json:"note"`
			JSON json.RawMessage `json:"json"`
		}
		readJSON(t, filepath.Join(dir, tc.file), &vectors)
		for _, v := range vectors {
			obj, err := atdata.UnmarshalJSON(v.JSON)
			if err == nil {
				_, err = atdata.MarshalCBOR(obj)
			}
			if tc.valid && err != nil {
				t.Errorf("%s: %q refused: %v", tc.file, v.Note, err)
			}
			if !tc.valid && err == nil {
				t.Errorf("%s: %q accepted", tc.file, v.Note)
			}
		}
	}
}
