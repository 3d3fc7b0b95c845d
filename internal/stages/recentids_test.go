package stages

import "testing"

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
	if len(r.set) != 3 || len(r.ring) != 3 {
		t.Errorf("set holds %d ids, ring %d; want the window of 3", len(r.set), len(r.ring))
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
