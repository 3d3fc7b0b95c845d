package file

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/trailwatch/trailwatch/ingest"
)

// checkpointVersion is bumped when the file format changes incompatibly.
const checkpointVersion = 1

// checkpoint is the on-disk form of the read positions.
type checkpoint struct {
	Version int `json:"version"`
	// Files maps a file identity ("dev:inode") to its position.
	Files map[string]position `json:"files"`
	// Retired remembers files no longer tracked, oldest first, so that a
	// new file reusing one's inode gets a new stream (see retire).
	Retired []retired `json:"retired,omitempty"`
	// Gzip maps the identity of each .gz file seen to how far it was read.
	Gzip map[string]gzPosition `json:"gzip,omitempty"`
}

// gzPosition is where reading of one .gz file stands.
type gzPosition struct {
	// Path is where the file was last seen.
	Path string `json:"path"`
	// Offset is the decompressed offset after the last line acknowledged.
	Offset int64 `json:"offset"`
	// Size and ModTime (Unix nanoseconds) are the compressed file's, when
	// it was last checked; a change means another file took its inode.
	Size    int64 `json:"size"`
	ModTime int64 `json:"mtime"`
	// Fingerprint is the hex SHA-256 of the first FingerprintLen bytes of
	// the compressed file.
	Fingerprint    string `json:"fingerprint"`
	FingerprintLen int    `json:"fingerprint_len"`
	// Stream is the Record.Stream of its lines, "" before reading began.
	Stream string `json:"stream,omitempty"`
	// Done reports that every line was emitted (or skipped by start_at).
	Done bool `json:"done,omitempty"`
	// Failed reports that decompression failed; the file is retried only
	// once its size or mtime changes.
	Failed bool `json:"failed,omitempty"`
}

// maxRetired bounds checkpoint.Retired; the oldest entries are forgotten.
const maxRetired = 512

// retired is what is kept of a file that is no longer tracked.
type retired struct {
	// ID is the file identity, "dev:inode".
	ID string `json:"id"`
	// Gen is the reset generation the file had.
	Gen int `json:"gen"`
	// Fingerprint is the first 16 hex digits of the head fingerprint.
	Fingerprint string `json:"fp"`
	// FingerprintLen is how many head bytes Fingerprint covers.
	FingerprintLen int `json:"fp_len"`
	// Stream and Offset are the file's Record.Stream and committed offset,
	// so that a compressed copy of it (.gz) resumes where it stopped.
	Stream string `json:"stream,omitempty"`
	Offset int64  `json:"offset,omitempty"`
}

// position is where reading of one file stands.
type position struct {
	// Path is where the file was last seen.
	Path string `json:"path"`
	// Offset is the byte after the last line acknowledged by Emit.
	Offset int64 `json:"offset"`
	// Size is the file size seen when the checkpoint was written.
	Size int64 `json:"size_at_checkpoint"`
	// Fingerprint is the hex SHA-256 of the first FingerprintLen bytes.
	Fingerprint string `json:"fingerprint"`
	// FingerprintLen is how many head bytes Fingerprint covers (<= 1 KiB).
	FingerprintLen int `json:"fingerprint_len"`
	// Gen is the reset generation: how many times this dev:inode was seen
	// truncated or holding other content, each time read again from 0.
	Gen int `json:"gen"`
	// Stream is the Record.Stream of the file's lines, "" until its first
	// line was read. Stored so a resumed file keeps it without re-reading.
	Stream string `json:"stream,omitempty"`
}

// loadCheckpoint reads path. A missing file is an empty checkpoint; a
// corrupt one is an error, because guessing would either re-send or skip
// whole files.
func loadCheckpoint(path string) (checkpoint, error) {
	cp := checkpoint{Version: checkpointVersion, Files: map[string]position{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cp, nil
	}
	if err != nil {
		return cp, fmt.Errorf("read checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, fmt.Errorf("checkpoint %s is corrupt (fix or delete it): %w", path, err)
	}
	if cp.Version != checkpointVersion {
		return cp, fmt.Errorf("checkpoint %s: unsupported version %d", path, cp.Version)
	}
	if cp.Files == nil {
		cp.Files = map[string]position{}
	}
	return cp, nil
}

// saveCheckpoint replaces path atomically: a crash leaves either the old or
// the new checkpoint, never a torn one. The temp file is synced before the
// rename and the directory after it, so the rename itself survives power
// loss.
func saveCheckpoint(path string, cp checkpoint) error {
	return ingest.WriteCheckpoint(path, cp)
}
