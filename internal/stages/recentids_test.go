package stages

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestRecentIDsRemembersTheLastN(t *testing.T) {
	r := newRecentIDs(3)
	steps := []struct {
		id   string
		want bool
	}{
		{"a", false}, {"b", false}, {"c", false},
		{"a", true},  // still in the window
		{"d", false}, // a leaves the window
		{"a", false}, // forgotten, now remembered again (b leaves)
		{"c", true},
		{"b", false},
		{"", false}, {"", false}, // empty ids are never duplicates
	}
	for i, s := range steps {
		if got := r.seen(s.id); got != s.want {
			t.Fatalf("step %d: seen(%q) = %v, want %v", i, s.id, got, s.want)
		}
	}
	if r.size() != 3 || len(r.ring) != 3 {
		t.Errorf("set holds %d ids, ring %d; want the window of 3", r.size(), len(r.ring))
	}
}

func TestRecentIDsBytesAndStringAgree(t *testing.T) {
	r := newRecentIDs(10)
	if r.seenBytes([]byte("fam\x00e1")) {
		t.Fatal("first sight reported as a duplicate")
	}
	if !r.seen("fam\x00e1") {
		t.Error("the same id as a string was not recognised")
	}
	if r.seenBytes([]byte("fam\x00e2")) {
		t.Error("a different id was taken for a duplicate")
	}
}

func TestRecentIDsDisabled(t *testing.T) {
	var none *recentIDs
	zero := newRecentIDs(0)
	for _, r := range []*recentIDs{none, zero} {
		if r.seen("x") || r.seen("x") || r.seenBytes([]byte("x")) {
			t.Error("a nil or zero-size set reported a duplicate")
		}
	}
}

// TestRecentIDsMatchesAWindow replays random ids from a small alphabet
// (so that many repeat, inside and outside the window) through windows of
// several sizes and checks every answer against a plain slice of the last
// n distinct ids. Small tables make many ids share home slots, so probing,
// growing and the back-shifting removal are all exercised.
func TestRecentIDsMatchesAWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 5, 17, 100, 5000} {
		r := newRecentIDs(n)
		var window []string // the last n distinct ids, oldest first
		in := map[string]bool{}
		alphabet := 3 * n
		for step := range 40 * n {
			id := strconv.Itoa(rng.IntN(alphabet))
			want := in[id]
			if !want {
				window = append(window, id)
				in[id] = true
				if len(window) > n {
					delete(in, window[0])
					window = window[1:]
				}
			}
			if got := r.seen(id); got != want {
				t.Fatalf("n=%d step %d: seen(%q) = %v, want %v", n, step, id, got, want)
			}
		}
		if r.size() != len(window) {
			t.Errorf("n=%d: table holds %d ids, window %d", n, r.size(), len(window))
		}
		if len(r.slots) > r.max || 2*r.size() > len(r.slots) {
			t.Errorf("n=%d: %d ids in %d slots (max %d): over half full or over the bound", n, r.size(), len(r.slots), r.max)
		}
	}
}

// BenchmarkRecentIDs is the detect stage's duplicate check at the default
// window (16384 ids per partition) over fresh 32-hex-digit event ids.
func BenchmarkRecentIDs(b *testing.B) {
	ids := make([]string, 1<<16)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range ids {
		ids[i] = strconv.FormatUint(rng.Uint64(), 16) + strconv.FormatUint(rng.Uint64(), 16)
	}
	r := newRecentIDs(16384)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.seen(ids[i&(len(ids)-1)])
	}
}
