package plc_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/did-method-plc/go-didplc/didplc"

	"github.com/hearth-pds/hearth/plc"
)

// clock is a settable clock for the recovery-window tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// world is a directory and the keys of one identity: rotation keys high,
// mid and low in descending priority, a signing key, and a stranger's key
// that is in no operation.
type world struct {
	t                        testing.TB
	dir                      *plc.Directory
	clock                    *clock
	high, mid, low, stranger key
	signing                  key
}

func newWorld(t testing.TB) *world {
	t.Helper()
	c := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	d, err := plc.New(plc.Config{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &world{
		t: t, dir: d, clock: c,
		high: newKey(t, "k256"), mid: newKey(t, "p256"), low: newKey(t, "k256"),
		stranger: newKey(t, "k256"), signing: newKey(t, "k256"),
	}
}

func (w *world) submit(did syntax.DID, op didplc.Operation) error {
	return w.dir.Submit(context.Background(), did, op)
}

// accept submits op and fails the test if it is refused. It then moves the
// clock a second on, so each operation is stamped with the clock's exact
// time (not nudged a millisecond past the previous one) and the 72-hour
// boundary cases are exact.
func (w *world) accept(did syntax.DID, op didplc.Operation) {
	w.t.Helper()
	if err := w.submit(did, op); err != nil {
		w.t.Fatalf("setup operation refused: %v", err)
	}
	w.clock.advance(time.Second)
}

// create registers a DID whose rotation keys are high, mid, low, signed
// by low (as a PDS signs with its own key, the lowest).
func (w *world) create() (syntax.DID, *didplc.RegularOp) {
	w.t.Helper()
	op := genesisOp(keyDIDs(w.high, w.mid, w.low), w.signing, "alice.test")
	sign(w.t, op, w.low)
	did := didOf(w.t, op)
	w.accept(did, op)
	return did, op
}

// update submits (and requires the acceptance of) an update of prev
// signed by k, changing the handle so every update hashes differently.
func (w *world) update(did syntax.DID, prev didplc.Operation, k key, handle string) *didplc.RegularOp {
	w.t.Helper()
	op := nextOp(prev)
	op.AlsoKnownAs = []string{"at://" + handle}
	sign(w.t, op, k)
	w.accept(did, op)
	return op
}

func TestSubmit(t *testing.T) {
	tests := []struct {
		name string
		// build registers what the case needs and returns the operation
		// under test.
		build func(w *world) (syntax.DID, didplc.Operation)
		ok    bool
	}{
		{"genesis", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp(keyDIDs(w.high, w.low), w.signing, "a.test")
			sign(w.t, op, w.high)
			return didOf(w.t, op), op
		}, true},
		{"genesis with P-256 keys signed by its last rotation key", func(w *world) (syntax.DID, didplc.Operation) {
			p := newKey(w.t, "p256")
			op := genesisOp(keyDIDs(w.mid, p), p, "a.test")
			sign(w.t, op, p)
			return didOf(w.t, op), op
		}, true},
		{"genesis with an empty state", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp(keyDIDs(w.high), w.signing, "a.test")
			op.VerificationMethods = map[string]string{}
			op.AlsoKnownAs = []string{}
			op.Services = map[string]didplc.OpService{}
			sign(w.t, op, w.high)
			return didOf(w.t, op), op
		}, true},
		{"genesis signed by a key outside its rotation keys", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp(keyDIDs(w.high, w.low), w.signing, "a.test")
			sign(w.t, op, w.stranger)
			return didOf(w.t, op), op
		}, false},
		{"genesis changed after signing (bad signature)", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp(keyDIDs(w.high), w.signing, "a.test")
			sign(w.t, op, w.high)
			op.AlsoKnownAs = []string{"at://mallory.test"}
			return didOf(w.t, op), op
		}, false},
		{"genesis submitted under another genesis's DID", func(w *world) (syntax.DID, didplc.Operation) {
			other := genesisOp(keyDIDs(w.high), w.signing, "other.test")
			sign(w.t, other, w.high)
			op := genesisOp(keyDIDs(w.high), w.signing, "a.test")
			sign(w.t, op, w.high)
			return didOf(w.t, other), op
		}, false},
		{"genesis under a DID with 25 hash characters", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp(keyDIDs(w.high), w.signing, "a.test")
			sign(w.t, op, w.high)
			return longerDID(op), op
		}, false},
		{"genesis with no rotation keys", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp([]string{}, w.signing, "a.test")
			sign(w.t, op, w.high)
			return didOf(w.t, op), op
		}, false},
		{"genesis with six rotation keys", func(w *world) (syntax.DID, didplc.Operation) {
			ks := []key{w.high, w.mid, w.low, w.stranger, w.signing, newKey(w.t, "k256")}
			op := genesisOp(keyDIDs(ks...), w.signing, "a.test")
			sign(w.t, op, w.high)
			return didOf(w.t, op), op
		}, false},
		{"genesis with a rotation key that is not a did:key", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp([]string{w.high.did, "did:key:zNotAKey"}, w.signing, "a.test")
			sign(w.t, op, w.high)
			return didOf(w.t, op), op
		}, false},
		{"genesis with an unsupported verification method key", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp(keyDIDs(w.high), w.signing, "a.test")
			// An ed25519 did:key: valid syntax, a curve the reference refuses.
			op.VerificationMethods["atproto"] = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
			sign(w.t, op, w.high)
			return didOf(w.t, op), op
		}, false},
		{"genesis with a non-null prev", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp(keyDIDs(w.high), w.signing, "a.test")
			cid := fakeCID(w.t)
			op.Prev = &cid
			sign(w.t, op, w.high)
			// The op is not a genesis, so it has no DID of its own: use the
			// DID its null-prev twin would have.
			twin := genesisOp(keyDIDs(w.high), w.signing, "a.test")
			sign(w.t, twin, w.high)
			return didOf(w.t, twin), op
		}, false},
		{"genesis with a high-S signature", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp(keyDIDs(w.high), w.signing, "a.test")
			signHighS(w.t, op, w.high)
			return didOf(w.t, op), op
		}, false},
		{"genesis with a high-S P-256 signature", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp(keyDIDs(w.mid), w.signing, "a.test")
			signHighS(w.t, op, w.mid)
			return didOf(w.t, op), op
		}, false},
		{"genesis with a DER signature", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp(keyDIDs(w.high), w.signing, "a.test")
			signDER(w.t, op, w.high)
			return didOf(w.t, op), op
		}, false},
		{"genesis with a padded base64 signature", func(w *world) (syntax.DID, didplc.Operation) {
			op := genesisOp(keyDIDs(w.high), w.signing, "a.test")
			signPadded(w.t, op, w.high)
			return didOf(w.t, op), op
		}, false},
		{"a second genesis for a registered DID", func(w *world) (syntax.DID, didplc.Operation) {
			did, op := w.create()
			return did, op
		}, false},
		{"a tombstone as genesis", func(w *world) (syntax.DID, didplc.Operation) {
			_, g := w.create()
			op := tombstoneOp(g)
			sign(w.t, op, w.high)
			other := genesisOp(keyDIDs(w.low), w.signing, "b.test")
			sign(w.t, other, w.low)
			return didOf(w.t, other), op
		}, false},
		{"update signed by the highest rotation key", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			op := nextOp(g)
			op.AlsoKnownAs = []string{"at://bob.test"}
			sign(w.t, op, w.high)
			return did, op
		}, true},
		{"update signed by the lowest rotation key", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			op := nextOp(g)
			op.Services["atproto_pds"] = didplc.OpService{Type: "AtprotoPersonalDataServer", Endpoint: "https://elsewhere.test"}
			sign(w.t, op, w.low)
			return did, op
		}, true},
		{"update that rotates the keys", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			op := nextOp(g)
			op.RotationKeys = keyDIDs(w.stranger)
			sign(w.t, op, w.mid)
			return did, op
		}, true},
		{"update signed by a key the previous op does not list", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			op := nextOp(g)
			op.RotationKeys = keyDIDs(w.stranger)
			sign(w.t, op, w.stranger)
			return did, op
		}, false},
		{"update signed by the signing key (not a rotation key)", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			op := nextOp(g)
			sign(w.t, op, w.signing)
			return did, op
		}, false},
		{"update whose prev is in no log", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			op := nextOp(g)
			cid := fakeCID(w.t)
			op.Prev = &cid
			sign(w.t, op, w.high)
			return did, op
		}, false},
		{"update whose prev is another DID's operation", func(w *world) (syntax.DID, didplc.Operation) {
			did, _ := w.create()
			other := genesisOp(keyDIDs(w.high, w.mid, w.low), w.signing, "other.test")
			sign(w.t, other, w.low)
			w.accept(didOf(w.t, other), other)
			op := nextOp(other)
			sign(w.t, op, w.high)
			return did, op
		}, false},
		{"update of an unregistered DID", func(w *world) (syntax.DID, didplc.Operation) {
			g := genesisOp(keyDIDs(w.high), w.signing, "a.test")
			sign(w.t, g, w.high)
			op := nextOp(g)
			sign(w.t, op, w.high)
			return didOf(w.t, g), op
		}, false},
		{"the same update submitted twice", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			op := w.update(did, g, w.mid, "bob.test")
			return did, op
		}, false},
		{"fork by a higher key within 72h (recovery)", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			w.update(did, g, w.low, "mallory.test")
			w.clock.advance(71 * time.Hour)
			op := nextOp(g)
			sign(w.t, op, w.mid)
			return did, op
		}, true},
		{"fork by a higher key at exactly 72h", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			w.update(did, g, w.low, "mallory.test")
			w.clock.advance(72*time.Hour - time.Second) // accept moved it 1s
			op := nextOp(g)
			sign(w.t, op, w.mid)
			return did, op
		}, true},
		{"fork by a higher key after 72h", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			w.update(did, g, w.low, "mallory.test")
			w.clock.advance(72*time.Hour - time.Second + time.Millisecond)
			op := nextOp(g)
			sign(w.t, op, w.mid)
			return did, op
		}, false},
		{"fork by the same key", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			w.update(did, g, w.mid, "mallory.test")
			op := nextOp(g)
			sign(w.t, op, w.mid)
			return did, op
		}, false},
		{"fork by a lower key", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			w.update(did, g, w.mid, "mallory.test")
			op := nextOp(g)
			sign(w.t, op, w.low)
			return did, op
		}, false},
		{"fork displacing two operations", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			u1 := w.update(did, g, w.low, "one.test")
			w.update(did, u1, w.low, "two.test")
			op := nextOp(g)
			sign(w.t, op, w.high)
			return did, op
		}, true},
		{"a second fork by a still higher key", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			w.update(did, g, w.low, "one.test")
			w.update(did, g, w.mid, "two.test")
			op := nextOp(g)
			sign(w.t, op, w.high)
			return did, op
		}, true},
		{"a second fork by the key of the first fork", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			w.update(did, g, w.low, "one.test")
			w.update(did, g, w.mid, "two.test")
			op := nextOp(g)
			op.AlsoKnownAs = []string{"at://three.test"}
			sign(w.t, op, w.mid)
			return did, op
		}, false},
		{"update whose prev was nullified", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			bad := w.update(did, g, w.low, "mallory.test")
			w.update(did, g, w.high, "alice.test")
			op := nextOp(bad)
			sign(w.t, op, w.high)
			return did, op
		}, false},
		{"tombstone", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			op := tombstoneOp(g)
			sign(w.t, op, w.low)
			return did, op
		}, true},
		{"tombstone signed by a stranger", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			op := tombstoneOp(g)
			sign(w.t, op, w.stranger)
			return did, op
		}, false},
		{"update after a tombstone", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			ts := tombstoneOp(g)
			sign(w.t, ts, w.low)
			w.accept(did, ts)
			op := &didplc.RegularOp{}
			*op = *nextOp(g)
			cid := ts.CID().String()
			op.Prev = &cid
			sign(w.t, op, w.high)
			return did, op
		}, false},
		{"tombstone after a tombstone", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			ts := tombstoneOp(g)
			sign(w.t, ts, w.low)
			w.accept(did, ts)
			op := tombstoneOp(ts)
			sign(w.t, op, w.high)
			return did, op
		}, false},
		{"recovery from a tombstone by a higher key", func(w *world) (syntax.DID, didplc.Operation) {
			did, g := w.create()
			ts := tombstoneOp(g)
			sign(w.t, ts, w.low)
			w.accept(did, ts)
			op := nextOp(g)
			sign(w.t, op, w.high)
			return did, op
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			did, op := tt.build(w)
			err := w.submit(did, op)
			if tt.ok && err != nil {
				t.Fatalf("Submit: %v, want accepted", err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatalf("Submit accepted the operation, want ErrInvalidOperation")
				}
				if !errors.Is(err, plc.ErrInvalidOperation) {
					t.Fatalf("Submit: %v, want ErrInvalidOperation", err)
				}
				t.Logf("refused: %v", err)
			}
			if tt.ok {
				last, err := w.dir.LastOp(did)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := last.CID(), op.CID(); got != want {
					t.Errorf("LastOp CID = %s, want the accepted op %s", got, want)
				}
			}
			// Whatever happened, the log must still verify on its own.
			if log, err := w.dir.AuditLog(did); err == nil {
				if err := didplc.VerifyOpLog(log); err != nil {
					t.Errorf("audit log no longer verifies: %v", err)
				}
			}
		})
	}
}

