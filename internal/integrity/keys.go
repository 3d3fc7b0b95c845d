package integrity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Signer signs checkpoints with an ed25519 private key.
type Signer struct {
	key ed25519.PrivateKey
	id  string
}

// NewSigner wraps key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, id: KeyID(key.Public().(ed25519.PublicKey))}
}

// KeyID returns the id of the signer's public key.
func (s *Signer) KeyID() string { return s.id }

// Public returns the signer's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// String never shows the key.
func (s *Signer) String() string { return "ed25519 signer " + s.id }

// KeyID is the hex of the first 8 bytes of SHA-256 of pub.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// LoadSigner reads a private key file: PEM "PRIVATE KEY" (PKCS#8, what
// `openssl genpkey -algorithm ed25519` writes) or the base64 of a 32-byte
// seed. Errors never include the file's contents.
func LoadSigner(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: not a PKCS#8 private key", path)
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("signing key %s: %T, want ed25519", path, k)
		}
		return NewSigner(ek), nil
	}
	seed, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key %s: neither PEM nor the base64 of a %d-byte seed", path, ed25519.SeedSize)
	}
	return NewSigner(ed25519.NewKeyFromSeed(seed)), nil
}

// LoadPublicKey reads a public key file: PEM "PUBLIC KEY" (PKIX) or the
// base64 of the 32-byte key.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", path, err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key %s: %T, want ed25519", path, k)
		}
		return ek, nil
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %s: neither PEM nor the base64 of a %d-byte key", path, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// GenerateKey writes a new key pair as PEM: <prefix>.key (mode 0600,
// PKCS#8) and <prefix>.pub (PKIX). It refuses to overwrite either file.
func GenerateKey(prefix string) (keyFile, pubFile string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	pder, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", err
	}
	keyFile, pubFile = prefix+".key", prefix+".pub"
	if dir := filepath.Dir(prefix); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return "", "", err
		}
	}
	write := func(name string, mode os.FileMode, blk *pem.Block) error {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		return errors.Join(pem.Encode(f, blk), f.Close())
	}
	if err := write(keyFile, 0o600, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	if err := write(pubFile, 0o644, &pem.Block{Type: "PUBLIC KEY", Bytes: pder}); err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	return keyFile, pubFile, nil
}
