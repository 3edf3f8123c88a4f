package interop

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/mr-tron/base58"

	"github.com/hearth-pds/hearth/config"
	"github.com/hearth-pds/hearth/testenv"
)

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", filepath.Base(path), err)
	}
}

// TestCryptoVectorFilesCovered fails when the crypto folder gains a file no
// test reads.
func TestCryptoVectorFilesCovered(t *testing.T) {
	dir := testenv.InteropVectors(t, "crypto")
	covered := map[string]bool{"signature-fixtures.json": true, "w3c_didkey_K256.json": true, "w3c_didkey_P256.json": true}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !covered[e.Name()] {
			t.Errorf("crypto/%s is not covered by any test", e.Name())
		}
	}
}

type signatureVector struct {
	Comment            string   `json:"comment"`
	MessageBase64      string   `json:"messageBase64"`
	Algorithm          string   `json:"algorithm"`
	DIDDocSuite        string   `json:"didDocSuite"`
	PublicKeyDID       string   `json:"publicKeyDid"`
	PublicKeyMultibase string   `json:"publicKeyMultibase"`
	SignatureBase64    string   `json:"signatureBase64"`
	ValidSignature     bool     `json:"validSignature"`
	Tags               []string `json:"tags"`
}

// TestSignatureVectors checks signature verification as atproto defines it:
// raw 64-byte (r||s) ECDSA signatures over SHA-256, K-256 and P-256, with
// low-S required. High-S and DER-encoded signatures of the right message
// must be rejected; for high-S we also check that the lenient verifier
// (used only for JWTs) accepts it, which proves the rejection is for the
// reason the vector names and not some other.
func TestSignatureVectors(t *testing.T) {
	var vectors []signatureVector
	readJSON(t, filepath.Join(testenv.InteropVectors(t, "crypto"), "signature-fixtures.json"), &vectors)
	if len(vectors) == 0 {
		t.Fatal("no signature vectors")
	}
	for _, v := range vectors {
		t.Run(v.Comment, func(t *testing.T) {
			msg := decodeB64(t, "message", v.MessageBase64)
			sig := decodeB64(t, "signature", v.SignatureBase64)

			fromDID, err := atcrypto.ParsePublicDIDKey(v.PublicKeyDID)
			if err != nil {
				t.Fatalf("parse did:key: %v", err)
			}
			// publicKeyMultibase is the older DID-document form: base58btc
			// of the compressed key with no multicodec prefix; the suite says
			// which curve it is.
			raw, err := base58.Decode(strings.TrimPrefix(v.PublicKeyMultibase, "z"))
			if err != nil || !strings.HasPrefix(v.PublicKeyMultibase, "z") {
				t.Fatalf("publicKeyMultibase is not base58btc: %v", err)
			}
			var fromBytes atcrypto.PublicKey
			switch v.DIDDocSuite {
			case "EcdsaSecp256r1VerificationKey2019":
				fromBytes, err = atcrypto.ParsePublicBytesP256(raw)
			case "EcdsaSecp256k1VerificationKey2019":
				fromBytes, err = atcrypto.ParsePublicBytesK256(raw)
			default:
				t.Fatalf("unknown didDocSuite %q", v.DIDDocSuite)
			}
			if err != nil {
				t.Fatalf("parse %s key bytes: %v", v.DIDDocSuite, err)
			}
			if !fromDID.Equal(fromBytes) {
				t.Error("did:key and publicKeyMultibase name different keys")
			}
			if got := fromBytes.DIDKey(); got != v.PublicKeyDID {
				t.Errorf("did:key re-encoding = %s, want %s", got, v.PublicKeyDID)
			}

			for name, key := range map[string]atcrypto.PublicKey{"did:key": fromDID, "multibase": fromBytes} {
				err := key.HashAndVerify(msg, sig)
				switch {
				case v.ValidSignature && err != nil:
					t.Errorf("%s key: valid signature rejected: %v", name, err)
				case !v.ValidSignature && err == nil:
					t.Errorf("%s key: invalid signature (%v) accepted", name, v.Tags)
				}
				if err := key.HashAndVerify(append([]byte("x"), msg...), sig); err == nil {
					t.Errorf("%s key: signature verified over a different message", name)
				}
			}

			for _, tag := range v.Tags {
				switch tag {
				case "high-s":
					if err := fromDID.HashAndVerifyLenient(msg, sig); err != nil {
						t.Errorf("high-S signature rejected even by the lenient verifier: %v", err)
					}
				case "der-encoded":
					if len(sig) == 64 {
						t.Errorf("DER vector has a 64-byte signature")
					}
					if err := fromDID.HashAndVerifyLenient(msg, sig); err == nil {
						t.Error("DER-encoded signature accepted by the lenient verifier")
					}
				default:
					t.Errorf("unknown tag %q: decide what it means and test it", tag)
				}
			}
		})
	}
}

