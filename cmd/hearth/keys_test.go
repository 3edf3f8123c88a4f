package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/hearth-pds/hearth/keyring"
	"github.com/hearth-pds/hearth/store"
	"github.com/hearth-pds/hearth/store/sqlite"
	"github.com/hearth-pds/hearth/store/storetest"
)

// TestKeysRotate runs `hearth keys rotate` through a store's life: seal a
// plain store, rotate to a new secret, rerun, refuse a wrong old secret
// without touching anything, and decrypt back to the original plain keys.
func TestKeysRotate(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	plain := map[string]*atcrypto.PrivateKeyK256{}
	for i := range 3 {
		did := fmt.Sprintf("did:plc:rotate%018d", i)
		key, _ := atcrypto.GeneratePrivateKeyK256()
		plain[did] = key
		if _, err := st.CreateAccount(ctx, store.NewAccount{
			Account:    store.Account{DID: syntax.DID(did), Handle: syntax.Handle(fmt.Sprintf("r%d.test", i)), Email: fmt.Sprintf("r%d@example.com", i), PasswordHash: "x", CreatedAt: time.Now()},
			SigningKey: key.Bytes(), RootCID: storetest.CIDOf(did), Rev: "2222222222222",
		}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	rotationKey, _ := atcrypto.GeneratePrivateKeyK256()
	secret := func(b byte) string { return strings.Repeat(hex.EncodeToString([]byte{b}), 32) }
	a, b, c := secret(0xa1), secret(0xb2), secret(0xc3)
	rotateIn := func(dir, old, new string, args ...string) (string, error) {
		env := map[string]string{
			"PDS_HOSTNAME":       "pds.example.com",
			"PDS_JWT_SECRET":     "jwt",
			"PDS_ADMIN_PASSWORD": "admin",
			"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": hex.EncodeToString(rotationKey.Bytes()),
			"PDS_DATA_DIRECTORY":                        dir,
			"HEARTH_KEY_ENCRYPTION_SECRET":              old,
			"HEARTH_KEY_ENCRYPTION_SECRET_NEW":          new,
		}
		var out bytes.Buffer
		err := keys(ctx, append([]string{"rotate"}, args...), func(k string) string { return env[k] }, nil, &out)
		for _, s := range []string{a, b, c} {
			if strings.Contains(out.String(), s) || err != nil && strings.Contains(err.Error(), s) {
				t.Fatalf("rotate printed a secret: %q %v", out.String(), err)
			}
		}
		return out.String(), err
	}
	rotate := func(old, new string, args ...string) (string, error) { return rotateIn(dir, old, new, args...) }
	// stored reads every key as a server with secret would, and fails
	// unless each is the original key, sealed or not as want says.
	stored := func(secret string, wantSealed bool) {
		t.Helper()
		st, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var sealer *keyring.Sealer
		if secret != "" {
			raw, _ := hex.DecodeString(secret)
			sealer, _ = keyring.NewSealer(raw)
		}
		kr := keyring.New(st, sealer)
		for did, want := range plain {
			raw, _ := st.SigningKey(ctx, syntax.DID(did))
			if keyring.IsSealed(raw) != wantSealed {
				t.Errorf("%s: sealed %v, want %v", did, !wantSealed, wantSealed)
			}
			got, err := kr.SigningKey(ctx, did)
			if err != nil || !got.Equal(want) {
				t.Errorf("%s: %v", did, err)
			}
		}
	}

	tests := []struct {
		name       string
		old, new   string
		args       []string
		wantOut    string
		wantErr    string
		readWith   string
		wantSealed bool
	}{
		{"no new secret", "", "", nil, "", "HEARTH_KEY_ENCRYPTION_SECRET_NEW is not set", "", false},
		{"new secret and --plain", "", a, []string{"--plain"}, "", "choose one", "", false},
		{"new secret not hex", "", "zz", nil, "", "HEARTH_KEY_ENCRYPTION_SECRET_NEW is not 32 or more random bytes in hex", "", false},
		{"seal a plain store", "", a, nil, "encrypted 3 of 3 signing keys", "", a, true},
		{"rotate", a, b, nil, "encrypted 3 of 3 signing keys", "", b, true},
		{"rerun", a, b, nil, "encrypted 0 of 3 signing keys", "", b, true},
		{"wrong old secret", c, a, nil, "", "nothing changed: signing key of did:plc:rotate", b, true},
		{"no old secret", "", a, nil, "", "HEARTH_KEY_ENCRYPTION_SECRET is not set", b, true},
		{"decrypt", b, "", []string{"--plain"}, "decrypted 3 of 3 signing keys", "", "", false},
	}
	for _, tt := range tests {
		out, err := rotate(tt.old, tt.new, tt.args...)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Fatalf("%s: error %v, want %q", tt.name, err, tt.wantErr)
		case tt.wantErr == "" && err != nil:
			t.Fatalf("%s: %v", tt.name, err)
		case !strings.Contains(out, tt.wantOut):
			t.Fatalf("%s: printed %q, want %q", tt.name, out, tt.wantOut)
		}
		stored(tt.readWith, tt.wantSealed)
		if t.Failed() {
			t.Fatalf("after %s", tt.name)
		}
	}

	if _, err := rotateIn(t.TempDir(), "", a); err == nil || !strings.Contains(err.Error(), "no store at") {
		t.Errorf("rotate of a directory without a store: %v", err)
	}
}
