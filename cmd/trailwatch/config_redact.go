package main

import (
	"fmt"
	"path/filepath"

	"github.com/trailwatch/trailwatch/ingest/redact"
)

// fingerprintKeyName is the default fingerprint key file in the data dir.
const fingerprintKeyName = "fingerprint.key"

// defaultRedact fills collect.redact's key_file when no key is configured:
// <data_dir>/fingerprint.key, created on first run.
func defaultRedact(rc *redact.Config, dataDir string) {
	if rc.Key == "" && rc.KeyFile == "" {
		rc.KeyFile = filepath.Join(dataDir, fingerprintKeyName)
	}
}

// newRedactor builds the redactor every collector's records pass through.
// The default key file is created (0600) if missing; a key_file the user
// named must exist.
func newRedactor(rc redact.Config, dataDir string) (*redact.Redactor, error) {
	if rc.Key == "" && rc.KeyFile == filepath.Join(dataDir, fingerprintKeyName) {
		if _, err := redact.LoadOrCreateKey(rc.KeyFile); err != nil {
			return nil, fmt.Errorf("collect.redact.key_file: %w", err)
		}
	}
	r, err := redact.New(rc)
	if err != nil {
		return nil, fmt.Errorf("collect.redact: %w", err)
	}
	return r, nil
}
