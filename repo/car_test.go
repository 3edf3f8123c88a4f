package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/ipfs/go-cid"
	gocar "github.com/ipld/go-car"
	"github.com/multiformats/go-multihash"
)

func testBlocks(t testing.TB) []Block {
	t.Helper()
	var out []Block
	for _, s := range []string{"one", "two", "three"} {
		data := record("app.bsky.feed.post", s)
		c, err := cidFor(data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Block{CID: c, Data: data})
	}
	return out
}

func carBytes(t testing.TB, root cid.Cid, blocks []Block) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteCAR(&buf, root, blocks); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCARHeaderMatchesGoCar: our header is byte for byte go-car's (the
// reader indigo and most Go consumers use).
func TestCARHeaderMatchesGoCar(t *testing.T) {
	root := testBlocks(t)[0].CID
	var want bytes.Buffer
	if err := gocar.WriteHeader(&gocar.CarHeader{Roots: []cid.Cid{root}, Version: 1}, &want); err != nil {
		t.Fatal(err)
	}
	got := carBytes(t, root, nil)
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("header\n got %x\nwant %x", got, want.Bytes())
	}
}

// TestCARRoundTrip: what WriteCAR writes, go-car and CARReader read back.
func TestCARRoundTrip(t *testing.T) {
	blocks := testBlocks(t)
	data := carBytes(t, blocks[0].CID, blocks)

	gr, err := gocar.NewCarReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		b, err := gr.Next()
		if err == io.EOF {
			if i != len(blocks) {
				t.Fatalf("go-car read %d blocks", i)
			}
			break
		}
		if err != nil || b.Cid() != blocks[i].CID || !bytes.Equal(b.RawData(), blocks[i].Data) {
			t.Fatalf("go-car block %d: %v", i, err)
		}
	}

	cr, err := NewCARReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(cr.Roots()) != 1 || cr.Roots()[0] != blocks[0].CID {
		t.Fatalf("roots %v", cr.Roots())
	}
	for i := 0; ; i++ {
		b, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil || b.CID != blocks[i].CID || !bytes.Equal(b.Data, blocks[i].Data) {
			t.Fatalf("block %d: %v", i, err)
		}
	}
}

// TestCARReaderRejects: malformed or hostile input is refused with
// ErrInvalidCAR, never a panic or a huge allocation.
func TestCARReaderRejects(t *testing.T) {
	blocks := testBlocks(t)
	good := carBytes(t, blocks[0].CID, blocks[:1])
	headerLen := int(good[0]) + 1

	section := func(c cid.Cid, data []byte) []byte {
		body := append(c.Bytes(), data...)
		return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
	}
	withHeader := func(h []byte) []byte {
		return append(binary.AppendUvarint(nil, uint64(len(h))), h...)
	}
	sha512, _ := cid.V1Builder{Codec: cid.DagCBOR, MhType: multihash.SHA2_512}.Sum(blocks[0].Data)
	v0, _ := cid.V0Builder{}.Sum(blocks[0].Data)

	tests := []struct {
		name       string
		data       []byte
		headerFail bool
	}{
		{"empty", nil, true},
		{"truncated header", good[:headerLen-2], true},
		{"header length huge", binary.AppendUvarint(nil, 1<<40), true},
		{"header not a map", withHeader([]byte{0x80}), true},
		{"version 2", withHeader(bytes.Replace(good[1:headerLen], []byte("version\x01"), []byte("version\x02"), 1)), true},
		{"no roots", withHeader([]byte("\xa2\x65roots\x80\x67version\x01")), true},
		{"unknown field", withHeader([]byte("\xa1\x63abc\x01")), true},
		{"truncated block", good[:len(good)-3], false},
		{"block does not match its CID", append(good[:headerLen:headerLen], section(blocks[0].CID, blocks[1].Data)...), false},
		{"sha2-512 CID", append(good[:headerLen:headerLen], section(sha512, blocks[0].Data)...), false},
		{"CIDv0", append(good[:headerLen:headerLen], section(v0, blocks[0].Data)...), false},
		{"block length huge", append(good[:headerLen:headerLen], binary.AppendUvarint(nil, 1<<40)...), false},
		{"zero length section", append(good[:headerLen:headerLen], 0), false},
		{"garbage CID", append(good[:headerLen:headerLen], 3, 0xff, 0xff, 0xff), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr, err := NewCARReader(bytes.NewReader(tt.data))
			if tt.headerFail {
				if !errors.Is(err, ErrInvalidCAR) {
					t.Fatalf("header: got %v, want ErrInvalidCAR", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("header: %v", err)
			}
			for {
				_, err = cr.Next()
				if err != nil {
					break
				}
			}
			if !errors.Is(err, ErrInvalidCAR) {
				t.Fatalf("got %v, want ErrInvalidCAR", err)
			}
		})
	}
}

// FuzzCARReader: any input either fails cleanly or yields blocks that hash
// to their CIDs and survive a write/read round trip.
func FuzzCARReader(f *testing.F) {
	blocks := testBlocks(f)
	f.Add(carBytes(f, blocks[0].CID, blocks))
	f.Add(carBytes(f, blocks[1].CID, nil))
	f.Add([]byte{})
	f.Add([]byte{0x01, 0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		cr, err := NewCARReader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalidCAR) {
				t.Fatalf("header error not ErrInvalidCAR: %v", err)
			}
			return
		}
		var got []Block
		for {
			b, err := cr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidCAR) {
					t.Fatalf("block error not ErrInvalidCAR: %v", err)
				}
				return
			}
			if sum, _ := b.CID.Prefix().Sum(b.Data); sum != b.CID {
				t.Fatal("block does not hash to its CID")
			}
			got = append(got, b)
		}
		again, err := NewCARReader(bytes.NewReader(carBytes(t, cr.Roots()[0], got)))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			b, err := again.Next()
			if err == io.EOF {
				if i != len(got) {
					t.Fatalf("round trip lost blocks: %d of %d", i, len(got))
				}
				return
			}
			if err != nil || b.CID != got[i].CID || !bytes.Equal(b.Data, got[i].Data) {
				t.Fatalf("round trip block %d: %v", i, err)
			}
		}
	})
}
