package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Partitioner is the producer partitioner of the pipeline: records for the
// named changelog topics go to the partition set on the record (the
// partition of the input they describe, as Kafka Streams does with its
// changelogs), every other record by the hash of its key, as Kafka's own
// clients do.
func Partitioner(manual ...string) kgo.Partitioner {
	set := make(map[string]bool, len(manual))
	for _, t := range manual {
		set[t] = true
	}
	return partitioner{manual: set, keyed: kgo.StickyKeyPartitioner(nil)}
}

type partitioner struct {
	manual map[string]bool
	keyed  kgo.Partitioner
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return manualPartitioner{}
	}
	return p.keyed.ForTopic(topic)
}

// manualPartitioner sends a record to its Partition field.
type manualPartitioner struct{}

func (manualPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (manualPartitioner) Partition(r *kgo.Record, n int) int {
	if int(r.Partition) >= n || r.Partition < 0 {
		// A changelog with fewer partitions than its input is a
		// misconfiguration EnsureChangelog refuses; never panic here.
		return int(r.Partition) % n
	}
	return int(r.Partition)
}

// ReadPartition reads partition p of topic from its start to the end it had
// when the call began, passing each record to fn in offset order. It is how
// a stage restores the state a changelog holds for a partition it was just
// assigned: everything written before the assignment is seen.
func ReadPartition(ctx context.Context, base []kgo.Opt, topic string, p int32, fn func(*kgo.Record) error) error {
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return err
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	cl.Close()
	if err != nil {
		return fmt.Errorf("changelog %s: end offsets: %w", topic, err)
	}
	end, ok := ends.Lookup(topic, p)
	if !ok || end.Err != nil {
		return fmt.Errorf("changelog %s partition %d: no end offset (%v)", topic, p, end.Err)
	}
	starts, err := startOffset(ctx, base, topic, p)
	if err != nil {
		return err
	}
	if end.Offset <= starts {
		return nil
	}
	opts := append([]kgo.Opt{}, base...)
	opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(starts)}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	rc, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer rc.Close()
	next := starts
	for next < end.Offset {
		pctx, cancel := context.WithTimeout(ctx, idleRead)
		fs := rc.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			// Offsets below end that hold no record (transaction
			// markers) never arrive: a long silence means everything
			// there is was read.
			return nil
		}
		var ferr error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if ferr != nil {
				return
			}
			if fp.Err != nil && !errors.Is(fp.Err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("changelog %s partition %d: %w", topic, p, fp.Err)
				return
			}
			for _, r := range fp.Records {
				if r.Offset >= end.Offset {
					next = end.Offset
					return
				}
				if ferr = fn(r); ferr != nil {
					return
				}
				next = r.Offset + 1
			}
			// Compaction and control records leave gaps: the high
			// watermark, not the last record, says the end is reached.
			if fp.HighWatermark >= end.Offset && len(fp.Records) == 0 && fp.Err == nil {
				next = end.Offset
			}
		})
		if ferr != nil {
			return ferr
		}
	}
	return nil
}

// idleRead is how long ReadPartition waits for records below the end
// offset before deciding the rest are gaps.
const idleRead = 5 * time.Second

// startOffset returns the first offset partition p of topic still holds.
func startOffset(ctx context.Context, base []kgo.Opt, topic string, p int32) (int64, error) {
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("changelog %s: start offsets: %w", topic, err)
	}
	o, ok := offs.Lookup(topic, p)
	if !ok || o.Err != nil {
		return 0, fmt.Errorf("changelog %s partition %d: no start offset (%v)", topic, p, o.Err)
	}
	return o.Offset, nil
}
