package syslog

import (
	"context"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

// Emit retry backoff bounds: the first retry waits minBackoff, each next one
// twice as long, capped at maxBackoff so recovery is noticed within seconds.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// emitLoop batches records from q and hands them to emit until q is closed
// and drained. If ctx ends (shutdown_timeout passed) before a batch is
// acknowledged, it closes abandon so blocked readers give up, and counts
// everything left as lost.
func (c *Collector) emitLoop(ctx context.Context, emit ingest.Emit, q <-chan ingest.Record, abandon chan<- struct{}) {
	batch := make([]ingest.Record, 0, c.cfg.BatchLines)
	size := 0
	timer := time.NewTimer(c.cfg.FlushInterval)
	timer.Stop()
	defer timer.Stop()

	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		timer.Stop()
		if !c.emit(ctx, emit, batch) {
			n := uint64(len(batch))
			close(abandon)
			for range q {
				n++
			}
			c.lost.Add(n)
			c.log.Error("shutdown_timeout passed before Kafka acknowledged received messages; they are lost",
				"lost", n, "shutdown_timeout", c.cfg.ShutdownTimeout)
			return false
		}
		c.messages.Add(uint64(len(batch)))
		c.bytes.Add(uint64(size))
		// A fresh slice: emit may still hold the old one (it is done with
		// it once it returned, but nothing says it copied).
		batch = make([]ingest.Record, 0, c.cfg.BatchLines)
		size = 0
		return true
	}

	for {
		select {
		case rec, ok := <-q:
			if !ok {
				flush()
				return
			}
			if len(batch) == 0 {
				timer.Reset(c.cfg.FlushInterval)
			}
			batch = append(batch, rec)
			size += len(rec.Data)
			if len(batch) >= c.cfg.BatchLines || size >= c.cfg.BatchBytes {
				if !flush() {
					return
				}
			}
		case <-timer.C:
			if !flush() {
				return
			}
		}
	}
}

// emit hands recs to emit until it succeeds, backing off between attempts.
// It reports false if ctx ended first.
func (c *Collector) emit(ctx context.Context, emit ingest.Emit, recs []ingest.Record) bool {
	backoff := minBackoff
	for {
		err := emit(ctx, recs)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		c.emitErrors.Add(1)
		c.log.Warn("emit failed, retrying the same batch", "err", err, "records", len(recs), "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}
