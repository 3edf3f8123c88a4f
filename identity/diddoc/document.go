// Package diddoc resolves DID documents (did:plc through the PLC directory,
// did:web over HTTPS) and keeps them in a cache with the official PDS's
// stale and maximum ages, for everything that needs another party's
// service endpoint or signing key: the proxy (atproto-proxy headers) and
// the verification of inbound service-auth tokens.
//
// # Tricky bits
//
//   - A stale entry is still served; it is refreshed in the background. An
//     expired one is fetched again before answering, as the official
//     DidSqliteCache does.
//   - A DID the directory positively does not know (404) is ErrNotFound and
//     leaves the cache; any other failure (timeout, 5xx, bad document) is a
//     plain error, which callers report as an internal error like the
//     official PDS.
//   - did:web documents are fetched through the outbound guard unless
//     private addresses are allowed (dev mode); like the official resolver,
//     did:web:localhost (any port) is fetched over http.
package diddoc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Errors of resolution and lookup.
var (
	// ErrNotFound: the DID's directory has no document for it.
	ErrNotFound = errors.New("did document not found")
	// ErrMalformed: the document is not a DID document for the DID asked.
	ErrMalformed = errors.New("poorly formatted did document")
	// ErrUnsupportedMethod: neither did:plc nor did:web.
	ErrUnsupportedMethod = errors.New("unsupported did method")
	// ErrNoSigningKey: the document names no usable #atproto key.
	ErrNoSigningKey = errors.New("did document has no atproto signing key")
)

// Document is a parsed DID document. Raw keeps the bytes as published.
type Document struct {
	ID                 string               `json:"id"`
	AlsoKnownAs        []string             `json:"alsoKnownAs,omitempty"`
	VerificationMethod []VerificationMethod `json:"verificationMethod,omitempty"`
	Service            []Service            `json:"service,omitempty"`

	Raw json.RawMessage `json:"-"`
}

// VerificationMethod is an entry of verificationMethod.
type VerificationMethod struct {
	ID                 string `json:"id"`
	Type               string `json:"type"`
	Controller         string `json:"controller"`
	PublicKeyMultibase string `json:"publicKeyMultibase,omitempty"`
}

// Service is an entry of service. Endpoint may be a JSON object in
// general DID documents; only string endpoints are usable here.
type Service struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Endpoint json.RawMessage `json:"serviceEndpoint"`
}

// Parse decodes raw as the DID document of did, checking the shape the
// official resolver checks: an object whose id is did, with well-formed
// verification methods and services.
func Parse(did string, raw []byte) (*Document, error) {
	var doc Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, did, err)
	}
	if doc.ID != did {
		return nil, fmt.Errorf("%w: %s: id is %q", ErrMalformed, did, doc.ID)
	}
	for _, s := range doc.Service {
		if s.ID == "" || s.Type == "" || len(s.Endpoint) == 0 {
			return nil, fmt.Errorf("%w: %s: service entry without id, type or endpoint", ErrMalformed, did)
		}
	}
	for _, vm := range doc.VerificationMethod {
		if vm.ID == "" || vm.Type == "" || vm.Controller == "" {
			return nil, fmt.Errorf("%w: %s: verification method without id, type or controller", ErrMalformed, did)
		}
	}
	doc.Raw = append(json.RawMessage(nil), raw...)
	return &doc, nil
}

// ServiceEndpoint returns the URL of the service whose id is fragment
// ("#bsky_appview"), written either as the fragment alone or as the
// document's DID followed by it. Like the official getServiceEndpoint it
// returns "" unless the endpoint is a string URL with an http or https
// scheme.
func (d *Document) ServiceEndpoint(fragment string) string {
	for _, s := range d.Service {
		if s.ID != fragment && s.ID != d.ID+fragment {
			continue
		}
		var endpoint string
		if err := json.Unmarshal(s.Endpoint, &endpoint); err != nil {
			return ""
		}
		if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
			return ""
		}
		if _, err := url.Parse(endpoint); err != nil {
			return ""
		}
		return endpoint
	}
	return ""
}

// SigningKey returns the atproto signing key (#atproto), in any of the
// encodings DID documents use: Multikey, or the older
// EcdsaSecp256k1VerificationKey2019 / EcdsaSecp256r1VerificationKey2019
// that the reference PLC directory still serves.
func (d *Document) SigningKey() (atcrypto.PublicKey, error) {
	for _, vm := range d.VerificationMethod {
		if vm.ID != "#atproto" && vm.ID != d.ID+"#atproto" {
			continue
		}
		// indigo's parser knows every encoding; feed it the one key.
		ident := identity.Identity{
			DID:  syntax.DID(d.ID),
			Keys: map[string]identity.VerificationMethod{"atproto": {Type: vm.Type, PublicKeyMultibase: vm.PublicKeyMultibase}},
		}
		k, err := ident.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNoSigningKey, d.ID, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrNoSigningKey, d.ID)
}