func decodeB64(t *testing.T, what, s string) []byte {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %s: %v", what, err)
	}
	return b
}

type didKeyVector struct {
	PrivateKeyBytesHex    string `json:"privateKeyBytesHex"`
	PrivateKeyBytesBase58 string `json:"privateKeyBytesBase58"`
	PublicDIDKey          string `json:"publicDidKey"`
}

// TestDIDKeyVectors checks key pairs end to end: private key bytes → public
// key → did:key must give the vector's did:key; parsing that did:key must
// give the same key, whose multibase form round-trips; and the pair must
// sign and verify (low-S, as the PDS signs commits and PLC operations).
func TestDIDKeyVectors(t *testing.T) {
	dir := testenv.InteropVectors(t, "crypto")
	for _, batch := range []struct {
		file  string
		parse func([]byte) (atcrypto.PrivateKey, error)
	}{
		{"w3c_didkey_K256.json", func(b []byte) (atcrypto.PrivateKey, error) { return atcrypto.ParsePrivateBytesK256(b) }},
		{"w3c_didkey_P256.json", func(b []byte) (atcrypto.PrivateKey, error) { return atcrypto.ParsePrivateBytesP256(b) }},
	} {
		var vectors []didKeyVector
		readJSON(t, filepath.Join(dir, batch.file), &vectors)
		if len(vectors) == 0 {
			t.Fatalf("%s: no vectors", batch.file)
		}
		for _, v := range vectors {
			t.Run(batch.file+"/"+v.PublicDIDKey, func(t *testing.T) {
				raw, err := privateBytes(v)
				if err != nil {
					t.Fatalf("decode private key: %v", err)
				}
				priv, err := batch.parse(raw)
				if err != nil {
					t.Fatalf("parse private key: %v", err)
				}
				pub, err := priv.PublicKey()
				if err != nil {
					t.Fatalf("public key: %v", err)
				}
				if got := pub.DIDKey(); got != v.PublicDIDKey {
					t.Errorf("did:key = %s, want %s", got, v.PublicDIDKey)
				}

				parsed, err := atcrypto.ParsePublicDIDKey(v.PublicDIDKey)
				if err != nil {
					t.Fatalf("parse did:key: %v", err)
				}
				if !parsed.Equal(pub) {
					t.Error("parsed did:key is not the key derived from the private key")
				}
				mb := parsed.Multibase()
				if want := strings.TrimPrefix(v.PublicDIDKey, "did:key:"); mb != want {
					t.Errorf("multibase = %s, want the did:key suffix %s", mb, want)
				}
				again, err := atcrypto.ParsePublicMultibase(mb)
				if err != nil || !again.Equal(pub) {
					t.Errorf("multibase round trip: %v", err)
				}

				msg := []byte("hearth interop " + v.PublicDIDKey)
				sig, err := priv.HashAndSign(msg)
				if err != nil {
					t.Fatalf("sign: %v", err)
				}
				if err := parsed.HashAndVerify(msg, sig); err != nil {
					t.Errorf("strict verification of our own signature: %v", err)
				}
			})
		}
	}
}

func privateBytes(v didKeyVector) ([]byte, error) {
	switch {
	case v.PrivateKeyBytesHex != "":
		return hex.DecodeString(v.PrivateKeyBytesHex)
	case v.PrivateKeyBytesBase58 != "":
		return base58.Decode(v.PrivateKeyBytesBase58)
	}
	return nil, errors.New("vector has no private key")
}

// TestRotationKeyFromConfig feeds the K-256 vectors through
// PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX, the format the official
// installer writes, and checks config yields the vector's did:key: the key
// an operator's existing DIDs list as rotation key.
func TestRotationKeyFromConfig(t *testing.T) {
	var vectors []didKeyVector
	readJSON(t, filepath.Join(testenv.InteropVectors(t, "crypto"), "w3c_didkey_K256.json"), &vectors)
	for _, v := range vectors {
		env := map[string]string{
			"PDS_HOSTNAME":       "pds.example.com",
			"PDS_JWT_SECRET":     "j",
			"PDS_ADMIN_PASSWORD": "a",
			"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": v.PrivateKeyBytesHex,
		}
		c, _, err := config.FromEnv(func(k string) string { return env[k] }, nil)
		if err != nil {
			t.Fatalf("config.FromEnv: %v", err)
		}
		pub, err := c.Secrets.PLCRotationKey.PublicKey()
		if err != nil {
			t.Fatalf("public key: %v", err)
		}
		if got := pub.DIDKey(); got != v.PublicDIDKey {
			t.Errorf("rotation key did:key = %s, want %s", got, v.PublicDIDKey)
		}
	}
}
