package plc

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/did-method-plc/go-didplc/didplc"
)

// Operation types as they appear in the "type" field.
const (
	typeOperation = "plc_operation"
	typeTombstone = "plc_tombstone"
	typeLegacy    = "create"
)

// Limits on a submitted operation, the ones the reference server enforces.
const (
	// maxRotationKeys is the most rotation keys an operation may list.
	maxRotationKeys = 5
	// maxBodyBytes is the largest request body read, as the reference's
	// JSON body parser allows ("100kb"); larger bodies get 413.
	maxBodyBytes = 100 * 1024
)

// DecodeOperation parses one submitted operation from its JSON form.
//
// It is strict where the library's JSON decoding is lenient, because the
// directory hashes and verifies what it decoded, not the bytes it was sent:
// a field the Go types would silently drop, or a null the Go types would
// turn into an empty value, would make the operation hash differently from
// what its author signed. So every field must be present with its JSON
// type, and unknown fields are refused (as the public directory does since
// its operation schema became strict). Legacy "create" operations are
// refused: directories only keep the old ones, they accept no new ones.
//
// Errors wrap ErrInvalidOperation.
func DecodeOperation(body []byte) (didplc.Operation, error) {
	fields, err := decodeObject(body, "operation")
	if err != nil {
		return nil, err
	}
	typ, err := requireString(fields, "type")
	if err != nil {
		return nil, err
	}
	switch typ {
	case typeOperation:
		return decodeRegular(fields)
	case typeTombstone:
		return decodeTombstone(fields)
	case typeLegacy:
		return nil, fmt.Errorf("%w: legacy %q operations are no longer accepted", ErrInvalidOperation, typeLegacy)
	default:
		return nil, fmt.Errorf("%w: unknown operation type %q", ErrInvalidOperation, typ)
	}
}

func decodeRegular(fields map[string]json.RawMessage) (*didplc.RegularOp, error) {
	if err := onlyFields(fields, "type", "rotationKeys", "verificationMethods", "alsoKnownAs", "services", "prev", "sig"); err != nil {
		return nil, err
	}
	op := &didplc.RegularOp{Type: typeOperation}
	var err error
	if op.RotationKeys, err = requireStrings(fields, "rotationKeys"); err != nil {
		return nil, err
	}
	if op.VerificationMethods, err = requireStringMap(fields, "verificationMethods"); err != nil {
		return nil, err
	}
	if op.AlsoKnownAs, err = requireStrings(fields, "alsoKnownAs"); err != nil {
		return nil, err
	}
	if op.Services, err = requireServices(fields, "services"); err != nil {
		return nil, err
	}
	if op.Prev, err = requireNullableString(fields, "prev"); err != nil {
		return nil, err
	}
	sig, err := requireString(fields, "sig")
	if err != nil {
		return nil, err
	}
	op.Sig = &sig
	return op, nil
}

func decodeTombstone(fields map[string]json.RawMessage) (*didplc.TombstoneOp, error) {
	if err := onlyFields(fields, "type", "prev", "sig"); err != nil {
		return nil, err
	}
	prev, err := requireString(fields, "prev")
	if err != nil {
		return nil, err
	}
	sig, err := requireString(fields, "sig")
	if err != nil {
		return nil, err
	}
	return &didplc.TombstoneOp{Type: typeTombstone, Prev: prev, Sig: &sig}, nil
}

// checkSubmitted applies the checks the reference makes on an operation's
// own content before looking at the log: at least one and at most five
// rotation keys, and every key (rotation and verification method) a
// did:key of a supported curve. The library checks none of this: it only
// verifies signatures, and would accept an operation that locks its DID
// (no rotation keys) or publishes a key nobody can use.
func checkSubmitted(op didplc.Operation) error {
	switch op := op.(type) {
	case *didplc.TombstoneOp:
		return nil
	case *didplc.RegularOp:
		if n := len(op.RotationKeys); n < 1 || n > maxRotationKeys {
			return fmt.Errorf("%w: an operation needs 1 to %d rotation keys, this one has %d", ErrInvalidOperation, maxRotationKeys, n)
		}
		for _, k := range op.RotationKeys {
			if _, err := atcrypto.ParsePublicDIDKey(k); err != nil {
				return fmt.Errorf("%w: unsupported rotation key %q: %v", ErrInvalidOperation, k, err)
			}
		}
		for id, k := range op.VerificationMethods {
			if _, err := atcrypto.ParsePublicDIDKey(k); err != nil {
				return fmt.Errorf("%w: unsupported verification method %q key %q: %v", ErrInvalidOperation, id, k, err)
			}
		}
		return nil
	case *didplc.LegacyOp:
		return fmt.Errorf("%w: legacy %q operations are no longer accepted", ErrInvalidOperation, typeLegacy)
	default:
		return fmt.Errorf("%w: unsupported operation type %T", ErrInvalidOperation, op)
	}
}

