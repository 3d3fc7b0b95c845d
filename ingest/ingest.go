// Package ingest defines what collectors produce: a Record holding the
// original bytes of one log line or object, untouched but for secret
// redaction, plus its provenance.
//
// A Collector hands records to an Emit function that returns only once the
// records are durable in Kafka; the collector checkpoints its position only
// after that, so delivery is at-least-once. Collectors do not know Kafka:
// cmd/trailwatch wires Emit to the producer.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"
	"time"
)

// Record is one raw log line or object as read, with where it came from.
type Record struct {
	// Data is the original bytes, without the line terminator.
	Data []byte
	// Source names the normalizer for Data (the --source name, "nginx").
	Source string
	// Collector names the collector instance that read it ("file").
	Collector string
	// Host is the machine the collector ran on.
	Host string
	// Origin identifies the stream within the collector (a file path).
	Origin string
	// Stream identifies the byte stream Offset counts in, stable across
	// renames and distinct across rotations and truncations (for a file:
	// device, inode, reset generation and a hash of its first line). Two
	// records with equal Host, Stream and Offset are the same record.
	Stream string
	// Offset is the position of Data within Stream (a byte offset).
	Offset int64
	// Truncated reports that Data was cut at the collector's line limit; the
	// normalize stage dead-letters such records instead of indexing half a
	// line.
	Truncated bool
	// Observed is when the collector read the record.
	Observed time.Time
}

// ID returns a deterministic identity for the record's position in its
// stream. Re-reading the same line after a crash yields the same ID, which is
// what lets the sinks drop the duplicate; a rotated file is a new stream, so
// its lines never collide with the old file's.
func (r *Record) ID() string {
	// A stack buffer and Sum256: this runs once per line on the hot path.
	var buf [256]byte
	b := append(buf[:0], r.Host...)
	b = append(b, 0)
	if r.Stream != "" {
		b = append(b, r.Stream...)
	} else {
		b = append(b, r.Origin...)
	}
	b = append(b, 0)
	b = strconv.AppendInt(b, r.Offset, 10)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Emit delivers records downstream. It returns nil only once every record is
// durably stored (acknowledged by Kafka); on error nothing may be assumed
// stored and the collector must not advance its checkpoint. Emit blocks while
// downstream is full: that is the backpressure.
type Emit func(ctx context.Context, recs []Record) error

// Collector reads records from one kind of origin.
type Collector interface {
	// Run reads until ctx is done or a fatal error occurs, handing records to
	// emit in batches. It returns nil after ctx is cancelled.
	Run(ctx context.Context, emit Emit) error
}

// Kafka header names carrying a Record's provenance on trailwatch.raw.
const (
	HeaderSource    = "tw.source"
	HeaderCollector = "tw.collector"
	HeaderHost      = "tw.host"
	HeaderOrigin    = "tw.origin"
	HeaderStream    = "tw.stream"
	HeaderTruncated = "tw.truncated"
	HeaderOffset    = "tw.offset"
	HeaderObserved  = "tw.observed"
)

// Emit retry backoff bounds: the first retry waits RetryMinBackoff, each
// next one twice as long, capped at RetryMaxBackoff so a recovered Kafka is
// noticed within seconds.
const (
	RetryMinBackoff = 100 * time.Millisecond
	RetryMaxBackoff = 5 * time.Second
)

// RetryEmit hands recs to emit until it succeeds, backing off between
// attempts, and calls failed after each failed attempt. It reports false if
// ctx ended first; the caller then must not advance its checkpoint. This is
// every collector's answer to a Kafka outage: hold the batch, never drop it.
func RetryEmit(ctx context.Context, emit Emit, recs []Record, log *slog.Logger, failed func()) bool {
	backoff := RetryMinBackoff
	for {
		err := emit(ctx, recs)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if failed != nil {
			failed()
		}
		log.Warn("emit failed, retrying the same batch",
			"err", err, "records", len(recs), "origin", recs[0].Origin, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(2*backoff, RetryMaxBackoff)
	}
}
