package file

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Values accepted by Config.StartAt.
const (
	// StartBeginning reads a never-seen file from its first byte.
	StartBeginning = "beginning"
	// StartEnd skips what a never-seen file already holds at startup.
	StartEnd = "end"
)

// Config configures one file collector instance.
type Config struct {
	// Name is the collector instance name, put in Record.Collector and used
	// by the caller to name the checkpoint file. Default "file".
	Name string `koanf:"name"`
	// Paths are filepath.Match globs of the files to read (no "**").
	// Relative patterns are resolved against the working directory at New.
	// Required.
	Paths []string `koanf:"paths"`
	// Exclude are globs removing matches of Paths. A pattern without a path
	// separator is matched against the base name ("*.gz"), otherwise against
	// the absolute path. Optional.
	Exclude []string `koanf:"exclude"`
	// Source names the normalizer for the lines ("nginx"). Required.
	Source string `koanf:"source"`
	// StartAt is where to begin a file present at the first scan that the
	// checkpoint has never seen: "beginning" (default) or "end". Files that
	// appear later (rotation, new logs) are always read from the beginning.
	StartAt string `koanf:"start_at"`
	// PollInterval is how often to re-glob and check files for growth,
	// truncation and rotation. Default 250ms.
	PollInterval time.Duration `koanf:"poll_interval"`
	// BatchLines caps the records handed to one Emit call. Default 5000:
	// with access-log lines of ~200 bytes a batch then closes near
	// BatchBytes, and the broker handles a fifth of the produce requests
	// and record batches it did at 1000 (docs/benchmarks.md).
	BatchLines int `koanf:"batch_lines"`
	// BatchBytes caps the record bytes of one Emit call; a batch closes as
	// soon as it reaches this size, so it may exceed it by one line.
	// Default 1 MiB.
	BatchBytes int `koanf:"batch_bytes"`
	// MaxLineBytes is the longest line emitted whole. A longer line is
	// emitted cut to its first MaxLineBytes bytes with Record.Truncated
	// set, the rest skipped and counted in Stats.TruncatedLines. It also
	// bounds the first-line hash in Record.Stream, so changing it changes
	// the stream ids of files not yet checkpointed. Default 64 KiB.
	MaxLineBytes int `koanf:"max_line_bytes"`
	// CheckpointFile is the JSON file holding read offsets. The caller sets
	// it, normally to <data_dir>/checkpoints/file-<name>.json. Required.
	CheckpointFile string `koanf:"checkpoint_file"`
	// Host is put in Record.Host. Default os.Hostname().
	Host string `koanf:"host"`
	// ReadGzip reads matched files named *.gz by decompressing them, once
	// each (see the package doc). When false, *.gz files are ignored.
	ReadGzip bool `koanf:"read_gzip"`
	// MaxGzipBytes bounds the decompressed size of one .gz file; reading
	// stops with an error naming the file past it. Default 4 GiB.
	MaxGzipBytes int64 `koanf:"max_gzip_bytes"`
}

// DefaultConfig returns a Config with every optional field at its default.
func DefaultConfig() Config {
	return Config{
		Name:         "file",
		StartAt:      StartBeginning,
		PollInterval: 250 * time.Millisecond,
		BatchLines:   5000,
		BatchBytes:   1 << 20,
		MaxLineBytes: 64 << 10,
		MaxGzipBytes: 4 << 30,
	}
}

// Validate reports every problem in cfg, each naming its key.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cfg.Name == "" {
		bad("name: required")
	}
	if len(cfg.Paths) == 0 {
		bad("paths: required")
	}
	for i, p := range cfg.Paths {
		if p == "" {
			bad("paths[%d]: empty pattern", i)
		} else if _, err := filepath.Match(p, ""); err != nil {
			bad("paths[%d]: %q: %w", i, p, err)
		}
	}
	for i, p := range cfg.Exclude {
		if _, err := filepath.Match(p, ""); err != nil || p == "" {
			bad("exclude[%d]: invalid pattern %q", i, p)
		}
	}
	if cfg.Source == "" {
		bad("source: required")
	}
	if cfg.StartAt != StartBeginning && cfg.StartAt != StartEnd {
		bad("start_at: must be %q or %q, got %q", StartBeginning, StartEnd, cfg.StartAt)
	}
	if cfg.PollInterval <= 0 {
		bad("poll_interval: must be positive, got %s", cfg.PollInterval)
	}
	if cfg.BatchLines <= 0 {
		bad("batch_lines: must be positive, got %d", cfg.BatchLines)
	}
	if cfg.BatchBytes <= 0 {
		bad("batch_bytes: must be positive, got %d", cfg.BatchBytes)
	}
	if cfg.MaxLineBytes <= 0 {
		bad("max_line_bytes: must be positive, got %d", cfg.MaxLineBytes)
	}
	if cfg.MaxGzipBytes <= 0 {
		bad("max_gzip_bytes: must be positive, got %d", cfg.MaxGzipBytes)
	}
	if cfg.CheckpointFile == "" {
		bad("checkpoint_file: required")
	}
	return errors.Join(errs...)
}
