package plc_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/did-method-plc/go-didplc/didplc"

	"github.com/hearth-pds/hearth/plc"
	"github.com/hearth-pds/hearth/testenv"
)

// The differential tests run the reference PLC directory (npm
// @did-plc/server 0.0.1, in memory) next to ours, send both the same
// requests, and require the same outcome: the same status class for every
// submission and read, and the same data, logs and documents.
//
// The reference in memory differs from the reference on PostgreSQL (what
// the public directory runs) in two corners, both around operations that
// were already nullified; ours follows PostgreSQL. The generated sequences
// avoid those corners, and TestReferenceDivergences pins them down along
// with the places where the reference departs from the spec.

// peers sends each request to both directories.
type peers struct {
	t          *testing.T
	ref, ours  string
	httpClient *http.Client
}

type response struct {
	status int
	body   []byte
}

func (r response) class() int { return r.status / 100 }

func startPeers(t *testing.T) *peers {
	t.Helper()
	ref := testenv.StartReferencePLC(t)
	dir, err := plc.New(plc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dir)
	t.Cleanup(func() {
		srv.Close()
		dir.Close()
	})
	return &peers{t: t, ref: ref, ours: srv.URL, httpClient: &http.Client{}}
}

func (p *peers) do(base, method, path, contentType string, body []byte) response {
	p.t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := p.httpClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: b}
}

// submit posts a body to both and returns both answers.
func (p *peers) submit(did string, contentType string, body []byte) (ref, ours response) {
	p.t.Helper()
	return p.do(p.ref, http.MethodPost, "/"+did, contentType, body), p.do(p.ours, http.MethodPost, "/"+did, contentType, body)
}

// expect is the outcome a scripted step must have on both sides.
type expect int

const (
	accepted expect = 2
	refused  expect = 4
)

// step submits body to both, requires the same status class on both (and
// the expected one), then compares everything both serve about did.
func (p *peers) step(name, did string, body []byte, want expect) {
	p.t.Helper()
	p.stepWithType(name, did, "application/json", body, want)
}

func (p *peers) stepWithType(name, did, contentType string, body []byte, want expect) {
	p.t.Helper()
	ref, ours := p.submit(did, contentType, body)
	if ref.class() != ours.class() {
		p.t.Fatalf("%s: reference answered %d %s, ours %d %s", name, ref.status, ref.body, ours.status, ours.body)
	}
	if ref.class() != int(want) {
		p.t.Fatalf("%s: both answered %d (reference: %s; ours: %s), the scenario expects %dxx", name, ref.status, ref.body, ours.body, want)
	}
	p.compareDID(name, did)
}

// compareDID reads every view of did from both and compares them.
func (p *peers) compareDID(name, did string) {
	p.t.Helper()
	for _, suffix := range []string{"", "/data", "/log", "/log/audit", "/log/last"} {
		ref := p.do(p.ref, http.MethodGet, "/"+did+suffix, "", nil)
		ours := p.do(p.ours, http.MethodGet, "/"+did+suffix, "", nil)
		if ref.class() != ours.class() {
			p.t.Fatalf("%s: GET /%s%s: reference %d %s, ours %d %s", name, did, suffix, ref.status, ref.body, ours.status, ours.body)
		}
		if ref.class() != 2 {
			continue
		}
		var err error
		switch suffix {
		case "":
			err = sameDocument(ref.body, ours.body)
		case "/log/audit":
			err = sameAuditLog(ref.body, ours.body)
		default:
			err = sameJSON(ref.body, ours.body)
		}
		if err != nil {
			p.t.Fatalf("%s: GET /%s%s differs: %v\nreference: %s\nours:      %s", name, did, suffix, err, ref.body, ours.body)
		}
	}
}

func decodeAny(b []byte) (any, error) {
	var v any
	err := json.Unmarshal(b, &v)
	return v, err
}

func sameJSON(ref, ours []byte) error {
	a, err := decodeAny(ref)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	b, err := decodeAny(ours)
	if err != nil {
		return fmt.Errorf("ours: %w", err)
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("JSON values differ")
	}
	return nil
}

