package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/pipeline"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
)

// TopicName is the default topic of a run's alerts: "<alerts>.replay.<run>".
func TopicName(alertsTopic, runID string) string { return alertsTopic + ".replay." + runID }

// IndexName is the default index of a run's alerts: "<alerts>-replay-<run>".
func IndexName(alertsIndex, runID string) string { return alertsIndex + "-replay-" + runID }

// Multi hands each batch to every sink in order and stops at the first
// error.
func Multi(sinks ...Sink) Sink {
	return func(ctx context.Context, alerts []schema.Alert) error {
		for _, s := range sinks {
			if err := s(ctx, alerts); err != nil {
				return err
			}
		}
		return nil
	}
}

// TopicSink produces the alerts to topic as the detect stage produces to
// the alerts topic: keyed by alert id, JSON, timestamped with the alert
// time. It returns once Kafka acknowledged them.
func TopicSink(cl *kgo.Client, topic string) Sink {
	return func(ctx context.Context, alerts []schema.Alert) error {
		recs := make([]*kgo.Record, 0, len(alerts))
		for i := range alerts {
			b, err := json.Marshal(&alerts[i])
			if err != nil {
				return err
			}
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(alerts[i].Event.ID), Value: b, Timestamp: alerts[i].Timestamp})
		}
		return pipeline.Produce(ctx, cl, recs)
	}
}

// NDJSONSink writes one alert per line to w, flushed after each batch.
func NDJSONSink(w io.Writer) Sink {
	bw := bufio.NewWriter(w)
	var mu sync.Mutex
	return func(_ context.Context, alerts []schema.Alert) error {
		mu.Lock()
		defer mu.Unlock()
		for i := range alerts {
			b, err := json.Marshal(&alerts[i])
			if err != nil {
				return err
			}
			bw.Write(b)
			bw.WriteByte('\n')
		}
		return bw.Flush()
	}
}

// indexRetry bounds the retries of retryable index failures per batch: a
// replay is attended, so a node that stays down fails the run rather than
// hanging it.
const indexRetry = 8

// IndexSink writes the alerts as alert documents through w (the
// Elasticsearch indexer pointed at the run's index). Retryable failures
// are retried with backoff a few times; a permanent one (a mapping
// conflict) fails the run with the server's reason.
func IndexSink(w outputs.EventWriter) Sink {
	return func(ctx context.Context, alerts []schema.Alert) error {
		docs := make([]outputs.Document, 0, len(alerts))
		for i := range alerts {
			b, err := json.Marshal(&alerts[i])
			if err != nil {
				return err
			}
			docs = append(docs, outputs.Document{Kind: outputs.KindAlerts, ID: alerts[i].Event.ID, Timestamp: alerts[i].Timestamp, Body: b})
		}
		bo := pipeline.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
		for attempt := 0; ; attempt++ {
			err := w.Write(ctx, docs)
			if err == nil {
				return nil
			}
			var be *outputs.BatchError
			if errors.As(err, &be) {
				if perm := be.Permanent(); len(perm) > 0 {
					return fmt.Errorf("index: %s", perm[0].Reason)
				}
				var retry []outputs.Document
				for _, i := range be.Retryable() {
					retry = append(retry, docs[i])
				}
				docs = retry
			}
			if attempt == indexRetry {
				return fmt.Errorf("index: giving up after %d attempts: %w", attempt+1, err)
			}
			if werr := bo.Wait(ctx); werr != nil {
				return werr
			}
		}
	}
}

// NotifySink pages the alerts through n (Slack), retrying what n calls
// retryable a few times. Only used when a replay is asked to page.
func NotifySink(n outputs.AlertNotifier) Sink {
	return func(ctx context.Context, alerts []schema.Alert) error {
		bo := pipeline.Backoff{Min: time.Second, Max: 30 * time.Second}
		for attempt := 0; ; attempt++ {
			retry, err := n.Notify(ctx, alerts...)
			if err == nil {
				return nil
			}
			if !retry || attempt == indexRetry {
				return fmt.Errorf("notify: %w", err)
			}
			if werr := bo.Wait(ctx); werr != nil {
				return werr
			}
		}
	}
}
