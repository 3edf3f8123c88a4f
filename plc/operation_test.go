package plc_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/did-method-plc/go-didplc/didplc"

	"github.com/hearth-pds/hearth/plc"
)

func TestDecodeOperation(t *testing.T) {
	k := newKey(t, "k256")
	g := genesisOp(keyDIDs(k), k, "alice.test")
	sign(t, g, k)
	valid := string(opJSON(t, g))
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"operation", valid, true},
		{"tombstone", `{"type":"plc_tombstone","prev":"bafyrei","sig":"x"}`, true},
		{"operation with prev", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":"bafyrei","sig":"x"}`, true},
		{"whitespace", " \n" + valid + "\n ", true},
		{"not an object", `[]`, false},
		{"null", `null`, false},
		{"no type", `{"prev":null,"sig":"x"}`, false},
		{"type not a string", `{"type":1}`, false},
		{"legacy create", `{"type":"create","signingKey":"a","recoveryKey":"b","handle":"c","service":"d","prev":null,"sig":"e"}`, false},
		{"missing prev", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{},"sig":"x"}`, false},
		{"missing sig", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null}`, false},
		{"null rotationKeys", `{"type":"plc_operation","rotationKeys":null,"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null,"sig":"x"}`, false},
		{"null in alsoKnownAs", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[null],"services":{},"prev":null,"sig":"x"}`, false},
		{"number in rotationKeys", `{"type":"plc_operation","rotationKeys":[1],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null,"sig":"x"}`, false},
		{"verification method not a string", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{"a":{}},"alsoKnownAs":[],"services":{},"prev":null,"sig":"x"}`, false},
		{"service without endpoint", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{"a":{"type":"t"}},"prev":null,"sig":"x"}`, false},
		{"service with an extra field", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{"a":{"type":"t","endpoint":"e","x":1}},"prev":null,"sig":"x"}`, false},
		{"prev a number", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":1,"sig":"x"}`, false},
		{"tombstone with null prev", `{"type":"plc_tombstone","prev":null,"sig":"x"}`, false},
		{"tombstone with a state field", `{"type":"plc_tombstone","prev":"p","sig":"x","alsoKnownAs":[]}`, false},
		{"sig null", `{"type":"plc_tombstone","prev":"p","sig":null}`, false},
		{"trailing garbage", valid + "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, err := plc.DecodeOperation([]byte(tt.body))
			if tt.ok && err != nil {
				t.Fatalf("DecodeOperation: %v", err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatalf("DecodeOperation accepted %s", tt.body)
				}
				if !errors.Is(err, plc.ErrInvalidOperation) {
					t.Fatalf("error %v does not wrap ErrInvalidOperation", err)
				}
			}
			if tt.ok && tt.name == "operation" && op.CID() != g.CID() {
				t.Errorf("decoded CID %s, signed op's %s", op.CID(), g.CID())
			}
		})
	}
}

// FuzzDecodeOperation: no input panics, and whatever decodes re-encodes
// to JSON that decodes to the same operation (same CID), so what the
// directory keeps and serves is what it verified.
func FuzzDecodeOperation(f *testing.F) {
	k := newKey(f, "k256")
	g := genesisOp(keyDIDs(k), k, "alice.test")
	sign(f, g, k)
	f.Add(opJSON(f, g))
	ts := tombstoneOp(g)
	sign(f, ts, k)
	f.Add(opJSON(f, ts))
	f.Add([]byte(`{"type":"create","signingKey":"a","recoveryKey":"b","handle":"c","service":"d","prev":null,"sig":"e"}`))
	f.Add([]byte(`{"type":"plc_operation","rotationKeys":[""],"verificationMethods":{"":""},"alsoKnownAs":["\u0000"],"services":{"a":{"type":"","endpoint":""}},"prev":null,"sig":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		op, err := plc.DecodeOperation(body)
		if err != nil {
			if !errors.Is(err, plc.ErrInvalidOperation) {
				t.Fatalf("error %v does not wrap ErrInvalidOperation", err)
			}
			return
		}
		again, err := json.Marshal(op)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		op2, err := plc.DecodeOperation(again)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", again, err)
		}
		if op.CID() != op2.CID() {
			t.Fatalf("CID changed over a JSON round trip: %s then %s", op.CID(), op2.CID())
		}
		var _ didplc.Operation = op2
	})
}
