package stages

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Detect runs the rules over the events topic. State lives with a
// partition, as the events topic is keyed by actor: each partition has its
// own detector, dropped when the partition is revoked and rebuilt (Warm)
// from the partition's recent history when it is assigned again.
//
// Every event is enriched (GeoIP/ASN, IP lists, trusted proxies, user
// agent) before the rules see it, and goes to the enriched topic; alerts go
// to the alerts topic keyed by their deterministic id.
type Detect struct {
	EnrichedTopic string
	AlertsTopic   string
	DLQTopic      string
	// Enricher adds IP, list, proxy and user-agent context to each batch
	// before the rules see it; nil passes events through unchanged.
	Enricher enrich.Enricher
	// Window is how far back state reaches: the longest rule window plus
	// the allowed lateness.
	Window time.Duration

	newDetector func() (*detect.Detector, error)
	log         *slog.Logger

	mu   sync.Mutex
	dets map[int32]*detect.Detector
	dlq  prometheus.Counter
}

// NewDetect returns the detect stage handler. newDetector builds one
// partition's detector over the loaded rule set.
func NewDetect(enriched, alerts, dlq string, window time.Duration, newDetector func() (*detect.Detector, error), reg prometheus.Registerer, log *slog.Logger) *Detect {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Detect{
		EnrichedTopic: enriched, AlertsTopic: alerts, DLQTopic: dlq, Window: window,
		newDetector: newDetector, log: log, dets: map[int32]*detect.Detector{},
		dlq: prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_detect_dlq_total", Help: "Events sent to the dead-letter topic by the detect stage."}),
	}
	if reg != nil {
		reg.MustRegister(h.dlq, detectCollector{h})
	}
	return h
}

// detectCollector exports the detectors' counters summed over partitions.
type detectCollector struct{ h *Detect }

var (
	descEvalSeconds = prometheus.NewDesc("trailwatch_detect_rule_eval_seconds_total", "Time spent evaluating each rule's condition and group key, by the partitions this process holds now.", []string{"rule"}, nil)
	descRuleAlerts  = prometheus.NewDesc("trailwatch_detect_rule_alerts_total", "Alerts raised per rule, by the partitions this process holds now.", []string{"rule"}, nil)
	descLate        = prometheus.NewDesc("trailwatch_detect_late_events_total", "Events older than the allowed lateness, kept out of windows.", nil, nil)
	descEvictions   = prometheus.NewDesc("trailwatch_detect_group_evictions_total", "Window groups evicted by detect.max_groups.", nil, nil)
	descGroups      = prometheus.NewDesc("trailwatch_detect_groups", "Window groups held in memory.", nil, nil)
)

func (c detectCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEvalSeconds, descRuleAlerts, descLate, descEvictions, descGroups} {
		ch <- d
	}
}

func (c detectCollector) Collect(ch chan<- prometheus.Metric) {
	c.h.mu.Lock()
	dets := make([]*detect.Detector, 0, len(c.h.dets))
	for _, d := range c.h.dets {
		dets = append(dets, d)
	}
	c.h.mu.Unlock()
	evalTime := map[string]time.Duration{}
	alerts := map[string]uint64{}
	var late, evictions uint64
	var groups int
	for _, d := range dets {
		st := d.Stats()
		late += st.Late
		evictions += st.Evictions
		groups += st.Groups
		for _, r := range st.Rules {
			evalTime[r.ID] += r.EvalTime
			alerts[r.ID] += r.Alerts
		}
	}
	for id, t := range evalTime {
		ch <- prometheus.MustNewConstMetric(descEvalSeconds, prometheus.CounterValue, t.Seconds(), id)
		ch <- prometheus.MustNewConstMetric(descRuleAlerts, prometheus.CounterValue, float64(alerts[id]), id)
	}
	ch <- prometheus.MustNewConstMetric(descLate, prometheus.CounterValue, float64(late))
	ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(evictions))
	ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(groups))
}

// Assigned implements pipeline.PartitionAware.
func (h *Detect) Assigned(_ string, p int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.dets, p) // a fresh detector is built on first use
}

