package replay

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Span is the offset range [Start, End) of one partition that a replay reads.
type Span struct {
	Partition  int32
	Start, End int64
}

// Spans lists, for every partition of topic, the offsets of the records
// whose timestamp is in [from, to): the first offset at or after from and
// the first at or after to (the end offset when there is none), from the
// broker's time index. Partitions with nothing in range are left out.
func Spans(ctx context.Context, cl *kgo.Client, topic string, from, to time.Time) ([]Span, error) {
	adm := kadm.NewClient(cl)
	starts, err := adm.ListOffsetsAfterMilli(ctx, from.UnixMilli(), topic)
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s at %s: %w", topic, from.Format(time.RFC3339), err)
	}
	ends, err := adm.ListOffsetsAfterMilli(ctx, to.UnixMilli(), topic)
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s at %s: %w", topic, to.Format(time.RFC3339), err)
	}
	ps, ok := starts[topic]
	if !ok || len(ps) == 0 {
		return nil, fmt.Errorf("topic %s: no partitions (does it exist?)", topic)
	}
	var out []Span
	for p, s := range ps {
		if s.Err != nil {
			if errors.Is(s.Err, kerr.UnknownTopicOrPartition) {
				return nil, fmt.Errorf("topic %s does not exist", topic)
			}
			return nil, fmt.Errorf("topic %s partition %d: %w", topic, p, s.Err)
		}
		e, ok := ends.Lookup(topic, p)
		if !ok || e.Err != nil {
			return nil, fmt.Errorf("topic %s partition %d: no end offset", topic, p)
		}
		if e.Offset > s.Offset {
			out = append(out, Span{Partition: p, Start: s.Offset, End: e.Offset})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out, nil
}

// chunk is a run of one partition's decoded events, in offset order, with
// the offset of each event's record and its position within the record
// (the merge's tie-breakers), and how many records it covers (progress).
// Events are kept in one slice and copied once, into the detector's batch:
// a schema.Event is large, and copying it around dominated the profile.
type chunk struct {
	partition int32
	evs       []schema.Event
	offs      []int64
	seqs      []int32
	records   int
	err       error
}

// decodeFunc turns one record into events appended to dst. An error marks
// the record bad (counted, skipped); it never stops the replay.
type decodeFunc func(dst []schema.Event, r *kgo.Record) ([]schema.Event, error)

// partReader reads one partition's span with its own client (no consumer
// group: nothing is committed and no live group is disturbed), decodes
// each fetch and hands chunks to the merge. One client per partition lets a
// slow partition block only itself: the merge waits on exactly the
// partition whose next event it needs, and a reader whose channel is full
// stops polling, so kgo stops fetching for it (bounded memory).
type partReader struct {
	span   Span
	out    chan chunk
	bad    func(r *kgo.Record, err error)
	decode decodeFunc
	// free returns the chunks the merge has copied every event out of,
	// for the reader to decode into again. A chunk's events take
	// megabytes, and a freshly allocated slice was first written (paged
	// in) event by event: a third of the replay's CPU.
	free chan chunk
}

// chunkEvents bounds a chunk (a poll can return a whole partition's
// backlog), so that chunks are few, of one size, and recycled.
const chunkEvents = 2048

// newChunk returns an empty chunk, recycled when one is free.
func (pr *partReader) newChunk() chunk {
	select {
	case c := <-pr.free:
		return chunk{partition: pr.span.Partition, evs: c.evs[:0], offs: c.offs[:0], seqs: c.seqs[:0]}
	default:
	}
	n := chunkEvents
	return chunk{partition: pr.span.Partition, evs: make([]schema.Event, 0, n), offs: make([]int64, 0, n), seqs: make([]int32, 0, n)}
}

// recycle hands c, whose events were all copied out, back to its reader;
// dropped when the reader has enough spare chunks.
func (pr *partReader) recycle(c chunk) {
	if pr.free == nil {
		return
	}
	select {
	case pr.free <- c:
	default:
	}
}

func (pr *partReader) run(ctx context.Context, base []kgo.Opt, topic string) {
	defer close(pr.out)
	opts := append([]kgo.Opt{}, base...)
	opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {pr.span.Partition: kgo.NewOffset().At(pr.span.Start)},
	}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		pr.send(ctx, chunk{err: fmt.Errorf("kafka: %w", err)})
		return
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = fmt.Errorf("read %s partition %d: %w", t, p, err)
		})
		if ferr != nil {
			pr.send(ctx, chunk{err: ferr})
			return
		}
		c := pr.newChunk()
		done := false
		for iter := fs.RecordIter(); !done && !iter.Done(); {
			r := iter.Next()
			if r.Offset >= pr.span.End {
				done = true
				break
			}
			c.records++
			before := len(c.evs)
			var derr error
			c.evs, derr = pr.decode(c.evs, r)
			if derr != nil {
				c.evs = c.evs[:before]
				pr.bad(r, derr)
				continue
			}
			for i := before; i < len(c.evs); i++ {
				c.offs = append(c.offs, r.Offset)
				c.seqs = append(c.seqs, int32(i-before))
			}
			// The last record of the span ends the partition, also when
			// compaction removed the records after it.
			if r.Offset >= pr.span.End-1 {
				done = true
			}
			if len(c.evs) >= chunkEvents && !done {
				if !pr.send(ctx, c) {
					return
				}
				c = pr.newChunk()
			}
		}
		if c.records > 0 && !pr.send(ctx, c) {
			return
		}
		if done {
			return
		}
	}
}

