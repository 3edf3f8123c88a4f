package sequencer

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	comatproto "github.com/bluesky-social/indigo/api/atproto"

	"github.com/hearth-pds/hearth/store"
)

// Frame types (the header's "t") of com.atproto.sync.subscribeRepos: the
// kind of each stored event, and #info.
const (
	TypeCommit   = "#" + string(store.KindCommit)
	TypeSync     = "#" + string(store.KindSync)
	TypeIdentity = "#" + string(store.KindIdentity)
	TypeAccount  = "#" + string(store.KindAccount)
	TypeInfo     = "#info"
)

// Error and info names sent on the stream, as the official PDS names them.
const (
	ErrorFutureCursor    = "FutureCursor"
	ErrorConsumerTooSlow = "ConsumerTooSlow"
	ErrorInternal        = "InternalServerError"
	InfoOutdatedCursor   = "OutdatedCursor"
)

// MaxSeq is the largest sequence number the spec allows: seqs stay below
// 2^53 so that JavaScript consumers read them exactly.
const MaxSeq = 1<<53 - 1

// ErrBadSeq is returned by the Encode functions for a seq outside 1..MaxSeq.
var ErrBadSeq = errors.New("sequence number out of range")

// Frame headers, encoded once. DAG-CBOR orders map keys by length first,
// so "t" precedes "op".
var (
	headerCommit   = messageHeader(TypeCommit)
	headerSync     = messageHeader(TypeSync)
	headerIdentity = messageHeader(TypeIdentity)
	headerAccount  = messageHeader(TypeAccount)
	headerInfo     = messageHeader(TypeInfo)
	// headerError is {"op": -1}; an error header carries no "t".
	headerError = []byte{0xa1, 0x62, 'o', 'p', 0x20}
)

// messageHeader encodes {"t": t, "op": 1}.
func messageHeader(t string) []byte {
	if len(t) > 23 {
		panic("sequencer: frame type too long for a one-byte CBOR string header")
	}
	b := []byte{0xa2, 0x61, 't', 0x60 | byte(len(t))}
	b = append(b, t...)
	return append(b, 0x62, 'o', 'p', 0x01)
}

// EncodeCommit returns the whole #commit frame (header and body) with seq
// set in the body; c is not modified. The writer calls it inside the
// transaction that assigns seq, stores the bytes with the event and later
// hands the same bytes to Publish.
func EncodeCommit(seq int64, c *comatproto.SyncSubscribeRepos_Commit) ([]byte, error) {
	if c == nil {
		return nil, errors.New("encode commit: nil event")
	}
	if c.Repo == "" || c.Rev == "" || c.Time == "" {
		return nil, errors.New("encode commit: repo, rev and time are required")
	}
	body := *c
	body.Seq = seq
	return encode(seq, TypeCommit, headerCommit, &body)
}

// EncodeSync returns the whole #sync frame with seq set; s is not modified.
func EncodeSync(seq int64, s *comatproto.SyncSubscribeRepos_Sync) ([]byte, error) {
	if s == nil {
		return nil, errors.New("encode sync: nil event")
	}
	if s.Did == "" || s.Rev == "" || s.Time == "" {
		return nil, errors.New("encode sync: did, rev and time are required")
	}
	body := *s
	body.Seq = seq
	return encode(seq, TypeSync, headerSync, &body)
}

// EncodeIdentity returns the whole #identity frame with seq set; e is not
// modified.
func EncodeIdentity(seq int64, e *comatproto.SyncSubscribeRepos_Identity) ([]byte, error) {
	if e == nil {
		return nil, errors.New("encode identity: nil event")
	}
	if e.Did == "" || e.Time == "" {
		return nil, errors.New("encode identity: did and time are required")
	}
	body := *e
	body.Seq = seq
	return encode(seq, TypeIdentity, headerIdentity, &body)
}

// EncodeAccount returns the whole #account frame with seq set; e is not
// modified.
func EncodeAccount(seq int64, e *comatproto.SyncSubscribeRepos_Account) ([]byte, error) {
	if e == nil {
		return nil, errors.New("encode account: nil event")
	}
	if e.Did == "" || e.Time == "" {
		return nil, errors.New("encode account: did and time are required")
	}
	body := *e
	body.Seq = seq
	return encode(seq, TypeAccount, headerAccount, &body)
}

// EncodeInfo returns an #info frame. Info frames are not sequenced or
// stored: they tell one subscriber something about its own stream.
func EncodeInfo(name, message string) []byte {
	info := comatproto.SyncSubscribeRepos_Info{Name: name}
	if message != "" {
		info.Message = &message
	}
	var buf bytes.Buffer
	buf.Write(headerInfo)
	// Writing to a bytes.Buffer cannot fail and the struct has no field
	// cbor-gen refuses.
	_ = info.MarshalCBOR(&buf)
	return buf.Bytes()
}

// EncodeError returns an error frame, {op: -1} then {error, message}; the
// message is left out when empty. The stream is closed after it.
func EncodeError(name, message string) []byte {
	b := append([]byte(nil), headerError...)
	n := byte(1)
	if message != "" {
		n = 2
	}
	b = append(b, 0xa0|n)
	b = appendText(b, "error")
	b = appendText(b, name)
	if message != "" {
		b = appendText(b, "message")
		b = appendText(b, message)
	}
	return b
}

// appendText appends a CBOR text string.
func appendText(b []byte, s string) []byte {
	b = appendHead(b, 3, uint64(len(s)))
	return append(b, s...)
}

// appendHead appends a CBOR major type and argument, in the shortest form
// as DAG-CBOR requires.
func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// encode writes header then body. The body types are indigo's cbor-gen
// types, which write DAG-CBOR (canonical key order, shortest integers).
func encode(seq int64, typ string, header []byte, body interface{ MarshalCBOR(io.Writer) error }) ([]byte, error) {
	if seq < 1 || seq > MaxSeq {
		return nil, fmt.Errorf("encode %s: %w: %d", typ, ErrBadSeq, seq)
	}
	var buf bytes.Buffer
	buf.Write(header)
	if err := body.MarshalCBOR(&buf); err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return buf.Bytes(), nil
}
