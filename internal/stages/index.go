package stages

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/pipeline"
	"github.com/trailwatch/trailwatch/outputs"
)

// Index writes enriched events and alerts to an EventWriter (Elasticsearch,
// OpenSearch or NDJSON files). Documents keep their deterministic ids, so a
// replayed batch is dropped by the sink as already there. Retryable item
// failures are retried here, with backoff, until they succeed or ctx ends:
// the batch is not committed meanwhile and Kafka holds the backlog.
// Permanent failures (a mapping conflict) go to the DLQ with the reason.
type Index struct {
	EventsTopic string // the enriched topic
	AlertsTopic string
	DLQTopic    string
	Writer      outputs.EventWriter
	Log         *slog.Logger

	retries prometheus.Counter
	dlq     prometheus.Counter
}

// NewIndex returns the index stage handler; reg may be nil.
func NewIndex(eventsTopic, alertsTopic, dlqTopic string, w outputs.EventWriter, reg prometheus.Registerer, log *slog.Logger) *Index {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Index{
		EventsTopic: eventsTopic, AlertsTopic: alertsTopic, DLQTopic: dlqTopic, Writer: w, Log: log,
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_index_item_retries_total", Help: "Documents retried after a retryable sink failure."}),
		dlq:     prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_index_dlq_total", Help: "Documents the sink refused permanently, sent to the dead-letter topic."}),
	}
	if reg != nil {
		reg.MustRegister(h.retries, h.dlq)
	}
	return h
}

// Handle implements pipeline.Handler.
func (h *Index) Handle(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	var out []*kgo.Record
	docs := make([]outputs.Document, 0, len(recs))
	src := make([]*kgo.Record, 0, len(recs))
	for _, kr := range recs {
		id, ts, err := readDocHead(kr.Value)
		if err != nil || id == "" {
			reason := "document has no event.id"
			if err != nil {
				reason = "decode document: " + err.Error()
			}
			h.dlq.Inc()
			out = append(out, DLQRecord(h.DLQTopic, "index", reason, kr))
			continue
		}
		kind := "events"
		if kr.Topic == h.AlertsTopic {
			kind = "alerts"
		}
		docs = append(docs, outputs.Document{Kind: kind, ID: id, Timestamp: ts, Body: kr.Value})
		src = append(src, kr)
	}
	bo := pipeline.Backoff{Min: 200 * time.Millisecond, Max: 30 * time.Second}
	for len(docs) > 0 {
		err := h.Writer.Write(ctx, docs)
		if err == nil {
			break
		}
		var be *outputs.BatchError
		if !errors.As(err, &be) {
			// The whole request failed (node down): everything is retryable.
			h.retries.Add(float64(len(docs)))
			h.Log.Warn("index write failed; retrying", "docs", len(docs), "err", err)
			if werr := bo.Wait(ctx); werr != nil {
				return nil, werr
			}
			continue
		}
		var retryDocs []outputs.Document
		var retrySrc []*kgo.Record
		for _, it := range be.Items {
			if it.Retryable {
				retryDocs = append(retryDocs, docs[it.Index])
				retrySrc = append(retrySrc, src[it.Index])
				continue
			}
			h.dlq.Inc()
			out = append(out, DLQRecord(h.DLQTopic, "index", it.Reason, src[it.Index]))
		}
		docs, src = retryDocs, retrySrc
		if len(docs) > 0 {
			h.retries.Add(float64(len(docs)))
			h.Log.Warn("index items failed; retrying", "docs", len(docs))
			if werr := bo.Wait(ctx); werr != nil {
				return nil, werr
			}
		}
	}
	return out, nil
}
