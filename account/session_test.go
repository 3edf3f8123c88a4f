package account

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/store"
)

// loginStore holds one account with one app password: the reads a login
// makes. Any other method panics through the nil embedded interface.
type loginStore struct {
	store.Store
	account store.Account
	app     store.AppPassword
}

func (s *loginStore) find(match bool) (*store.Account, error) {
	if !match {
		return nil, store.ErrNotFound
	}
	a := s.account
	return &a, nil
}

func (s *loginStore) AccountByDID(_ context.Context, did syntax.DID) (*store.Account, error) {
	return s.find(did == s.account.DID)
}

func (s *loginStore) AccountByHandle(_ context.Context, handle syntax.Handle) (*store.Account, error) {
	return s.find(handle == s.account.Handle)
}

func (s *loginStore) AccountByEmail(_ context.Context, email string) (*store.Account, error) {
	return s.find(email == s.account.Email)
}

func (s *loginStore) AppPasswordByHash(_ context.Context, did syntax.DID, hash string) (*store.AppPassword, error) {
	if did != s.app.DID || hash != s.app.PasswordHash {
		return nil, store.ErrNotFound
	}
	ap := s.app
	return &ap, nil
}

func (s *loginStore) PutRefreshToken(context.Context, store.RefreshToken) error { return nil }

// noDocuments is a directory that has no DID documents.
type noDocuments struct{ Identities }

func (noDocuments) Document(context.Context, string) (json.RawMessage, error) {
	return nil, errors.New("no directory")
}

func newLoginService(t *testing.T) *Service {
	t.Helper()
	ctx := context.Background()
	const did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	hash, err := hashPassword(ctx, "right-password")
	if err != nil {
		t.Fatal(err)
	}
	appHash, err := hashAppPassword(ctx, did, "aaaa-bbbb-cccc-dddd")
	if err != nil {
		t.Fatal(err)
	}
	return NewService(&loginStore{
		account: store.Account{DID: syntax.DID(did), Handle: "alice.test", Email: "alice@example.com", PasswordHash: hash},
		app:     store.AppPassword{DID: syntax.DID(did), Name: "phone", PasswordHash: appHash},
	}, Service{Logger: slog.New(slog.DiscardHandler)})
}

// TestCreateSessionEqualWork proves every failed login runs argon2id the
// same number of times, whether or not the identifier names an account.
func TestCreateSessionEqualWork(t *testing.T) {
	s := newLoginService(t)
	tests := []struct {
		name, identifier, password string
	}{
		{"unknown handle", "nobody.test", "right-password"},
		{"unknown email", "nobody@example.com", "right-password"},
		{"unknown DID", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", "right-password"},
		{"unknown handle, app password", "nobody.test", "aaaa-bbbb-cccc-dddd"},
		{"wrong password", "alice.test", "wrong-password"},
		{"wrong password by email", "alice@example.com", "wrong-password"},
		{"wrong password by DID", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "wrong-password"},
	}
	const want = 2
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := argonRuns.Load()
			_, err := s.CreateSession(context.Background(), tt.identifier, tt.password)
			if !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("got error %v, want %v", err, ErrAuthFailed)
			}
			if got := argonRuns.Load() - before; got != want {
				t.Errorf("argon2 runs = %d, want %d", got, want)
			}
		})
	}
}

// TestCreateSessionTiming checks the clock agrees with the run count: the
// median unknown-identifier login is within 10% of the median
// wrong-password one. The two are measured in alternating pairs so a load
// change on a shared machine hits both alike; a noisy attempt is retried.
func TestCreateSessionTiming(t *testing.T) {
	s := newLoginService(t)
	ctx := context.Background()
	timeLogin := func(identifier string) time.Duration {
		start := time.Now()
		if _, err := s.CreateSession(ctx, identifier, "wrong-password"); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("login as %s: got error %v, want %v", identifier, err, ErrAuthFailed)
		}
		return time.Since(start)
	}
	const pairs, attempts, tolerance = 15, 3, 0.10
	var ratio float64
	for range attempts {
		var unknown, wrong []time.Duration
		for i := range pairs {
			if i%2 == 0 {
				unknown = append(unknown, timeLogin("nobody.test"))
				wrong = append(wrong, timeLogin("alice.test"))
			} else {
				wrong = append(wrong, timeLogin("alice.test"))
				unknown = append(unknown, timeLogin("nobody.test"))
			}
		}
		u, w := median(unknown), median(wrong)
		ratio = float64(u) / float64(w)
		t.Logf("median unknown identifier %v, wrong password %v (ratio %.3f)", u, w, ratio)
		if ratio > 1-tolerance && ratio < 1+tolerance {
			return
		}
	}
	t.Errorf("unknown-identifier login takes %.3f times a wrong-password one, want within %.0f%%", ratio, tolerance*100)
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// TestCreateSessionSuccess covers what equal work must not break: the
// account password and an app password still log in.
func TestCreateSessionSuccess(t *testing.T) {
	s := newLoginService(t)
	s.Tokens = &Tokens{Secret: []byte("secret"), ServiceDID: "did:web:pds.test"}
	s.Identities = noDocuments{}
	for _, tc := range []struct {
		password string
		want     Scope
	}{{"right-password", ScopeAccess}, {"aaaa-bbbb-cccc-dddd", ScopeAppPass}} {
		got, err := s.CreateSession(context.Background(), "alice.test", tc.password)
		if err != nil {
			t.Fatalf("login with %q: %v", tc.password, err)
		}
		if got.Scope != tc.want {
			t.Errorf("login with %q: scope %q, want %q", tc.password, got.Scope, tc.want)
		}
	}
}

// hold takes every hashing slot until the test ends.
func hold(t *testing.T) {
	for range cap(hashSlots) {
		hashSlots <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(hashSlots) {
			<-hashSlots
		}
	})
}

// TestHashQueueBounded proves a request waiting for a hashing slot stops
// waiting when its context ends or hashWait passes, runs nothing, and is
// refused with NotEnoughResources.
func TestHashQueueBounded(t *testing.T) {
	hold(t)
	defer func(d time.Duration) { hashWait = d }(hashWait)

	cancelled, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	tests := []struct {
		name  string
		ctx   context.Context
		wait  time.Duration
		cause error
	}{
		{"client gone", cancelled, time.Hour, context.Canceled},
		{"queued too long", context.Background(), 20 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hashWait = tt.wait
			before := argonRuns.Load()
			start := time.Now()
			_, err := checkPassword(tt.ctx, "x", dummyHash)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("waited %v", elapsed)
			}
			if !errors.Is(err, ErrHashBusy) || !errors.Is(err, tt.cause) {
				t.Fatalf("got error %v, want %v wrapping %v", err, ErrHashBusy, tt.cause)
			}
			var re *refusal.Error
			if !errors.As(err, &re) || re.Name != "NotEnoughResources" {
				t.Errorf("refusal = %v, want NotEnoughResources", re)
			}
			if got := argonRuns.Load() - before; got != 0 {
				t.Errorf("argon2 runs = %d, want 0", got)
			}
		})
	}
}
