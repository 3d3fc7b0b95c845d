package detect

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Sequence makes a rule fire when, for one group (By values), every step
// has matched its count of events within Within: in step order when
// Ordered (each step's events after the previous step's), in any order
// otherwise (Sigma's temporal correlation).
type Sequence struct {
	By      []string
	Within  time.Duration
	Ordered bool
	Steps   []Step

	programs []*vm.Program
}

// Step is one step of a sequence: Count events matching Where.
type Step struct {
	Name  string
	Where string
	Count int

	where *vm.Program
	cond  *cond // the fast evaluation of where (fast.go), built at load
}

// MaxStepEvents bounds the events a sequence group holds per step; past it
// the oldest is dropped (Stats.StepEvictions).
const MaxStepEvents = 1024

// Aggregation names the sequence as alerts report it:
// "sequence(failures>success)" when ordered, "sequence(a&b)" when not.
func (s *Sequence) Aggregation() string {
	sep := "&"
	if s.Ordered {
		sep = ">"
	}
	names := make([]string, len(s.Steps))
	for i, st := range s.Steps {
		names[i] = st.Name
	}
	return "sequence(" + strings.Join(names, sep) + ")"
}

func (s *Sequence) groupBy() []string   { return s.By }
func (s *Sequence) span() time.Duration { return s.Within }

// seqState holds, per step, the group's matching events still inside a
// possible window, sorted by (time, arrival).
type seqState struct {
	steps   [][]seqPoint
	arrival uint64 // arrival counter: breaks time ties, identifies events
	within  instant
}

// seqPoint is one event that matched a step.
type seqPoint struct {
	t  instant
	n  uint64
	id string
}

func (p seqPoint) before(q seqPoint) bool { return p.t < q.t || p.t == q.t && p.n < q.n }

func (s *Sequence) observe(d *Detector, rs *ruleState, ev *schema.Event, horizon time.Time, emit bool) *schema.Alert {
	// Step conditions and the key are evaluated before touching state, so
	// an error leaves none behind.
	matched := d.ext.steps[:0]
	for i, st := range s.Steps {
		ok, err := st.cond.eval(&d.vm, ev)
		if err != nil {
			d.ruleError(rs, ev, fmt.Errorf("sequence.steps[%d] %s: %w", i, st.Name, err), emit)
			return nil
		}
		if ok {
			matched = append(matched, i)
		}
	}
	d.ext.steps = matched
	if len(matched) == 0 {
		return nil
	}
	if err := d.keyOf(rs, ev); err != nil {
		d.ruleError(rs, ev, fmt.Errorf("by %w", err), emit)
		return nil
	}
	g := d.touch(rs)
	st, _ := g.state.(*seqState)
	if st == nil {
		st = &seqState{steps: make([][]seqPoint, len(s.Steps)), within: instant(s.Within)}
		g.state = st
	}
	// Events at or before horizon-within cannot share a window with any
	// future non-late event.
	st.prune(toInstant(horizon).add(-s.Within))
	st.arrival++
	e := seqPoint{t: toInstant(ev.Timestamp), n: st.arrival, id: ev.Event.ID}
	for _, i := range matched {
		pts := st.steps[i]
		if len(pts) >= MaxStepEvents {
			// Why: memory per group stays bounded whatever the rate; the
			// oldest event is the first to leave the window anyway.
			pts = pts[1:]
			rs.stats.StepEvictions++
			d.stats.StepEvictions++
		}
		if n := len(pts); n == 0 || pts[n-1].before(e) {
			st.steps[i] = append(pts, e) // the common case: in order
			continue
		}
		p, _ := slices.BinarySearchFunc(pts, e, func(a, b seqPoint) int {
			if a.before(b) {
				return -1
			}
			return 1
		})
		st.steps[i] = slices.Insert(pts, p, e)
	}
	// used is the detector's scratch buffer: it is only read before the
	// next event.
	var used []seqPoint
	var ok bool
	if s.Ordered {
		if matched[len(matched)-1] != len(s.Steps)-1 {
			return nil // an ordered sequence completes on its last step
		}
		used, ok = st.completeOrdered(s, e, d.ext.used[:0])
	} else {
		used, ok = st.completeAny(s, e, d.ext.used[:0])
	}
	d.ext.used = used[:0]
	if !ok {
		return nil
	}
	if e.t < g.until {
		d.suppressed(rs)
		return nil
	}
	g.until = e.t.add(rs.rule.Suppress)
	var counts []string
	if emit {
		for _, step := range s.Steps {
			counts = append(counts, fmt.Sprintf("%s (%d)", step.Name, step.Count))
		}
	}
	// The group starts over: each event counts toward one alert at most.
	for i := range st.steps {
		st.steps[i] = st.steps[i][:0]
	}
	if !emit {
		return nil
	}
	f := fired{first: used[0].t, last: used[len(used)-1].t, count: len(used), value: float64(len(used))}
	for _, p := range used {
		if p.id != "" && len(f.ids) < maxSamples {
			f.ids = append(f.ids, p.id)
		}
	}
	a := d.alert(rs, d.vals, ev, f, "")
	a.Trailwatch.Aggregation = s.Aggregation()
	a.Trailwatch.Window = s.Within.String()
	a.Trailwatch.Value = f.value
	sep := " then "
	if !s.Ordered {
		sep = " and "
	}
	a.Message = fmt.Sprintf("%s: %s within %s", rs.rule.Title, strings.Join(counts, sep), a.Trailwatch.Window)
	if desc := groupDesc(rs.names, d.vals); desc != "" {
		a.Message += " for " + desc
	}
	return a
}

