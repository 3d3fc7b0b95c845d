package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name        string
		live, floor uint64
		base, want  int
	}{
		{"small live heap reaches the floor", 4 * mb, 64 * mb, 100, 1500},
		{"live heap past the floor keeps the base", 100 * mb, 64 * mb, 100, 100},
		{"exactly at the floor with the base", 32 * mb, 64 * mb, 100, 100},
		{"tiny live heap is bounded", 1, 64 * mb, 100, maxPercent},
		{"nothing measured yet", 0, 64 * mb, 100, 100},
		{"no floor", 4 * mb, 0, 100, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percent(tc.live, tc.floor, tc.base); got != tc.want {
				t.Errorf("Percent(%d, %d, %d) = %d, want %d", tc.live, tc.floor, tc.base, got, tc.want)
			}
		})
	}
}

var sink []byte

// churn allocates n bytes of short-lived garbage and returns how many
// collections ran meanwhile.
func churn(n int) uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.NumGC
	for range n / (64 << 10) {
		sink = make([]byte, 64<<10)
	}
	runtime.ReadMemStats(&ms)
	return ms.NumGC - before
}

// With a small live heap, the floor cuts the number of collections a
// stream of garbage causes.
func TestTunerCollectsLessWithAFloor(t *testing.T) {
	t.Setenv("GOGC", "") // Start refuses to run when GOGC is set
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	runtime.GC()
	plain := churn(256 << 20)

	tu := Start(128<<20, 100)
	if tu == nil {
		t.Fatal("Start returned nil with no GOGC set")
	}
	runtime.GC() // the tuner adjusts after a collection
	tuned := churn(256 << 20)
	tu.Stop()
	if tuned*4 > plain {
		t.Errorf("%d collections with a 128 MB floor, %d without: want at least 4× fewer", tuned, plain)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after Stop the GC percent is %d, want the base 100 back", got)
	}
}

func TestStartRespectsGOGC(t *testing.T) {
	t.Setenv("GOGC", "200")
	if tu := Start(64<<20, 100); tu != nil {
		tu.Stop()
		t.Error("Start tuned the GC although GOGC is set")
	}
}
