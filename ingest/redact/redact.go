package redact

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/internal/config"
)

// Token types, as normalize.ParseFingerprint reads them.
const (
	TypeAPIKey    = "apikey"
	TypeBearer    = "bearer"
	TypeJWT       = "jwt"
	TypeBasic     = "basic"
	TypePassword  = "password"
	TypeSession   = "session"
	TypeSignature = "signature"
)

// prefix starts every token; it equals normalize.FingerprintPrefix (not
// imported: collectors do not depend on the normalize stage).
const prefix = "twfp_"

// hexLen is the length of a token's hex part (normalize.FingerprintHexLen).
const hexLen = 24

// macPrefix holds "type:" per type, written before the secret.
var macPrefix = map[string][]byte{}

func init() {
	for _, t := range []string{TypeAPIKey, TypeBearer, TypeJWT, TypeBasic, TypePassword, TypeSession, TypeSignature} {
		macPrefix[t] = []byte(t + ":")
	}
}

// maxClaim caps each JWT claim copied into a token, in bytes.
const maxClaim = 64

// minKeyLen is the shortest key accepted, in bytes.
const minKeyLen = 16

// Config configures redaction. Redaction is always on; only the key and the
// extra names are configurable.
type Config struct {
	// Key is the HMAC key of the fingerprints. Every collector that should
	// produce matching fingerprints for one credential must share it; at
	// least 16 bytes. Required (or KeyFile).
	Key config.Secret `koanf:"key"`
	// KeyFile reads Key from a file (trimmed); see LoadOrCreateKey.
	KeyFile string `koanf:"key_file"`
	// ExtraParams are more query parameter / key=value names whose values
	// are secrets (type apikey), matched case-insensitively, '_' and '-'
	// alike.
	ExtraParams []string `koanf:"query_params"`
	// ExtraHeaders are more header or JSON field names whose values are
	// secrets (type apikey), matched like ExtraParams.
	ExtraHeaders []string `koanf:"headers"`
}

// Validate reports every problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Key == "" && c.KeyFile == "":
		errs = append(errs, errors.New("key: required (or key_file)"))
	case c.Key != "" && c.KeyFile != "":
		errs = append(errs, errors.New("key: set either key or key_file, not both"))
	case c.Key != "" && len(c.Key.Value()) < minKeyLen:
		errs = append(errs, fmt.Errorf("key: shorter than %d bytes", minKeyLen))
	}
	for i, n := range c.ExtraParams {
		if strings.TrimSpace(n) == "" {
			errs = append(errs, fmt.Errorf("query_params[%d]: empty name", i))
		}
	}
	for i, n := range c.ExtraHeaders {
		if strings.TrimSpace(n) == "" {
			errs = append(errs, fmt.Errorf("headers[%d]: empty name", i))
		}
	}
	return errors.Join(errs...)
}

// Redactor replaces secrets in lines with fingerprint tokens. It is safe
// for concurrent use.
type Redactor struct {
	macs    sync.Pool // hash.Hash: HMAC-SHA256 keyed with the key
	params  map[string]struct{}
	headers map[string]struct{}
}

// New validates cfg, reads the key and returns a Redactor.
func New(cfg Config) (*Redactor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}
	key, err := config.ResolveSecret("key", cfg.Key, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}
	if len(key.Value()) < minKeyLen {
		return nil, fmt.Errorf("redact: key: shorter than %d bytes", minKeyLen)
	}
	k := []byte(key.Value())
	r := &Redactor{params: names(cfg.ExtraParams), headers: names(cfg.ExtraHeaders)}
	r.macs.New = func() any { return hmac.New(sha256.New, k) }
	return r, nil
}

func names(list []string) map[string]struct{} {
	if len(list) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(list))
	for _, n := range list {
		var buf [maxName]byte
		if b, ok := normName(buf[:0], []byte(strings.TrimSpace(n))); ok {
			m[string(b)] = struct{}{}
		}
	}
	return m
}

