// Package gctune keeps the garbage collector's heap goal above a floor.
//
// The Go runtime collects when the heap has grown by GOGC percent over
// what the last collection left live, and never below 4 MB. A pipeline
// stage allocates fast and keeps little: a collector or normalize process
// holds a few MB live while passing hundreds of MB a second through its
// batches, so with the default it collects several hundred times a second
// and spends more CPU marking than compressing (docs/benchmarks.md, "GC
// floor"). Raising GOGC for good would multiply the heap of a detect
// process that holds real state.
//
// Tuner raises the GC percent just enough that the heap goal reaches the
// floor while the live heap is small, and gives the base percent back as
// the live heap grows past it: the goal is max(floor, live × (1 + base/100)).
// It re-reads the live heap after every collection.
//
// What it does not do: bound memory (GOMEMLIMIT does that, and the runtime
// honours it as usual), or run when the user set GOGC themselves.
package gctune

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// maxPercent bounds the percent set for a tiny live heap.
const maxPercent = 50_000

// Percent returns the GC percent that makes the heap goal max(floor,
// live × (1 + base/100)).
func Percent(live, floor uint64, base int) int {
	if live == 0 || floor == 0 {
		return base
	}
	if float64(live)*(1+float64(base)/100) >= float64(floor) {
		return base
	}
	p := math.Ceil(float64(floor)/float64(live)*100) - 100
	return int(min(p, maxPercent))
}

// Tuner adjusts the GC percent after every collection.
type Tuner struct {
	floor uint64
	base  int

	mu      sync.Mutex
	stopped bool
	sample  []metrics.Sample
	last    int
}

// Start begins tuning towards floor bytes and returns the tuner, or nil
// (tuning nothing) when floor is 0 or the GOGC environment variable is set.
// base is the percent above the floor (the runtime's is 100).
func Start(floor uint64, base int) *Tuner {
	if floor == 0 || os.Getenv("GOGC") != "" {
		return nil
	}
	t := &Tuner{floor: floor, base: base, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}, last: -1}
	t.adjust()
	t.arm()
	return t
}

// Stop ends tuning and restores the base percent.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	debug.SetGCPercent(t.base)
}

// arm sets a finalizer on a fresh object: it runs after the next
// collection, adjusts, and arms again.
func (t *Tuner) arm() {
	s := new([16]byte)
	runtime.SetFinalizer(s, func(*[16]byte) {
		if t.adjust() {
			t.arm()
		}
	})
}

// adjust sets the percent for the live heap now; it reports false once
// stopped.
func (t *Tuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	if p := Percent(live, t.floor, t.base); p != t.last {
		debug.SetGCPercent(p)
		t.last = p
	}
	return true
}
