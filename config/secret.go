package config

import (
	"fmt"
	"io"
	"log/slog"
)

// redacted is what a set secret prints as, everywhere.
const redacted = "[redacted]"

// Secret is a configuration value that must never reach a log line, an error
// message or a debug dump: passwords, HMAC secrets, API keys, URLs with
// credentials in them.
//
// It is a string underneath, so code that needs the value converts it
// explicitly (string(s)), which is easy to spot in review. Every way of
// printing it (fmt verbs including %#v, slog, JSON, text marshalling) prints
// "[redacted]" when it is set and "" when it is not, so an operator can still
// see whether a secret was configured.
type Secret string

// String implements fmt.Stringer without revealing the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Format implements fmt.Formatter so that every verb, %#v and %x included,
// prints the redacted form; a Stringer alone does not cover %#v.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps secrets out of JSON and other text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s != "" }

// Compile-time guards: these are the interfaces that keep a Secret from printing.
var (
	_ fmt.Stringer   = Secret("")
	_ fmt.Formatter  = Secret("")
	_ slog.LogValuer = Secret("")
)
