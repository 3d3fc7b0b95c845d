package ingest

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// WriteCheckpoint replaces the JSON file at path with v atomically: a crash
// leaves either the old or the new checkpoint, never a torn one. The temp
// file is synced before the rename and the directory after it, so the
// rename itself survives power loss. Collectors call it only after Emit
// returned nil for what the checkpoint covers.
func WriteCheckpoint(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after a successful rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