// The helpers below check JSON types by the first byte of each raw value:
// encoding/json would decode null into a nil slice or map and a null array
// element into "", which is exactly the leniency DecodeOperation refuses.

func decodeObject(raw []byte, what string) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("%w: %s must be a JSON object", ErrInvalidOperation, what)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidOperation, what, err)
	}
	return fields, nil
}

func onlyFields(fields map[string]json.RawMessage, allowed ...string) error {
	for name := range fields {
		known := false
		for _, a := range allowed {
			if name == a {
				known = true
				break
			}
		}
		if !known {
			return fmt.Errorf("%w: unknown field %q", ErrInvalidOperation, name)
		}
	}
	return nil
}

func field(fields map[string]json.RawMessage, name string) (json.RawMessage, error) {
	raw, ok := fields[name]
	if !ok {
		return nil, fmt.Errorf("%w: missing field %q", ErrInvalidOperation, name)
	}
	return bytes.TrimSpace(raw), nil
}

func isKind(raw json.RawMessage, first byte) bool {
	return len(raw) > 0 && raw[0] == first
}

func stringValue(raw json.RawMessage, what string) (string, error) {
	var s string
	if !isKind(raw, '"') {
		return "", fmt.Errorf("%w: %s must be a string", ErrInvalidOperation, what)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalidOperation, what, err)
	}
	return s, nil
}

func requireString(fields map[string]json.RawMessage, name string) (string, error) {
	raw, err := field(fields, name)
	if err != nil {
		return "", err
	}
	return stringValue(raw, name)
}

func requireNullableString(fields map[string]json.RawMessage, name string) (*string, error) {
	raw, err := field(fields, name)
	if err != nil {
		return nil, err
	}
	if string(raw) == "null" {
		return nil, nil
	}
	s, err := stringValue(raw, name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s must be a string or null", ErrInvalidOperation, name)
	}
	return &s, nil
}

func requireStrings(fields map[string]json.RawMessage, name string) ([]string, error) {
	raw, err := field(fields, name)
	if err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if !isKind(raw, '[') {
		return nil, fmt.Errorf("%w: %s must be an array of strings", ErrInvalidOperation, name)
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidOperation, name, err)
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		s, err := stringValue(bytes.TrimSpace(item), fmt.Sprintf("%s[%d]", name, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func requireStringMap(fields map[string]json.RawMessage, name string) (map[string]string, error) {
	raw, err := field(fields, name)
	if err != nil {
		return nil, err
	}
	obj, err := decodeObject(raw, name)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		s, err := stringValue(bytes.TrimSpace(v), fmt.Sprintf("%s[%q]", name, k))
		if err != nil {
			return nil, err
		}
		out[k] = s
	}
	return out, nil
}

func requireServices(fields map[string]json.RawMessage, name string) (map[string]didplc.OpService, error) {
	raw, err := field(fields, name)
	if err != nil {
		return nil, err
	}
	obj, err := decodeObject(raw, name)
	if err != nil {
		return nil, err
	}
	out := make(map[string]didplc.OpService, len(obj))
	for id, v := range obj {
		what := fmt.Sprintf("%s[%q]", name, id)
		svc, err := decodeObject(v, what)
		if err != nil {
			return nil, err
		}
		if err := onlyFields(svc, "type", "endpoint"); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		typ, err := requireString(svc, "type")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		endpoint, err := requireString(svc, "endpoint")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out[id] = didplc.OpService{Type: typ, Endpoint: endpoint}
	}
	return out, nil
}
