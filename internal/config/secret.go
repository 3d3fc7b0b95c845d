package config

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Secret is a string that never prints: fmt, JSON, YAML and slog all show
// "<secret>". Use Value to read it.
type Secret string

const redacted = "<secret>"

// Value returns the secret itself. Call it only where the secret is sent.
func (s Secret) Value() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

// String implements fmt.Stringer with a redacted form.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer with a redacted form.
func (s Secret) GoString() string { return s.String() }

// Format makes every fmt verb print the redacted form.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalText redacts the secret in JSON, YAML and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// ResolveSecret returns inline if set, else the trimmed contents of file if
// that is set. It is how every `x` / `x_file` pair is read; key names the
// pair in errors.
func ResolveSecret(key string, inline Secret, file string) (Secret, error) {
	if inline != "" && file != "" {
		return "", fmt.Errorf("%s: set either %s or %s_file, not both", key, key, key)
	}
	if file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_file: %w", key, err)
	}
	return Secret(strings.TrimSpace(string(b))), nil
}