// completeOrdered looks for the sequence ending at e, the newest events of
// each step that fit: the last step's count events up to and including e,
// each earlier step's count events before the next step's first, all
// within the window. It appends the events used to used, in order, and
// reports whether there are any.
func (st *seqState) completeOrdered(s *Sequence, e seqPoint, used []seqPoint) ([]seqPoint, bool) {
	bound, inclusive := e, true
	for i := len(s.Steps) - 1; i >= 0; i-- {
		pts := st.steps[i]
		k := len(pts)
		for k > 0 && !(pts[k-1].before(bound) || inclusive && pts[k-1] == bound) {
			k--
		}
		c := s.Steps[i].Count
		if k < c {
			return used, false
		}
		used = append(used, pts[k-c:k]...)
		bound, inclusive = pts[k-c], false
	}
	if e.t-bound.t >= st.within {
		return used, false
	}
	slices.SortFunc(used, cmpPoints)
	return used, true
}

// completeAny looks for every step's count events up to and including e,
// in any order, within the window. It appends the distinct events used
// to used, in order, and reports whether there are any.
func (st *seqState) completeAny(s *Sequence, e seqPoint, used []seqPoint) ([]seqPoint, bool) {
	for i, step := range s.Steps {
		pts := st.steps[i]
		k := len(pts)
		for k > 0 && e.before(pts[k-1]) {
			k--
		}
		if k < step.Count {
			return used, false
		}
		for _, p := range pts[k-step.Count : k] {
			if e.t-p.t >= st.within {
				return used, false
			}
			used = append(used, p)
		}
	}
	slices.SortFunc(used, cmpPoints)
	used = slices.CompactFunc(used, func(a, b seqPoint) bool { return a.n == b.n })
	return used, len(used) > 0
}

func cmpPoints(a, b seqPoint) int {
	if c := cmp.Compare(a.t, b.t); c != 0 {
		return c
	}
	return cmp.Compare(a.n, b.n)
}

// prune drops every step's events at or before cut.
func (st *seqState) prune(cut instant) {
	for i, pts := range st.steps {
		k := 0
		for k < len(pts) && pts[k].t <= cut {
			k++
		}
		if k > 0 {
			st.steps[i] = pts[k:]
		}
	}
}

func (st *seqState) expire(g *group, horizon instant) bool {
	st.prune(horizon.add(-time.Duration(st.within)))
	for _, pts := range st.steps {
		if len(pts) > 0 {
			return false
		}
	}
	return g.until <= horizon
}

func (st *seqState) dropped(*group) {}

// groupDesc formats group key names and values as "a=1, b=2".
func groupDesc(names, values []string) string {
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%s", name, values[i])
	}
	return b.String()
}
