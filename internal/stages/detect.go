package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/internal/health"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// HeaderFamily names, on a repartition record, the rule family (key
// fields) the record was routed for.
const HeaderFamily = "tw.family"

// HeaderFields identifies, on a repartition record, the fields its event
// was projected to (detect.Projection.ID): "all" for a whole event. A
// record without it carries a whole event.
const HeaderFields = "tw.fields"

// Detect runs the rules over the events topic. Every event is enriched
// (GeoIP/ASN, IP lists, trusted proxies, user agent, actor correlation)
// before the rules see it, and goes to the enriched topic; alerts go to the
// alerts topic keyed by their deterministic id.
//
// State lives with a partition. The events topic is keyed by actor, so the
// actor-local rules (detect.Router) run here, with a detector per
// partition, dropped when the partition is revoked and rebuilt (Warm) from
// its recent history when it is assigned again. Events that may match a
// rule grouped by another key go to the repartition topic, keyed by that
// key, where KeyedDetect runs those rules.
type Detect struct {
	EnrichedTopic string
	AlertsTopic   string
	DLQTopic      string
	// RepartitionTopic receives the events of rules not keyed by actor.
	// Empty runs every rule here, which is right only with one partition
	// (or when every rule is actor-local).
	RepartitionTopic string
	// RepartitionWhole sends whole events to the repartition topic. By
	// default (false) each record carries only the fields its family's
	// rules can read (detect.Family.Fields), which raises the same alerts
	// from far smaller records; whole events are for a keyed stage that
	// may run other rules than this process (see docs/rules.md, "Reloading
	// rules").
	RepartitionWhole bool
	// Enricher adds context to each batch before the rules see it; nil
	// passes events through unchanged.
	Enricher enrich.Enricher
	// DedupIDs is how many recent event ids each partition remembers to
	// drop an event delivered twice; 0 remembers none.
	DedupIDs int
	// StateTopic is the compacted changelog of the durable state of the
	// enrichers and detectors (first-seen history), written in the
	// partition of the events they describe; empty keeps state in memory
	// only.
	StateTopic string
	// ReadState reads a changelog partition from its start (kafka.ReadPartition
	// bound to the connection); it restores a partition's state when the
	// partition is first used after an assignment.
	ReadState func(ctx context.Context, topic string, p int32, fn func(*kgo.Record) error) error
	// Health, when set, is told of every batch's events as they arrive, to
	// notice a source gone silent.
	Health *health.Monitor

	book *RuleBook
	log  *slog.Logger
	m    *DetectMetrics

	mu     sync.Mutex
	parts  map[int32]*partDetector
	routes []detect.Route
	// famHeaders holds each family's repartition record headers, by
	// family name and projection id, shared by its records (the producer
	// only reads them).
	famHeaders map[string][]kgo.RecordHeader
	// evBuf holds the events of the batch being handled.
	evBuf []schema.Event
	// proj is the scratch event a family's projection is written to
	// before it is encoded; projected holds the event's projections
	// encoded so far, by field set.
	proj      schema.Event
	projected []projectedValue
	// blocks lends the arenas their blocks, back once produced.
	blocks blockPool
}

// partDetector is one partition's detector and duplicate filter.
type partDetector struct {
	det *detect.Detector
	gen uint64
	ids *recentIDs
}

// NewDetect returns the handler of the events topic running book's rules.
func NewDetect(enriched, alerts, dlq string, book *RuleBook, m *DetectMetrics, log *slog.Logger) *Detect {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Detect{EnrichedTopic: enriched, AlertsTopic: alerts, DLQTopic: dlq, book: book, log: log, m: m, parts: map[int32]*partDetector{}}
	m.add(h)
	return h
}

// DetectMetrics exports the counters of every detector of a process's
// detect handlers, summed, under one set of metric names.
type DetectMetrics struct {
	dlq      prometheus.Counter
	dup      prometheus.Counter
	mismatch prometheus.Counter

	mu   sync.Mutex
	srcs []interface{ detectors() []*detect.Detector }
}

// NewDetectMetrics registers the detect stage's metrics with reg (nil: not
// exported).
func NewDetectMetrics(reg prometheus.Registerer) *DetectMetrics {
	m := &DetectMetrics{
		dlq: prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_detect_dlq_total", Help: "Events sent to the dead-letter topic by the detect stage."}),
		dup: prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_detect_duplicates_total", Help: "Events dropped because the same event id was just seen in the partition (a producer retry)."}),
		mismatch: prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_detect_projection_mismatches_total",
			Help: "Repartition records whose event was projected for other rules than the keyed stage runs now (a rule change in flight)."}),
	}
	if reg != nil {
		reg.MustRegister(m.dlq, m.dup, m.mismatch, detectCollector{m})
	}
	return m
}

