// Package replay re-runs detection over a time range of a retained Kafka
// topic: `trailwatch replay`, and the retro-hunt that runs new or changed
// rules over the recent past when the rules change.
//
// A replay reads every partition of the raw or events topic between the
// offsets the broker's time index gives for the range, with direct
// partition consumers (no consumer group, nothing committed), re-normalizes
// raw records with the configured sources, enriches, applies an optional
// expr filter and runs the rules in event time. The partitions are merged
// in event-time order, ties broken by partition and offset, so the same
// range gives the same alerts, with the same ids, on every run; each
// actor's events keep their partition order, as the live detect stage saw
// them. Alerts carry the run id in trailwatch.run_id and go to the sinks
// the caller gives (a run's own topic and index, NDJSON, and a notifier only
// when asked): a replay never writes to the live alerts topic or index.
//
// What it deliberately does not do: keep or restore state across runs (a
// replay starts with empty windows, sessions and first-seen history, so a
// window open at the start of the range is only partly seen), commit
// offsets, or read transactional topics (the pipeline writes none; a
// control record as the last offset of a range would be waited for). One
// detector runs every rule on the merged stream, where the live pipeline
// runs actor-keyed rules per events partition and the rest on the
// repartition topic: the alerts are the same while the live partitions were
// within the allowed lateness of each other (docs/replay.md, "Limits").
//
// Delivery: a replay is a batch job. Alerts are handed to the sinks batch by
// batch; a failed sink stops the run with the error, and running it again
// rewrites the same alert ids (idempotent sinks drop the repeats).
package replay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/internal/stages"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Input kinds: which topic a replay reads and how its records decode.
const (
	// InputRaw is the raw topic: collected lines, normalized again.
	InputRaw = "raw"
	// InputEvents is the events topic: normalized events as JSON.
	InputEvents = "events"
)

// batchSize is how many merged events go to the enricher and detector at
// once.
const batchSize = 4096

// Config describes one replay run. New validates it.
type Config struct {
	// Kafka connects to the brokers (kafka.Config.Opts).
	Kafka []kgo.Opt
	// Topic is the topic to read.
	Topic string
	// Input is InputRaw or InputEvents: how Topic's records decode.
	Input string
	// Sources are the configured named sources (normalize.sources); a raw
	// record whose source is not among them uses the built-in type of
	// that name, as the normalize stage does.
	Sources map[string]normalize.Spec
	// From and To bound the records read by their Kafka timestamp, [From,
	// To): for the raw topic the time a line was collected, for the events
	// topic the event time.
	From, To time.Time
	// ReadPast reads the events topic this much past To, to catch events
	// before To that arrived out of order after it; events of the events
	// topic outside [From, To) are dropped either way. Default: the allowed
	// lateness. Ignored for the raw topic.
	ReadPast time.Duration
	// Filter, when set, is an expr condition over schema.Event (the rule
	// language); only events it is true for reach the rules. It runs after
	// enrichment, so it can test enriched fields.
	Filter string
	// Rules are the rules to run.
	Rules *detect.RuleSet
	// Detect tunes the detector; zero values take detect.DefaultConfig.
	Detect detect.Config
	// Enricher runs before the filter and the rules, as in the detect
	// stage; nil skips enrichment. The caller owns and closes it.
	Enricher enrich.Enricher
	// DedupIDs is how many recent event ids are remembered to count an
	// event delivered twice once (detect.dedup_ids); 0 remembers none.
	DedupIDs int
	// RunID names the run; it is set on every alert (trailwatch.run_id).
	// Empty generates one (NewRunID).
	RunID string
	// Progress, when set, is told of progress after every batch.
	Progress func(Progress)
}

// Progress is a snapshot of a running replay.
type Progress struct {
	// Records read so far and in total (offset span of every partition).
	Records, Total int64
	// Events that reached the rules so far.
	Events int64
	// Elapsed is the time since the run started.
	Elapsed time.Duration
}

