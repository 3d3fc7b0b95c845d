package normalize

import (
	"hash/maphash"
	"sync/atomic"
)

// symbols interns the values of low-cardinality string fields (event.kind,
// event.dataset, http.request.method, user_agent.name …) for DecodeEvent,
// which otherwise allocates each of them for every event it decodes, and
// for Intern.
//
// It is a fixed, direct-mapped table shared by every goroutine: a value
// hashes to one slot, and a slot holds the last value stored there. A hit
// costs a hash and a comparison; a miss allocates the string as before and
// replaces the slot's value, so values that never repeat only cost the
// hash. Nothing is ever evicted but by a collision, and the table's size
// bounds what it keeps alive.
var symbols symbolTable

const (
	symbolSlots  = 1 << 12
	maxSymbolLen = 128 // longer values are allocated as they are
)

type symbolTable struct {
	seed  maphash.Seed
	slots [symbolSlots]atomic.Pointer[string]
}

func init() { symbols.seed = maphash.MakeSeed() }

// intern returns b as a string, from the table when it is there.
func (t *symbolTable) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxSymbolLen {
		return string(b)
	}
	slot := &t.slots[maphash.Bytes(t.seed, b)%symbolSlots]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}

// Intern returns b as a string, shared with the equal values interned
// before it when it is short: for low-cardinality values read per record,
// such as the provenance headers of raw records.
func Intern(b []byte) string { return symbols.intern(b) }
