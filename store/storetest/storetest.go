// Package storetest is the conformance suite every store.Store engine
// must pass: the same behaviour, error for error, on SQLite and PostgreSQL.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/hearth-pds/hearth/store"
)

// Run runs the suite; open returns a new, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateAndLookupAccount", testCreateAndLookup},
		{"CreateAccountConflicts", testCreateConflicts},
		{"RewriteSigningKeys", testRewriteSigningKeys},
		{"InviteUseIsAtomic", testInviteRace},
		{"InviteDisabledAndListed", testInviteDisabled},
		{"UpdateHandle", testUpdateHandle},
		{"AppPasswords", testAppPasswords},
		{"RefreshTokenRotation", testRefreshRotation},
		{"Commits", testCommits},
		{"RecordsSince", testRecordsSince},
		{"Deactivation", testDeactivation},
		{"Blobs", testBlobs},
		{"Preferences", testPreferences},
		{"EventSequence", testEventSequence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

var ctx = context.Background()

// CIDOf is a CID named by text, for checks that only need distinct CIDs.
func CIDOf(name string) cid.Cid {
	sum, err := multihash.Sum([]byte(name), multihash.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.DagCBOR, sum)
}

func newAccount(n int) store.NewAccount {
	did := syntax.DID(fmt.Sprintf("did:plc:test%020d", n))
	return store.NewAccount{
		Account: store.Account{
			DID: did, Handle: syntax.Handle(fmt.Sprintf("user%d.test", n)), Email: fmt.Sprintf("User%d@Example.com", n),
			PasswordHash: "$argon2id$x", CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
		},
		SigningKey: []byte{1, 2, 3},
		RootCID:    CIDOf("root" + did.String()),
		Rev:        syntax.TID("3l000000000" + fmt.Sprint(n)),
		Blocks:     []store.Block{{CID: CIDOf("block" + did.String()), Content: []byte("x")}},
	}
}

func mustCreate(t *testing.T, s store.Store, a store.NewAccount) {
	t.Helper()
	if _, err := s.CreateAccount(ctx, a); err != nil {
		t.Fatalf("CreateAccount(%s): %v", a.DID, err)
	}
}

func testCreateAndLookup(t *testing.T, s store.Store) {
	a := newAccount(1)
	mustCreate(t, s, a)
	for _, lookup := range []func() (*store.Account, error){
		func() (*store.Account, error) { return s.AccountByDID(ctx, a.DID) },
		func() (*store.Account, error) { return s.AccountByHandle(ctx, a.Handle) },
		func() (*store.Account, error) { return s.AccountByEmail(ctx, "user1@example.COM") },
	} {
		got, err := lookup()
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if got.DID != a.DID || got.Handle != a.Handle || !got.CreatedAt.Equal(a.CreatedAt) || !got.Active() {
			t.Errorf("got %+v, want %+v", got, a.Account)
		}
	}
	if _, err := s.AccountByHandle(ctx, "nobody.test"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown handle: got %v, want ErrNotFound", err)
	}
	root, err := s.RepoRoot(ctx, a.DID)
	if err != nil || root.CID != a.RootCID || root.Rev != a.Rev {
		t.Errorf("RepoRoot = %+v, %v", root, err)
	}
	key, err := s.SigningKey(ctx, a.DID)
	if err != nil || string(key) != string(a.SigningKey) {
		t.Errorf("SigningKey = %v, %v", key, err)
	}
}

// testRewriteSigningKeys checks that every key is offered once, in DID
// order, that nil leaves a row, and that an error rolls back the rows
// already replaced in the same call.
func testRewriteSigningKeys(t *testing.T, s store.Store) {
	var dids []syntax.DID
	for n := 3; n >= 1; n-- {
		a := newAccount(n)
		a.SigningKey = []byte(fmt.Sprintf("key-%d", n))
		mustCreate(t, s, a)
		dids = append([]syntax.DID{a.DID}, dids...)
	}
	keys := func() []string {
		var got []string
		for _, did := range dids {
			k, err := s.SigningKey(ctx, did)
			if err != nil {
				t.Fatalf("SigningKey(%s): %v", did, err)
			}
			got = append(got, string(k))
		}
		return got
	}

	var seen []string
	n, err := s.RewriteSigningKeys(ctx, func(did syntax.DID, key []byte) ([]byte, error) {
		seen = append(seen, did.String()+"="+string(key))
		if did == dids[1] {
			return nil, nil
		}
		return append([]byte("new-"), key...), nil
	})
	if err != nil {
		t.Fatalf("RewriteSigningKeys: %v", err)
	}
	if want := []string{dids[0].String() + "=key-1", dids[1].String() + "=key-2", dids[2].String() + "=key-3"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("offered %v, want %v", seen, want)
	}
	if n != 2 {
		t.Errorf("replaced %d keys, want 2", n)
	}
	if got, want := keys(), []string{"new-key-1", "key-2", "new-key-3"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after rewrite: keys %v, want %v", got, want)
	}

	boom := errors.New("boom")
	n, err = s.RewriteSigningKeys(ctx, func(did syntax.DID, key []byte) ([]byte, error) {
		if did == dids[2] {
			return nil, boom
		}
		return []byte("lost"), nil
	})
	if !errors.Is(err, boom) || n != 0 {
		t.Errorf("failing rewrite: got %d, %v, want 0, %v", n, err, boom)
	}
	if got, want := keys(), []string{"new-key-1", "key-2", "new-key-3"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a failed rewrite: keys %v, want %v (nothing written)", got, want)
	}
}

func testCreateConflicts(t *testing.T, s store.Store) {
	first := newAccount(1)
	mustCreate(t, s, first)
	sameHandle := newAccount(2)
	sameHandle.Handle = first.Handle
	sameEmail := newAccount(3)
	sameEmail.Email = "USER1@example.com"
	sameDID := newAccount(4)
	sameDID.DID = first.DID
	badInvite := newAccount(5)
	badInvite.InviteCode = "no-such-code"
	for _, tc := range []struct {
		a    store.NewAccount
		want error
	}{
		{sameHandle, store.ErrHandleTaken},
		{sameEmail, store.ErrEmailTaken},
		{sameDID, store.ErrDIDTaken},
		{badInvite, store.ErrInviteUnavailable},
	} {
		if _, err := s.CreateAccount(ctx, tc.a); !errors.Is(err, tc.want) {
			t.Errorf("CreateAccount(%s): got %v, want %v", tc.a.Handle, err, tc.want)
		}
		// Nothing of a refused account is left behind.
		if tc.a.DID != first.DID {
			if _, err := s.AccountByDID(ctx, tc.a.DID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("refused account %s left a row: %v", tc.a.DID, err)
			}
			if _, err := s.RepoRoot(ctx, tc.a.DID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("refused account %s left a repo: %v", tc.a.DID, err)
			}
		}
	}
}

func testInviteRace(t *testing.T, s store.Store) {
	err := s.CreateInviteCodes(ctx, []store.InviteCode{{Code: "race", Available: 3, ForAccount: "admin", CreatedBy: "admin", CreatedAt: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok, unavl int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := newAccount(100 + i)
			a.InviteCode = "race"
			_, err := s.CreateAccount(ctx, a)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrInviteUnavailable):
				unavl++
			default:
				t.Errorf("CreateAccount: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 3 || unavl != n-3 {
		t.Errorf("with a 3-use code: %d created, %d refused; want 3 and %d", ok, unavl, n-3)
	}
	code, err := s.InviteCode(ctx, "race")
	if err != nil || len(code.Uses) != 3 {
		t.Errorf("InviteCode uses = %v, %v", code, err)
	}
}

func testInviteDisabled(t *testing.T, s store.Store) {
	now := time.Now()
	err := s.CreateInviteCodes(ctx, []store.InviteCode{
		{Code: "a", Available: 5, ForAccount: "did:plc:owner", CreatedBy: "admin", CreatedAt: now},
		{Code: "b", Available: 5, ForAccount: "did:plc:owner", CreatedBy: "admin", CreatedAt: now.Add(time.Millisecond)},
		{Code: "c", Available: 5, ForAccount: "admin", CreatedBy: "admin", CreatedAt: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateInviteCodes(ctx, []store.InviteCode{{Code: "a", Available: 1, CreatedAt: now}}); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("duplicate code: got %v, want ErrDuplicate", err)
	}
	codes, err := s.AccountInviteCodes(ctx, "did:plc:owner")
	if err != nil || len(codes) != 2 || codes[0].Code != "a" || codes[1].Code != "b" {
		t.Fatalf("AccountInviteCodes = %+v, %v", codes, err)
	}
	if err := s.DisableInviteCodes(ctx, []string{"c"}, []string{"did:plc:owner"}); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"a", "b", "c"} {
		a := newAccount(int(code[0]))
		a.InviteCode = code
		if _, err := s.CreateAccount(ctx, a); !errors.Is(err, store.ErrInviteUnavailable) {
			t.Errorf("disabled code %s: got %v", code, err)
		}
	}
}

func testUpdateHandle(t *testing.T, s store.Store) {
	a, b := newAccount(1), newAccount(2)
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	if err := updateHandle(s, a.DID, b.Handle); !errors.Is(err, store.ErrHandleTaken) {
		t.Errorf("taken: got %v", err)
	}
	if err := updateHandle(s, "did:plc:nobody", "x.test"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown did: got %v", err)
	}
	if err := updateHandle(s, a.DID, "new.test"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AccountByHandle(ctx, "new.test"); err != nil || got.DID != a.DID {
		t.Errorf("after update: %v, %v", got, err)
	}
	if _, err := s.AccountByHandle(ctx, a.Handle); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old handle still resolves: %v", err)
	}
}

func testAppPasswords(t *testing.T, s store.Store) {
	a := newAccount(1)
	mustCreate(t, s, a)
	now := time.Now().UTC().Truncate(time.Millisecond)
	p := store.AppPassword{DID: a.DID, Name: "phone", PasswordHash: "h1", CreatedAt: now}
	if err := s.CreateAppPassword(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAppPassword(ctx, p); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("duplicate name: got %v", err)
	}
	if err := s.CreateAppPassword(ctx, store.AppPassword{DID: a.DID, Name: "bot", PasswordHash: "h2", Privileged: true, CreatedAt: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AppPasswordByHash(ctx, a.DID, "h2")
	if err != nil || got.Name != "bot" || !got.Privileged {
		t.Errorf("AppPasswordByHash = %+v, %v", got, err)
	}
	if _, err := s.AppPasswordByHash(ctx, "did:plc:other", "h2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other account's hash: %v", err)
	}
	list, err := s.ListAppPasswords(ctx, a.DID)
	if err != nil || len(list) != 2 || list[0].Name != "bot" {
		t.Errorf("ListAppPasswords = %+v, %v", list, err)
	}
	tok := store.RefreshToken{ID: "t1", DID: a.DID, AppPasswordName: "phone", ExpiresAt: now.Add(time.Hour)}
	if err := s.PutRefreshToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAppPassword(ctx, a.DID, "phone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RefreshToken(ctx, "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session of a revoked app password survives: %v", err)
	}
	if err := s.DeleteAppPassword(ctx, a.DID, "never-existed"); err != nil {
		t.Errorf("deleting an unknown name: %v", err)
	}
}

func testRefreshRotation(t *testing.T, s store.Store) {
	a := newAccount(1)
	mustCreate(t, s, a)
	exp := time.Now().Add(time.Hour)
	if err := s.PutRefreshToken(ctx, store.RefreshToken{ID: "r1", DID: a.DID, ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRefreshToken(ctx, store.RefreshToken{ID: "old", DID: a.DID, ExpiresAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RefreshToken(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired token is live: %v", err)
	}
	grace := time.Now().Add(time.Minute)
	id, err := s.RotateRefreshToken(ctx, "r1", store.RefreshToken{ID: "r2", DID: a.DID, ExpiresAt: exp}, grace)
	if err != nil || id != "r2" {
		t.Fatalf("RotateRefreshToken(r1) = %q, %v; want r2", id, err)
	}
	// Within the grace period r1 rotates again, to the same successor.
	id, err = s.RotateRefreshToken(ctx, "r1", store.RefreshToken{ID: "r3", DID: a.DID, ExpiresAt: exp}, grace)
	if err != nil || id != "r2" {
		t.Errorf("second rotation of r1 = %q, %v; want r2 again", id, err)
	}
	if _, err := s.RefreshToken(ctx, "r3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("repeat rotation stored a new token: %v", err)
	}
	old, err := s.RefreshToken(ctx, "r1")
	if err != nil || old.ExpiresAt.After(grace) {
		t.Errorf("rotated r1 = %+v, %v; want live until the grace end %v", old, err, grace)
	}
	// After the grace period the old token is gone.
	if _, err := s.RotateRefreshToken(ctx, "r2", store.RefreshToken{ID: "r4", DID: a.DID, ExpiresAt: exp}, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefreshToken(ctx, "r2", store.RefreshToken{ID: "r5", DID: a.DID, ExpiresAt: exp}, time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rotation after the grace period: got %v, want ErrNotFound", err)
	}
	got, err := s.RefreshToken(ctx, "r4")
	if err != nil || got.DID != a.DID {
		t.Errorf("RefreshToken(r4) = %+v, %v", got, err)
	}
	if err := s.RevokeRefreshToken(ctx, "r4"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RefreshToken(ctx, "r4"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoked token is live: %v", err)
	}
}

func updateHandle(s store.Store, did syntax.DID, handle syntax.Handle) error {
	_, err := s.UpdateHandle(ctx, did, handle, nil)
	return err
}

func testDeactivation(t *testing.T, s store.Store) {
	a := newAccount(1)
	mustCreate(t, s, a)
	at := time.Now().UTC().Truncate(time.Millisecond)
	evs, err := s.SetDeactivated(ctx, a.DID, &at, []store.NewEvent{frameEvent(a.DID, "account")})
	if err != nil || len(evs) != 1 {
		t.Fatalf("SetDeactivated = %v, %v", evs, err)
	}
	got, _ := s.AccountByDID(ctx, a.DID)
	if got.Active() || got.Status() != "deactivated" || !got.DeactivatedAt.Equal(at) {
		t.Errorf("after deactivation: %+v", got)
	}
	if _, err := s.SetDeactivated(ctx, a.DID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.AccountByDID(ctx, a.DID); !got.Active() {
		t.Errorf("after reactivation: %+v", got)
	}
	if _, err := s.SetDeactivated(ctx, "did:plc:nobody", nil, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
}

func testPreferences(t *testing.T, s store.Store) {
	a := newAccount(1)
	mustCreate(t, s, a)
	if got, err := s.Preferences(ctx, a.DID); err != nil || string(got) != "[]" {
		t.Errorf("no preferences = %s, %v", got, err)
	}
	for _, prefs := range []string{`[{"$type":"app.bsky.actor.defs#adultContentPref","enabled":true}]`, `[]`} {
		if err := s.PutPreferences(ctx, a.DID, []byte(prefs)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Preferences(ctx, a.DID); string(got) != prefs {
			t.Errorf("preferences = %s, want %s", got, prefs)
		}
	}
}
