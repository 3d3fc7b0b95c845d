package detect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// actorGroupName is the group key name of windowless rules: they suppress
// per actor.
const actorGroupName = "trailwatch.actor"

// Detector evaluates a rule set over events in event time. All methods are
// safe for concurrent use, but Observe and Warm must be fed events in the
// order the caller wants results to be reproducible in (one partition's
// order): the detector is deterministic given the same event sequence.
type Detector struct {
	mu      sync.Mutex
	cfg     Config
	log     *slog.Logger
	set     *RuleSet
	rules   []*ruleState
	lru     lru       // every group; front is the most recently touched
	maxSeen time.Time // newest event time seen: the lateness reference
	vm      vm.VM     // reused across runs: saves its stack allocations
	stats   Stats     // Groups and Rules are filled in by Stats()
	pending []RuleError
	vals    []string // scratch group key values
	keyBuf  []byte   // scratch group key: length-prefixed values
	ext     detectorExt
	index   *ruleIndex // which rules an event cannot match; nil: none known
}

// ruleState is one rule's compiled form and its groups.
type ruleState struct {
	rule  *Rule
	names []string // group key names, parallel to group values
	// What the hot loop reads of rule, resolved once by bind: the
	// condition, the kind, whether late events are skipped, and the
	// readers of the key fields (parallel to names; none for windowless
	// rules, which key by actor).
	cond     *cond
	kind     kind
	stateful bool
	keys     []keyReader
	// terms reads new_terms fields; value reads a distinct window's field;
	// num a sum or avg window's field when it is a plain integer (else nil).
	terms  []termReader
	value  keyReader
	num    func(*schema.Event) float64
	over   time.Duration
	groups map[string]*group
	stats  RuleStats
}

// group is the state of one (rule, group key): the times and ids of
// matching events still inside a possible window, sorted by time, and the
// end of its suppression; distinct, sum and avg windows keep more in agg.
// It is kept small (see docs/rules.md, "Memory"): the values of the key
// are not stored, since every alert is raised by an event carrying them.
type group struct {
	rule       *ruleState
	key        string
	prev, next *group // lru links
	evs        []point
	until      instant    // alerts suppressed while event time is before this
	agg        *aggState  // nil for count windows and windowless rules
	state      groupState // sequence, new_terms and rate state; else nil
}

// New builds a detector for rules. It validates cfg; rules must come from
// LoadDir, LoadFiles or Subset. A nil logger discards logs.
func New(rules *RuleSet, cfg Config, logger *slog.Logger) (*Detector, error) {
	if rules == nil {
		return nil, errors.New("detect: nil rule set")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Detector{cfg: cfg, log: logger, set: rules}
	for _, r := range rules.rules {
		d.rules = append(d.rules, newRuleState(r))
	}
	d.index = newRuleIndex(d.rules)
	return d, nil
}

// newRuleState returns the empty state of rule r; New and Reload use it.
func newRuleState(r *Rule) *ruleState {
	rs := &ruleState{groups: map[string]*group{}, stats: RuleStats{ID: r.ID}}
	rs.bind(r)
	return rs
}

// bind makes r the rule of rs: a new rule, or on Reload an unchanged
// definition (same Hash) loaded again, whose state carries on.
func (rs *ruleState) bind(r *Rule) {
	rs.rule, rs.cond, rs.kind, rs.stateful = r, r.condition(), r.ruleKind(), r.stateful()
	switch k := rs.kind.(type) {
	case *Sequence:
		rs.names, rs.keys = k.By, newKeyReaders(k.By, k.programs)
	case *NewTerms:
		rs.names, rs.keys = k.By, newKeyReaders(k.By, k.programs)
		rs.terms = newTermReaders(k.Fields, k.fields)
	case *Rate:
		rs.names, rs.keys = k.By, newKeyReaders(k.By, k.programs)
	case nil:
		if w := r.Window; w != nil {
			rs.names, rs.keys = w.GroupBy, newKeyReaders(w.GroupBy, w.programs)
			switch w.Agg {
			case AggDistinct:
				rs.value = keyReader{get: fastGroupKey(w.Field), prog: w.field}
			case AggSum, AggAvg:
				rs.num = numFields[w.Field]
			}
		} else {
			rs.names, rs.keys = []string{actorGroupName}, nil
		}
	}
	switch {
	case rs.kind != nil:
		rs.over = rs.kind.span()
	case r.Window != nil:
		rs.over = r.Window.Over
	default:
		rs.over = 0
	}
}

// Rules describes the detector's rules, for metrics.
func (d *Detector) Rules() []RuleInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.set.Info()
}

