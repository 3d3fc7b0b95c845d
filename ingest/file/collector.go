package file

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

// Collector tails files matched by globs. Build it with New.
type Collector struct {
	cfg      Config
	log      *slog.Logger
	patterns []string // Config.Paths made absolute
	excludes []string // Config.Exclude, those with a separator made absolute
	running  atomic.Bool

	lines, bytes, truncated, emitErrors, resets, cpErrors atomic.Uint64
	gzFiles, gzErrors                                     atomic.Uint64
	filesTracked                                          atomic.Int64
}

// Stats are the collector's counters since New.
type Stats struct {
	// Lines is the number of records Emit acknowledged.
	Lines uint64
	// Bytes is the number of record data bytes Emit acknowledged.
	Bytes uint64
	// TruncatedLines counts lines longer than max_line_bytes, emitted cut.
	TruncatedLines uint64
	// EmitErrors counts failed Emit calls (each one was retried).
	EmitErrors uint64
	// Resets counts files read again from the start because they were
	// truncated or their content was replaced.
	Resets uint64
	// CheckpointErrors counts failed checkpoint writes (retried later).
	CheckpointErrors uint64
	// GzipFiles counts .gz files read to their end.
	GzipFiles uint64
	// GzipErrors counts .gz files whose decompression failed (corrupt,
	// truncated, or past max_gzip_bytes); each is skipped until it changes.
	GzipErrors uint64
	// FilesTracked is the number of files open now.
	FilesTracked int
}

var _ ingest.Collector = (*Collector)(nil)

// New validates cfg and builds a collector. It touches no file: globbing and
// the checkpoint are read by Run. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !identitySupported {
		return nil, errors.New("file collector: unsupported platform (needs inode numbers)")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("file collector: host: %w", err)
		}
		cfg.Host = h
	}
	c := &Collector{cfg: cfg, log: logger.With("collector", cfg.Name)}
	for _, p := range cfg.Paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("file collector: paths: %w", err)
		}
		c.patterns = append(c.patterns, abs)
	}
	for _, p := range cfg.Exclude {
		if strings.ContainsRune(p, filepath.Separator) {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("file collector: exclude: %w", err)
			}
			p = abs
		}
		c.excludes = append(c.excludes, p)
	}
	return c, nil
}

// Stats returns a snapshot of the counters. Safe to call at any time.
func (c *Collector) Stats() Stats {
	return Stats{
		Lines:            c.lines.Load(),
		Bytes:            c.bytes.Load(),
		TruncatedLines:   c.truncated.Load(),
		EmitErrors:       c.emitErrors.Load(),
		Resets:           c.resets.Load(),
		CheckpointErrors: c.cpErrors.Load(),
		GzipFiles:        c.gzFiles.Load(),
		GzipErrors:       c.gzErrors.Load(),
		FilesTracked:     int(c.filesTracked.Load()),
	}
}

// Run reads the files until ctx is done, handing batches of complete lines
// to emit, and returns nil then. It returns an error only if the checkpoint
// cannot be read, or if Run is already running. Run may be called again
// after it returned; it resumes from the checkpoint.
//
// A batch holds lines of one file. After emit returns nil the file's offset
// is checkpointed; after an error the same batch is offered again with
// exponential backoff (100ms..5s). Cancelling ctx during emit or its backoff
// abandons the batch unacknowledged: it is read again on the next Run.
func (c *Collector) Run(ctx context.Context, emit ingest.Emit) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("file collector: Run is already running")
	}
	defer c.running.Store(false)

	cp, err := loadCheckpoint(c.cfg.CheckpointFile)
	if err != nil {
		return fmt.Errorf("file collector %s: %w", c.cfg.Name, err)
	}
	r := newRunner(c, cp)
	defer r.close()

	r.scan(true)
	lastScan := time.Now()
	timer := time.NewTimer(c.cfg.PollInterval)
	defer timer.Stop()
	for {
		more := r.cycle(ctx, emit)
		if ctx.Err() != nil {
			return nil
		}
		if !more {
			// Caught up on every file: wait for the next poll. Stop wins
			// over the timer so shutdown is never delayed by a poll.
			timer.Reset(c.cfg.PollInterval)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		// While catching up on a backlog the loop does not wait, but it
		// still re-globs once per interval to notice rotation and new files.
		if time.Since(lastScan) >= c.cfg.PollInterval {
			r.scan(false)
			lastScan = time.Now()
		}
	}
}

// emit hands recs to emit until it succeeds, backing off between attempts.
// It reports false if ctx ended first.
func (c *Collector) emit(ctx context.Context, emit ingest.Emit, recs []ingest.Record) bool {
	return ingest.RetryEmit(ctx, emit, recs, c.log, func() { c.emitErrors.Add(1) })
}

// excluded reports whether an exclude pattern matches path.
func (c *Collector) excluded(path string) bool {
	for _, pat := range c.excludes {
		target := path
		if !strings.ContainsRune(pat, filepath.Separator) {
			target = filepath.Base(path)
		}
		if ok, _ := filepath.Match(pat, target); ok {
			return true
		}
	}
	return false
}