func TestRecoveryNullifies(t *testing.T) {
	w := newWorld(t)
	did, g := w.create()
	u1 := w.update(did, g, w.low, "one.test")
	u2 := w.update(did, u1, w.low, "two.test")
	w.clock.advance(time.Hour)
	rec := w.update(did, g, w.mid, "alice.test")

	log, err := w.dir.AuditLog(did)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		cid       string
		nullified bool
	}{{g.CID().String(), false}, {u1.CID().String(), true}, {u2.CID().String(), true}, {rec.CID().String(), false}}
	if len(log) != len(want) {
		t.Fatalf("audit log has %d entries, want %d", len(log), len(want))
	}
	for i, w := range want {
		if log[i].CID != w.cid || log[i].Nullified != w.nullified {
			t.Errorf("entry %d = %s nullified=%v, want %s nullified=%v", i, log[i].CID, log[i].Nullified, w.cid, w.nullified)
		}
	}
	data, err := w.dir.Data(did)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := data.AlsoKnownAs, []string{"at://alice.test"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("data alsoKnownAs = %v, want %v", got, want)
	}
	// The recovery was signed by mid: from g, only high may fork again.
	again := nextOp(g)
	again.AlsoKnownAs = []string{"at://again.test"}
	sign(t, again, w.mid)
	if err := w.submit(did, again); !errors.Is(err, plc.ErrInvalidOperation) {
		t.Errorf("second fork by the same key: %v, want ErrInvalidOperation", err)
	}
}

