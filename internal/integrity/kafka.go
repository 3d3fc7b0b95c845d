package integrity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaSource reads the raw and integrity topics: the Source of Verify and
// the Last/Read of the Checkpointer. Every call uses short-lived clients of
// its own, so it is safe for concurrent use and never joins a group.
type KafkaSource struct {
	base      []kgo.Opt
	raw       string
	integrity string
}

// NewKafkaSource returns a source over the named topics; base holds the
// connection options.
func NewKafkaSource(base []kgo.Opt, rawTopic, integrityTopic string) *KafkaSource {
	return &KafkaSource{base: base, raw: rawTopic, integrity: integrityTopic}
}

// idleRead is how long a range read waits for records below the end offset
// before deciding the rest were deleted.
const idleRead = 10 * time.Second

// Partitions implements Source.
func (s *KafkaSource) Partitions(ctx context.Context) ([]int32, error) {
	_, ends, err := s.bounds(ctx, s.raw)
	if err != nil {
		return nil, err
	}
	var ps []int32
	ends.Each(func(o kadm.ListedOffset) { ps = append(ps, o.Partition) })
	slices.Sort(ps)
	return ps, nil
}

// Records implements Source and ReadFunc over the raw topic.
func (s *KafkaSource) Records(ctx context.Context, p int32, from, to int64, fn func(*kgo.Record) error) error {
	return s.read(ctx, s.raw, p, from, to, fn)
}

// Checkpoints implements Source: every record of the integrity topic.
func (s *KafkaSource) Checkpoints(ctx context.Context) ([]Checkpoint, []Finding, error) {
	starts, ends, err := s.bounds(ctx, s.integrity)
	if err != nil {
		return nil, nil, err
	}
	var (
		cks []Checkpoint
		bad []Finding
	)
	for _, e := range sorted(ends[s.integrity]) {
		st, _ := starts.Lookup(s.integrity, e.Partition)
		err := s.read(ctx, s.integrity, e.Partition, st.Offset, e.Offset-1, func(r *kgo.Record) error {
			c, err := DecodeCheckpoint(r.Value)
			if err != nil {
				bad = append(bad, Finding{Kind: KindMalformed, Partition: -1, Offset: r.Offset,
					Detail: fmt.Sprintf("%s partition %d offset %d: %v", s.integrity, r.Partition, r.Offset, err)})
				return nil
			}
			cks = append(cks, c)
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return cks, bad, nil
}

// Last implements LastFunc: the checkpoint of raw partition p with the
// highest end offset, searched from the end of every integrity partition
// backwards in growing windows (checkpoints are keyed by partition, so they
// sit in one integrity partition, interleaved with others').
func (s *KafkaSource) Last(ctx context.Context, p int32) (*Checkpoint, error) {
	starts, ends, err := s.bounds(ctx, s.integrity)
	if err != nil {
		return nil, err
	}
	for window := int64(1024); ; window *= 8 {
		var best *Checkpoint
		whole := true
		for _, e := range sorted(ends[s.integrity]) {
			st, _ := starts.Lookup(s.integrity, e.Partition)
			from := max(st.Offset, e.Offset-window)
			whole = whole && from == st.Offset
			err := s.read(ctx, s.integrity, e.Partition, from, e.Offset-1, func(r *kgo.Record) error {
				c, err := DecodeCheckpoint(r.Value)
				if err != nil || c.Partition != p || c.Topic != s.raw {
					return nil //nolint:nilerr // not a checkpoint of this partition: verify reports it
				}
				if best == nil || c.To > best.To {
					best = &c
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		if best != nil || whole {
			return best, nil
		}
	}
}

// sorted returns a topic's listed offsets by partition.
func sorted(m map[int32]kadm.ListedOffset) []kadm.ListedOffset {
	out := make([]kadm.ListedOffset, 0, len(m))
	for _, o := range m {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b kadm.ListedOffset) int { return int(a.Partition - b.Partition) })
	return out
}

// bounds lists the start and end offsets of topic's partitions.
func (s *KafkaSource) bounds(ctx context.Context, topic string) (kadm.ListedOffsets, kadm.ListedOffsets, error) {
	cl, err := kgo.NewClient(s.base...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: start offsets: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: end offsets: %w", topic, err)
	}
	return starts, ends, nil
}

// read calls fn for the records of topic partition p at offsets from..to
// (to < 0: to the end offset at the call) in the order Kafka returns them.
// Offsets already deleted are skipped: the read starts at the log start.
func (s *KafkaSource) read(ctx context.Context, topic string, p int32, from, to int64, fn func(*kgo.Record) error) error {
	_, ends, err := s.bounds(ctx, topic)
	if err != nil {
		return err
	}
	end, ok := ends.Lookup(topic, p)
	if !ok {
		return fmt.Errorf("%s: no partition %d", topic, p)
	}
	last := end.Offset - 1
	if to >= 0 && to < last {
		last = to
	}
	if last < from {
		return nil
	}
	opts := append([]kgo.Opt{}, s.base...)
	opts = append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		pctx, cancel := context.WithTimeout(ctx, idleRead)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			return nil // the rest below the end offset is gone
		}
		var ferr error
		done := false
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && ferr == nil {
				ferr = fmt.Errorf("%s partition %d: %w", topic, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if done || ferr != nil {
				return
			}
			if r.Offset > last {
				done = true
				return
			}
			ferr = fn(r)
			done = r.Offset == last
		})
		if ferr != nil || done {
			return ferr
		}
	}
}

// EnsureTopic creates the integrity topic if missing, with unlimited
// retention: checkpoints are tiny and must outlive the raw records they
// vouch for. An existing topic is left as it is.
func EnsureTopic(ctx context.Context, cl *kgo.Client, partitions int32, rf int16, name string) error {
	retention := "-1"
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, rf, map[string]*string{"retention.ms": &retention}, name)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}
