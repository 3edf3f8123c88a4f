package plc

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/did-method-plc/go-didplc/didplc"
)

// Data is a DID's current state as GET /:did/data serves it: the fields of
// its current operation, with the DID added.
type Data struct {
	DID                 string                      `json:"did"`
	VerificationMethods map[string]string           `json:"verificationMethods"`
	RotationKeys        []string                    `json:"rotationKeys"`
	AlsoKnownAs         []string                    `json:"alsoKnownAs"`
	Services            map[string]didplc.OpService `json:"services"`
}

// Document is a DID document as GET /:did serves it.
type Document struct {
	Context            []string                       `json:"@context"`
	ID                 string                         `json:"id"`
	AlsoKnownAs        []string                       `json:"alsoKnownAs"`
	VerificationMethod []didplc.DocVerificationMethod `json:"verificationMethod"`
	Service            []didplc.DocService            `json:"service"`
}

// JSON-LD contexts of a document: the base ones, then one per key type.
const (
	contextDID       = "https://www.w3.org/ns/did/v1"
	contextMultikey  = "https://w3id.org/security/multikey/v1"
	contextK256Suite = "https://w3id.org/security/suites/secp256k1-2019/v1"
	contextP256Suite = "https://w3id.org/security/suites/ecdsa-2019/v1"
)

// dataOf renders the state an operation sets. A tombstone sets none: the
// DID is deactivated.
func dataOf(did string, op didplc.Operation) (Data, error) {
	var r didplc.RegularOp
	switch op := op.(type) {
	case *didplc.RegularOp:
		r = *op
	case *didplc.LegacyOp:
		r = op.RegularOp()
	case *didplc.TombstoneOp:
		return Data{}, fmt.Errorf("%w: %s", ErrDeactivated, did)
	default:
		return Data{}, fmt.Errorf("render %s: unsupported operation type %T", did, op)
	}
	return Data{
		DID:                 did,
		VerificationMethods: nonNilMap(r.VerificationMethods),
		RotationKeys:        nonNil(r.RotationKeys),
		AlsoKnownAs:         nonNil(r.AlsoKnownAs),
		Services:            nonNilMap(r.Services),
	}, nil
}

// documentOf renders the DID document in the form the public directory
// serves today: verification methods of type Multikey whose
// publicKeyMultibase is the did:key without its prefix. (The reference
// server 0.0.1 still serves the older EcdsaSecp256k1VerificationKey2019
// form with uncompressed keys; resolvers such as indigo's read both.)
// Verification methods and services are sorted by id, so the same state
// always renders the same bytes.
func documentOf(data Data) (Document, error) {
	doc := Document{
		Context:            []string{contextDID, contextMultikey},
		ID:                 data.DID,
		AlsoKnownAs:        nonNil(data.AlsoKnownAs),
		VerificationMethod: []didplc.DocVerificationMethod{},
		Service:            []didplc.DocService{},
	}
	for _, id := range sortedKeys(data.VerificationMethods) {
		key := data.VerificationMethods[id]
		pub, err := atcrypto.ParsePublicDIDKey(key)
		if err != nil {
			return Document{}, fmt.Errorf("render %s: verification method %q: %w", data.DID, id, err)
		}
		var suite string
		switch pub.(type) {
		case *atcrypto.PublicKeyK256:
			suite = contextK256Suite
		case *atcrypto.PublicKeyP256:
			suite = contextP256Suite
		default:
			return Document{}, fmt.Errorf("render %s: verification method %q: unsupported key type %T", data.DID, id, pub)
		}
		if !slices.Contains(doc.Context, suite) {
			doc.Context = append(doc.Context, suite)
		}
		doc.VerificationMethod = append(doc.VerificationMethod, didplc.DocVerificationMethod{
			ID:                 data.DID + "#" + id,
			Type:               "Multikey",
			Controller:         data.DID,
			PublicKeyMultibase: strings.TrimPrefix(key, "did:key:"),
		})
	}
	for _, id := range sortedKeys(data.Services) {
		svc := data.Services[id]
		doc.Service = append(doc.Service, didplc.DocService{
			ID:              "#" + id,
			Type:            svc.Type,
			ServiceEndpoint: svc.Endpoint,
		})
	}
	return doc, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// nonNil and nonNilMap keep empty values rendering as [] and {}, as the
// reference renders them, never as null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}