func (m *DetectMetrics) add(src interface{ detectors() []*detect.Detector }) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.srcs = append(m.srcs, src)
}

// Detectors returns every detector held now, for stats.
func (m *DetectMetrics) Detectors() []*detect.Detector {
	m.mu.Lock()
	srcs := m.srcs
	m.mu.Unlock()
	var out []*detect.Detector
	for _, s := range srcs {
		out = append(out, s.detectors()...)
	}
	return out
}

// RuleCounters returns every detector's per-rule counters, for the health
// monitor (which sums them by rule id).
func (m *DetectMetrics) RuleCounters() []health.RuleCounters {
	var out []health.RuleCounters
	for _, d := range m.Detectors() {
		for _, r := range d.Stats().Rules {
			out = append(out, health.RuleCounters{ID: r.ID, Evals: r.Evals, Matches: r.Matches, Errors: r.Errors})
		}
	}
	return out
}

// detectCollector exports the detectors' counters summed over partitions.
type detectCollector struct{ m *DetectMetrics }

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
	evalTime := map[string]time.Duration{}
	alerts := map[string]uint64{}
	var late, evictions uint64
	var groups int
	for _, d := range c.m.Detectors() {
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

func (h *Detect) detectors() []*detect.Detector {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*detect.Detector, 0, len(h.parts))
	for _, p := range h.parts {
		out = append(out, p.det)
	}
	return out
}

// Assigned implements pipeline.PartitionAware.
func (h *Detect) Assigned(_ string, p int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.parts, p) // a fresh detector is built on first use
}

// Revoked implements pipeline.PartitionAware.
func (h *Detect) Revoked(_ string, p int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.parts, p)
}

// WarmWindow implements pipeline.Warmer.
func (h *Detect) WarmWindow() time.Duration { return h.book.Window() }

// localRules is what the events topic's detectors run.
func (h *Detect) localRules() (*detect.RuleSet, *detect.Router, uint64) {
	set, router, gen := h.book.current()
	if h.RepartitionTopic == "" {
		return set, router, gen
	}
	return router.Local(), router, gen
}

// Changelog key prefixes: what the rest of a state record's key belongs to.
const (
	stateDetector = "d/"
	stateEnricher = "e/"
)

// partition returns p's detector, built on first use (restoring the
// partition's durable state) and reloaded when the rule book changed.
func (h *Detect) partition(ctx context.Context, p int32) (*partDetector, error) {
	set, _, gen := h.localRules()
	pd, ok := h.parts[p]
	if ok && pd.gen == gen {
		return pd, nil
	}
	if ok {
		pd.det.Reload(set)
		pd.gen = gen
		return pd, nil
	}
	d, err := detect.New(set, h.book.Config(), h.log)
	if err != nil {
		return nil, err
	}
	if err := h.restore(ctx, p, d); err != nil {
		return nil, err
	}
	pd = &partDetector{det: d, gen: gen, ids: newRecentIDs(h.DedupIDs)}
	h.parts[p] = pd
	return pd, nil
}

