// Package lru is a bounded least-recently-used cache safe for concurrent
// use. It keeps its entries in one preallocated-on-demand slice linked by
// index, so a hit allocates nothing and an insert past capacity reuses the
// evicted slot. It does not expire entries by age: enrichers that reload
// their data start a new cache instead.
package lru

import "sync"

// Cache maps K to V, holding at most Cap entries.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	cap   int
	index map[K]int32
	nodes []node[K, V]
	head  int32 // most recently used, -1 when empty
	tail  int32 // least recently used, -1 when empty
}

type node[K comparable, V any] struct {
	key        K
	val        V
	prev, next int32
}

// New returns a cache of at most capacity entries; capacity < 1 is 1.
func New[K comparable, V any](capacity int) *Cache[K, V] {
	if capacity < 1 {
		capacity = 1
	}
	return &Cache[K, V]{cap: capacity, index: make(map[K]int32, min(capacity, 4096)), head: -1, tail: -1}
}

// Get returns the value for k and marks it most recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.moveFront(i)
	return c.nodes[i].val, true
}

// Add stores v under k and reports whether an older entry was evicted to
// make room.
func (c *Cache[K, V]) Add(k K, v V) (evicted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.index[k]; ok {
		c.nodes[i].val = v
		c.moveFront(i)
		return false
	}
	var i int32
	if len(c.nodes) < c.cap {
		c.nodes = append(c.nodes, node[K, V]{})
		i = int32(len(c.nodes) - 1)
	} else {
		// Reuse the least recently used slot.
		i = c.tail
		c.unlink(i)
		delete(c.index, c.nodes[i].key)
		evicted = true
	}
	c.nodes[i] = node[K, V]{key: k, val: v, prev: -1, next: -1}
	c.index[k] = i
	c.pushFront(i)
	return evicted
}

// Len returns the number of entries held.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.index)
}

func (c *Cache[K, V]) moveFront(i int32) {
	if c.head == i {
		return
	}
	c.unlink(i)
	c.pushFront(i)
}

func (c *Cache[K, V]) unlink(i int32) {
	n := &c.nodes[i]
	if n.prev >= 0 {
		c.nodes[n.prev].next = n.next
	} else {
		c.head = n.next
	}
	if n.next >= 0 {
		c.nodes[n.next].prev = n.prev
	} else {
		c.tail = n.prev
	}
	n.prev, n.next = -1, -1
}

func (c *Cache[K, V]) pushFront(i int32) {
	n := &c.nodes[i]
	n.prev, n.next = -1, c.head
	if c.head >= 0 {
		c.nodes[c.head].prev = i
	}
	c.head = i
	if c.tail < 0 {
		c.tail = i
	}
}
