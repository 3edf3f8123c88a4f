package plc_test

import (
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/did-method-plc/go-didplc/didplc"
)

// This file builds and signs operations for the tests: valid ones, and
// the ways an operation can be wrong.

type key struct {
	priv  atcrypto.PrivateKey
	did   string // did:key of the public key
	curve string
}

func newKey(t testing.TB, curve string) key {
	t.Helper()
	var priv atcrypto.PrivateKey
	var err error
	switch curve {
	case "k256":
		priv, err = atcrypto.GeneratePrivateKeyK256()
	case "p256":
		priv, err = atcrypto.GeneratePrivateKeyP256()
	default:
		t.Fatalf("unknown curve %q", curve)
	}
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return key{priv: priv, did: pub.DIDKey(), curve: curve}
}

func keyDIDs(keys ...key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.did
	}
	return out
}

// genesisOp is an unsigned genesis operation with the given rotation keys.
func genesisOp(rotation []string, signing key, handle string) *didplc.RegularOp {
	return &didplc.RegularOp{
		Type:                "plc_operation",
		RotationKeys:        rotation,
		VerificationMethods: map[string]string{"atproto": signing.did},
		AlsoKnownAs:         []string{"at://" + handle},
		Services: map[string]didplc.OpService{
			"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: "https://pds.example.test"},
		},
	}
}

// nextOp is an unsigned update of prev (a regular operation) that keeps
// its state, pointing at it.
func nextOp(prev didplc.Operation) *didplc.RegularOp {
	p := prev.(*didplc.RegularOp)
	cid := prev.CID().String()
	vm := map[string]string{}
	for k, v := range p.VerificationMethods {
		vm[k] = v
	}
	svc := map[string]didplc.OpService{}
	for k, v := range p.Services {
		svc[k] = v
	}
	return &didplc.RegularOp{
		Type:                "plc_operation",
		RotationKeys:        append([]string(nil), p.RotationKeys...),
		VerificationMethods: vm,
		AlsoKnownAs:         append([]string(nil), p.AlsoKnownAs...),
		Services:            svc,
		Prev:                &cid,
	}
}

func tombstoneOp(prev didplc.Operation) *didplc.TombstoneOp {
	return &didplc.TombstoneOp{Type: "plc_tombstone", Prev: prev.CID().String()}
}

func sign(t testing.TB, op didplc.Operation, k key) {
	t.Helper()
	if err := op.Sign(k.priv); err != nil {
		t.Fatal(err)
	}
}

func didOf(t testing.TB, op didplc.Operation) syntax.DID {
	t.Helper()
	s, err := op.DID()
	if err != nil {
		t.Fatal(err)
	}
	return syntax.DID(s)
}

// setSig replaces the signature of op with raw signature bytes in the
// given encoding.
func setSig(op didplc.Operation, sig string) {
	switch op := op.(type) {
	case *didplc.RegularOp:
		op.Sig = &sig
	case *didplc.TombstoneOp:
		op.Sig = &sig
	}
}

func rawSig(t testing.TB, op didplc.Operation, k key) []byte {
	t.Helper()
	sig, err := k.priv.HashAndSign(op.UnsignedCBORBytes())
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func curveOrder(curve string) *big.Int {
	if curve == "p256" {
		return elliptic.P256().Params().N
	}
	n, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	return n
}

// signHighS signs op with k, then replaces s by n-s: the same signature
// mathematically, in the malleable form the spec requires verifiers to
// refuse.
func signHighS(t testing.TB, op didplc.Operation, k key) {
	t.Helper()
	sig := rawSig(t, op, k)
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(curveOrder(k.curve), s)
	s.FillBytes(sig[32:])
	setSig(op, base64.RawURLEncoding.EncodeToString(sig))
}

// signDER signs op with k and encodes the signature as ASN.1 DER instead
// of the 64-byte compact form.
func signDER(t testing.TB, op didplc.Operation, k key) {
	t.Helper()
	sig := rawSig(t, op, k)
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
	if err != nil {
		t.Fatal(err)
	}
	setSig(op, base64.RawURLEncoding.EncodeToString(der))
}

// signPadded signs op with k and encodes the signature with "=" padding.
func signPadded(t testing.TB, op didplc.Operation, k key) {
	t.Helper()
	setSig(op, base64.URLEncoding.EncodeToString(rawSig(t, op, k)))
}

func opJSON(t testing.TB, op didplc.Operation) []byte {
	t.Helper()
	b, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeCID is a well-formed CID that names no operation.
func fakeCID(t testing.TB) string {
	t.Helper()
	op := &didplc.TombstoneOp{Type: "plc_tombstone", Prev: "nothing"}
	return op.CID().String()
}

// longerDID is the DID of a signed genesis op with one more hash character
// than the spec's 24: the reference accepts it, the spec does not.
func longerDID(op didplc.Operation) syntax.DID {
	sum := sha256.Sum256(op.SignedCBORBytes())
	id := strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))
	return syntax.DID("did:plc:" + id[:25])
}
