package stages

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

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
	dlq   prometheus.Counter
}

// NewNormalize returns the normalize stage handler; reg may be nil.
func NewNormalize(eventsTopic, dlqTopic string, reg prometheus.Registerer) *Normalize {
	h := &Normalize{
		EventsTopic: eventsTopic,
		DLQTopic:    dlqTopic,
		norms:       map[string]normalize.Normalizer{},
		dlq:         prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_normalize_dlq_total", Help: "Raw records sent to the dead-letter topic."}),
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

// Handle implements pipeline.Handler.
func (h *Normalize) Handle(_ context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	ingested := now().UTC()
	out := make([]*kgo.Record, 0, len(recs))
	for _, kr := range recs {
		raw := DecodeRaw(kr)
		if raw.Truncated {
			h.dlq.Inc()
			out = append(out, DLQRecord(h.DLQTopic, "normalize", fmt.Sprintf("line longer than the collector's max_line_bytes; cut at %d bytes", len(raw.Data)), kr))
			continue
		}
		n, err := h.normalizer(raw.Source)
		if err == nil {
			h.buf, err = n.Normalize(h.buf[:0], &raw)
		}
		if err != nil {
			h.dlq.Inc()
			out = append(out, DLQRecord(h.DLQTopic, "normalize", err.Error(), kr))
			continue
		}
		for i := range h.buf {
			ev := &h.buf[i]
			ev.Event.Ingested = ingested
			out = append(out, &kgo.Record{
				Topic:     h.EventsTopic,
				Key:       []byte(ev.Trailwatch.Actor),
				Value:     normalize.AppendEvent(nil, ev),
				Timestamp: ev.Timestamp,
			})
		}
	}
	return out, nil
}

// String names the handler in logs.
func (h *Normalize) String() string { return fmt.Sprintf("normalize(%s)", h.EventsTopic) }
