package detect

import (
	"slices"
	"sort"
	"time"
)

// prune drops the timestamps at or before cut. Reslicing from the front is
// O(1); append reallocates (copying only live entries) when capacity runs
// out.
func (g *group) prune(cut time.Time) {
	k := sort.Search(len(g.ts), func(i int) bool { return g.ts[i].After(cut) })
	if k > 0 {
		g.ts, g.ids = g.ts[k:], g.ids[k:]
	}
}

// insert adds an event in time order (after equal timestamps, so arrival
// order breaks ties) and returns its index.
func (g *group) insert(t time.Time, id string) int {
	n := len(g.ts)
	if n == 0 || !t.Before(g.ts[n-1]) {
		g.ts = append(g.ts, t)
		g.ids = append(g.ids, id)
		return n
	}
	p := sort.Search(n, func(i int) bool { return g.ts[i].After(t) })
	g.ts = slices.Insert(g.ts, p, t)
	g.ids = slices.Insert(g.ids, p, id)
	return p
}

// firing looks for the earliest window holding the event at index p with at
// least count events whose timestamps lie within over of the first
// (last-first < over). It returns the window's first and last indexes.
func (g *group) firing(p, count int, over time.Duration) (int, int, bool) {
	ts := g.ts
	t := ts[p]
	lo := sort.Search(p+1, func(i int) bool { return t.Sub(ts[i]) < over })
	j := p
	for i := lo; i <= p; i++ {
		for j+1 < len(ts) && ts[j+1].Sub(ts[i]) < over {
			j++
		}
		if j-i+1 >= count {
			return i, j, true
		}
		if j == len(ts)-1 {
			break // later starts only shrink the window
		}
	}
	return 0, 0, false
}

// expired reports whether the group can no longer affect any result, given
// that every future non-late event is at or after horizon.
func (g *group) expired(horizon time.Time) bool {
	if n := len(g.ts); n > 0 && g.ts[n-1].After(horizon.Add(-g.rule.over)) {
		return false
	}
	return !g.until.After(horizon)
}