// sameAuditLog compares audit logs entry by entry, except createdAt (each
// directory stamps its own clock), which must only be a well-formed
// timestamp.
func sameAuditLog(ref, ours []byte) error {
	var a, b []map[string]any
	if err := json.Unmarshal(ref, &a); err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	if err := json.Unmarshal(ours, &b); err != nil {
		return fmt.Errorf("ours: %w", err)
	}
	if len(a) != len(b) {
		return fmt.Errorf("%d entries, ours %d", len(a), len(b))
	}
	for i := range a {
		for _, e := range []map[string]any{a[i], b[i]} {
			ts, _ := e["createdAt"].(string)
			if _, err := syntax.ParseDatetime(ts); err != nil {
				return fmt.Errorf("entry %d createdAt %q: %w", i, ts, err)
			}
			delete(e, "createdAt")
		}
		if !reflect.DeepEqual(a[i], b[i]) {
			return fmt.Errorf("entry %d differs", i)
		}
	}
	return nil
}

// sameDocument compares DID documents as a resolver reads them (indigo's
// identity package): the reference writes keys in the older
// EcdsaSecp256k1VerificationKey2019 form, ours in the Multikey form the
// public directory uses today, so the bytes differ but the keys may not.
func sameDocument(ref, ours []byte) error {
	parse := func(b []byte) (identity.Identity, error) {
		var doc identity.DIDDocument
		if err := json.Unmarshal(b, &doc); err != nil {
			return identity.Identity{}, err
		}
		return identity.ParseIdentity(&doc), nil
	}
	a, err := parse(ref)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	b, err := parse(ours)
	if err != nil {
		return fmt.Errorf("ours: %w", err)
	}
	if a.DID != b.DID {
		return fmt.Errorf("id %s, ours %s", a.DID, b.DID)
	}
	if !slices.Equal(a.AlsoKnownAs, b.AlsoKnownAs) {
		return fmt.Errorf("alsoKnownAs %v, ours %v", a.AlsoKnownAs, b.AlsoKnownAs)
	}
	if !reflect.DeepEqual(a.Services, b.Services) {
		return fmt.Errorf("services %v, ours %v", a.Services, b.Services)
	}
	if len(a.Keys) != len(b.Keys) {
		return fmt.Errorf("%d keys, ours %d", len(a.Keys), len(b.Keys))
	}
	for id := range a.Keys {
		ka, err := a.GetPublicKey(id)
		if err != nil {
			return fmt.Errorf("reference key %q: %w", id, err)
		}
		kb, err := b.GetPublicKey(id)
		if err != nil {
			return fmt.Errorf("our key %q: %w", id, err)
		}
		if ka.DIDKey() != kb.DIDKey() {
			return fmt.Errorf("key %q: %s, ours %s", id, ka.DIDKey(), kb.DIDKey())
		}
	}
	return nil
}

