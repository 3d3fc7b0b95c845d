package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/config"
)

// saveEvery throttles checkpoint writes while working through a backlog:
// each write costs two fsyncs, and a later write only widens what a crash
// re-sends (the sinks drop those duplicates by Record.ID).
const saveEvery = time.Second

// Collector reads log objects from one bucket prefix. Build it with New.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	client  *minio.Client
	tr      *http.Transport
	running atomic.Bool

	records, bytes, objects, failed, truncated   atomic.Uint64
	emitErrors, listErrors, readErrors, cpErrors atomic.Uint64
	passes                                       atomic.Uint64
}

// Stats are the collector's counters since New.
type Stats struct {
	// Records is the number of records Emit acknowledged.
	Records uint64
	// Bytes is the number of record data bytes Emit acknowledged.
	Bytes uint64
	// Objects counts objects read to their end.
	Objects uint64
	// FailedObjects counts objects given up on (corrupt, over
	// max_object_bytes); each is logged and kept in the checkpoint.
	FailedObjects uint64
	// TruncatedLines counts lines longer than max_line_bytes, emitted cut.
	TruncatedLines uint64
	// EmitErrors counts failed Emit calls (each one was retried).
	EmitErrors uint64
	// ListErrors counts failed listings (retried at the next poll).
	ListErrors uint64
	// ReadErrors counts objects whose reading failed for a reason that may
	// pass (network, permissions); they are retried at the next poll.
	ReadErrors uint64
	// CheckpointErrors counts failed checkpoint writes (retried later).
	CheckpointErrors uint64
	// Passes counts listings that reached the end of the bucket prefix.
	Passes uint64
}

var _ ingest.Collector = (*Collector)(nil)

// New validates cfg and builds a collector. It makes no request: the
// bucket is listed and the checkpoint read by Run. A nil logger discards
// logs.
func New(cfg Config, logger *slog.Logger) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("s3 collector: host: %w", err)
		}
		cfg.Host = h
	}
	client, tr, err := newClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("s3 collector: %w", err)
	}
	return &Collector{cfg: cfg, log: logger.With("collector", cfg.Name, "bucket", cfg.Bucket), client: client, tr: tr}, nil
}

// newClient builds the S3 client; minio.New dials nothing.
func newClient(cfg Config) (*minio.Client, *http.Transport, error) {
	host, secure := "s3.amazonaws.com", true
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint) // validated
		if err != nil {
			return nil, nil, fmt.Errorf("endpoint: %w", err)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	secret, err := config.ResolveSecret("secret_access_key", cfg.SecretAccessKey, cfg.SecretAccessKeyFile)
	if err != nil {
		return nil, nil, err
	}
	token, err := config.ResolveSecret("session_token", cfg.SessionToken, cfg.SessionTokenFile)
	if err != nil {
		return nil, nil, err
	}
	var creds *credentials.Credentials
	if cfg.AccessKeyID != "" {
		creds = credentials.NewStaticV4(cfg.AccessKeyID, secret.Value(), token.Value())
	} else {
		// The standard AWS chain: environment, shared credentials file,
		// then IAM (web identity, ECS task role, EC2 instance profile).
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	lookup := minio.BucketLookupAuto
	if cfg.UsePathStyle {
		lookup = minio.BucketLookupPath
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, nil, err
	}
	// A server that accepts the connection but never answers must not
	// hang a poll: bound the wait for response headers.
	tr.ResponseHeaderTimeout = cfg.RequestTimeout
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    tr,
	})
	return client, tr, err
}

// Stats returns a snapshot of the counters. Safe to call at any time.
func (c *Collector) Stats() Stats {
	return Stats{
		Records:          c.records.Load(),
		Bytes:            c.bytes.Load(),
		Objects:          c.objects.Load(),
		FailedObjects:    c.failed.Load(),
		TruncatedLines:   c.truncated.Load(),
		EmitErrors:       c.emitErrors.Load(),
		ListErrors:       c.listErrors.Load(),
		ReadErrors:       c.readErrors.Load(),
		CheckpointErrors: c.cpErrors.Load(),
		Passes:           c.passes.Load(),
	}
}

// Run lists the bucket and reads new objects until ctx is done, handing
// batches of records to emit, and returns nil then. It returns an error
// only if the checkpoint cannot be read or belongs to another bucket or
// prefix, or if Run is already running. Run may be called again after it
// returned; it resumes from the checkpoint.
//
// An object counts as read, and the checkpoint moves past it, only after
// emit returned nil for all its records. After an emit error the same batch
// is offered again with exponential backoff (100ms..5s). Cancelling ctx
// abandons the batch unacknowledged: it is read again on the next Run.
func (c *Collector) Run(ctx context.Context, emit ingest.Emit) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("s3 collector: Run is already running")
	}
	defer c.running.Store(false)

	cp, err := loadCheckpoint(c.cfg.CheckpointFile)
	if err != nil {
		return fmt.Errorf("s3 collector %s: %w", c.cfg.Name, err)
	}
	switch {
	case cp.Bucket == "":
		cp.Bucket, cp.Prefix, cp.Cursor = c.cfg.Bucket, c.cfg.Prefix, c.cfg.StartAfter
	case cp.Bucket != c.cfg.Bucket || cp.Prefix != c.cfg.Prefix:
		return fmt.Errorf("s3 collector %s: checkpoint %s is for s3://%s/%s, not s3://%s/%s (delete it to start over)",
			c.cfg.Name, c.cfg.CheckpointFile, cp.Bucket, cp.Prefix, c.cfg.Bucket, c.cfg.Prefix)
	}
	r := newRunner(c, cp)
	defer r.save()
	// Idle keep-alive connections hold two goroutines each; a stopped
	// collector leaves none behind.
	defer c.tr.CloseIdleConnections()

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// Stop wins over the timer so shutdown is never delayed by a poll.
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		r.pass(ctx, emit)
		if ctx.Err() != nil {
			return nil
		}
		timer.Reset(c.cfg.PollInterval)
	}
}

// emit hands recs to emit until it succeeds, backing off between attempts.
// It reports false if ctx ended first.
func (c *Collector) emit(ctx context.Context, emit ingest.Emit, recs []ingest.Record) bool {
	return ingest.RetryEmit(ctx, emit, recs, c.log, func() { c.emitErrors.Add(1) })
}
