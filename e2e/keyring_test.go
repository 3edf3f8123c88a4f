package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/hearth-pds/hearth/keyring"
	"github.com/hearth-pds/hearth/testenv"
)

// TestKeysEncryptedAtRest runs the binary with HEARTH_KEY_ENCRYPTION_SECRET:
// an account made without the secret has its plain key sealed at the first
// start with it, and one made with it is stored sealed (both read with SQL
// from the database file, and opened here with the secret to prove they
// are the keys of the DID documents); after a restart with the same secret
// the accounts still write commits that verify against their DID
// documents; a wrong or a missing secret stops serve with a message naming
// the variable; and `hearth keys rotate` moves the store to a new secret
// the server then starts with.
func TestKeysEncryptedAtRest(t *testing.T) {
	plcURL := testenv.StartEmbeddedPLC(t)
	secret, other := randomSecret(), randomSecret()
	h := testenv.StartHearth(t, plcURL, "LOG_LEVEL=info")
	c := &client{t: t, base: h.URL, admin: h.AdminPassword}
	invite := c.invite(2)
	early := c.signUp("plain.test", "plain@example.com", "sealed-password", invite)
	earlyPub := plcSigningKey(t, plcURL, early)
	writeAndVerify(t, c, early, earlyPub, "before the secret")
	h.Stop()
	plainKey, err := atcrypto.ParsePrivateBytesK256(storedKey(t, h.DataDir, early))
	if err != nil {
		t.Fatalf("without a secret the key is not stored plain: %v", err)
	}
	if p, _ := plainKey.PublicKey(); !p.Equal(earlyPub) {
		t.Fatal("the plain stored key is not the DID document's")
	}

	h.Env = append(h.Env, "HEARTH_KEY_ENCRYPTION_SECRET="+secret)
	h.Restart(t)
	if !strings.Contains(h.Output(), `"msg":"encrypted stored signing keys with HEARTH_KEY_ENCRYPTION_SECRET","count":1`) {
		t.Errorf("the first start with the secret did not report sealing one key:\n%s", h.Output())
	}
	did := c.signUp("sealed.test", "sealed@example.com", "sealed-password", invite)
	pub := plcSigningKey(t, plcURL, did)
	writeAndVerify(t, c, did, pub, "before a restart")
	writeAndVerify(t, c, early, earlyPub, "once sealed")
	h.Stop()
	checkSealedWith(t, storedKey(t, h.DataDir, early), secret, early, earlyPub)

	stored := storedKey(t, h.DataDir, did)
	if len(stored) == 32 || !keyring.IsSealed(stored) {
		t.Fatalf("stored key is %d bytes (%x...), not sealed", len(stored), stored[:4])
	}
	if k, err := atcrypto.ParsePrivateBytesK256(stored[:32]); err == nil {
		if p, _ := k.PublicKey(); p.Equal(pub) {
			t.Fatal("the stored bytes start with the plain signing key")
		}
	}
	checkSealedWith(t, stored, secret, did, pub)

	h.Restart(t)
	writeAndVerify(t, c, did, pub, "after a restart with the same secret")
	writeAndVerify(t, c, early, earlyPub, "after a restart with the same secret")
	h.Stop()

	for _, tt := range []struct {
		name string
		env  []string
		want string
	}{
		{"wrong secret", append(testenv.WithoutEnv(h.Env, "HEARTH_KEY_ENCRYPTION_SECRET"), "HEARTH_KEY_ENCRYPTION_SECRET="+other),
			"encrypted with a different HEARTH_KEY_ENCRYPTION_SECRET"},
		{"no secret", testenv.WithoutEnv(h.Env, "HEARTH_KEY_ENCRYPTION_SECRET"),
			"HEARTH_KEY_ENCRYPTION_SECRET is not set"},
	} {
		out, err := runHearth(t, tt.env, "serve")
		if err == nil {
			t.Fatalf("%s: serve exited cleanly:\n%s", tt.name, out)
		}
		// The first key in DID order is the one named.
		if !strings.Contains(out, tt.want) || !strings.Contains(out, did) && !strings.Contains(out, early) {
			t.Errorf("%s: serve said\n%s\nwant a refusal naming %s or %s and %q", tt.name, out, did, early, tt.want)
		}
		for _, s := range []string{secret, other} {
			if strings.Contains(out, s) {
				t.Errorf("%s: serve printed a secret", tt.name)
			}
		}
	}
	if got := storedKey(t, h.DataDir, did); !bytes.Equal(got, stored) {
		t.Fatal("a refused start changed the stored key")
	}

	out, err := runHearth(t, append(h.Env, "HEARTH_KEY_ENCRYPTION_SECRET_NEW="+other), "keys", "rotate")
	if err != nil || !strings.Contains(out, "encrypted 2 of 2 signing keys") {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	checkSealedWith(t, storedKey(t, h.DataDir, did), other, did, pub)
	checkSealedWith(t, storedKey(t, h.DataDir, early), other, early, earlyPub)
	h.Env = append(testenv.WithoutEnv(h.Env, "HEARTH_KEY_ENCRYPTION_SECRET"), "HEARTH_KEY_ENCRYPTION_SECRET="+other)
	h.Restart(t)
	writeAndVerify(t, c, did, pub, "after a rotation of the secret")
	writeAndVerify(t, c, early, earlyPub, "after a rotation of the secret")
}

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// writeAndVerify creates a record, then checks the whole repository with
// indigo against the DID document's key.
func writeAndVerify(t *testing.T, c *client, did string, pub atcrypto.PublicKey, when string) {
	t.Helper()
	s := c.login(did, "sealed-password")
	c.mustPost("com.atproto.repo.createRecord", bearer(s.AccessJwt),
		`{"repo":"`+did+`","collection":"app.bsky.feed.post","record":{"text":"`+when+`","createdAt":"2026-12-04T20:00:00.000Z"}}`)
	car := mustXRPCGet(t, c.base, "com.atproto.sync.getRepo", url.Values{"did": {did}})
	if _, err := verifyRepoCAR(car, did, pub); err != nil {
		t.Fatalf("%s: repository does not verify: %v", when, err)
	}
}

// storedKey reads did's signing_key row from the stopped server's file.
func storedKey(t *testing.T, dataDir, did string) []byte {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "hearth.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var key []byte
	if err := db.QueryRow("SELECT private_key FROM signing_key WHERE did = ?", did).Scan(&key); err != nil {
		t.Fatalf("read signing key: %v", err)
	}
	return key
}

// checkSealedWith opens stored with secret and fails unless it is the
// private half of pub.
func checkSealedWith(t *testing.T, stored []byte, secret, did string, pub atcrypto.PublicKey) {
	t.Helper()
	raw, _ := hex.DecodeString(secret)
	s, err := keyring.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := s.Open(did, stored)
	if err != nil {
		t.Fatalf("open the stored key: %v", err)
	}
	k, err := atcrypto.ParsePrivateBytesK256(plain)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := k.PublicKey(); !p.Equal(pub) {
		t.Fatal("the sealed key is not the key of the DID document")
	}
}

// runHearth runs the binary to its end with env and returns its output.
func runHearth(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Binary(t), args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}
