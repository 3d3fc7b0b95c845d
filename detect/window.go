package detect

import (
	"math"
	"slices"
	"sort"
	"time"
)

// instant is an event time in Unix nanoseconds: 8 bytes instead of
// time.Time's 24, because group state is mostly timestamps. Times outside
// 1678..2262 are clamped; that keeps results deterministic for garbage
// timestamps, which is all that is promised for them.
type instant int64

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func toInstant(t time.Time) instant {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return instant(t.UnixNano())
}

// time returns the instant as a UTC time.Time.
func (i instant) time() time.Time { return time.Unix(0, int64(i)).UTC() }

// add returns i+d, saturating instead of overflowing.
func (i instant) add(d time.Duration) instant {
	s := i + instant(d)
	if d > 0 && s < i {
		return math.MaxInt64
	}
	if d < 0 && s > i {
		return math.MinInt64
	}
	return s
}

// point is one matching event held in a window: its time and id.
type point struct {
	t  instant
	id string
}

// prune drops the events at or before cut. Reslicing from the front is
// O(1); append reallocates (copying only live entries) when capacity runs
// out. vals, when the window sums a field, is kept parallel.
func (g *group) prune(cut instant) int {
	if len(g.evs) == 0 || g.evs[0].t > cut {
		return 0 // the common case: nothing to drop
	}
	k := sort.Search(len(g.evs), func(i int) bool { return g.evs[i].t > cut })
	if k > 0 {
		g.evs = g.evs[k:]
	}
	return k
}

// insert adds an event in time order (after equal timestamps, so arrival
// order breaks ties) and returns its index.
func (g *group) insert(t instant, id string) int {
	n := len(g.evs)
	if n == 0 || t >= g.evs[n-1].t {
		g.evs = append(g.evs, point{t, id})
		return n
	}
	p := sort.Search(n, func(i int) bool { return g.evs[i].t > t })
	g.evs = slices.Insert(g.evs, p, point{t, id})
	return p
}

// firing looks for the earliest window holding the event at index p with at
// least count events whose timestamps lie within over of the first
// (last-first < over). It returns the window's first and last indexes.
func (g *group) firing(p, count int, over time.Duration) (int, int, bool) {
	evs := g.evs
	t := evs[p].t
	lo := sort.Search(p+1, func(i int) bool { return t-evs[i].t < instant(over) })
	j := p
	for i := lo; i <= p; i++ {
		for j+1 < len(evs) && evs[j+1].t-evs[i].t < instant(over) {
			j++
		}
		if j-i+1 >= count {
			return i, j, true
		}
		if j == len(evs)-1 {
			break // later starts only shrink the window
		}
	}
	return 0, 0, false
}

// expired reports whether the group can no longer affect any result, given
// that every future non-late event is at or after horizon.
func (g *group) expired(horizon instant) bool {
	if g.state != nil {
		return g.state.expire(g, horizon)
	}
	cut := horizon.add(-g.rule.over)
	if g.agg != nil {
		// Aggregation windows trail the group's newest event time, which
		// any future event moves to at least horizon.
		if g.agg.newest > cut {
			return false
		}
	} else if n := len(g.evs); n > 0 && g.evs[n-1].t > cut {
		return false
	}
	return g.until <= horizon
}

// sampleIDs returns up to 10 non-empty ids of evs, in time order.
func sampleIDs(evs []point) []string {
	ids := make([]string, 0, min(len(evs), maxSamples))
	for _, e := range evs {
		if e.id != "" && len(ids) < maxSamples {
			ids = append(ids, e.id)
		}
	}
	return ids
}

// maxSamples bounds the event ids and distinct values an alert carries.
const maxSamples = 10
