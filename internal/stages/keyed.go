package stages

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// KeyedDetect runs the rules grouped by keys other than the actor, over the
// repartition topic that Detect fills: each record is an enriched event,
// projected to the fields its family's rules read (HeaderFields), keyed by
// one family's key values and naming the family in a header. A
// partition has a detector per family, built on first use, dropped on
// revocation and rebuilt from the partition's recent history (Warm), as
// for Detect. Several processes split the repartition topic's partitions,
// so a group's state lives in exactly one of them.
type KeyedDetect struct {
	AlertsTopic string
	DLQTopic    string
	// DedupIDs is how many recent (family, event id) pairs each partition
	// remembers to drop a record delivered twice; 0 remembers none.
	DedupIDs int
	// StateTopic is the compacted changelog of the detectors' durable
	// state (new-terms history), in the partition of the repartition
	// records they describe; empty keeps state in memory only.
	StateTopic string
	// ReadState reads a changelog partition from its start; see Detect.
	ReadState func(ctx context.Context, topic string, p int32, fn func(*kgo.Record) error) error

	book *RuleBook
	log  *slog.Logger
	m    *DetectMetrics

	mu    sync.Mutex
	parts map[int32]*keyedPart
	// evBuf holds the events of the batch being handled (or warmed).
	evBuf []schema.Event
	// warned holds the (family, projection id) pairs already logged as
	// not matching the rules, so a rule change logs once, not per record.
	warned map[string]bool
}

// keyedPart is one repartition partition's detectors, by family name.
type keyedPart struct {
	fams map[string]*famDetector
	ids  *recentIDs
	key  []byte // scratch dedup key
	// pending holds the restored changelog records of families whose
	// detector is not built yet, by family.
	pending map[string][]*kgo.Record
}

type famDetector struct {
	det *detect.Detector
	gen uint64
}

// NewKeyedDetect returns the handler of the repartition topic running
// book's non-local rules.
func NewKeyedDetect(alerts, dlq string, book *RuleBook, m *DetectMetrics, log *slog.Logger) *KeyedDetect {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &KeyedDetect{AlertsTopic: alerts, DLQTopic: dlq, book: book, log: log, m: m, parts: map[int32]*keyedPart{}}
	m.add(h)
	return h
}

func (h *KeyedDetect) detectors() []*detect.Detector {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*detect.Detector
	for _, p := range h.parts {
		for _, f := range p.fams {
			out = append(out, f.det)
		}
	}
	return out
}

// Assigned implements pipeline.PartitionAware.
func (h *KeyedDetect) Assigned(_ string, p int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.parts, p)
}

// Revoked implements pipeline.PartitionAware.
func (h *KeyedDetect) Revoked(_ string, p int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.parts, p)
}

// WarmWindow implements pipeline.Warmer.
func (h *KeyedDetect) WarmWindow() time.Duration { return h.book.Window() }

// keyedBatch is the events of one (partition, family), in offset order.
type keyedBatch struct {
	p   int32
	fam string
	evs []schema.Event
}

// decode splits recs by partition and family, dropping records seen
// recently; bad holds the records that are not events, with the reason.
// The ids are remembered as they are decoded: Handle fails only when ctx
// ends, and then the process is stopping, so a batch is never handed over
// again to the same duplicate filter.
func (h *KeyedDetect) decode(ctx context.Context, recs []*kgo.Record) ([]*keyedBatch, map[*kgo.Record]string, error) {
	type batchKey struct {
		p   int32
		fam string
	}
	// Events are decoded in place into one buffer, sized up front and
	// reused by the next batch: an Event is ~1.5 KB, and copying it into
	// growing slices, or paging in a fresh buffer per batch, cost more
	// than decoding.
	counts := map[batchKey]int{}
	fams := make([]string, len(recs))
	for i, kr := range recs {
		fams[i] = Header(kr, HeaderFamily)
		counts[batchKey{kr.Partition, fams[i]}]++
	}
	if cap(h.evBuf) < len(recs) {
		h.evBuf = make([]schema.Event, len(recs))
	}
	idx := make(map[batchKey]*keyedBatch, len(counts))
	off := 0
	for k, n := range counts {
		idx[k] = &keyedBatch{p: k.p, fam: k.fam, evs: h.evBuf[off : off : off+n]}
		off += n
	}
	var batches []*keyedBatch
	var bad map[*kgo.Record]string
	_, router, _ := h.book.current()
	fail := func(kr *kgo.Record, reason string) {
		if bad == nil {
			bad = map[*kgo.Record]string{}
		}
		bad[kr] = reason
	}
	for i, kr := range recs {
		fam := fams[i]
		if fam == "" {
			fail(kr, "repartition record without a "+HeaderFamily+" header")
			continue
		}
		h.checkFields(router, fam, kr)
		b := idx[batchKey{kr.Partition, fam}]
		evs := b.evs[:len(b.evs)+1]
		ev := &evs[len(evs)-1]
		if err := normalize.DecodeEvent(kr.Value, ev); err != nil {
			fail(kr, "decode event: "+err.Error())
			continue
		}
		kp, err := h.part(ctx, kr.Partition)
		if err != nil {
			return nil, nil, err
		}
		kp.key = append(append(append(kp.key[:0], fam...), 0), ev.Event.ID...)
		if ev.Event.ID != "" && kp.ids.seenBytes(kp.key) {
			h.m.dup.Inc()
			continue
		}
		if len(b.evs) == 0 {
			batches = append(batches, b) // in order of first kept event
		}
		b.evs = evs
	}
	return batches, bad, nil
}

