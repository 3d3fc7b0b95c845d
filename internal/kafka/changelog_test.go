package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestChangelogPartitionAndRead writes changelog records to the partitions
// they name and reads each partition back in full, as a stage restoring
// state for an assignment does; keyed records elsewhere still spread by key.
func TestChangelogPartitionAndRead(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "state", "keyed"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	base := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	prod, err := kgo.NewClient(append(base, kgo.RecordPartitioner(Partitioner("state")))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)

	var recs []*kgo.Record
	for i := range 30 {
		recs = append(recs, &kgo.Record{Topic: "state", Partition: int32(i % 3), Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
		recs = append(recs, &kgo.Record{Topic: "keyed", Key: fmt.Appendf(nil, "k%d", i)})
	}
	if err := prod.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	keyedParts := map[int32]bool{}
	for _, r := range recs {
		if r.Topic == "keyed" {
			keyedParts[r.Partition] = true
		}
	}
	if len(keyedParts) < 2 {
		t.Errorf("keyed records all went to partitions %v: the key hash partitioner was not used", keyedParts)
	}

	for p := range int32(3) {
		var got []string
		err := ReadPartition(t.Context(), base, "state", p, func(r *kgo.Record) error {
			if r.Partition != p {
				t.Errorf("record from partition %d while reading %d", r.Partition, p)
			}
			got = append(got, string(r.Key))
			return nil
		})
		if err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		var want []string
		for i := int(p); i < 30; i += 3 {
			want = append(want, fmt.Sprintf("k%d", i))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("partition %d: read %v, want %v", p, got, want)
		}
	}
}

// TestReadPartitionEmpty returns at once on a partition with no records.
func TestReadPartitionEmpty(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	n := 0
	err = ReadPartition(t.Context(), []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, "state", 0, func(*kgo.Record) error { n++; return nil })
	if err != nil || n != 0 {
		t.Fatalf("empty partition: %d records, err %v", n, err)
	}
}
