package s3

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

// checkpointVersion is bumped when the file format changes incompatibly.
const checkpointVersion = 1

// maxFailed bounds checkpoint.Failed; the oldest entries are forgotten
// (they are in the logs, and counted).
const maxFailed = 1000

// checkpoint is the on-disk form of where the collector stands.
type checkpoint struct {
	Version int `json:"version"`
	// Bucket and Prefix are what the cursor is about; a checkpoint for
	// another bucket or prefix is refused rather than misapplied.
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
	// Cursor is the last key of the settled range: every key sorting at
	// or before it is done (read, or failed) and will not be listed again.
	Cursor string `json:"cursor"`
	// Done holds the keys after Cursor already read, with their ETag, so
	// re-listing them does not read them again; a key listed with another
	// ETag was rewritten and is read again as a new stream.
	Done map[string]string `json:"done,omitempty"`
	// InFlight is the object being read when the checkpoint was written,
	// with how far Emit acknowledged it (lines mode).
	InFlight *inFlight `json:"in_flight,omitempty"`
	// Failed records objects given up on, with the reason, newest last.
	// They count as done.
	Failed []failure `json:"failed,omitempty"`
}

// inFlight is a partly read object.
type inFlight struct {
	Key  string `json:"key"`
	ETag string `json:"etag"`
	// Offset is the decompressed byte offset after the last line Emit
	// acknowledged: reading resumes there.
	Offset int64 `json:"offset"`
}

// failure is an object the collector gave up on.
type failure struct {
	Key    string    `json:"key"`
	ETag   string    `json:"etag"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// loadCheckpoint reads path. A missing file is an empty checkpoint; a
// corrupt one is an error, because guessing would either re-send or skip
// whole objects.
func loadCheckpoint(path string) (checkpoint, error) {
	cp := checkpoint{Version: checkpointVersion, Done: map[string]string{}}
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
	if cp.Done == nil {
		cp.Done = map[string]string{}
	}
	return cp, nil
}

// saveCheckpoint replaces path atomically: a crash leaves either the old or
// the new checkpoint, never a torn one. The temp file is synced before the
// rename and the directory after it, so the rename survives power loss.
func saveCheckpoint(path string, cp *checkpoint) error {
	return ingest.WriteCheckpoint(path, cp)
}