func TestTombstoneDeactivates(t *testing.T) {
	w := newWorld(t)
	did, g := w.create()
	ts := tombstoneOp(g)
	sign(t, ts, w.low)
	w.accept(did, ts)
	if _, err := w.dir.Data(did); !errors.Is(err, plc.ErrDeactivated) {
		t.Errorf("Data of a tombstoned DID: %v, want ErrDeactivated", err)
	}
	if _, err := w.dir.Document(did); !errors.Is(err, plc.ErrDeactivated) {
		t.Errorf("Document of a tombstoned DID: %v, want ErrDeactivated", err)
	}
	last, err := w.dir.LastOp(did)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := last.(*didplc.TombstoneOp); !ok {
		t.Errorf("LastOp = %T, want the tombstone", last)
	}
	// Recovery by a higher key within 72h brings it back.
	w.update(did, g, w.high, "back.test")
	if _, err := w.dir.Document(did); err != nil {
		t.Errorf("Document after recovery: %v", err)
	}
}

func TestUnregistered(t *testing.T) {
	w := newWorld(t)
	did := syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	if _, err := w.dir.Data(did); !errors.Is(err, plc.ErrNotRegistered) {
		t.Errorf("Data: %v, want ErrNotRegistered", err)
	}
	if _, err := w.dir.AuditLog(did); !errors.Is(err, plc.ErrNotRegistered) {
		t.Errorf("AuditLog: %v, want ErrNotRegistered", err)
	}
	if _, err := w.dir.LastOp(did); !errors.Is(err, plc.ErrNotRegistered) {
		t.Errorf("LastOp: %v, want ErrNotRegistered", err)
	}
}

