package iplist

import (
	"net/netip"
	"slices"
)

// u128 is an address as a 128-bit number: IPv4 addresses are in their
// IPv4-mapped IPv6 form, so both families share one ordered space.
type u128 struct{ hi, lo uint64 }

var maxU128 = u128{^uint64(0), ^uint64(0)}

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) inc() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func (a u128) dec() u128 {
	if a.lo == 0 {
		return u128{a.hi - 1, ^uint64(0)}
	}
	return u128{a.hi, a.lo - 1}
}

func addrU128(a netip.Addr) u128 {
	b := a.As16()
	return u128{beUint64(b[:8]), beUint64(b[8:])}
}

func beUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// prefixRange returns the first and last address of p.
func prefixRange(p netip.Prefix) (u128, u128) {
	p = p.Masked()
	lo := addrU128(p.Addr())
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	host := 128 - bits // bits to set in hi
	hi := lo
	switch {
	case host >= 64:
		hi.lo = ^uint64(0)
		if host > 64 {
			hi.hi |= ^uint64(0) >> (128 - host)
		}
	case host > 0:
		hi.lo |= ^uint64(0) >> (64 - host)
	}
	return lo, hi
}

// segment is a run of addresses that all resolve to entry src.
type segment struct {
	lo, hi u128
	src    int32
}

// table answers "which entry covers this address" by binary search over
// disjoint sorted segments. Built from CIDR entries, which either nest or
// are disjoint, it resolves each address to its most specific entry; for
// the same network twice, the later entry wins.
type table struct{ segs []segment }

type span struct {
	lo, hi u128
	src    int32
}

// buildTable flattens nested ranges into disjoint segments with a sweep:
// ranges sorted by start (wider first, then in file order) are pushed on a
// stack of enclosing ranges; each address between two events belongs to
// the innermost range open there.
func buildTable(spans []span) table {
	slices.SortStableFunc(spans, func(a, b span) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		case b.hi.less(a.hi): // a wider: a first, so it encloses b
			return -1
		case a.hi.less(b.hi):
			return 1
		}
		return 0
	})
	var out []segment
	emit := func(lo, hi u128, src int32) {
		if hi.less(lo) {
			return
		}
		if n := len(out); n > 0 && out[n-1].src == src && out[n-1].hi.inc() == lo {
			out[n-1].hi = hi
			return
		}
		out = append(out, segment{lo, hi, src})
	}
	var stack []span
	var cur u128 // first address not yet emitted inside the open ranges
	for _, s := range spans {
		for len(stack) > 0 && stack[len(stack)-1].hi.less(s.lo) {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			emit(cur, top.hi, top.src)
			cur = top.hi.inc() // top.hi < s.lo, so no overflow
		}
		if len(stack) > 0 && cur.less(s.lo) {
			emit(cur, s.lo.dec(), stack[len(stack)-1].src)
		}
		stack = append(stack, s)
		cur = s.lo
	}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		emit(cur, top.hi, top.src)
		if top.hi == maxU128 {
			break // every enclosing range ends here too
		}
		cur = top.hi.inc()
	}
	return table{segs: slices.Clip(out)}
}

// lookup returns the entry covering a, or -1.
func (t *table) lookup(a u128) int32 {
	// Find the first segment starting after a; the one before it is the
	// only candidate.
	lo, hi := 0, len(t.segs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if a.less(t.segs[m].lo) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == 0 {
		return -1
	}
	if s := &t.segs[lo-1]; !s.hi.less(a) {
		return s.src
	}
	return -1
}