// restore feeds partition p's changelog to d and to the enrichers.
func (h *Detect) restore(ctx context.Context, p int32, d *detect.Detector) error {
	if h.StateTopic == "" || h.ReadState == nil {
		return nil
	}
	st, _ := h.Enricher.(enrich.Stateful)
	n := 0
	err := h.ReadState(ctx, h.StateTopic, p, func(r *kgo.Record) error {
		n++
		var err error
		switch k := r.Key; {
		case bytes.HasPrefix(k, []byte(stateDetector)):
			err = d.Restore(k[len(stateDetector):], r.Value)
		case bytes.HasPrefix(k, []byte(stateEnricher)) && st != nil:
			err = st.Restore(k[len(stateEnricher):], r.Value)
		}
		if err != nil {
			// One unreadable record loses one key's history, not the
			// partition: log it and go on.
			h.log.Warn("state record skipped", "topic", h.StateTopic, "partition", p, "offset", r.Offset, "err", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore state of partition %d: %w", p, err)
	}
	h.log.Debug("state restored", "partition", p, "records", n)
	return nil
}

// stateRecords appends the durable-state changes made by the last batch of
// partition p to out, for the changelog.
func (h *Detect) stateRecords(out []*kgo.Record, p int32, d *detect.Detector) []*kgo.Record {
	// Changes are drained even when nothing persists them: they would pile
	// up otherwise.
	var enr []enrich.StateChange
	if st, ok := h.Enricher.(enrich.Stateful); ok {
		enr = st.DrainChanges()
	}
	det := d.DrainChanges()
	if h.StateTopic == "" {
		return out
	}
	for _, c := range enr {
		out = append(out, &kgo.Record{Topic: h.StateTopic, Partition: p, Key: append([]byte(stateEnricher), c.Key...), Value: c.Value})
	}
	for _, c := range det {
		out = append(out, &kgo.Record{Topic: h.StateTopic, Partition: p, Key: append([]byte(stateDetector), c.Key...), Value: c.Value})
	}
	return out
}

// dedup drops from evs (and srcs, kept parallel) the events pd saw
// recently, and returns what is left.
func (h *Detect) dedup(pd *partDetector, evs []schema.Event, srcs []*kgo.Record) ([]schema.Event, []*kgo.Record) {
	n := 0
	for i := range evs {
		if pd.ids.seen(evs[i].Event.ID) {
			h.m.dup.Inc()
			continue
		}
		if n != i { // an Event is ~1.5 KB: copy only to close a gap
			evs[n], srcs[n] = evs[i], srcs[i]
		}
		n++
	}
	return evs[:n], srcs[:n]
}

// Warm implements pipeline.Warmer: rebuild window state without alerting.
// Events are enriched first, as in Handle, so rules see the same fields.
func (h *Detect) Warm(ctx context.Context, recs []*kgo.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byPart, srcs, _ := h.decodeEvents(recs)
	for p, evs := range byPart {
		pd, err := h.partition(ctx, p)
		if err != nil {
			h.log.Error("cannot build detector", "err", err)
			return
		}
		evs, _ = h.dedup(pd, evs, srcs[p])
		if h.Enricher != nil {
			if err := h.Enricher.Enrich(ctx, evs); err != nil {
				return
			}
		}
		pd.det.Warm(evs)
		// Replayed input changes no durable state that was not already
		// written when it was first processed.
		h.stateRecords(nil, p, pd.det)
	}
}

// Produced implements pipeline.Acknowledger: the output of the last batch
// is acknowledged, so its arena blocks are reused.
func (h *Detect) Produced() { h.blocks.produced() }

// Handle implements pipeline.Handler.
func (h *Detect) Handle(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*kgo.Record, 0, len(recs)+8)
	byPart, srcs, bad := h.decodeEvents(recs)
	out = h.m.badRecords(out, h.DLQTopic, recs, bad)
	_, router, _ := h.localRules()
	var routed []timedRecord
	arena := newRecordArena(len(recs), &h.blocks)
	// Partitions in order, so equal event times keep one order run to run.
	for _, p := range slices.Sorted(maps.Keys(byPart)) {
		pd, err := h.partition(ctx, p)
		if err != nil {
			return nil, err
		}
		evs, from := h.dedup(pd, byPart[p], srcs[p])
		if h.Health != nil {
			h.Health.Observe(evs, time.Now())
		}
		if h.Enricher != nil {
			// An error here is ctx ending: the batch stays uncommitted.
			if err := h.Enricher.Enrich(ctx, evs); err != nil {
				return nil, err
			}
		}
		for i := range evs {
			kr := from[i]
			body := arena.event(&evs[i], len(kr.Value))
			r := arena.record()
			r.Topic, r.Key, r.Value, r.Timestamp = h.EnrichedTopic, kr.Key, body, kr.Timestamp
			out = append(out, r)
			if h.RepartitionTopic == "" {
				continue
			}
			h.routes = router.Route(&evs[i], h.routes[:0])
			h.projected = h.projected[:0]
			for _, rt := range h.routes {
				val, fields := h.repartitionValue(arena, rt.Family, &evs[i], body)
				r := arena.record()
				r.Topic, r.Key, r.Value, r.Timestamp = h.RepartitionTopic, rt.Key, val, kr.Timestamp
				r.Headers = h.familyHeaders(rt.Family.Name, fields)
				routed = append(routed, timedRecord{evs[i].Timestamp, r})
			}
		}
		if out, err = h.m.observe(ctx, out, pd.det, evs, h.AlertsTopic, h.DLQTopic); err != nil {
			return nil, err
		}
		out = h.stateRecords(out, p, pd.det)
	}
	// Each partition's events are in time order, but one repartition
	// partition gathers them from all: merged in event time, a backlog read
	// partition after partition does not look minutes late to the keyed
	// rules (allowed_lateness).
	slices.SortStableFunc(routed, func(a, b timedRecord) int { return a.t.Compare(b.t) })
	for _, r := range routed {
		out = append(out, r.rec)
	}
	return out, nil
}

// repartitionValue returns the value of ev's repartition record for
// family f, and the id of the fields it holds. A family gets the fields its
// rules read, encoded once per event and field set (families reading the
// same fields share it): most of an enriched event is of no use to them,
// and encoding, compressing, fetching and decoding it again cost a quarter
// of the process's CPU. whole is ev's full encoding.
func (h *Detect) repartitionValue(arena *recordArena, f *detect.Family, ev *schema.Event, whole []byte) ([]byte, string) {
	p := f.Fields()
	if h.RepartitionWhole || p.Whole() {
		return whole, "all"
	}
	id := p.ID()
	for _, e := range h.projected {
		if e.id == id {
			return e.val, id
		}
	}
	val := arena.event(p.Apply(&h.proj, ev), len(whole)/2)
	h.projected = append(h.projected, projectedValue{id, val})
	return val, id
}

// projectedValue is an event's encoding projected to the fields id.
type projectedValue struct {
	id  string
	val []byte
}

// familyHeaders returns the headers of a repartition record for family,
// its event projected to fields (a projection id).
func (h *Detect) familyHeaders(family, fields string) []kgo.RecordHeader {
	key := family + "\x00" + fields
	if hs, ok := h.famHeaders[key]; ok {
		return hs
	}
	if h.famHeaders == nil {
		h.famHeaders = map[string][]kgo.RecordHeader{}
	}
	hs := []kgo.RecordHeader{{Key: HeaderFamily, Value: []byte(family)}, {Key: HeaderFields, Value: []byte(fields)}}
	h.famHeaders[key] = hs
	return hs
}

// timedRecord is an output record with the event time it is ordered by.
type timedRecord struct {
	t   time.Time
	rec *kgo.Record
}

// badRecords appends a dead-letter record for each record of recs in bad.
func (m *DetectMetrics) badRecords(out []*kgo.Record, dlq string, recs []*kgo.Record, bad map[*kgo.Record]string) []*kgo.Record {
	for _, kr := range recs {
		if reason, ok := bad[kr]; ok {
			m.dlq.Inc()
			out = append(out, DLQRecord(dlq, "detect", reason, kr))
		}
	}
	return out
}

// observe runs d over evs and appends the rule errors (to the dead-letter
// topic) and the alerts to out. An error is ctx ending.
func (m *DetectMetrics) observe(ctx context.Context, out []*kgo.Record, d *detect.Detector, evs []schema.Event, alertsTopic, dlq string) ([]*kgo.Record, error) {
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
		m.dlq.Inc()
		body, _ := json.Marshal(map[string]any{"rule.id": re.RuleID, "event.id": re.EventID, "@timestamp": re.Timestamp, "error": re.Err.Error()})
		out = append(out, &kgo.Record{Topic: dlq, Key: []byte(re.EventID), Value: body, Headers: []kgo.RecordHeader{
			{Key: HeaderDLQStage, Value: []byte("detect")},
			{Key: HeaderDLQReason, Value: []byte(re.Error())},
		}})
	}
	for i := range alerts {
		b, err := json.Marshal(&alerts[i])
		if err != nil {
			return nil, err
		}
		out = append(out, &kgo.Record{Topic: alertsTopic, Key: []byte(alerts[i].Event.ID), Value: b, Timestamp: alerts[i].Timestamp})
	}
	return out, nil
}

// decodeEvents groups the events of recs by partition, in order, with the
// record each came from, and returns the records that are not events with
// the reason. The events live in h.evBuf, reused by the next batch: they
// are the handler's until it returns.
func (h *Detect) decodeEvents(recs []*kgo.Record) (map[int32][]schema.Event, map[int32][]*kgo.Record, map[*kgo.Record]string) {
	// One buffer sized up front and reused: an Event is ~1.5 KB, and
	// growing slices by append, or paging in a fresh one for each batch,
	// cost more than decoding.
	counts := map[int32]int{}
	for _, kr := range recs {
		counts[kr.Partition]++
	}
	if cap(h.evBuf) < len(recs) {
		h.evBuf = make([]schema.Event, len(recs))
	}
	byPart := make(map[int32][]schema.Event, len(counts))
	srcs := make(map[int32][]*kgo.Record, len(counts))
	off := 0
	for p, n := range counts {
		byPart[p] = h.evBuf[off : off : off+n]
		srcs[p] = make([]*kgo.Record, 0, n)
		off += n
	}
	var bad map[*kgo.Record]string
	for _, kr := range recs {
		evs := byPart[kr.Partition]
		evs = evs[:len(evs)+1]
		if err := normalize.DecodeEvent(kr.Value, &evs[len(evs)-1]); err != nil {
			if bad == nil {
				bad = map[*kgo.Record]string{}
			}
			bad[kr] = "decode event: " + err.Error()
			continue
		}
		byPart[kr.Partition] = evs
		srcs[kr.Partition] = append(srcs[kr.Partition], kr)
	}
	for p, evs := range byPart {
		if len(evs) == 0 { // every record of p was bad
			delete(byPart, p)
			delete(srcs, p)
		}
	}
	return byPart, srcs, bad
}
