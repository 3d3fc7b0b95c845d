package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/pipeline"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
)

// Notifier is an AlertNotifier with the name its sent-markers are kept under.
type Notifier struct {
	Name string
	outputs.AlertNotifier
}

// Notify pages each alert once per notifier. What was sent is remembered in
// a compacted topic (one marker per notifier and alert id), loaded at start,
// so a restart or a replay of the alerts topic does not page again. The one
// window left is a crash between the notifier's acknowledgement and the
// marker's: that alert is paged a second time. Retryable failures (rate
// limits, 5xx) hold the batch and retry with backoff; others go to the DLQ.
type Notify struct {
	NotifiedTopic string
	DLQTopic      string
	Notifiers     []Notifier
	Log           *slog.Logger

	// TTL bounds how long a sent marker is kept: older ones are dropped
	// from memory and tombstoned in the compacted topic, so neither grows
	// without bound. An alert older than TTL is not expected on the alerts
	// topic again (the group's offsets are past it).
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	sent      map[string]time.Time
	lastPrune time.Time
	paged     *prometheus.CounterVec
	skipped   prometheus.Counter
	dlq       prometheus.Counter
}

// NewNotify returns the notify stage handler with the markers already sent.
func NewNotify(notifiedTopic, dlqTopic string, ns []Notifier, sent map[string]time.Time, reg prometheus.Registerer, log *slog.Logger) *Notify {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if sent == nil {
		sent = map[string]time.Time{}
	}
	h := &Notify{
		NotifiedTopic: notifiedTopic, DLQTopic: dlqTopic, Notifiers: ns, Log: log, sent: sent,
		TTL:     DefaultSentTTL,
		paged:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trailwatch_notify_alerts_total", Help: "Alerts sent, by notifier."}, []string{"notifier"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_notify_duplicates_total", Help: "Alerts not sent again because they were already sent."}),
		dlq:     prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_notify_dlq_total", Help: "Alerts a notifier refused permanently, sent to the dead-letter topic."}),
	}
	for _, n := range ns {
		h.paged.WithLabelValues(n.Name)
	}
	if reg != nil {
		reg.MustRegister(h.paged, h.skipped, h.dlq)
	}
	return h
}

// DefaultSentTTL is how long sent markers are kept by default.
const DefaultSentTTL = 30 * 24 * time.Hour

// prune drops markers older than TTL, at most once an hour, returning the
// tombstones that remove them from the compacted topic.
func (h *Notify) prune(now time.Time) []*kgo.Record {
	if h.TTL <= 0 || now.Sub(h.lastPrune) < time.Hour {
		return nil
	}
	h.lastPrune = now
	var out []*kgo.Record
	for k, at := range h.sent {
		if now.Sub(at) > h.TTL {
			delete(h.sent, k)
			out = append(out, &kgo.Record{Topic: h.NotifiedTopic, Key: []byte(k)}) // nil value: a tombstone
		}
	}
	return out
}

// Handle implements pipeline.Handler.
func (h *Notify) Handle(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	out := h.prune(now())
	for _, kr := range recs {
		var a schema.Alert
		if err := json.Unmarshal(kr.Value, &a); err != nil || a.Event.ID == "" {
			h.dlq.Inc()
			out = append(out, DLQRecord(h.DLQTopic, "notify", fmt.Sprintf("decode alert: %v", err), kr))
			continue
		}
		for _, n := range h.Notifiers {
			key := n.Name + "/" + a.Event.ID
			if _, done := h.sent[key]; done {
				h.skipped.Inc()
				continue
			}
			err := h.send(ctx, n, a)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				h.dlq.Inc()
				out = append(out, DLQRecord(h.DLQTopic, "notify", n.Name+": "+err.Error(), kr))
				continue
			}
			at := now().UTC()
			h.sent[key] = at
			h.paged.WithLabelValues(n.Name).Inc()
			out = append(out, &kgo.Record{Topic: h.NotifiedTopic, Key: []byte(key), Value: at.AppendFormat(nil, time.RFC3339)})
		}
	}
	return out, nil
}

// send retries retryable failures until ctx ends; it returns the error of a
// permanent failure.
func (h *Notify) send(ctx context.Context, n Notifier, a schema.Alert) error {
	bo := pipeline.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}
	for {
		retry, err := n.Notify(ctx, a)
		if err == nil {
			return nil
		}
		if !retry {
			return err
		}
		h.Log.Warn("notifier failed; retrying", "notifier", n.Name, "alert", a.Event.ID, "err", err)
		if werr := bo.Wait(ctx); werr != nil {
			return werr
		}
	}
}

// LoadSent reads the markers topic from start to its current end and
// returns the keys it holds with when each was sent (tombstones remove).
func LoadSent(ctx context.Context, base []kgo.Opt, topic string) (map[string]time.Time, error) {
	sent := map[string]time.Time{}
	admCl, err := kgo.NewClient(base...)
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return sent, nil
	}
	offs := map[int32]kgo.Offset{}
	for p := range want {
		offs[p] = kgo.NewOffset().AtStart()
	}
	opts := append([]kgo.Opt{}, base...)
	opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("load %s: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				delete(sent, string(r.Key))
			} else if at, err := time.Parse(time.RFC3339, string(r.Value)); err == nil {
				sent[string(r.Key)] = at
			} else {
				sent[string(r.Key)] = r.Timestamp
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return sent, nil
}
