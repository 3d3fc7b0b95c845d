package stages

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/integrity"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Normalize turns raw records into events: the normalizer is chosen by the
// record's tw.source header; events go to the events topic keyed by actor
// with the event time as record timestamp (what the detect stage's windows
// and rewinds run on); records that fail go to the DLQ with the reason.
type Normalize struct {
	EventsTopic string
	DLQTopic    string
	// Now stamps event.ingested; nil means time.Now.
	Now func() time.Time

	// Specs are the named sources of the configuration; a name not among
	// them is a built-in type with its default format.
	Specs map[string]normalize.Spec

	mu    sync.Mutex
	norms map[string]normalize.Normalizer
	buf   []schema.Event
	dlq   *prometheus.CounterVec

	// Chain, when set, extends the raw topic's integrity hash chains from
	// this stage's own read of it, with the digests every event's
	// provenance needs anyway: one fetch and one SHA-256 per raw record
	// instead of a dedicated integrity stage's second of each. Its signed
	// checkpoints join the batch's output, so the raw offsets are committed
	// only once they and the events are acknowledged.
	Chain *integrity.Checkpointer

	digester integrity.Digester
	digests  []integrity.Hash
	blocks   blockPool
}

// Failure reasons counted by trailwatch_normalize_dlq_total{reason} and
// written in the tw.dlq.class header: a bounded set, so the metric's
// cardinality is too.
const (
	ReasonTruncated     = "truncated"      // cut by the collector's line limit
	ReasonUnknownSource = "unknown_source" // no normalizer for the record's source
	ReasonTooLong       = "too_long"       // over the normalizer's size limit
	ReasonBinary        = "binary"         // NUL or control bytes: not a log line
	ReasonInvalidUTF8   = "invalid_utf8"   // bytes that are not UTF-8 and did not parse
	ReasonTooDeep       = "too_deep"       // JSON nested past the limit (a JSON bomb)
	ReasonMalformed     = "malformed"      // not the declared source's format
)

// HeaderDLQClass carries the failure reason class on a DLQ record.
const HeaderDLQClass = "tw.dlq.class"

var failureReasons = []string{ReasonTruncated, ReasonUnknownSource, ReasonTooLong, ReasonBinary, ReasonInvalidUTF8, ReasonTooDeep, ReasonMalformed}

// classify names why a raw record failed to normalize, from the record
// itself first (what the bytes are) and the error second.
func classify(raw *ingest.Record, err error, unknownSource bool) string {
	switch {
	case raw.Truncated:
		return ReasonTruncated
	case unknownSource:
		return ReasonUnknownSource
	case len(raw.Data) > normalize.MaxLineBytes && !bytes.HasPrefix(bytes.TrimSpace(raw.Data), []byte("{")):
		return ReasonTooLong
	case isBinary(raw.Data):
		return ReasonBinary
	case !utf8.Valid(raw.Data):
		return ReasonInvalidUTF8
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "nest") || strings.Contains(msg, "depth"):
		return ReasonTooDeep
	case strings.Contains(msg, "limit") || strings.Contains(msg, "too large") || strings.Contains(msg, "too long"):
		return ReasonTooLong
	}
	return ReasonMalformed
}

// isBinary reports NUL or other C0 control bytes (besides tab, CR, LF) in
// the first KiB: no access log writes those raw.
func isBinary(b []byte) bool {
	for _, c := range b[:min(len(b), 1024)] {
		if c < 0x20 && c != '\t' && c != '\r' && c != '\n' {
			return true
		}
	}
	return false
}

// NewNormalize returns the normalize stage handler; reg may be nil.
func NewNormalize(eventsTopic, dlqTopic string, reg prometheus.Registerer) *Normalize {
	h := &Normalize{
		EventsTopic: eventsTopic,
		DLQTopic:    dlqTopic,
		norms:       map[string]normalize.Normalizer{},
		dlq:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trailwatch_normalize_dlq_total", Help: "Raw records sent to the dead-letter topic, by reason."}, []string{"reason"}),
	}
	for _, r := range failureReasons {
		h.dlq.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(h.dlq)
	}
	return h
}