// Revoked implements pipeline.PartitionAware.
func (h *Detect) Revoked(_ string, p int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.dets, p)
}

// WarmWindow implements pipeline.Warmer.
func (h *Detect) WarmWindow() time.Duration { return h.Window }

func (h *Detect) detector(p int32) (*detect.Detector, error) {
	if d, ok := h.dets[p]; ok {
		return d, nil
	}
	d, err := h.newDetector()
	if err != nil {
		return nil, err
	}
	h.dets[p] = d
	return d, nil
}

// Warm implements pipeline.Warmer: rebuild window state without alerting.
// Events are enriched first, as in Handle, so rules see the same fields.
func (h *Detect) Warm(ctx context.Context, recs []*kgo.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byPart, _, _ := h.decode(recs)
	for p, evs := range byPart {
		d, err := h.detector(p)
		if err != nil {
			h.log.Error("cannot build detector", "err", err)
			return
		}
		if h.Enricher != nil {
			if err := h.Enricher.Enrich(ctx, evs); err != nil {
				return
			}
		}
		d.Warm(evs)
	}
}

// Handle implements pipeline.Handler.
func (h *Detect) Handle(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*kgo.Record, 0, len(recs)+8)
	byPart, srcs, bad := h.decode(recs)
	for _, kr := range recs {
		if reason, ok := bad[kr]; ok {
			h.dlq.Inc()
			out = append(out, DLQRecord(h.DLQTopic, "detect", reason, kr))
		}
	}
	for p, evs := range byPart {
		d, err := h.detector(p)
		if err != nil {
			return nil, err
		}
		if h.Enricher != nil {
			// An error here is ctx ending: the batch stays uncommitted.
			if err := h.Enricher.Enrich(ctx, evs); err != nil {
				return nil, err
			}
		}
		for i := range evs {
			kr := srcs[p][i]
			out = append(out, &kgo.Record{Topic: h.EnrichedTopic, Key: kr.Key, Value: normalize.AppendEvent(nil, &evs[i]), Timestamp: kr.Timestamp})
		}
		alerts, err := d.Observe(ctx, evs)
		if err != nil {
			return nil, err // ctx ended: the batch is retried or abandoned uncommitted
		}
		var newest time.Time
		for i := range evs {
			if evs[i].Timestamp.After(newest) {
				newest = evs[i].Timestamp
			}
		}
		d.Advance(newest)
		for _, re := range d.DrainRuleErrors() {
			h.dlq.Inc()
			body, _ := json.Marshal(map[string]any{"rule.id": re.RuleID, "event.id": re.EventID, "@timestamp": re.Timestamp, "error": re.Err.Error()})
			out = append(out, &kgo.Record{Topic: h.DLQTopic, Key: []byte(re.EventID), Value: body, Headers: []kgo.RecordHeader{
				{Key: HeaderDLQStage, Value: []byte("detect")},
				{Key: HeaderDLQReason, Value: []byte(re.Error())},
			}})
		}
		for i := range alerts {
			b, err := json.Marshal(&alerts[i])
			if err != nil {
				return nil, err
			}
			out = append(out, &kgo.Record{Topic: h.AlertsTopic, Key: []byte(alerts[i].Event.ID), Value: b, Timestamp: alerts[i].Timestamp})
		}
	}
	return out, nil
}

// decode groups the events of recs by partition, in order, with the
// record each came from, and returns the records that are not events with
// the reason.
func (h *Detect) decode(recs []*kgo.Record) (map[int32][]schema.Event, map[int32][]*kgo.Record, map[*kgo.Record]string) {
	byPart := map[int32][]schema.Event{}
	srcs := map[int32][]*kgo.Record{}
	var bad map[*kgo.Record]string
	for _, kr := range recs {
		var ev schema.Event
		if err := json.Unmarshal(kr.Value, &ev); err != nil {
			if bad == nil {
				bad = map[*kgo.Record]string{}
			}
			bad[kr] = "decode event: " + err.Error()
			continue
		}
		byPart[kr.Partition] = append(byPart[kr.Partition], ev)
		srcs[kr.Partition] = append(srcs[kr.Partition], kr)
	}
	return byPart, srcs, bad
}
