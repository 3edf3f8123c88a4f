package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// secrets are the values an operator must make up before the first start.
type secrets struct {
	JWTSecret      string `json:"jwtSecret"`
	AdminPassword  string `json:"adminPassword"`
	RotationKeyHex string `json:"rotationKeyHex"`
}

func newSecrets() (secrets, error) {
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		return secrets{}, fmt.Errorf("generate rotation key: %w", err)
	}
	return secrets{
		JWTSecret:      randomHex(16),
		AdminPassword:  randomHex(16),
		RotationKeyHex: hex.EncodeToString(key.Bytes()),
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// keygen prints env-file lines with fresh secrets, replacing the openssl
// pipelines of the official installer.
func keygen(w io.Writer) error {
	s, err := newSecrets()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "PDS_JWT_SECRET=%s\nPDS_ADMIN_PASSWORD=%s\nPDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX=%s\n",
		s.JWTSecret, s.AdminPassword, s.RotationKeyHex)
	return nil
}
