package stages

import (
	"sync"

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
// buffer cost a stage more CPU than the encoding itself. An arena is used
// for one batch and dropped; its blocks come from pool (nil: allocated).
type recordArena struct {
	recs []kgo.Record
	buf  []byte
	hint int // records per block
	pool *blockPool
}

func newRecordArena(hint int, pool *blockPool) *recordArena {
	return &recordArena{hint: max(hint, 16), pool: pool}
}

// blockPool lends a handler's arenas their blocks and takes them back once
// Kafka acknowledged the output carved from them: a block is then
// referenced by nothing (the producer let go of every record when
// ProduceSync returned), and the next batch writes over it instead of
// allocating and zeroing another megabyte. The handler calls produced from
// pipeline.Acknowledger, which the runner calls only with one batch in
// flight; a handler driven otherwise never calls it and never reuses a
// block.
type blockPool struct {
	mu     sync.Mutex
	lent   [][]byte // blocks handed out since the last acknowledgement
	spare  [][]byte
	reused int // blocks lent again (tests)
}

// maxSpareBlocks bounds what a pool keeps between batches (64 MB): a
// batch of 5,000 enriched events and their repartition copies takes ~10.
const maxSpareBlocks = 64

// block returns an empty block of arenaBlock bytes.
func (p *blockPool) block() []byte {
	if p == nil {
		return make([]byte, 0, arenaBlock)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var b []byte
	if n := len(p.spare); n > 0 {
		b, p.spare[n-1] = p.spare[n-1][:0], nil
		p.spare = p.spare[:n-1]
		p.reused++
	} else {
		b = make([]byte, 0, arenaBlock)
	}
	p.lent = append(p.lent, b)
	return b
}

// produced takes back every block lent so far: the output of every batch
// handled since the last call has been acknowledged (or its produce has
// ended in error), so no record refers to them any more.
func (p *blockPool) produced() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range p.lent {
		if len(p.spare) < maxSpareBlocks {
			p.spare = append(p.spare, b)
		}
		p.lent[i] = nil
	}
	p.lent = p.lent[:0]
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
		if n > arenaBlock {
			a.buf = make([]byte, 0, n)
		} else {
			a.buf = a.pool.block()
		}
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
