package detect

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// NewTerms makes a rule fire when the values of Fields (a term) were not
// seen for the group (By values) within History. A group first seen less
// than Learning before an event never fires on it.
type NewTerms struct {
	By       []string
	Fields   []string
	History  time.Duration
	Learning time.Duration
	// MaxTerms bounds the terms held per group; past it the term seen
	// longest ago is dropped (Stats.TermEvictions).
	MaxTerms int

	programs []*vm.Program
	fields   []*vm.Program
}

// DefaultMaxTerms is new_terms.max_terms when a rule does not set it.
const DefaultMaxTerms = 1000

// DefaultLearning is new_terms.learning when a rule does not set it (or
// history, if shorter).
const DefaultLearning = 24 * time.Hour

// Aggregation names the kind as alerts report it: "new_terms(source.as.number)".
func (nt *NewTerms) Aggregation() string {
	return "new_terms(" + strings.Join(nt.Fields, ",") + ")"
}

// resolution is the granularity of kept last-seen times: history/720 (1h
// for 30d), at least 1s. Coarser times mean fewer changelog records.
func (nt *NewTerms) resolution() instant {
	return instant(max(nt.History/720, time.Second))
}

func (nt *NewTerms) groupBy() []string { return nt.By }

// span is zero: history is durable state (DrainChanges), not rebuilt by
// replay.
func (nt *NewTerms) span() time.Duration { return 0 }

// StateChange is one update of durable state; a nil Value deletes Key.
type StateChange struct{ Key, Value []byte }

// DrainChanges returns the durable-state updates made since the last call
// (Observe, Warm and Advance record them; Restore does not) and forgets
// them. The caller writes them to a compacted changelog after each batch,
// in order, and feeds them back through Restore after a restart.
func (d *Detector) DrainChanges() []StateChange {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.ext.changes
	d.ext.changes = nil
	return out
}

// Restore loads one changelog record (as returned by DrainChanges earlier,
// possibly by another process) before any event is observed; later
// records for the same key replace earlier ones, and an empty value deletes
// the key. Records of rules that are not loaded, or are no longer
// new_terms rules, are ignored. It returns an error for a malformed record.
func (d *Detector) Restore(key, value []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	id, rest, ok := bytes.Cut(key, []byte{0})
	if !ok {
		return errors.New("detect: restore: key without rule id")
	}
	var rs *ruleState
	for _, s := range d.rules {
		if s.rule.ID == string(id) && s.rule.NewTerms != nil {
			rs = s
		}
	}
	if rs == nil {
		return nil
	}
	n, w := binary.Uvarint(rest)
	if w <= 0 || uint64(len(rest)-w) < n {
		return fmt.Errorf("detect: restore %s: malformed key", id)
	}
	gkey, term := rest[w:w+int(n)], string(rest[w+int(n):])
	if len(value) == 0 {
		if g, ok := rs.groups[string(gkey)]; ok {
			if ts, _ := g.state.(*termState); ts != nil {
				if tm, ok := ts.byTerm[term]; ok {
					heap.Remove(&ts.heap, tm.index)
					delete(ts.byTerm, term)
					ts.dirty = true
				}
			}
		}
		return nil
	}
	last, first, err := decodeTermValue(value)
	if err != nil {
		return fmt.Errorf("detect: restore %s: %w", id, err)
	}
	d.keyBuf = append(d.keyBuf[:0], gkey...)
	g := d.touch(rs)
	ts := d.termsOf(g, first)
	if tm, ok := ts.byTerm[term]; ok {
		tm.last, tm.first = last, first
		heap.Fix(&ts.heap, tm.index)
	} else {
		d.addTerm(rs, g, ts, term, last, first, false)
	}
	ts.dirty = true
	return nil
}

// termState is one group's history: its terms by last-seen time.
type termState struct {
	first  instant // when the group was first seen
	dirty  bool    // first must be recomputed from the terms (after Restore)
	byTerm map[string]*termEntry
	heap   termHeap
	rule   *NewTerms
	log    *[]StateChange
}