func TestDifferentialScripted(t *testing.T) {
	p := startPeers(t)
	high, mid, low := newKey(t, "k256"), newKey(t, "p256"), newKey(t, "k256")
	stranger, signing := newKey(t, "k256"), newKey(t, "p256")

	// Genesis, and the ways a genesis is refused.
	g := genesisOp(keyDIDs(high, mid, low), signing, "alice.test")
	sign(t, g, low)
	did := string(didOf(t, g))

	bad := genesisOp(keyDIDs(high), signing, "alice.test")
	sign(t, bad, stranger)
	p.step("genesis signed by a stranger", string(didOf(t, bad)), opJSON(t, bad), refused)

	tampered := genesisOp(keyDIDs(high), signing, "alice.test")
	sign(t, tampered, high)
	tamperedDID := string(didOf(t, tampered))
	tampered.AlsoKnownAs = []string{"at://mallory.test"}
	p.step("genesis changed after signing", tamperedDID, opJSON(t, tampered), refused)

	p.step("genesis under another DID", tamperedDID, opJSON(t, g), refused)
	p.step("genesis under a DID too short", "did:plc:abc", opJSON(t, g), refused)

	noKeys := genesisOp([]string{}, signing, "alice.test")
	sign(t, noKeys, high)
	p.step("genesis without rotation keys", string(didOf(t, noKeys)), opJSON(t, noKeys), refused)

	sixKeys := genesisOp(keyDIDs(high, mid, low, stranger, signing, newKey(t, "k256")), signing, "alice.test")
	sign(t, sixKeys, high)
	p.step("genesis with six rotation keys", string(didOf(t, sixKeys)), opJSON(t, sixKeys), refused)

	badKey := genesisOp([]string{high.did, "did:key:zQ3shNotAKey"}, signing, "alice.test")
	sign(t, badKey, high)
	p.step("genesis with an unparseable rotation key", string(didOf(t, badKey)), opJSON(t, badKey), refused)

	ed := genesisOp(keyDIDs(high), signing, "alice.test")
	ed.VerificationMethods["atproto"] = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
	sign(t, ed, high)
	p.step("genesis with an ed25519 verification method", string(didOf(t, ed)), opJSON(t, ed), refused)

	k256HighS := genesisOp(keyDIDs(high), signing, "alice.test")
	signHighS(t, k256HighS, high)
	p.step("genesis with a high-S K-256 signature", string(didOf(t, k256HighS)), opJSON(t, k256HighS), refused)

	legacy := &didplc.LegacyOp{Type: "create", SigningKey: signing.did, RecoveryKey: high.did, Handle: "alice.test", Service: "https://pds.example.test"}
	sign(t, legacy, high)
	p.step("legacy create operation", string(didOf(t, legacy)), opJSON(t, legacy), refused)

	// didplc.NewAtproto (v0.2.2) leaves "type" empty: both refuse its
	// operations, so Hearth must not build genesis operations with it.
	fromLib, err := didplc.NewAtproto(low.priv, "lib.test", "https://pds.example.test", keyDIDs(high, low))
	if err != nil {
		t.Fatal(err)
	}
	p.step("didplc.NewAtproto operation", string(didOf(t, &fromLib)), opJSON(t, &fromLib), refused)

	dupKeys := genesisOp(keyDIDs(high, high, low), signing, "dup.test")
	sign(t, dupKeys, low)
	p.step("genesis with a repeated rotation key", string(didOf(t, dupKeys)), opJSON(t, dupKeys), accepted)

	empty := genesisOp(keyDIDs(mid), signing, "empty.test")
	empty.VerificationMethods = map[string]string{}
	empty.AlsoKnownAs = []string{}
	empty.Services = map[string]didplc.OpService{}
	sign(t, empty, mid)
	p.step("genesis with empty state", string(didOf(t, empty)), opJSON(t, empty), accepted)

	// Malformed bodies.
	p.step("JSON array", did, []byte(`[]`), refused)
	p.step("empty object", did, []byte(`{}`), refused)
	p.step("unknown type", did, []byte(`{"type":"plc_whatever","prev":null,"sig":"x"}`), refused)
	withoutSig := genesisOp(keyDIDs(high), signing, "alice.test")
	p.step("unsigned operation", string(didOf(t, g)), opJSON(t, withoutSig), refused)
	nullAKA := strings.Replace(string(opJSON(t, g)), `"alsoKnownAs":["at://alice.test"]`, `"alsoKnownAs":null`, 1)
	p.step("alsoKnownAs null", did, []byte(nullAKA), refused)
	p.stepWithType("text/plain body", did, "text/plain", opJSON(t, g), refused)

	// The identity's life: create, update, rotate, recover, tombstone.
	p.step("genesis", did, opJSON(t, g), accepted)
	p.step("genesis again", did, opJSON(t, g), refused)

	u1 := nextOp(g)
	u1.AlsoKnownAs = []string{"at://alice2.test"}
	sign(t, u1, low)
	p.step("update signed by the lowest key", did, opJSON(t, u1), accepted)
	p.step("the same update again", did, opJSON(t, u1), refused)

	stale := nextOp(g)
	stale.AlsoKnownAs = []string{"at://stale.test"}
	sign(t, stale, low)
	p.step("fork by the key that signed the op it displaces", did, opJSON(t, stale), refused)

	byStranger := nextOp(u1)
	sign(t, byStranger, stranger)
	p.step("update signed by a stranger", did, opJSON(t, byStranger), refused)

	bySigning := nextOp(u1)
	sign(t, bySigning, signing)
	p.step("update signed by the signing key", did, opJSON(t, bySigning), refused)

	noPrev := nextOp(u1)
	noPrev.Prev = nil
	sign(t, noPrev, high)
	p.step("update with a null prev", did, opJSON(t, noPrev), refused)

	unknownPrev := nextOp(u1)
	cid := fakeCID(t)
	unknownPrev.Prev = &cid
	sign(t, unknownPrev, high)
	p.step("update whose prev is in no log", did, opJSON(t, unknownPrev), refused)

	otherPrev := nextOp(dupKeys)
	sign(t, otherPrev, high)
	p.step("update whose prev is another DID's op", did, opJSON(t, otherPrev), refused)

	rotate := nextOp(u1)
	rotate.RotationKeys = keyDIDs(high, mid, stranger)
	rotate.VerificationMethods["atproto"] = low.did
	rotate.Services["atproto_pds"] = didplc.OpService{Type: "AtprotoPersonalDataServer", Endpoint: "https://pds2.example.test"}
	rotate.Services["other"] = didplc.OpService{Type: "Other", Endpoint: "https://other.example.test"}
	sign(t, rotate, mid)
	p.step("rotate keys and services", did, opJSON(t, rotate), accepted)

	byOldKey := nextOp(rotate)
	sign(t, byOldKey, low)
	p.step("update by a key rotated out", did, opJSON(t, byOldKey), refused)

	u3 := nextOp(rotate)
	u3.AlsoKnownAs = []string{"at://mallory.test"}
	sign(t, u3, stranger)
	p.step("update by the newly added lowest key", did, opJSON(t, u3), accepted)

	u4 := nextOp(u3)
	u4.AlsoKnownAs = []string{"at://mallory2.test"}
	sign(t, u4, stranger)
	p.step("another update by it", did, opJSON(t, u4), accepted)

	lowRecovery := nextOp(rotate)
	lowRecovery.AlsoKnownAs = []string{"at://low.test"}
	sign(t, lowRecovery, stranger)
	p.step("fork by the same key that signed the displaced op", did, opJSON(t, lowRecovery), refused)

	recovery := nextOp(rotate)
	recovery.AlsoKnownAs = []string{"at://alice.test"}
	recovery.RotationKeys = keyDIDs(high, mid)
	sign(t, recovery, mid)
	p.step("recovery fork by a higher key, displacing two ops", did, opJSON(t, recovery), accepted)

	// An update of a nullified op (u4) is refused by PostgreSQL and by us,
	// accepted by the in-memory reference: see TestReferenceDivergences.

	ts := tombstoneOp(recovery)
	sign(t, ts, mid)
	p.step("tombstone", did, opJSON(t, ts), accepted)

	afterTS := nextOp(recovery)
	tsCID := ts.CID().String()
	afterTS.Prev = &tsCID
	sign(t, afterTS, high)
	p.step("update after the tombstone", did, opJSON(t, afterTS), refused)

	ts2 := tombstoneOp(ts)
	sign(t, ts2, high)
	p.step("tombstone after the tombstone", did, opJSON(t, ts2), refused)

	tsSameKey := nextOp(recovery)
	sign(t, tsSameKey, mid)
	p.step("undo the tombstone with the key that signed it", did, opJSON(t, tsSameKey), refused)

	undo := nextOp(recovery)
	undo.AlsoKnownAs = []string{"at://alice.back.test"}
	sign(t, undo, high)
	p.step("undo the tombstone with a higher key", did, opJSON(t, undo), accepted)

	// A tombstone right after genesis, signed by the genesis's own key.
	g2 := genesisOp(keyDIDs(low), signing, "short.test")
	sign(t, g2, low)
	did2 := string(didOf(t, g2))
	p.step("second identity", did2, opJSON(t, g2), accepted)
	ts3 := tombstoneOp(g2)
	sign(t, ts3, low)
	p.step("its tombstone", did2, opJSON(t, ts3), accepted)

	for _, path := range []string{"/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "/not-a-did", "/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/log/audit"} {
		ref, ours := p.do(p.ref, http.MethodGet, path, "", nil), p.do(p.ours, http.MethodGet, path, "", nil)
		if ref.status != ours.status {
			t.Errorf("GET %s: reference %d, ours %d", path, ref.status, ours.status)
		}
		if err := sameJSON(ref.body, ours.body); err != nil {
			t.Errorf("GET %s: reference %s, ours %s", path, ref.body, ours.body)
		}
	}
}