// LoadOrCreateKey returns the key stored in path, creating it first (32
// random bytes, hex, mode 0600, parent directories 0700) if the file does
// not exist. Two processes racing to create it end up with the same key.
func LoadOrCreateKey(path string) (config.Secret, error) {
	if b, err := os.ReadFile(path); err == nil {
		return keyFrom(path, b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("redact key %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("redact key %s: %w", path, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("redact key %s: %w", path, err)
	}
	key := hex.EncodeToString(raw[:])
	// Write a temp file, fsync it, then link it into place: the key file is
	// either absent or complete, and a concurrent creator's link fails so
	// both read the one that won.
	tmp, err := os.CreateTemp(dir, ".fingerprint-key-*")
	if err != nil {
		return "", fmt.Errorf("redact key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("redact key %s: %w", path, err)
	}
	if _, err := tmp.WriteString(key + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("redact key %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("redact key %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("redact key %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("redact key %s: %w", path, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("redact key %s: %w", path, err)
		}
		return keyFrom(path, b)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the link durable; best effort on odd file systems
		d.Close()
	}
	return config.Secret(key), nil
}

func keyFrom(path string, b []byte) (config.Secret, error) {
	k := strings.TrimSpace(string(b))
	if len(k) < minKeyLen {
		return "", fmt.Errorf("redact key %s: shorter than %d bytes", path, minKeyLen)
	}
	return config.Secret(k), nil
}

// appendToken appends the token for secret of type typ. A secret shaped
// like a JWT becomes a jwt token whatever typ says, so a JWT has one
// fingerprint whether it came in a header, a query parameter or a cookie.
func (r *Redactor) appendToken(dst []byte, typ string, secret []byte) []byte {
	payload, isJWT := jwtPayload(secret)
	if isJWT {
		typ = TypeJWT
	}
	var canon [128]byte
	s := unescape(canon[:0], secret)
	h := r.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(macPrefix[typ])
	h.Write(s)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	r.macs.Put(h)
	dst = append(dst, prefix...)
	dst = append(dst, typ...)
	dst = append(dst, '_')
	dst = hex.AppendEncode(dst, sum[:hexLen/2])
	if isJWT {
		dst = appendClaims(dst, payload)
	}
	return dst
}

// appendClaims appends ".<base64url JSON>" of the public claims of a JWT
// payload, or nothing when it has none.
func appendClaims(dst, payload []byte) []byte {
	raw, err := base64.RawURLEncoding.AppendDecode(nil, trimPad(payload))
	if err != nil {
		return dst
	}
	var in struct {
		Iss      any `json:"iss"`
		Sub      any `json:"sub"`
		ClientID any `json:"client_id"`
		Azp      any `json:"azp"`
	}
	if json.Unmarshal(raw, &in) != nil {
		return dst
	}
	out := publicClaims{Iss: claim(in.Iss), Sub: claim(in.Sub), ClientID: claim(in.ClientID)}
	if out.ClientID == "" {
		out.ClientID = claim(in.Azp)
	}
	if out == (publicClaims{}) {
		return dst
	}
	js, err := json.Marshal(out)
	if err != nil {
		return dst
	}
	dst = append(dst, '.')
	return base64.RawURLEncoding.AppendEncode(dst, js)
}

// publicClaims is what a jwt token carries after its fingerprint, the
// JSON normalize.ParseFingerprint reads.
type publicClaims struct {
	Iss      string `json:"iss,omitempty"`
	Sub      string `json:"sub,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

// claim returns v if it is a string, cut to maxClaim bytes on a rune
// boundary.
func claim(v any) string {
	s, _ := v.(string)
	if len(s) <= maxClaim {
		return strings.ToValidUTF8(s, "")
	}
	s = s[:maxClaim]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func trimPad(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == '=' {
		b = b[:len(b)-1]
	}
	return b
}