// send hands c to the merge; false means ctx ended first.
func (pr *partReader) send(ctx context.Context, c chunk) bool {
	select {
	case pr.out <- c:
		return true
	case <-ctx.Done():
		return false
	}
}

// head is a partition's current chunk and position in it.
type head struct {
	r   *partReader
	c   chunk
	pos int
}

// heads is a min-heap of partition heads by (time, partition, offset, seq).
type heads []*head

func (h heads) Len() int { return len(h) }
func (h heads) Less(i, j int) bool {
	a, b := h[i], h[j]
	if c := a.c.evs[a.pos].Timestamp.Compare(b.c.evs[b.pos].Timestamp); c != 0 {
		return c < 0
	}
	if a.c.partition != b.c.partition {
		return a.c.partition < b.c.partition
	}
	if oa, ob := a.c.offs[a.pos], b.c.offs[b.pos]; oa != ob {
		return oa < ob
	}
	return a.c.seqs[a.pos] < b.c.seqs[b.pos]
}
func (h heads) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heads) Push(x any)   { *h = append(*h, x.(*head)) }
func (h *heads) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// merger merges the readers' streams into one in event-time order. Each
// partition's own order is kept (a k-way merge only ever takes a head), so
// an actor's events, which share a partition, reach the detector in the
// order the live detect stage saw them; across partitions the order is
// event time with (partition, offset) breaking ties, so the same range
// merges the same way on every run, however fetches were split.
type merger struct {
	h       heads
	records func(n int)
}

// fill waits for r's next non-empty chunk; false means r is finished.
func (m *merger) fill(ctx context.Context, hd *head) (bool, error) {
	for {
		select {
		case c, ok := <-hd.r.out:
			if !ok {
				return false, nil
			}
			if c.err != nil {
				return false, c.err
			}
			m.records(c.records)
			if len(c.evs) == 0 {
				continue
			}
			hd.c, hd.pos = c, 0
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

func (m *merger) start(ctx context.Context, readers []*partReader) error {
	for _, r := range readers {
		hd := &head{r: r}
		ok, err := m.fill(ctx, hd)
		if err != nil {
			return err
		}
		if ok {
			m.h = append(m.h, hd)
		}
	}
	heap.Init(&m.h)
	return nil
}

// done reports whether every partition is finished.
func (m *merger) done() bool { return len(m.h) == 0 }

// next appends up to n merged events to dst, skipping those keep rejects
// (counted by the caller); fewer than n (or none) means the end of every
// partition.
func (m *merger) next(ctx context.Context, dst []schema.Event, n int, keep func(*schema.Event) bool) ([]schema.Event, error) {
	for len(m.h) > 0 && n > 0 {
		hd := m.h[0]
		if ev := &hd.c.evs[hd.pos]; keep(ev) {
			dst = append(dst, *ev)
			n--
		}
		hd.pos++
		if hd.pos < len(hd.c.evs) {
			heap.Fix(&m.h, 0)
			continue
		}
		hd.r.recycle(hd.c) // every event was copied out into dst
		hd.c = chunk{}
		ok, err := m.fill(ctx, hd)
		if err != nil {
			return dst, err
		}
		if ok {
			heap.Fix(&m.h, 0)
		} else {
			heap.Pop(&m.h)
		}
	}
	return dst, nil
}