// Observe runs every rule on every event, in order, and returns the alerts
// raised, in the order they were raised. An event's time is its Timestamp.
// The runner calls it once per input batch and forwards the alerts before
// committing the batch's offsets. It returns an error only if ctx is done
// before it starts, in which case no state changed and the caller retries
// the batch or stops. Rules that fail at run time do not fail the batch:
// they are counted and kept for DrainRuleErrors.
func (d *Detector) Observe(ctx context.Context, evs []schema.Event) ([]schema.Alert, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.process(evs, true), nil
}

// Warm updates state exactly as Observe would but returns no alerts and
// keeps no rule errors. After a restart, the caller replays the input it
// had already processed (and whose alerts it already sent) through Warm,
// then resumes with Observe, so no alert is emitted twice.
func (d *Detector) Warm(evs []schema.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.process(evs, false)
}

// Advance tells the detector that event time has reached watermark, and
// drops the groups that can no longer affect any result: those whose
// events are all older than a window before the oldest time a non-late
// event may have, and whose suppression has ended. Dropping them changes no
// later output. The reference is the older of watermark and the newest event
// time seen, so a wall-clock watermark during replay evicts nothing early.
// Threshold windows do not emit on close today, so it returns nil; the
// signature leaves room for window kinds that do.
func (d *Detector) Advance(watermark time.Time) []schema.Alert {
	d.mu.Lock()
	defer d.mu.Unlock()
	ref := watermark
	if d.maxSeen.Before(ref) {
		ref = d.maxSeen
	}
	horizon := ref.Add(-d.cfg.AllowedLateness)
	// A full scan: touch order is not event-time order (a long suppression
	// can sit behind fresher groups), so stopping early would keep garbage.
	for g := d.lru.back; g != nil; {
		prev := g.prev
		if g.expired(toInstant(horizon)) {
			d.remove(g)
			d.stats.Expired++
		}
		g = prev
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (d *Detector) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Groups = d.lru.n
	s.Rules = make([]RuleStats, len(d.rules))
	for i, rs := range d.rules {
		s.Rules[i] = rs.stats
		s.Rules[i].Groups = len(rs.groups)
	}
	return s
}

// DrainRuleErrors returns the run-time rule errors kept since the last call
// (at most 1024; Stats.RuleErrorsDropped counts the rest) and forgets them.
// The caller sends them to the dead-letter topic after each Observe.
func (d *Detector) DrainRuleErrors() []RuleError {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.pending
	d.pending = nil
	return out
}

// process is Observe and Warm; emit says whether alerts are built and
// returned.
// timingSample is how often (one event in N) per-rule evaluation time is
// measured; RuleStats.EvalTime is the sampled time scaled by N.
const timingSample = 64

func (d *Detector) process(evs []schema.Event, emit bool) []schema.Alert {
	var alerts []schema.Alert
	for i := range evs {
		ev := &evs[i]
		d.stats.Events++
		t := ev.Timestamp
		if t.After(d.maxSeen) {
			d.maxSeen = t
		}
		horizon := d.maxSeen.Add(-d.cfg.AllowedLateness)
		late := t.Before(horizon)
		if late {
			d.stats.Late++
		}
		// Rule timing is sampled on one event in timingSample and scaled:
		// a clock read per rule per event cost ~13% of evaluation, and
		// one in 16 still ~3% on a VM with a slow clock.
		sample := (d.stats.Events-1)%timingSample == 0 // the first event is always timed
		var start time.Time
		if sample {
			start = time.Now()
		}
		var skip []bool
		if d.index != nil {
			skip = d.index.skips(ev)
		}
		for j, rs := range d.rules {
			if skip != nil && skip[j] {
				// The condition would be false (ruleindex.go); it still
				// counts as evaluated, as in match.
				if !late || !rs.stateful {
					rs.stats.Evals++
				}
			} else if d.match(rs, ev, late, emit) {
				if a := d.evaluate(rs, ev, late, horizon, emit); a != nil {
					alerts = append(alerts, *a)
					d.stats.Alerts++
					rs.stats.Alerts++
				}
			}
			if sample {
				now := time.Now()
				rs.stats.EvalTime += now.Sub(start) * timingSample
				start = now
			}
		}
	}
	return alerts
}

// match runs one rule's condition on one event and reports whether it
// matched; a condition error is kept as a rule error.
func (d *Detector) match(rs *ruleState, ev *schema.Event, late, emit bool) bool {
	if late && rs.stateful {
		// Why: a late event would rewrite a window that may already have
		// been judged; skipping it keeps results independent of arrival
		// timing beyond the allowed lateness.
		return false
	}
	rs.stats.Evals++
	ok, err := rs.cond.eval(&d.vm, ev)
	if err != nil {
		d.ruleError(rs, ev, err, emit)
		return false
	}
	if ok {
		rs.stats.Matches++
	}
	return ok
}

// evaluate handles a match of one rule on one event and returns the alert
// it fired, or nil (always nil when emit is false). An alert is built only
// when one fires: an empty Alert (~1.5 KB) returned per rule per event cost
// more than the conditions.
func (d *Detector) evaluate(rs *ruleState, ev *schema.Event, late bool, horizon time.Time, emit bool) *schema.Alert {
	if rs.kind != nil {
		return rs.kind.observe(d, rs, ev, horizon, emit)
	}
	if rs.rule.Window == nil {
		return d.single(rs, ev, late, emit)
	}
	return d.threshold(rs, ev, horizon, emit)
}

// single handles a windowless rule's match: an alert per event, suppressed
// per actor when the rule sets suppress.
func (d *Detector) single(rs *ruleState, ev *schema.Event, late, emit bool) *schema.Alert {
	r := rs.rule
	d.vals = append(d.vals[:0], actor(ev))
	// A late event alerts without consulting or changing suppression
	// state: a windowless rule needs no window, and state stays a function
	// of in-order events only.
	if r.Suppress > 0 && !late {
		d.keyBuf = appendKeyValue(d.keyBuf[:0], d.vals[0])
		g := d.touch(rs)
		t := toInstant(ev.Timestamp)
		if t < g.until {
			d.suppressed(rs)
			return nil
		}
		g.until = t.add(r.Suppress)
	}
	if !emit {
		return nil
	}
	f := fired{first: toInstant(ev.Timestamp), count: 1, value: 1}
	f.last = f.first
	if ev.Event.ID != "" {
		f.ids = []string{ev.Event.ID}
	}
	return d.alert(rs, d.vals, ev, f, ev.Event.ID)
}

// threshold handles a threshold rule's match.
func (d *Detector) threshold(rs *ruleState, ev *schema.Event, horizon time.Time, emit bool) *schema.Alert {
	w := rs.rule.Window
	if err := d.groupKey(rs, ev); err != nil {
		d.ruleError(rs, ev, err, emit)
		return nil
	}
	// The aggregated field is read before touching state, so an error
	// leaves none behind.
	var value string
	var num float64
	var err error
	switch {
	case w.Agg == AggDistinct:
		value, err = rs.value.read(&d.vm, ev)
	case rs.num != nil:
		num = rs.num(ev)
	case w.Agg == AggSum || w.Agg == AggAvg:
		var x any
		if x, err = d.vm.Run(w.field, ev); err == nil {
			num, err = toFloat(x)
		}
	}
	if err != nil {
		d.ruleError(rs, ev, fmt.Errorf("%s %s: %w", w.Agg, w.Field, err), emit)
		return nil
	}
	g := d.touch(rs)
	t := toInstant(ev.Timestamp)
	over := instant(rs.over)
	var f fired
	switch w.Agg {
	case AggCount:
		// Events at or before horizon-over cannot share a window with any
		// future non-late event, which is at or after horizon.
		g.prune(toInstant(horizon).add(-rs.over))
		p := g.insert(t, ev.Event.ID)
		i, j, ok := g.firing(p, w.Count, rs.over)
		if !ok {
			return nil
		}
		if t < g.until {
			d.suppressed(rs)
			return nil
		}
		if emit {
			f = fired{first: g.evs[i].t, last: g.evs[j].t, count: j - i + 1, value: float64(j - i + 1), ids: sampleIDs(g.evs[i : j+1])}
		}
		// Each event counts toward one alert only: the window starts over.
		g.evs = g.evs[:0]
	case AggDistinct:
		if g.agg == nil {
			g.agg = &aggState{newest: t}
		}
		if n := g.agg.distinct(t, over, value, ev.Event.ID, w.MaxDistinct); n > 0 {
			rs.stats.DistinctEvictions += uint64(n)
			d.stats.DistinctEvictions += uint64(n)
		}
		if len(g.agg.heap) < w.Count {
			return nil
		}
		if t < g.until {
			d.suppressed(rs)
			return nil
		}
		f = g.agg.distinctFired()
	case AggSum, AggAvg:
		if g.agg == nil {
			g.agg = &aggState{newest: t}
		}
		g.agg.numeric(g, t, over, num, ev.Event.ID)
		if len(g.evs) == 0 || g.agg.aggregate(w.Agg) < w.Threshold {
			return nil
		}
		if t < g.until {
			d.suppressed(rs)
			return nil
		}
		f = g.agg.numericFired(g, w.Agg)
	}
	// The group stays quiet for suppress after the triggering event.
	g.until = t.add(rs.rule.Suppress)
	if !emit {
		return nil
	}
	return d.alert(rs, d.vals, ev, f, "")
}

func (d *Detector) suppressed(rs *ruleState) {
	rs.stats.Suppressed++
	d.stats.Suppressed++
}

// groupKey evaluates the window's group_by fields into d.vals and d.keyBuf.
func (d *Detector) groupKey(rs *ruleState, ev *schema.Event) error {
	if err := d.keyOf(rs, ev); err != nil {
		return fmt.Errorf("group_by %w", err)
	}
	return nil
}

func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}