var randomSeed = flag.Uint64("plc.seed", 20261122, "seed of TestDifferentialRandom's sequence")

// TestDifferentialRandom drives both directories with a seeded random
// sequence of operations over a few identities: updates and tombstones
// signed by allowed keys, by strangers, forks from earlier operations,
// key rotations, tampered operations.
func TestDifferentialRandom(t *testing.T) {
	seed := *randomSeed
	steps := 200
	if testing.Short() {
		steps = 60
	}
	t.Logf("seed %d, %d steps", seed, steps)
	p := startPeers(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	var pool []key
	for i := range 6 {
		curve := "k256"
		if i%3 == 1 {
			curve = "p256"
		}
		pool = append(pool, newKey(t, curve))
	}
	stranger := newKey(t, "k256")
	known := map[string]didplc.Operation{} // by CID: every op generated
	var dids []string

	pickKeys := func() []key {
		n := 1 + rng.IntN(4)
		perm := rng.Perm(len(pool))
		out := make([]key, n)
		for i := range n {
			out[i] = pool[perm[i]]
		}
		return out
	}
	keyByDID := func(d string) key {
		for _, k := range pool {
			if k.did == d {
				return k
			}
		}
		return stranger
	}
	counts := map[string]int{}

	for i := range steps {
		name := fmt.Sprintf("step %d", i)
		if len(dids) == 0 || rng.IntN(8) == 0 {
			keys := pickKeys()
			op := genesisOp(keyDIDs(keys...), pool[rng.IntN(len(pool))], fmt.Sprintf("user%d.test", i))
			signer := keys[rng.IntN(len(keys))]
			if rng.IntN(10) == 0 {
				signer = stranger
			}
			sign(t, op, signer)
			did := string(didOf(t, op))
			if rng.IntN(10) == 0 {
				did = dids0(dids, did)
			}
			known[op.CID().String()] = op
			p.stepAny(name+" genesis", did, opJSON(t, op))
			if p.registered(did) && !slices.Contains(dids, did) {
				dids = append(dids, did)
			}
			counts["genesis"]++
			continue
		}

		did := dids[rng.IntN(len(dids))]
		log := p.refAuditLog(did)
		// Choose prev: mostly the head; sometimes an earlier operation
		// with nothing nullified after it (a fork the in-memory reference
		// judges as PostgreSQL does); rarely a CID in no log.
		headIdx := len(log) - 1
		prevIdx := headIdx
		if r := rng.IntN(10); r < 2 {
			var candidates []int
			for j := range log {
				if !log[j].Nullified && !slices.ContainsFunc(log[j+1:], func(e didplc.LogEntry) bool { return e.Nullified }) && j < headIdx {
					candidates = append(candidates, j)
				}
			}
			if len(candidates) > 0 {
				prevIdx = candidates[rng.IntN(len(candidates))]
				counts["fork"]++
			}
		}
		prev := known[log[prevIdx].CID]
		if prev == nil {
			t.Fatalf("%s: reference log names an operation we never made: %s", name, log[prevIdx].CID)
		}
		var signers []key
		for _, d := range prev.EquivalentRotationKeys() {
			signers = append(signers, keyByDID(d))
		}
		signer := stranger
		if len(signers) > 0 && rng.IntN(5) != 0 {
			signer = signers[rng.IntN(len(signers))]
		}

		var op didplc.Operation
		if _, isTombstone := prev.(*didplc.TombstoneOp); isTombstone || rng.IntN(8) == 0 {
			op = &didplc.TombstoneOp{Type: "plc_tombstone", Prev: prev.CID().String()}
			counts["tombstone"]++
		} else {
			next := nextOp(prev)
			next.AlsoKnownAs = []string{fmt.Sprintf("at://h%d.test", i)}
			if rng.IntN(4) == 0 {
				next.RotationKeys = keyDIDs(pickKeys()...)
				counts["rotate"]++
			}
			if rng.IntN(6) == 0 {
				next.Services["atproto_pds"] = didplc.OpService{Type: "AtprotoPersonalDataServer", Endpoint: fmt.Sprintf("https://pds%d.test", i)}
			}
			op = next
		}
		if rng.IntN(25) == 0 {
			c := fakeCID(t)
			switch o := op.(type) {
			case *didplc.RegularOp:
				o.Prev = &c
			case *didplc.TombstoneOp:
				o.Prev = c
			}
		}
		sign(t, op, signer)
		if rng.IntN(20) == 0 {
			if o, ok := op.(*didplc.RegularOp); ok {
				o.AlsoKnownAs = []string{"at://tampered.test"}
				counts["tampered"]++
			}
		}
		known[op.CID().String()] = op
		ok := p.stepAny(name, did, opJSON(t, op))
		if ok {
			counts["accepted"]++
		} else {
			counts["refused"]++
		}
	}
	t.Logf("%v", counts)
	if counts["accepted"] == 0 || counts["refused"] == 0 || counts["fork"] == 0 {
		t.Errorf("the sequence did not exercise acceptance, refusal and forks: %v", counts)
	}
}

// dids0 returns a registered DID other than did, if any: a genesis
// submitted under the wrong DID.
func dids0(dids []string, did string) string {
	for _, d := range dids {
		if d != did {
			return d
		}
	}
	return did
}

// stepAny submits to both, requires the same status class, compares the
// DID's views, and reports whether the operation was accepted.
func (p *peers) stepAny(name, did string, body []byte) bool {
	p.t.Helper()
	ref, ours := p.submit(did, "application/json", body)
	if ref.class() != ours.class() {
		p.t.Fatalf("%s: reference answered %d %s, ours %d %s\nbody: %s", name, ref.status, ref.body, ours.status, ours.body, body)
	}
	p.compareDID(name, did)
	return ref.class() == 2
}

func (p *peers) registered(did string) bool {
	return p.do(p.ref, http.MethodGet, "/"+did+"/log/last", "", nil).status == http.StatusOK
}

func (p *peers) refAuditLog(did string) []didplc.LogEntry {
	p.t.Helper()
	r := p.do(p.ref, http.MethodGet, "/"+did+"/log/audit", "", nil)
	var log []didplc.LogEntry
	if err := json.Unmarshal(r.body, &log); err != nil {
		p.t.Fatalf("reference audit log of %s: %v: %s", did, err, r.body)
	}
	return log
}

// TestReferenceDivergences pins down where the reference (0.0.1, in
// memory) and ours answer differently, each for a stated reason: the
// spec says otherwise, or the reference's in-memory store departs from
// its own PostgreSQL store. If the reference's answer changes, the test
// says so, and this list (and plc's doc) needs updating.
func TestReferenceDivergences(t *testing.T) {
	p := startPeers(t)
	high, mid, low := newKey(t, "k256"), newKey(t, "p256"), newKey(t, "k256")
	signing := newKey(t, "k256")

	type divergence struct {
		name      string
		why       string
		did       string
		body      []byte
		ref, ours int // expected status classes
	}
	var cases []divergence

	// The reference accepts any prefix of the hash of 24 characters or
	// more; the spec's DID is exactly 24.
	long := genesisOp(keyDIDs(high), signing, "long.test")
	sign(t, long, high)
	cases = append(cases, divergence{"DID with 25 hash characters", "spec: the identifier is 24 characters", string(longerDID(long)), opJSON(t, long), 2, 4})

	// Unknown fields: the reference 0.0.1 keeps them and hashes and
	// verifies them; the public directory's schema is strict now.
	extra, extraDID := signedWithExtraField(t, high, signing)
	cases = append(cases, divergence{"operation with an unknown field", "public directory: strict schema", extraDID, extra, 2, 4})

	// P-256 signatures are checked by WebCrypto, which accepts high-S.
	p256HighS := genesisOp(keyDIDs(mid), signing, "highs.test")
	signHighS(t, p256HighS, mid)
	cases = append(cases, divergence{"high-S P-256 signature", "spec: high-S signatures must be refused", string(didOf(t, p256HighS)), opJSON(t, p256HighS), 2, 4})

	// K-256 signatures are checked by noble-secp256k1 1.x, which also
	// reads DER.
	der := genesisOp(keyDIDs(high), signing, "der.test")
	signDER(t, der, high)
	cases = append(cases, divergence{"DER-encoded K-256 signature", "spec: signatures are 64-byte compact", string(didOf(t, der)), opJSON(t, der), 2, 4})

	// Padded base64url: the reference's decoder reads it.
	padded := genesisOp(keyDIDs(high), signing, "padded.test")
	signPadded(t, padded, high)
	cases = append(cases, divergence{"padded base64url signature", "spec: base64url without padding, strictly", string(didOf(t, padded)), opJSON(t, padded), 2, 4})

	// Bodies the reference's JSON parser refuses reach its error handler
	// before its request logger exists; the handler throws, and express
	// answers 500 with an HTML page.
	cases = append(cases, divergence{"body that is not JSON", "a client error is a 400, not a 500", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", []byte(`{"type":`), 5, 4})
	huge := fmt.Sprintf(`{"type":"plc_operation","pad":%q}`, strings.Repeat("x", 110*1024))
	cases = append(cases, divergence{"body over 100 KiB", "a client error is a 413, not a 500", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", []byte(huge), 5, 4})

	// An identity for the log-shape cases.
	g := genesisOp(keyDIDs(high, mid, low), signing, "alice.test")
	sign(t, g, low)
	did := string(didOf(t, g))
	if ref, ours := p.submit(did, "application/json", opJSON(t, g)); ref.class() != 2 || ours.class() != 2 {
		t.Fatalf("genesis: reference %d, ours %d", ref.status, ours.status)
	}
	for i, c := range cases {
		ref, ours := p.submit(c.did, "application/json", c.body)
		if ref.class() != c.ref || ours.class() != c.ours {
			t.Errorf("%d %s (%s): reference %d %s, ours %d %s; documented: reference %dxx, ours %dxx", i, c.name, c.why, ref.status, ref.body, ours.status, ours.body, c.ref, c.ours)
		}
	}

	// A prev that is not a CID: the reference's CID parser throws: 500.
	garbage := nextOp(g)
	s := "not-a-cid"
	garbage.Prev = &s
	sign(t, garbage, high)
	if ref, ours := p.submit(did, "application/json", opJSON(t, garbage)); ref.class() != 5 || ours.class() != 4 {
		t.Errorf("prev not a CID: reference %d, ours %d; documented: 5xx, 4xx", ref.status, ours.status)
	}

	// The in-memory reference passes nullified operations to its
	// validator, the PostgreSQL one does not. Two consequences:
	//
	// 1. A second fork from the same prev is judged against the signer of
	// the first operation ever displaced, not the current one: after low
	// was displaced by mid, mid may fork again in memory.
	u1 := nextOp(g)
	u1.AlsoKnownAs = []string{"at://one.test"}
	sign(t, u1, low)
	f1 := nextOp(g)
	f1.AlsoKnownAs = []string{"at://two.test"}
	sign(t, f1, mid)
	for _, op := range []didplc.Operation{u1, f1} {
		if ref, ours := p.submit(did, "application/json", opJSON(t, op)); ref.class() != 2 || ours.class() != 2 {
			t.Fatalf("setup: reference %d %s, ours %d %s", ref.status, ref.body, ours.status, ours.body)
		}
	}
	f2 := nextOp(g)
	f2.AlsoKnownAs = []string{"at://three.test"}
	sign(t, f2, mid)
	if ref, ours := p.submit(did, "application/json", opJSON(t, f2)); ref.class() != 2 || ours.class() != 4 {
		t.Errorf("second fork by the first fork's key: reference %d, ours %d; documented: 2xx (in memory only), 4xx", ref.status, ours.status)
	}

	// 2. An update whose prev was nullified is accepted in memory, after
	// which the reference cannot render the DID (its log no longer
	// chains): GET /:did answers 400 there.
	g3 := genesisOp(keyDIDs(high, mid, low), signing, "bob.test")
	sign(t, g3, low)
	did3 := string(didOf(t, g3))
	v1 := nextOp(g3)
	v1.AlsoKnownAs = []string{"at://v1.test"}
	sign(t, v1, low)
	w1 := nextOp(g3)
	w1.AlsoKnownAs = []string{"at://w1.test"}
	sign(t, w1, mid)
	for _, op := range []didplc.Operation{g3, v1, w1} {
		if ref, ours := p.submit(did3, "application/json", opJSON(t, op)); ref.class() != 2 || ours.class() != 2 {
			t.Fatalf("setup: reference %d %s, ours %d %s", ref.status, ref.body, ours.status, ours.body)
		}
	}
	fromNullified := nextOp(v1)
	sign(t, fromNullified, high)
	if ref, ours := p.submit(did3, "application/json", opJSON(t, fromNullified)); ref.class() != 2 || ours.class() != 4 {
		t.Errorf("update of a nullified op: reference %d, ours %d; documented: 2xx (in memory only), 4xx", ref.status, ours.status)
	}

	// A tombstoned DID: 404 from the reference 0.0.1, 410 from ours (and
	// from the public directory).
	g4 := genesisOp(keyDIDs(low), signing, "gone.test")
	sign(t, g4, low)
	did4 := string(didOf(t, g4))
	ts := tombstoneOp(g4)
	sign(t, ts, low)
	for _, op := range []didplc.Operation{g4, ts} {
		if ref, ours := p.submit(did4, "application/json", opJSON(t, op)); ref.class() != 2 || ours.class() != 2 {
			t.Fatalf("setup: reference %d, ours %d", ref.status, ours.status)
		}
	}
	for _, suffix := range []string{"", "/data"} {
		ref, ours := p.do(p.ref, http.MethodGet, "/"+did4+suffix, "", nil), p.do(p.ours, http.MethodGet, "/"+did4+suffix, "", nil)
		if ref.status != http.StatusNotFound || ours.status != http.StatusGone {
			t.Errorf("GET /%s%s of a tombstoned DID: reference %d, ours %d; documented: 404, 410", did4, suffix, ref.status, ours.status)
		}
	}
}

// signedWithExtraField builds a genesis operation with a field the
// operation schema does not have, signed over (and hashed with) that
// field, as the reference 0.0.1 would verify it.
func signedWithExtraField(t *testing.T, rot, signing key) ([]byte, string) {
	t.Helper()
	op := map[string]any{
		"type":                "plc_operation",
		"rotationKeys":        []any{rot.did},
		"verificationMethods": map[string]any{"atproto": signing.did},
		"alsoKnownAs":         []any{"at://extra.test"},
		"services":            map[string]any{"atproto_pds": map[string]any{"type": "AtprotoPersonalDataServer", "endpoint": "https://pds.example.test"}},
		"prev":                nil,
		"extra":               "field",
	}
	unsigned, err := atdata.MarshalCBOR(op)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := rot.priv.HashAndSign(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	op["sig"] = base64.RawURLEncoding.EncodeToString(sig)
	signed, err := atdata.MarshalCBOR(op)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(signed)
	did := "did:plc:" + strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:24]
	body, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	return body, did
}