// checkFields counts (and logs once per family and field set) a record
// whose event was projected for other rules than the family's now: it was
// routed before a rule change reached the process that routed it, and a
// rule reading a field the projection dropped sees it empty. The record
// is still processed — the family's other rules need it — as a record
// routed by the old rules would have been.
func (h *KeyedDetect) checkFields(router *detect.Router, fam string, kr *kgo.Record) {
	fields := Header(kr, HeaderFields)
	f := router.Family(fam)
	if fields == "" || fields == "all" || f == nil || fields == f.Fields().ID() {
		return
	}
	h.m.mismatch.Inc()
	key := fam + "\x00" + fields
	if h.warned[key] {
		return
	}
	if h.warned == nil {
		h.warned = map[string]bool{}
	}
	h.warned[key] = true
	h.log.Warn("repartition record projected for other rules", "family", fam, "fields", fields, "want", f.Fields().ID(), "partition", kr.Partition, "offset", kr.Offset)
}

// part returns partition p's state, reading its changelog on first use.
func (h *KeyedDetect) part(ctx context.Context, p int32) (*keyedPart, error) {
	if kp, ok := h.parts[p]; ok {
		return kp, nil
	}
	kp := &keyedPart{fams: map[string]*famDetector{}, ids: newRecentIDs(h.DedupIDs), pending: map[string][]*kgo.Record{}}
	if h.StateTopic != "" && h.ReadState != nil {
		err := h.ReadState(ctx, h.StateTopic, p, func(r *kgo.Record) error {
			fam, _, ok := bytes.Cut(r.Key, []byte{0})
			if ok {
				kp.pending[string(fam)] = append(kp.pending[string(fam)], r)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("restore state of repartition partition %d: %w", p, err)
		}
	}
	h.parts[p] = kp
	return kp, nil
}

// detector returns the family's detector in partition p, built on first
// use and reloaded when the rule book changed; nil when the current rules
// have no such family (it was removed by a reload).
func (h *KeyedDetect) detector(ctx context.Context, p int32, fam string) (*detect.Detector, error) {
	_, router, gen := h.book.current()
	f := router.Family(fam)
	kp, err := h.part(ctx, p)
	if err != nil {
		return nil, err
	}
	fd, ok := kp.fams[fam]
	if f == nil {
		delete(kp.fams, fam)
		return nil, nil
	}
	if ok && fd.gen == gen {
		return fd.det, nil
	}
	if ok {
		fd.det.Reload(f.Rules)
		fd.gen = gen
		return fd.det, nil
	}
	d, err := detect.New(f.Rules, h.book.Config(), h.log)
	if err != nil {
		return nil, err
	}
	for _, r := range kp.pending[fam] {
		if err := d.Restore(r.Key[len(fam)+1:], r.Value); err != nil {
			h.log.Warn("state record skipped", "topic", h.StateTopic, "partition", p, "offset", r.Offset, "err", err)
		}
	}
	delete(kp.pending, fam)
	kp.fams[fam] = &famDetector{det: d, gen: gen}
	return d, nil
}

// stateRecords appends the family detector's durable-state changes to out.
func (h *KeyedDetect) stateRecords(out []*kgo.Record, p int32, fam string, d *detect.Detector) []*kgo.Record {
	changes := d.DrainChanges()
	if h.StateTopic == "" {
		return out
	}
	for _, c := range changes {
		key := make([]byte, 0, len(fam)+1+len(c.Key))
		key = append(append(append(key, fam...), 0), c.Key...)
		out = append(out, &kgo.Record{Topic: h.StateTopic, Partition: p, Key: key, Value: c.Value})
	}
	return out
}

// Warm implements pipeline.Warmer.
func (h *KeyedDetect) Warm(ctx context.Context, recs []*kgo.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	batches, _, err := h.decode(ctx, recs)
	if err != nil {
		h.log.Error("cannot warm up", "err", err)
		return
	}
	for _, b := range batches {
		d, err := h.detector(ctx, b.p, b.fam)
		if err != nil {
			h.log.Error("cannot build detector", "err", err)
			return
		}
		if d != nil {
			d.Warm(b.evs)
			d.DrainChanges() // written when the input was first processed
		}
	}
}

// Handle implements pipeline.Handler.
func (h *KeyedDetect) Handle(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	batches, bad, err := h.decode(ctx, recs)
	if err != nil {
		return nil, err
	}
	out := h.m.badRecords(make([]*kgo.Record, 0, 8), h.DLQTopic, recs, bad)
	for _, b := range batches {
		d, err := h.detector(ctx, b.p, b.fam)
		if err != nil {
			return nil, err
		}
		if d == nil {
			continue // the family's rules were removed by a reload
		}
		if out, err = h.m.observe(ctx, out, d, b.evs, h.AlertsTopic, h.DLQTopic); err != nil {
			return nil, err
		}
		out = h.stateRecords(out, b.p, b.fam, d)
	}
	return out, nil
}
