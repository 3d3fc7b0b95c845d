package stages

import "hash/maphash"

// recentIDs remembers the last n event ids of one partition, so an event
// that reached a topic twice (a producer retried after a crash) is counted
// once. It is a function of the input sequence, so a warm-up rebuilds it
// exactly.
//
// An id is kept as two 64-bit hashes under independent random seeds
// rather than as its string: a fixed 16 bytes without pointers. Two
// different ids of one window would have to collide on both (odds around
// 2^-127 per pair) to be taken for each other. The hashes sit in an
// open-addressing table of their own (linear probing from the first hash,
// at most half full, deletion by shifting back) rather than a Go map: one
// probe answers "seen?" and finds the slot to fill, where the map hashed
// the key again for a lookup, an insert and the eviction of the oldest id,
// each a likely cache miss in a window of 16k ids per partition.
type recentIDs struct {
	ring  []idKey // the window in arrival order, oldest at head once full
	head  int
	n     int
	slots []idKey // the window as a set; the zero key marks a free slot
	mask  uint64
	max   int // slots the table grows to: twice n, rounded up to a power of two
}

// idKey is an event id's two hashes; the second always has its low bit
// set, so no key is the zero key.
type idKey [2]uint64

// idSeeds are this process's hash seeds; the sets are rebuilt from input
// after a restart, so they need not persist.
var idSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func newRecentIDs(n int) *recentIDs {
	r := &recentIDs{n: n}
	if n > 0 {
		r.max = 8
		for r.max < 2*n {
			r.max *= 2
		}
		r.resize(min(r.max, 8192))
	}
	return r
}

// seen records id and reports whether it was already there. Empty ids are
// never duplicates; a nil or zero-size set remembers nothing.
func (r *recentIDs) seen(id string) bool {
	if id == "" || r == nil || r.n <= 0 {
		return false
	}
	return r.seenKey(idKey{maphash.String(idSeeds[0], id), maphash.String(idSeeds[1], id) | 1})
}

// seenBytes is seen for an id held in bytes.
func (r *recentIDs) seenBytes(id []byte) bool {
	if len(id) == 0 || r == nil || r.n <= 0 {
		return false
	}
	return r.seenKey(idKey{maphash.Bytes(idSeeds[0], id), maphash.Bytes(idSeeds[1], id) | 1})
}

func (r *recentIDs) seenKey(k idKey) bool {
	i := k[0] & r.mask
	for s := r.slots[i]; s != (idKey{}); s = r.slots[i] {
		if s == k {
			return true
		}
		i = (i + 1) & r.mask
	}
	if len(r.ring) < r.n {
		r.ring = append(r.ring, k)
		if 2*len(r.ring) > len(r.slots) && len(r.slots) < r.max {
			r.resize(2 * len(r.slots)) // k is in the ring, so it is placed too
			return false
		}
	} else {
		r.remove(r.ring[r.head])
		r.ring[r.head] = k
		r.head = (r.head + 1) % r.n
		// The removal may have shifted entries back over the free slot
		// found above: probe again.
		i = k[0] & r.mask
		for r.slots[i] != (idKey{}) {
			i = (i + 1) & r.mask
		}
	}
	r.slots[i] = k
	return false
}

// remove takes k, which is in the table, out of it. Each entry after it in
// the same run of full slots moves back into the hole if the hole lies
// between the entry's home slot and where it is, so that every entry stays
// reachable from its home without crossing a free slot.
func (r *recentIDs) remove(k idKey) {
	i := k[0] & r.mask
	for r.slots[i] != k {
		i = (i + 1) & r.mask
	}
	for j := i; ; {
		j = (j + 1) & r.mask
		s := r.slots[j]
		if s == (idKey{}) {
			break
		}
		home := s[0] & r.mask
		if (j-i)&r.mask <= (j-home)&r.mask {
			r.slots[i] = s
			i = j
		}
	}
	r.slots[i] = idKey{}
}

// resize makes the table size slots (a power of two) and places the window
// in it again.
func (r *recentIDs) resize(size int) {
	r.slots = make([]idKey, size)
	r.mask = uint64(size - 1)
	for _, k := range r.ring {
		i := k[0] & r.mask
		for r.slots[i] != (idKey{}) {
			i = (i + 1) & r.mask
		}
		r.slots[i] = k
	}
}

// size reports how many ids the window holds (tests).
func (r *recentIDs) size() int {
	n := 0
	for _, s := range r.slots {
		if s != (idKey{}) {
			n++
		}
	}
	return n
}
