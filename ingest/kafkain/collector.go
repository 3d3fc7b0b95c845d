package kafkain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/kafka"
)

// commitTimeout bounds one offset commit.
const commitTimeout = 10 * time.Second

// Collector consumes upstream topics as a consumer group. Build it with New.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	opts    []kgo.Opt
	cluster string
	running atomic.Bool

	records, bytes, tombstones, emitErrors, commitErrors, fetchErrors, commits atomic.Uint64
}

// Stats are the collector's counters since New.
type Stats struct {
	// Records is the number of records Emit acknowledged.
	Records uint64
	// Bytes is the number of record data bytes Emit acknowledged.
	Bytes uint64
	// Tombstones counts upstream records with a null value, skipped.
	Tombstones uint64
	// EmitErrors counts failed Emit calls (each one was retried).
	EmitErrors uint64
	// CommitErrors counts failed offset commits; the records after the
	// last good commit are read again by the partition's next owner.
	CommitErrors uint64
	// FetchErrors counts partition fetch errors (the client retries).
	FetchErrors uint64
	// Commits counts successful offset commits.
	Commits uint64
}

var _ ingest.Collector = (*Collector)(nil)

// New validates cfg and builds a collector. It dials nothing: the client is
// created by Run. A nil logger discards logs.
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
			return nil, fmt.Errorf("kafka collector: host: %w", err)
		}
		cfg.Host = h
	}
	kc := kafka.Config{Brokers: cfg.Brokers, ClientID: cfg.ClientID, TLS: cfg.TLS, SASL: cfg.SASL, DialTimeout: cfg.DialTimeout}
	opts, err := kc.Opts() // reads TLS files and the SASL password now, so errors show at startup
	if err != nil {
		return nil, fmt.Errorf("kafka collector: %w", err)
	}
	start := kgo.NewOffset().AtStart()
	if cfg.StartOffset == StartLatest {
		start = kgo.NewOffset().AtEnd()
	}
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.ConsumeResetOffset(start),
		kgo.SessionTimeout(cfg.SessionTimeout),
		// Offsets are committed by Run after Emit acknowledged, never in
		// the background: that is the at-least-once guarantee.
		kgo.DisableAutoCommit(),
		// A rebalance waits until the polled batch is committed, so a
		// moved partition is not read twice by two members.
		kgo.BlockRebalanceOnPoll(),
	)
	return &Collector{cfg: cfg, log: logger.With("collector", cfg.Name, "group", cfg.Group), opts: opts, cluster: cfg.cluster()}, nil
}

// Stats returns a snapshot of the counters. Safe to call at any time.
func (c *Collector) Stats() Stats {
	return Stats{
		Records:      c.records.Load(),
		Bytes:        c.bytes.Load(),
		Tombstones:   c.tombstones.Load(),
		EmitErrors:   c.emitErrors.Load(),
		CommitErrors: c.commitErrors.Load(),
		FetchErrors:  c.fetchErrors.Load(),
		Commits:      c.commits.Load(),
	}
}

// Run consumes until ctx is done, handing each poll's records to emit and
// committing their offsets once emit returned nil; it returns nil then.
// It returns an error only if the client cannot be created or Run is
// already running. Run may be called again after it returned; it resumes
// from the group's committed offsets.
//
// After an emit error the same batch is offered again with exponential
// backoff (100ms..5s) and nothing is committed. Cancelling ctx abandons the
// batch uncommitted: it is consumed again later.
func (c *Collector) Run(ctx context.Context, emit ingest.Emit) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("kafka collector: Run is already running")
	}
	defer c.running.Store(false)

	cl, err := kgo.NewClient(c.opts...)
	if err != nil {
		return fmt.Errorf("kafka collector %s: %w", c.cfg.Name, err)
	}
	// Close leaves the group, so its partitions move at once instead of
	// after session_timeout; with autocommit off it commits nothing.
	defer cl.Close()

	var recs []ingest.Record
	for {
		fetches := cl.PollRecords(ctx, c.cfg.MaxPollRecords)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			c.fetchErrors.Add(1)
			c.log.Warn("fetch failed, the client retries", "topic", topic, "partition", p, "err", err)
		})
		recs = recs[:0]
		now := time.Now()
		size := 0
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				c.tombstones.Add(1)
				return
			}
			p := strconv.FormatInt(int64(r.Partition), 10)
			recs = append(recs, ingest.Record{
				Data:      r.Value,
				Source:    c.cfg.Source,
				Collector: c.cfg.Name,
				Host:      c.cfg.Host,
				Origin:    "kafka://" + r.Topic + "/" + p,
				Stream:    c.cluster + "/" + r.Topic + "/" + p,
				Offset:    r.Offset,
				Observed:  now,
			})
			size += len(r.Value)
		})
		if len(recs) > 0 {
			if !c.emit(ctx, emit, recs) {
				cl.AllowRebalance()
				return nil
			}
			c.records.Add(uint64(len(recs)))
			c.bytes.Add(uint64(size))
			// emit owns the records now: do not reuse their backing array.
			recs = nil
		}
		if !fetches.Empty() {
			// Commit the whole poll, tombstones included. A failed commit
			// is not retried: the next successful one covers these offsets
			// too, and a crash before it only re-sends acknowledged records.
			// The commit outlives ctx by up to commitTimeout: records Emit
			// acknowledged just before shutdown are committed rather than
			// re-sent.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
			err := cl.CommitRecords(cctx, fetches.Records()...)
			cancel()
			if err != nil {
				c.commitErrors.Add(1)
				c.log.Warn("offset commit failed", "err", err)
			} else {
				c.commits.Add(1)
			}
		}
		cl.AllowRebalance()
	}
}

// emit hands recs to emit until it succeeds, backing off between attempts.
// It reports false if ctx ended first.
func (c *Collector) emit(ctx context.Context, emit ingest.Emit, recs []ingest.Record) bool {
	return ingest.RetryEmit(ctx, emit, recs, c.log, func() { c.emitErrors.Add(1) })
}
