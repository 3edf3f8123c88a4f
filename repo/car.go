package repo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	cbg "github.com/whyrusleeping/cbor-gen"
)

// CAR v1 is a varint-framed header (DAG-CBOR {roots, version: 1}) followed
// by varint-framed sections, each a binary CID and the block's bytes. The
// framing is small enough to write here rather than pull go-car v2 and its
// dependencies into the module for it.

// Limits CARReader enforces on untrusted input.
const (
	// MaxCARHeaderSize bounds the header; a repository CAR's header holds
	// one root.
	MaxCARHeaderSize = 1 << 10
	// MaxBlockSize bounds one block, as relays bound a firehose frame's
	// blocks; a record over it could not be synced anyway.
	MaxBlockSize = 2 << 20
)

// WriteCAR writes a CAR v1 with root root and blocks in the given order: an
// event's blocks or a proof. The caller puts the root's block first when a
// reader may stream it (Result.EventBlocks and RecordProof do).
func WriteCAR(w io.Writer, root cid.Cid, blocks []Block) error {
	cw := newCARWriter(w)
	if err := cw.header(root); err != nil {
		return err
	}
	for _, b := range blocks {
		if err := cw.block(b.CID, b.Data); err != nil {
			return err
		}
	}
	return cw.flush()
}

// CARWriter streams a CAR v1 block by block, for exports whose blocks come
// from a database cursor rather than a tree walk.
type CARWriter struct{ cw *carWriter }

// NewCARWriter writes the header for root and returns the writer.
func NewCARWriter(w io.Writer, root cid.Cid) (*CARWriter, error) {
	cw := newCARWriter(w)
	if err := cw.header(root); err != nil {
		return nil, err
	}
	return &CARWriter{cw: cw}, nil
}

// Write adds one block.
func (w *CARWriter) Write(c cid.Cid, data []byte) error { return w.cw.block(c, data) }

// Flush writes what is buffered.
func (w *CARWriter) Flush() error { return w.cw.flush() }

// ExportCAR streams repository commitCID as a CAR v1 (com.atproto.sync.
// getRepo): the commit, then the tree depth first in key order with each
// record right after the entry that names it, so a reader can verify the
// stream in one pass. Memory stays at one tree path: blocks are read from src
// as they are written. A record shared by several keys is written once per
// key, which CAR readers accept, rather than remembering every record CID.
func ExportCAR(ctx context.Context, w io.Writer, src BlockSource, commitCID cid.Cid) error {
	commit, err := readCommit(ctx, src, commitCID)
	if err != nil {
		return err
	}
	commitData, err := src.GetBlock(ctx, commitCID)
	if err != nil {
		return fmt.Errorf("read commit %s: %w", commitCID, err)
	}
	cw := newCARWriter(w)
	if err := cw.header(commitCID); err != nil {
		return err
	}
	if err := cw.block(commitCID, commitData); err != nil {
		return err
	}
	if err := exportNode(ctx, cw, src, commit.Data, -1); err != nil {
		return err
	}
	return cw.flush()
}

func exportNode(ctx context.Context, cw *carWriter, src BlockSource, c cid.Cid, height int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := src.GetBlock(ctx, c)
	if err != nil {
		return fmt.Errorf("read tree node %s: %w", c, err)
	}
	n, err := decodeNode(c, data, height)
	if err != nil {
		return err
	}
	if err := cw.block(c, data); err != nil {
		return err
	}
	for _, e := range n.Entries {
		if e.IsChild() {
			if err := exportNode(ctx, cw, src, *e.ChildCID, n.Height-1); err != nil {
				return err
			}
			continue
		}
		rec, err := src.GetBlock(ctx, *e.Value)
		if err != nil {
			return fmt.Errorf("read record %s: %w", e.Key, err)
		}
		if err := cw.block(*e.Value, rec); err != nil {
			return err
		}
	}
	return nil
}

type carWriter struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
}

func newCARWriter(w io.Writer) *carWriter { return &carWriter{w: bufio.NewWriterSize(w, 64<<10)} }

func (cw *carWriter) header(root cid.Cid) error {
	var h bytes.Buffer
	cbw := cbg.NewCborWriter(&h)
	text := func(s string) error {
		if err := cbw.WriteMajorTypeHeader(cbg.MajTextString, uint64(len(s))); err != nil {
			return err
		}
		_, err := cbw.WriteString(s)
		return err
	}
	// DAG-CBOR sorts map keys by length first: "roots" before "version".
	// Writes to a bytes.Buffer cannot fail; errors.Join keeps the sequence flat.
	if err := errors.Join(
		cbw.WriteMajorTypeHeader(cbg.MajMap, 2),
		text("roots"),
		cbw.WriteMajorTypeHeader(cbg.MajArray, 1),
		cbg.WriteCid(cbw, root),
		text("version"),
		cbw.WriteMajorTypeHeader(cbg.MajUnsignedInt, 1),
	); err != nil {
		return fmt.Errorf("encode CAR header: %w", err)
	}
	return cw.frame(h.Bytes())
}

func (cw *carWriter) block(c cid.Cid, data []byte) error {
	cb := c.Bytes()
	n := binary.PutUvarint(cw.buf[:], uint64(len(cb)+len(data)))
	if _, err := cw.w.Write(cw.buf[:n]); err != nil {
		return err
	}
	if _, err := cw.w.Write(cb); err != nil {
		return err
	}
	_, err := cw.w.Write(data)
	return err
}

