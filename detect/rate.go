package detect

import (
	"fmt"
	"strconv"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Rate makes a rule fire when a group's matching events in the current
// Interval bucket reach both MinCount and Factor times the mean of the
// group's completed buckets in the preceding Baseline. A group needs
// MinHistory of completed buckets (counted from its first event) before it
// can fire.
type Rate struct {
	By         []string
	Interval   time.Duration
	Baseline   time.Duration
	MinHistory time.Duration
	Factor     float64
	MinCount   int

	programs []*vm.Program
}

// MaxRateBuckets bounds baseline/interval, the buckets a rate group holds.
const MaxRateBuckets = 4096

// Aggregation names the kind as alerts report it: "rate(1m0s/1h0m0s)".
func (r *Rate) Aggregation() string {
	return "rate(" + r.Interval.String() + "/" + r.Baseline.String() + ")"
}

func (r *Rate) buckets() int64 { return int64(r.Baseline / r.Interval) }

func (r *Rate) groupBy() []string   { return r.By }
func (r *Rate) span() time.Duration { return r.Baseline + r.Interval }

// rateState is one group's bucket counts: a ring of baseline buckets plus
// the current one, indexed by bucket number (event time / interval).
type rateState struct {
	ring     []uint32
	newest   int64 // bucket number of the newest event
	first    int64 // bucket of the group's first event since it was last idle
	fired    int64 // bucket that last fired; it fires at most once
	curFirst instant
	ids      []string // sample ids of the newest bucket
	rate     *Rate
}

func (r *Rate) bucket(t instant) int64 {
	iv := int64(r.Interval)
	b := int64(t) / iv
	if int64(t)%iv < 0 {
		b--
	}
	return b
}

func (r *Rate) observe(d *Detector, rs *ruleState, ev *schema.Event, _ time.Time, emit bool) *schema.Alert {
	if err := d.keyOf(rs, ev); err != nil {
		d.ruleError(rs, ev, fmt.Errorf("by %w", err), emit)
		return nil
	}
	t := toInstant(ev.Timestamp)
	b := r.bucket(t)
	nb := r.buckets()
	g := d.touch(rs)
	st, _ := g.state.(*rateState)
	if st == nil || b-st.newest > nb {
		// New, or idle for a whole baseline: the group starts with no
		// history, as it would had Advance dropped it.
		if st == nil {
			st = &rateState{ring: make([]uint32, nb+1), rate: r}
			g.state = st
		} else {
			clear(st.ring)
		}
		st.newest, st.first, st.fired = b, b, b-1
		st.curFirst, st.ids = t, st.ids[:0]
	}
	size := int64(len(st.ring))
	switch {
	case b > st.newest:
		for i := st.newest + 1; i <= b && i <= st.newest+size; i++ {
			st.ring[((i%size)+size)%size] = 0
		}
		st.newest, st.curFirst, st.ids = b, t, st.ids[:0]
	case b <= st.newest-size:
		return nil // older than the ring: cannot matter
	}
	st.first = min(st.first, b)
	st.ring[((b%size)+size)%size]++
	if b != st.newest {
		return nil // only the current bucket fires
	}
	st.curFirst = min(st.curFirst, t)
	if len(st.ids) < maxSamples && ev.Event.ID != "" {
		st.ids = append(st.ids, ev.Event.ID)
	}
	cur := st.ring[((b%size)+size)%size]
	if st.fired == b || int(cur) < r.MinCount {
		return nil
	}
	done := min(nb, b-st.first)
	if time.Duration(done)*r.Interval < r.MinHistory || done == 0 {
		return nil
	}
	var sum uint64
	for i := b - done; i < b; i++ {
		sum += uint64(st.ring[((i%size)+size)%size])
	}
	mean := float64(sum) / float64(done)
	if float64(cur) < r.Factor*mean {
		return nil
	}
	st.fired = b
	if t < g.until {
		d.suppressed(rs)
		return nil
	}
	g.until = t.add(rs.rule.Suppress)
	if !emit {
		return nil
	}
	f := fired{first: st.curFirst, last: t, count: int(cur), value: float64(cur), ids: append([]string(nil), st.ids...)}
	a := d.alert(rs, d.vals, ev, f, "")
	a.Trailwatch.Aggregation = r.Aggregation()
	a.Trailwatch.Window = r.Interval.String()
	a.Trailwatch.Value = f.value
	a.Message = fmt.Sprintf("%s: %d events in %s, baseline %s per %s over %s", rs.rule.Title, cur, a.Trailwatch.Window,
		strconv.FormatFloat(mean, 'f', 1, 64), a.Trailwatch.Window, time.Duration(done)*r.Interval)
	if desc := groupDesc(rs.names, d.vals); desc != "" {
		a.Message += " for " + desc
	}
	return a
}

// expire reports whether every future non-late event (bucket at or after
// horizon's) would find the group idle for a whole baseline.
func (st *rateState) expire(g *group, horizon instant) bool {
	return st.rate.bucket(horizon)-st.newest > st.rate.buckets() && g.until <= horizon
}

func (st *rateState) dropped(*group) {}