// Result summarizes a finished replay.
type Result struct {
	RunID string    `json:"run_id"`
	Topic string    `json:"topic"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	// Records read from Kafka.
	Records int64 `json:"records"`
	// Bad records: unparseable raw lines or undecodable events.
	Bad int64 `json:"bad"`
	// Events decoded from the records.
	Decoded int64 `json:"decoded"`
	// OutOfRange events of the events topic outside [From, To).
	OutOfRange int64 `json:"out_of_range"`
	// Duplicates dropped by event id.
	Duplicates int64 `json:"duplicates"`
	// Filtered out by Filter.
	Filtered int64 `json:"filtered"`
	// Events that reached the rules.
	Events int64 `json:"events"`
	// Alerts raised, and by rule id.
	Alerts       int64            `json:"alerts"`
	AlertsByRule map[string]int64 `json:"alerts_by_rule"`
	// RuleErrors are run-time rule errors (counted, as the live stage
	// counts them into its dead-letter topic).
	RuleErrors int64         `json:"rule_errors"`
	Duration   time.Duration `json:"duration_ns"`
}

// Rate is the events that reached the rules per second of the run.
func (r Result) Rate() float64 { return float64(r.Events) / max(r.Duration.Seconds(), 1e-9) }

// Sink receives a run's alerts, batch by batch, in the order raised. An
// error stops the run.
type Sink func(ctx context.Context, alerts []schema.Alert) error

// NewRunID returns a run id "replay-YYYYmmdd-HHMMSS-xxxx" for now (UTC).
func NewRunID(now time.Time) string { return newRunID("replay", now) }

func newRunID(prefix string, now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// ValidRunID reports whether id can name a topic and an index: lowercase
// letters, digits, '-' and '_' only, 1 to 100 characters.
func ValidRunID(id string) bool {
	if id == "" || len(id) > 100 || id[0] == '-' || id[0] == '_' {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// CompileFilter compiles a filter over schema.Event, refusing a bad one
// with expr's message (position and reason).
func CompileFilter(src string) (*vm.Program, error) {
	prog, err := expr.Compile(src, expr.Env(schema.Event{}), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", src, err)
	}
	return prog, nil
}

// Replayer runs one replay. It is used once.
type Replayer struct {
	cfg    Config
	log    *slog.Logger
	filter *vm.Program
	det    *detect.Detector
}

// New validates cfg and builds the detector and filter. It does not
// contact Kafka. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Replayer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	def := detect.DefaultConfig()
	if cfg.Detect.MaxGroups == 0 {
		cfg.Detect.MaxGroups = def.MaxGroups
	}
	if cfg.ReadPast == 0 {
		cfg.ReadPast = cfg.Detect.AllowedLateness
	}
	if cfg.RunID == "" {
		cfg.RunID = NewRunID(time.Now())
	}
	var errs []error
	if cfg.Topic == "" {
		errs = append(errs, errors.New("topic: required"))
	}
	if cfg.Input != InputRaw && cfg.Input != InputEvents {
		errs = append(errs, fmt.Errorf("input: %q is not %s or %s", cfg.Input, InputRaw, InputEvents))
	}
	if cfg.From.IsZero() || cfg.To.IsZero() {
		errs = append(errs, errors.New("from, to: both required"))
	} else if !cfg.From.Before(cfg.To) {
		errs = append(errs, fmt.Errorf("to: %s is not after from %s", cfg.To.Format(time.RFC3339), cfg.From.Format(time.RFC3339)))
	}
	if cfg.ReadPast < 0 {
		errs = append(errs, errors.New("read_past: must not be negative"))
	}
	if cfg.Rules == nil || cfg.Rules.Len() == 0 {
		errs = append(errs, errors.New("rules: no rules to run"))
	}
	if !ValidRunID(cfg.RunID) {
		errs = append(errs, fmt.Errorf("run_id: %q must be lowercase letters, digits, - and _ (it names a topic and an index)", cfg.RunID))
	}
	if cfg.DedupIDs < 0 {
		errs = append(errs, errors.New("dedup_ids: must not be negative"))
	}
	for name, spec := range cfg.Sources {
		if _, err := normalize.Build(spec); err != nil {
			errs = append(errs, fmt.Errorf("sources.%s: %w", name, err))
		}
	}
	r := &Replayer{cfg: cfg, log: logger}
	if cfg.Filter != "" {
		prog, err := CompileFilter(cfg.Filter)
		if err != nil {
			errs = append(errs, err)
		}
		r.filter = prog
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("replay: %w", errors.Join(errs...))
	}
	det, err := detect.New(cfg.Rules, cfg.Detect, logger)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	r.det = det
	return r, nil
}

// RunID returns the run's id.
func (r *Replayer) RunID() string { return r.cfg.RunID }

// counters are updated by the partition readers and the merge.
type counters struct {
	records, bad, decoded, outOfRange atomic.Int64
}

// Run reads the range, runs the rules and hands the alerts, tagged with the
// run id, to sink. It returns the summary, also when it fails part way
// (what was done until then).
func (r *Replayer) Run(ctx context.Context, sink Sink) (Result, error) {
	start := time.Now()
	cfg := r.cfg
	res := Result{RunID: cfg.RunID, Topic: cfg.Topic, From: cfg.From, To: cfg.To, AlertsByRule: map[string]int64{}}
	cl, err := kgo.NewClient(cfg.Kafka...)
	if err != nil {
		return res, fmt.Errorf("replay: kafka: %w", err)
	}
	end := cfg.To
	if cfg.Input == InputEvents {
		end = end.Add(cfg.ReadPast)
	}
	spans, err := Spans(ctx, cl, cfg.Topic, cfg.From, end)
	cl.Close()
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	var total int64
	for _, s := range spans {
		total += s.End - s.Start
	}
	r.log.Info("replay starting", "run_id", cfg.RunID, "topic", cfg.Topic, "partitions", len(spans), "records", total)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cnt counters
	var wg sync.WaitGroup
	// Readers stop when ctx is cancelled (the deferred cancel, on return
	// for any reason) and are waited for before Run returns.
	defer wg.Wait()
	readers := make([]*partReader, len(spans))
	for i, s := range spans {
		dec, err := r.decoder(&cnt)
		if err != nil {
			return res, err
		}
		pr := &partReader{span: s, out: make(chan chunk, 4), free: make(chan chunk, 2), decode: dec, bad: func(kr *kgo.Record, err error) {
			cnt.bad.Add(1)
			r.log.Debug("bad record", "partition", kr.Partition, "offset", kr.Offset, "err", err)
		}}
		readers[i] = pr
		wg.Go(func() { pr.run(ctx, cfg.Kafka, cfg.Topic) })
	}
	m := &merger{records: func(n int) { cnt.records.Add(int64(n)) }}
	finish := func(err error) (Result, error) {
		res.Records, res.Bad, res.Decoded, res.OutOfRange = cnt.records.Load(), cnt.bad.Load(), cnt.decoded.Load(), cnt.outOfRange.Load()
		res.Duration = time.Since(start)
		if err != nil {
			return res, fmt.Errorf("replay: %w", err)
		}
		return res, nil
	}
	if err := m.start(ctx, readers); err != nil {
		return finish(err)
	}
	ids := newRecentIDs(cfg.DedupIDs)
	keep := func(ev *schema.Event) bool {
		if ids.seen(ev.Event.ID) {
			res.Duplicates++
			return false
		}
		return true
	}
	evs := make([]schema.Event, 0, batchSize)
	for {
		evs, err = m.next(ctx, evs[:0], batchSize, keep)
		if err != nil {
			return finish(err)
		}
		if len(evs) > 0 {
			if err := r.observe(ctx, evs, &res, sink); err != nil {
				return finish(err)
			}
		}
		if cfg.Progress != nil {
			cfg.Progress(Progress{Records: cnt.records.Load(), Total: total, Events: res.Events, Elapsed: time.Since(start)})
		}
		// A batch of duplicates only is empty but not the end.
		if m.done() {
			break
		}
	}
	return finish(nil)
}

// observe enriches, filters and detects one merged batch and sinks its
// alerts.
func (r *Replayer) observe(ctx context.Context, evs []schema.Event, res *Result, sink Sink) error {
	if r.cfg.Enricher != nil && len(evs) > 0 {
		if err := r.cfg.Enricher.Enrich(ctx, evs); err != nil {
			return err
		}
		// Stateful enrichers keep their changes until drained; a replay
		// persists none of them (it must not touch the live changelog).
		if st, ok := r.cfg.Enricher.(enrich.Stateful); ok {
			st.DrainChanges()
		}
	}
	if r.filter != nil {
		n := 0
		var v vm.VM
		for i := range evs {
			out, err := v.Run(r.filter, &evs[i])
			if ok, _ := out.(bool); err != nil || !ok {
				// A filter that fails on an event (a nil map) excludes it.
				res.Filtered++
				continue
			}
			evs[n] = evs[i]
			n++
		}
		evs = evs[:n]
	}
	res.Events += int64(len(evs))
	alerts, err := r.det.Observe(ctx, evs)
	if err != nil {
		return err
	}
	var newest time.Time
	for i := range evs {
		if evs[i].Timestamp.After(newest) {
			newest = evs[i].Timestamp
		}
	}
	// As the live stage does after each batch: drops state that can no
	// longer change any result, keeping memory bounded on a long range.
	r.det.Advance(newest)
	res.RuleErrors += int64(len(r.det.DrainRuleErrors()))
	r.det.DrainChanges()
	if len(alerts) == 0 {
		return nil
	}
	for i := range alerts {
		alerts[i].Trailwatch.RunID = r.cfg.RunID
		res.Alerts++
		res.AlertsByRule[alerts[i].Rule.ID]++
	}
	if sink != nil {
		if err := sink(ctx, alerts); err != nil {
			return fmt.Errorf("sink: %w", err)
		}
	}
	return nil
}

// decoder returns one partition reader's record decoder: its own
// normalizers (they are not shared between goroutines).
func (r *Replayer) decoder(cnt *counters) (decodeFunc, error) {
	cfg := r.cfg
	if cfg.Input == InputEvents {
		return func(dst []schema.Event, kr *kgo.Record) ([]schema.Event, error) {
			// Decoded in place, not copied in: an Event is ~1.5 KB.
			dst = append(dst, schema.Event{})
			ev := &dst[len(dst)-1]
			if err := normalize.DecodeEvent(kr.Value, ev); err != nil {
				return dst[:len(dst)-1], fmt.Errorf("decode event: %w", err)
			}
			// Record time selected the offsets; event time decides.
			if ev.Timestamp.Before(cfg.From) || !ev.Timestamp.Before(cfg.To) {
				cnt.outOfRange.Add(1)
				return dst[:len(dst)-1], nil
			}
			cnt.decoded.Add(1)
			return dst, nil
		}, nil
	}
	norms := map[string]normalize.Normalizer{}
	return func(dst []schema.Event, kr *kgo.Record) ([]schema.Event, error) {
		raw := stages.DecodeRaw(kr)
		if raw.Truncated {
			return dst, errors.New("line cut by the collector's max_line_bytes")
		}
		n, ok := norms[raw.Source]
		if !ok {
			spec, named := cfg.Sources[raw.Source]
			if !named {
				spec = normalize.Spec{Type: raw.Source}
			}
			var err error
			if n, err = normalize.Build(spec); err != nil {
				return dst, err
			}
			norms[raw.Source] = n
		}
		before := len(dst)
		dst, err := n.Normalize(dst, &raw)
		if err != nil {
			return dst[:before], err
		}
		cnt.decoded.Add(int64(len(dst) - before))
		return dst, nil
	}, nil
}

// Summary is the one-line account of a run for stderr.
func (r Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "replay %s: %d records, %d events, %d bad, %d out of range, %d duplicates, %d filtered, %d alerts",
		r.RunID, r.Records, r.Decoded, r.Bad, r.OutOfRange, r.Duplicates, r.Filtered, r.Alerts)
	if len(r.AlertsByRule) > 0 {
		b.WriteString(" (")
		for i, id := range slices.Sorted(maps.Keys(r.AlertsByRule)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", id, r.AlertsByRule[id])
		}
		b.WriteString(")")
	}
	if r.RuleErrors > 0 {
		fmt.Fprintf(&b, ", %d rule errors", r.RuleErrors)
	}
	fmt.Fprintf(&b, " in %s (%.0f events/s)", r.Duration.Round(time.Millisecond), r.Rate())
	return b.String()
}

// recentIDs remembers the last n event ids (a ring and a set).
type recentIDs struct {
	ring []string
	set  map[string]struct{}
	next int
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{ring: make([]string, n), set: make(map[string]struct{}, n)}
}

// seen reports whether id is among the last n ids, and remembers it.
func (r *recentIDs) seen(id string) bool {
	if len(r.ring) == 0 || id == "" {
		return false
	}
	if _, ok := r.set[id]; ok {
		return true
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
	return false
}