func TestClosed(t *testing.T) {
	w := newWorld(t)
	did, g := w.create()
	if err := w.dir.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.dir.Data(did); !errors.Is(err, plc.ErrClosed) {
		t.Errorf("Data after Close: %v, want ErrClosed", err)
	}
	op := nextOp(g)
	sign(t, op, w.high)
	if err := w.submit(did, op); !errors.Is(err, plc.ErrClosed) {
		t.Errorf("Submit after Close: %v, want ErrClosed", err)
	}
}

// TestClockGoingBack checks that operations accepted while the clock
// stands still or goes back still get strictly increasing timestamps (the
// library refuses an operation not later than its prev).
func TestClockGoingBack(t *testing.T) {
	w := newWorld(t)
	did, g := w.create()
	prev := didplc.Operation(g)
	for i := range 5 {
		w.clock.advance(-time.Second)
		prev = w.update(did, prev, w.low, "h"+string(rune('a'+i))+".test")
	}
	log, err := w.dir.AuditLog(did)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(log); i++ {
		if log[i].CreatedAt <= log[i-1].CreatedAt {
			t.Errorf("createdAt %s after %s: not increasing", log[i].CreatedAt, log[i-1].CreatedAt)
		}
	}
}

func TestConcurrentSubmits(t *testing.T) {
	w := newWorld(t)
	const identities, updates = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, identities*updates*2)
	for i := range identities {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := genesisOp(keyDIDs(w.high, w.low), w.signing, "user"+string(rune('a'+i))+".test")
			sign(t, g, w.low)
			did := didOf(t, g)
			if err := w.submit(did, g); err != nil {
				errs <- err
				return
			}
			prev := didplc.Operation(g)
			for j := range updates {
				// Two competing updates of the same head, signed by the same
				// key: exactly one may win.
				a, b := nextOp(prev), nextOp(prev)
				a.AlsoKnownAs = []string{"at://a" + string(rune('a'+j)) + ".test"}
				b.AlsoKnownAs = []string{"at://b" + string(rune('a'+j)) + ".test"}
				sign(t, a, w.low)
				sign(t, b, w.low)
				var ea, eb error
				var inner sync.WaitGroup
				inner.Add(2)
				go func() { defer inner.Done(); ea = w.submit(did, a) }()
				go func() { defer inner.Done(); eb = w.submit(did, b) }()
				inner.Wait()
				switch {
				case ea == nil && eb != nil:
					prev = a
				case eb == nil && ea != nil:
					prev = b
				default:
					errs <- errors.Join(errors.New("want exactly one of two competing updates accepted"), ea, eb)
					return
				}
				// Readers run alongside.
				if _, err := w.dir.Document(did); err != nil {
					errs <- err
				}
			}
			log, err := w.dir.AuditLog(did)
			if err != nil {
				errs <- err
				return
			}
			if err := didplc.VerifyOpLog(log); err != nil {
				errs <- err
			}
			if len(log) != updates+1 {
				errs <- errors.New("audit log length wrong")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