func (cw *carWriter) frame(p []byte) error {
	n := binary.PutUvarint(cw.buf[:], uint64(len(p)))
	if _, err := cw.w.Write(cw.buf[:n]); err != nil {
		return err
	}
	_, err := cw.w.Write(p)
	return err
}

func (cw *carWriter) flush() error { return cw.w.Flush() }

// CARReader reads a CAR v1 from an untrusted stream, one block at a time.
// It checks every block against its CID and accepts only what an atproto
// repository holds: CIDv1, DAG-CBOR or raw, sha2-256.
type CARReader struct {
	r     *bufio.Reader
	roots []cid.Cid
}

// NewCARReader reads the header of a CAR v1 (ErrInvalidCAR when it is
// malformed, not version 1, or has no root).
func NewCARReader(r io.Reader) (*CARReader, error) {
	cr := &CARReader{r: bufio.NewReader(r)}
	h, err := cr.frame(MaxCARHeaderSize)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: header: %v", ErrInvalidCAR, err)
	}
	roots, err := parseCARHeader(h)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrInvalidCAR, err)
	}
	cr.roots = roots
	return cr, nil
}

// Roots are the header's roots (at least one).
func (cr *CARReader) Roots() []cid.Cid { return cr.roots }

// Next returns the next block, io.EOF after the last one, or an error
// wrapping ErrInvalidCAR (a truncated section, an oversized block, a CID of a
// kind atproto does not use, or bytes that do not hash to their CID).
func (cr *CARReader) Next() (Block, error) {
	sec, err := cr.frame(MaxBlockSize + 64)
	if err == io.EOF {
		return Block{}, io.EOF
	}
	if err != nil {
		return Block{}, fmt.Errorf("%w: %v", ErrInvalidCAR, err)
	}
	n, c, err := cid.CidFromBytes(sec)
	if err != nil {
		return Block{}, fmt.Errorf("%w: section CID: %v", ErrInvalidCAR, err)
	}
	if err := checkCID(c); err != nil {
		return Block{}, fmt.Errorf("%w: %v", ErrInvalidCAR, err)
	}
	data := sec[n:]
	if len(data) > MaxBlockSize {
		return Block{}, fmt.Errorf("%w: block %s of %d bytes", ErrInvalidCAR, c, len(data))
	}
	sum, err := c.Prefix().Sum(data)
	if err != nil || sum != c {
		return Block{}, fmt.Errorf("%w: block %s does not match its CID", ErrInvalidCAR, c)
	}
	return Block{CID: c, Data: data}, nil
}

// frame reads one varint-prefixed frame of at most max bytes. io.EOF only
// when the stream ends cleanly before the frame.
func (cr *CARReader) frame(max int) ([]byte, error) {
	l, err := binary.ReadUvarint(cr.r)
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("truncated length")
		}
		return nil, fmt.Errorf("length: %v", err)
	}
	if l == 0 || l > uint64(max) {
		return nil, fmt.Errorf("frame of %d bytes (limit %d)", l, max)
	}
	p := make([]byte, l)
	if _, err := io.ReadFull(cr.r, p); err != nil {
		return nil, fmt.Errorf("truncated frame of %d bytes", l)
	}
	return p, nil
}

// checkCID accepts the CIDs of atproto repository blocks.
func checkCID(c cid.Cid) error {
	p := c.Prefix()
	if p.Version != 1 || (p.Codec != cid.DagCBOR && p.Codec != cid.Raw) || p.MhType != multihash.SHA2_256 || p.MhLength != 32 {
		return fmt.Errorf("unsupported CID %s", c)
	}
	return nil
}

// parseCARHeader decodes {roots: [cid...], version: 1}, refusing anything
// else (CAR v2's pragma included: it claims version 2).
func parseCARHeader(h []byte) ([]cid.Cid, error) {
	r := bytes.NewReader(h)
	cr := cbg.NewCborReader(r)
	maj, n, err := cr.ReadHeader()
	if err != nil {
		return nil, err
	}
	if maj != cbg.MajMap || n > 2 {
		return nil, fmt.Errorf("not a {roots, version} map")
	}
	var roots []cid.Cid
	version := uint64(0)
	for i := uint64(0); i < n; i++ {
		k, err := cbg.ReadStringWithMax(cr, 16)
		if err != nil {
			return nil, err
		}
		switch k {
		case "roots":
			maj, m, err := cr.ReadHeader()
			if err != nil {
				return nil, err
			}
			if maj != cbg.MajArray || m == 0 || m > 16 {
				return nil, fmt.Errorf("roots is not a short non-empty array")
			}
			for j := uint64(0); j < m; j++ {
				c, err := cbg.ReadCid(cr)
				if err != nil {
					return nil, fmt.Errorf("root: %v", err)
				}
				roots = append(roots, c)
			}
		case "version":
			maj, v, err := cr.ReadHeader()
			if err != nil {
				return nil, err
			}
			if maj != cbg.MajUnsignedInt {
				return nil, fmt.Errorf("version is not an integer")
			}
			version = v
		default:
			return nil, fmt.Errorf("unknown header field %q", k)
		}
	}
	if version != 1 {
		return nil, fmt.Errorf("CAR version %d, want 1", version)
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("no root")
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the header", r.Len())
	}
	return roots, nil
}
