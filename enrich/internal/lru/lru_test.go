package lru

import (
	"strconv"
	"sync"
	"testing"
)

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := New[string, int](2)
	if c.Add("a", 1) || c.Add("b", 2) {
		t.Fatal("eviction below capacity")
	}
	if _, ok := c.Get("a"); !ok { // a is now most recent, b least
		t.Fatal("a missing")
	}
	if !c.Add("c", 3) {
		t.Fatal("no eviction at capacity")
	}
	tests := []struct {
		key  string
		want int
		ok   bool
	}{
		{key: "a", want: 1, ok: true},
		{key: "b", ok: false},
		{key: "c", want: 3, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, ok := c.Get(tt.key)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("Get(%q) = %d, %v; want %d, %v", tt.key, got, ok, tt.want, tt.ok)
			}
		})
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
}

func TestCacheUpdateDoesNotGrow(t *testing.T) {
	c := New[int, int](3)
	for i := range 10 {
		c.Add(1, i)
	}
	if v, _ := c.Get(1); v != 9 || c.Len() != 1 {
		t.Fatalf("got %d len %d", v, c.Len())
	}
}

func TestCacheBoundedUnderConcurrency(t *testing.T) {
	c := New[string, int](100)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				k := strconv.Itoa(g*10000 + i%300)
				if _, ok := c.Get(k); !ok {
					c.Add(k, i)
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100", n)
	}
	// The list and the index agree: walking from head visits every entry once.
	seen := 0
	for i := c.head; i >= 0; i = c.nodes[i].next {
		seen++
	}
	if seen != 100 {
		t.Fatalf("list holds %d, index 100", seen)
	}
}
