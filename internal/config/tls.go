package config

import (
	"crypto/x509"
	"fmt"
	"os"
)

// LoadCAPool reads a PEM bundle of certificate authorities. The error names
// the file; a file without any certificate is an error too.
func LoadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", path)
	}
	return pool, nil
}