// appendKeyValue appends one group key value, length-prefixed so that no
// two value lists share a key.
func appendKeyValue(key []byte, v string) []byte {
	key = binary.AppendUvarint(key, uint64(len(v)))
	return append(key, v...)
}

// touch returns the group for d.keyBuf, creating it and evicting the least
// recently touched group if max_groups is reached.
func (d *Detector) touch(rs *ruleState) *group {
	if g, ok := rs.groups[string(d.keyBuf)]; ok {
		d.lru.moveToFront(g)
		return g
	}
	if d.lru.n >= d.cfg.MaxGroups {
		// Why: state must stay bounded whatever the key cardinality; the
		// least recently touched group is the least likely to fire.
		d.remove(d.lru.back)
		d.stats.Evictions++
	}
	g := &group{rule: rs, key: string(d.keyBuf)}
	d.lru.pushFront(g)
	rs.groups[g.key] = g
	return g
}

func (d *Detector) remove(g *group) {
	d.lru.unlink(g)
	delete(g.rule.groups, g.key)
	if g.state != nil {
		g.state.dropped(g)
	}
}

// lru is an intrusive doubly linked list of groups: two pointers in each
// group instead of a 48-byte container/list element.
type lru struct {
	front, back *group
	n           int
}

func (l *lru) pushFront(g *group) {
	g.prev, g.next = nil, l.front
	if l.front != nil {
		l.front.prev = g
	} else {
		l.back = g
	}
	l.front = g
	l.n++
}