func (h *Normalize) normalizer(source string) (normalize.Normalizer, error) {
	if n, ok := h.norms[source]; ok {
		return n, nil
	}
	spec, ok := h.Specs[source]
	if !ok {
		spec = normalize.Spec{Type: source}
	}
	n, err := normalize.Build(spec)
	if err != nil {
		return nil, err
	}
	h.norms[source] = n
	return n, nil
}

// Assigned implements pipeline.PartitionAware for the chain.
func (h *Normalize) Assigned(topic string, p int32) {
	if h.Chain != nil {
		h.Chain.Assigned(topic, p)
	}
}

// Produced implements pipeline.Acknowledger: the chain checkpoints, and
// the arena blocks of the acknowledged output are reused.
func (h *Normalize) Produced() {
	h.blocks.produced()
	if h.Chain != nil {
		h.Chain.Produced()
	}
}

// Revoked implements pipeline.PartitionAware: the chain of a partition
// taken away is recovered from its last checkpoint by the next owner.
func (h *Normalize) Revoked(topic string, p int32) {
	if h.Chain != nil {
		h.Chain.Revoked(topic, p)
	}
}

// Handle implements pipeline.Handler.
func (h *Normalize) Handle(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.digests = h.digests[:0]
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	ingested := now().UTC()
	out := make([]*kgo.Record, 0, len(recs))
	arena := newRecordArena(len(recs), &h.blocks)
	for _, kr := range recs {
		// The chain covers every raw record, the ones that fail too.
		var digest integrity.Hash
		hashed := h.Chain != nil
		if hashed {
			digest = h.digester.Digest(kr)
			h.digests = append(h.digests, digest)
		}
		raw := DecodeRaw(kr)
		var err error
		unknown := false
		if raw.Truncated {
			err = fmt.Errorf("line longer than the collector's max_line_bytes; cut at %d bytes", len(raw.Data))
		} else {
			var n normalize.Normalizer
			if n, err = h.normalizer(raw.Source); err != nil {
				unknown = true
			} else {
				h.buf, err = n.Normalize(h.buf[:0], &raw)
			}
		}
		if err != nil {
			class := classify(&raw, err, unknown)
			h.dlq.WithLabelValues(class).Inc()
			d := DLQRecord(h.DLQTopic, "normalize", err.Error(), kr)
			d.Headers = append(d.Headers, kgo.RecordHeader{Key: HeaderDLQClass, Value: []byte(class)})
			out = append(out, d)
			continue
		}
		// Every event points back at its raw record: partition, Kafka
		// offset and the digest the integrity chain is built from.
		var rawHash string
		if len(h.buf) > 0 {
			if !hashed {
				digest = h.digester.Digest(kr)
			}
			rawHash = digest.String()
		}
		for i := range h.buf {
			ev := &h.buf[i]
			ev.Event.Ingested = ingested
			ev.Trailwatch.Raw.Hash, ev.Trailwatch.Raw.Partition, ev.Trailwatch.Raw.KafkaOffset = rawHash, kr.Partition, kr.Offset
			r := arena.record()
			r.Topic, r.Timestamp = h.EventsTopic, ev.Timestamp
			r.Key = arena.bytes(ev.Trailwatch.Actor)
			r.Value = arena.event(ev, 4*len(raw.Data))
			out = append(out, r)
		}
	}
	if h.Chain != nil {
		cks, err := h.Chain.HandleDigests(ctx, recs, h.digests)
		if err != nil {
			return nil, err
		}
		out = append(out, cks...)
	}
	return out, nil
}

// String names the handler in logs.
func (h *Normalize) String() string { return fmt.Sprintf("normalize(%s)", h.EventsTopic) }
