package stages

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// arenaBlock is the size of the byte blocks a recordArena carves keys and
// values from: large enough that a batch needs a handful, small enough
// that the last one's unused tail costs little.
const arenaBlock = 1 << 20

// recordArena hands out one batch's output records, keys and encoded
// events from a few large blocks instead of allocating each: with ~1 KB
// events, the per-record allocations and the growing of each value's
// buffer cost a stage more CPU than the encoding itself. A block stays
// alive while any record carved from it does, which is until the batch is
// produced; an arena is used for one batch and dropped.
type recordArena struct {
	recs []kgo.Record
	buf  []byte
	hint int // records per block
}

func newRecordArena(hint int) *recordArena {
	return &recordArena{hint: max(hint, 16)}
}

// record returns a zero record owned by the caller.
func (a *recordArena) record() *kgo.Record {
	if len(a.recs) == cap(a.recs) {
		a.recs = make([]kgo.Record, 0, a.hint)
	}
	a.recs = a.recs[:len(a.recs)+1]
	return &a.recs[len(a.recs)-1]
}

// reserve makes room for n more bytes in the current block.
func (a *recordArena) reserve(n int) {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(arenaBlock, n))
	}
}

// bytes returns a copy of s carved from the arena.
func (a *recordArena) bytes(s string) []byte {
	if s == "" {
		return nil
	}
	a.reserve(len(s))
	start := len(a.buf)
	a.buf = append(a.buf, s...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// event returns ev encoded by normalize.AppendEvent, carved from the
// arena; sizeHint is the expected length (an event outgrowing the rest of
// the block moves to a new one, leaving the old block as it was).
func (a *recordArena) event(ev *schema.Event, sizeHint int) []byte {
	a.reserve(sizeHint + sizeHint/2 + 512)
	start := len(a.buf)
	b := normalize.AppendEvent(a.buf, ev)
	if cap(b) != cap(a.buf) {
		// AppendEvent outgrew the block and copied it: keep the copy as
		// the new block only from this event on.
		a.buf = b[len(b):len(b):cap(b)]
		return b[start:len(b):len(b)]
	}
	a.buf = b
	return b[start:len(b):len(b)]
}
