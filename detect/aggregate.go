package detect

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"slices"
	"strings"
)

// aggState is the extra state of a distinct, sum or avg window. These
// windows trail the group's newest event time: they hold what happened in
// (newest-over, newest].
type aggState struct {
	newest instant
	// sum/avg: the field's values, parallel to group.evs, and their sum.
	vals []float64
	sum  float64
	// distinct: each value's last-seen time, in a min-heap by that time
	// so the window slides and the cap evicts in O(log n).
	byValue map[string]*distinctValue
	heap    distinctHeap
	events  int64 // events seen for the values in byValue
}

// distinctValue is one distinct value in a window.
type distinctValue struct {
	value string
	id    string // id of the event that last saw it
	last  instant
	n     int64 // events seen for it since it entered the window
	index int   // position in the heap
}

// distinctHeap orders values by last-seen time, ties by value so the
// order, and thus eviction, is deterministic.
type distinctHeap []*distinctValue

func (h distinctHeap) Len() int { return len(h) }
func (h distinctHeap) Less(i, j int) bool {
	if h[i].last != h[j].last {
		return h[i].last < h[j].last
	}
	return h[i].value < h[j].value
}
func (h distinctHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *distinctHeap) Push(x any) {
	v := x.(*distinctValue)
	v.index = len(*h)
	*h = append(*h, v)
}
func (h *distinctHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return v
}

// fired describes the window that made a group fire.
type fired struct {
	first, last instant
	count       int
	value       float64
	ids         []string
	samples     []string
}

// advance moves the trailing window to end at the newer of its end and t,
// and reports the cut: state at or before it is outside the window.
func (a *aggState) advance(t instant, over instant) instant {
	if t > a.newest {
		a.newest = t
	}
	return a.newest - over
}

// distinct adds value v seen at t by event id, after sliding the window;
// an event older than the window or with an empty value adds nothing. It
// returns how many values it evicted to stay within maxDistinct.
func (a *aggState) distinct(t instant, over instant, v, id string, maxDistinct int) (evicted int) {
	cut := a.advance(t, over)
	for len(a.heap) > 0 && a.heap[0].last <= cut {
		a.drop(heap.Pop(&a.heap).(*distinctValue))
	}
	if t <= cut || v == "" {
		return 0
	}
	if dv, ok := a.byValue[v]; ok {
		dv.n++
		a.events++
		if t >= dv.last {
			dv.last, dv.id = t, id
			heap.Fix(&a.heap, dv.index)
		}
		return 0
	}
	for len(a.heap) >= maxDistinct {
		// Why: memory per group must stay bounded whatever the field's
		// cardinality; the value seen longest ago is the first to leave
		// the window anyway.
		a.drop(heap.Pop(&a.heap).(*distinctValue))
		evicted++
	}
	if a.byValue == nil {
		a.byValue = map[string]*distinctValue{}
	}
	dv := &distinctValue{value: strings.Clone(v), id: id, last: t, n: 1}
	a.byValue[dv.value] = dv
	heap.Push(&a.heap, dv)
	a.events++
	return evicted
}

func (a *aggState) drop(dv *distinctValue) {
	delete(a.byValue, dv.value)
	a.events -= dv.n
}

// distinctFired describes the distinct window and empties it: each value
// counts toward one alert only. Samples are the first values seen, in
// last-seen order.
func (a *aggState) distinctFired() fired {
	vs := slices.Clone(a.heap)
	slices.SortFunc(vs, func(x, y *distinctValue) int {
		if c := cmp.Compare(x.last, y.last); c != 0 {
			return c
		}
		return strings.Compare(x.value, y.value)
	})
	f := fired{first: vs[0].last, last: vs[len(vs)-1].last, count: int(a.events), value: float64(len(vs))}
	for _, dv := range vs[:min(len(vs), maxSamples)] {
		f.samples = append(f.samples, dv.value)
		if dv.id != "" {
			f.ids = append(f.ids, dv.id)
		}
	}
	// Why nil rather than clear: a map keeps its buckets when cleared,
	// and a group that fired on 10k values should not hold them on.
	a.byValue, a.heap, a.events = nil, nil, 0
	return f
}

// numeric adds x seen at t to a sum/avg window after sliding it; an event
// older than the window adds nothing.
func (a *aggState) numeric(g *group, t instant, over instant, x float64, id string) {
	cut := a.advance(t, over)
	if k := g.prune(cut); k > 0 {
		for _, v := range a.vals[:k] {
			a.sum -= v
		}
		a.vals = a.vals[k:]
		if len(a.vals) == 0 {
			a.sum = 0 // Why: no float drift survives an empty window
		}
	}
	if t <= cut {
		return
	}
	p := g.insert(t, id)
	a.vals = slices.Insert(a.vals, p, x)
	a.sum += x
}

// aggregate is the window's current sum or average.
func (a *aggState) aggregate(agg Agg) float64 {
	if agg == AggAvg && len(a.vals) > 0 {
		return a.sum / float64(len(a.vals))
	}
	return a.sum
}

// numericFired describes the sum/avg window and empties it.
func (a *aggState) numericFired(g *group, agg Agg) fired {
	n := len(g.evs)
	f := fired{first: g.evs[0].t, last: g.evs[n-1].t, count: n, value: a.aggregate(agg), ids: sampleIDs(g.evs)}
	g.evs, a.vals, a.sum = g.evs[:0], a.vals[:0], 0
	return f
}

// toFloat converts an aggregated field's value; load-time type checks make
// anything but a number a run-time surprise (an interface-typed field).
func toFloat(v any) (float64, error) {
	switch v := v.(type) {
	case int:
		return float64(v), nil
	case int8:
		return float64(v), nil
	case int16:
		return float64(v), nil
	case int32:
		return float64(v), nil
	case int64:
		return float64(v), nil
	case uint:
		return float64(v), nil
	case uint8:
		return float64(v), nil
	case uint16:
		return float64(v), nil
	case uint32:
		return float64(v), nil
	case uint64:
		return float64(v), nil
	case float32:
		return float64(v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("not a finite number: %v", v)
		}
		return v, nil
	}
	return 0, fmt.Errorf("not a number: %T", v)
}