func (l *lru) unlink(g *group) {
	if g.prev != nil {
		g.prev.next = g.next
	} else {
		l.front = g.next
	}
	if g.next != nil {
		g.next.prev = g.prev
	} else {
		l.back = g.prev
	}
	g.prev, g.next = nil, nil
	l.n--
}

func (l *lru) moveToFront(g *group) {
	if l.front == g {
		return
	}
	l.unlink(g)
	l.pushFront(g)
}

func (d *Detector) ruleError(rs *ruleState, ev *schema.Event, err error, emit bool) {
	rs.stats.Errors++
	d.stats.RuleErrors++
	if !emit {
		return // already reported when the event was first observed
	}
	if len(d.pending) >= maxPendingRuleErrors {
		d.stats.RuleErrorsDropped++
		d.log.Warn("rule error dropped: too many pending", "rule", rs.rule.ID, "event_id", ev.Event.ID, "err", err)
		return
	}
	d.log.Debug("rule error", "rule", rs.rule.ID, "event_id", ev.Event.ID, "err", err)
	d.pending = append(d.pending, RuleError{RuleID: rs.rule.ID, EventID: ev.Event.ID, Timestamp: ev.Timestamp, Err: err})
}

// actor is the key windowless rules suppress by.
func actor(ev *schema.Event) string {
	if ev.Trailwatch.Actor != "" {
		return ev.Trailwatch.Actor
	}
	return ev.ActorKey()
}