// termEntry is one term: its encoded values, when it was last seen
// (truncated to the rule's resolution) and the group's first-seen time
// when it was recorded.
type termEntry struct {
	term        string
	last, first instant
	index       int
}

// termHeap orders terms by last-seen time, ties by term.
type termHeap []*termEntry

func (h termHeap) Len() int { return len(h) }
func (h termHeap) Less(i, j int) bool {
	if h[i].last != h[j].last {
		return h[i].last < h[j].last
	}
	return h[i].term < h[j].term
}
func (h termHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *termHeap) Push(x any) {
	e := x.(*termEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *termHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

func (d *Detector) termsOf(g *group, first instant) *termState {
	ts, _ := g.state.(*termState)
	if ts == nil {
		ts = &termState{first: first, byTerm: map[string]*termEntry{}, rule: g.rule.rule.NewTerms, log: &d.ext.changes}
		g.state = ts
	}
	return ts
}

// addTerm adds a term, dropping the oldest past max_terms, and records it
// when record is set.
func (d *Detector) addTerm(rs *ruleState, g *group, ts *termState, term string, last, first instant, record bool) {
	for len(ts.heap) >= ts.rule.MaxTerms {
		// Why: memory per key stays bounded whatever the cardinality; the
		// term seen longest ago is the first to expire anyway.
		ts.remove(g, heap.Pop(&ts.heap).(*termEntry))
		rs.stats.TermEvictions++
		d.stats.TermEvictions++
	}
	tm := &termEntry{term: term, last: last, first: first}
	ts.byTerm[term] = tm
	heap.Push(&ts.heap, tm)
	if record {
		ts.record(g, tm)
	}
}

// remove forgets a term popped from the heap and records a tombstone.
func (ts *termState) remove(g *group, tm *termEntry) {
	delete(ts.byTerm, tm.term)
	*ts.log = append(*ts.log, StateChange{Key: termKey(g, tm.term)})
}

func (ts *termState) record(g *group, tm *termEntry) {
	v := []byte{1}
	v = binary.AppendVarint(v, int64(tm.last))
	v = binary.AppendVarint(v, int64(tm.first))
	*ts.log = append(*ts.log, StateChange{Key: termKey(g, tm.term), Value: v})
}

// termKey is a changelog key: rule id, 0, the length-prefixed group key,
// then the term's length-prefixed values.
func termKey(g *group, term string) []byte {
	id := g.rule.rule.ID
	k := make([]byte, 0, len(id)+1+binary.MaxVarintLen64+len(g.key)+len(term))
	k = append(k, id...)
	k = append(k, 0)
	k = binary.AppendUvarint(k, uint64(len(g.key)))
	k = append(k, g.key...)
	return append(k, term...)
}

func decodeTermValue(v []byte) (last, first instant, err error) {
	if v[0] != 1 {
		return 0, 0, fmt.Errorf("unknown value version %d", v[0])
	}
	l, n := binary.Varint(v[1:])
	if n <= 0 {
		return 0, 0, errors.New("malformed value")
	}
	f, m := binary.Varint(v[1+n:])
	if m <= 0 || 1+n+m != len(v) {
		return 0, 0, errors.New("malformed value")
	}
	return instant(l), instant(f), nil
}

// expireBefore drops the terms last seen at or before cut, recording
// tombstones.
func (ts *termState) expireBefore(g *group, cut instant) {
	for len(ts.heap) > 0 && ts.heap[0].last <= cut {
		ts.remove(g, heap.Pop(&ts.heap).(*termEntry))
	}
}

func (ts *termState) expire(g *group, horizon instant) bool {
	ts.expireBefore(g, horizon.add(-ts.rule.History))
	return len(ts.heap) == 0 && g.until <= horizon
}

func (ts *termState) dropped(g *group) {
	for len(ts.heap) > 0 {
		ts.remove(g, heap.Pop(&ts.heap).(*termEntry))
	}
}

func (nt *NewTerms) observe(d *Detector, rs *ruleState, ev *schema.Event, _ time.Time, emit bool) *schema.Alert {
	// The term and key are evaluated before touching state, so an error
	// or a missing value leaves none behind.
	d.ext.termBuf = d.ext.termBuf[:0]
	for i := range rs.terms {
		v, ok, err := rs.terms[i].read(&d.vm, d.ext.valBuf[:0], ev)
		d.ext.valBuf = v
		if err != nil {
			d.ruleError(rs, ev, fmt.Errorf("new_terms.fields %s: %w", nt.Fields[i], err), emit)
			return nil
		}
		if !ok {
			return nil // a missing value is no term
		}
		d.ext.termBuf = binary.AppendUvarint(d.ext.termBuf, uint64(len(v)))
		d.ext.termBuf = append(d.ext.termBuf, v...)
	}
	if err := d.keyOf(rs, ev); err != nil {
		d.ruleError(rs, ev, fmt.Errorf("by %w", err), emit)
		return nil
	}
	t := toInstant(ev.Timestamp)
	g := d.touch(rs)
	ts, _ := g.state.(*termState)
	created := ts == nil
	ts = d.termsOf(g, t)
	if ts.dirty {
		ts.first, ts.dirty = t, false
		for _, tm := range ts.heap {
			ts.first = min(ts.first, tm.first)
		}
	}
	ts.expireBefore(g, t.add(-nt.History))
	if !created && len(ts.heap) == 0 {
		// All of the key's history expired: it is new again, as it would
		// be had Advance dropped it.
		ts.first, created = t, true
	}
	ts.first = min(ts.first, t)
	res := nt.resolution()
	last := t - ((t%res)+res)%res // floored, also for negative times
	if tm, ok := ts.byTerm[string(d.ext.termBuf)]; ok {
		if last > tm.last {
			tm.last, tm.first = last, ts.first
			heap.Fix(&ts.heap, tm.index)
			ts.record(g, tm)
		}
		return nil
	}
	known := len(ts.heap)
	d.addTerm(rs, g, ts, string(d.ext.termBuf), last, ts.first, true)
	if created || time.Duration(t-ts.first) < nt.Learning {
		return nil
	}
	if t < g.until {
		d.suppressed(rs)
		return nil
	}
	g.until = t.add(rs.rule.Suppress)
	if !emit {
		return nil
	}
	values := termValues(d.ext.termBuf, len(nt.Fields))
	f := fired{first: t, last: t, count: 1, value: float64(known)}
	if ev.Event.ID != "" {
		f.ids = []string{ev.Event.ID}
	}
	a := d.alert(rs, d.vals, ev, f, ev.Event.ID)
	a.Trailwatch.Aggregation = nt.Aggregation()
	a.Trailwatch.Window = nt.History.String()
	a.Trailwatch.Value = f.value
	a.Trailwatch.DistinctValues = []string{strings.Join(values, ", ")}
	var term strings.Builder
	for i, f := range nt.Fields {
		if i > 0 {
			term.WriteString(", ")
		}
		fmt.Fprintf(&term, "%s=%s", f, values[i])
	}
	a.Message = fmt.Sprintf("%s: new %s (%d known in %s)", rs.rule.Title, term.String(), known, a.Trailwatch.Window)
	if desc := groupDesc(rs.names, d.vals); desc != "" {
		a.Message += " for " + desc
	}
	return a
}

// termValues splits a term built by appendKeyValue back into its n
// values; only a firing rule needs them.
func termValues(term []byte, n int) []string {
	values := make([]string, 0, n)
	for len(term) > 0 {
		l, w := binary.Uvarint(term)
		values = append(values, string(term[w:w+int(l)]))
		term = term[w+int(l):]
	}
	return values
}
