package kafkain

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/testenv"
)

func TestConsumeCommitRestart(t *testing.T) {
	const topic = "kong-log"
	brokers := upstream(t, topic, 3)
	cfg := testConfig(brokers, topic, "tw-kafkain")
	produce(t, brokers, topic, kongLines(0, 30)...)
	produce(t, brokers, topic, nil) // a tombstone: skipped, but committed

	s1 := &sink{}
	c1, stop1 := start(t, cfg, s1)
	waitFor(t, "31 offsets committed", func() bool { return committed(t, brokers, cfg.Group) == 31 })
	stop1()
	recs := s1.records()
	if len(recs) != 30 || len(values(recs)) != 30 {
		t.Fatalf("got %d records (%d distinct), want 30", len(recs), len(values(recs)))
	}
	for _, want := range kongLines(0, 30) {
		if !values(recs)[string(want)] {
			t.Fatalf("missing %s", want)
		}
	}
	perPartition := map[string]int64{}
	for _, r := range recs {
		p := strings.TrimPrefix(r.Origin, "kafka://"+topic+"/")
		if r.Stream != "upstream/"+topic+"/"+p || r.Source != "kong" || r.Collector != "kafka" || r.Host != "testhost" || r.Observed.IsZero() {
			t.Errorf("provenance %+v", r)
		}
		if r.Offset != perPartition[p] {
			t.Errorf("%s: offset %d, want %d (in order, from 0)", r.Origin, r.Offset, perPartition[p])
		}
		perPartition[p]++
	}
	if st := c1.Stats(); st.Records != 30 || st.Tombstones != 1 || st.Commits == 0 {
		t.Errorf("stats %+v", st)
	}

	// A restart continues from the committed offsets: only new records.
	produce(t, brokers, topic, kongLines(30, 40)...)
	s2 := &sink{}
	_, stop2 := start(t, cfg, s2)
	waitFor(t, "41 offsets committed", func() bool { return committed(t, brokers, cfg.Group) == 41 })
	stop2()
	got := s2.records()
	if len(got) != 10 {
		t.Fatalf("after restart got %d records, want the 10 new ones", len(got))
	}
	for _, want := range kongLines(30, 40) {
		if !values(got)[string(want)] {
			t.Fatalf("missing %s", want)
		}
	}
}

func TestEmitFailure(t *testing.T) {
	const topic = "kong-log"
	tests := []struct {
		name string
		sink *sink
	}{
		{name: "every emit fails: nothing committed", sink: &sink{failAll: true}},
		{name: "two emits fail: retried, then committed", sink: &sink{failNext: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			brokers := upstream(t, topic, 1)
			cfg := testConfig(brokers, topic, "tw-kafkain")
			produce(t, brokers, topic, kongLines(0, 5)...)
			c, stop := start(t, cfg, tt.sink)
			if tt.sink.failAll {
				waitFor(t, "two emit errors", func() bool { return c.Stats().EmitErrors >= 2 })
				stop()
				if n := committed(t, brokers, cfg.Group); n != 0 {
					t.Fatalf("committed %d offsets without an acknowledged emit", n)
				}
				return
			}
			waitFor(t, "5 offsets committed", func() bool { return committed(t, brokers, cfg.Group) == 5 })
			stop()
			if got := len(tt.sink.records()); got != 5 {
				t.Errorf("got %d records, want 5", got)
			}
			if st := c.Stats(); st.EmitErrors != 2 {
				t.Errorf("EmitErrors = %d, want 2", st.EmitErrors)
			}
		})
	}
}

func TestMaxPollRecords(t *testing.T) {
	const topic = "kong-log"
	brokers := upstream(t, topic, 1)
	cfg := testConfig(brokers, topic, "tw-kafkain")
	cfg.MaxPollRecords = 4
	produce(t, brokers, topic, kongLines(0, 10)...)
	var sizes []int
	s := &sink{}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(ctx context.Context, recs []ingest.Record) error {
			sizes = append(sizes, len(recs))
			return s.emit(ctx, recs)
		})
	}()
	waitFor(t, "10 offsets committed", func() bool { return committed(t, brokers, cfg.Group) == 10 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, n := range sizes {
		if n > 4 {
			t.Fatalf("batch sizes %v, want each <= 4", sizes)
		}
	}
}

// TestRealKafka consumes from the real Apache Kafka broker.
func TestRealKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := fmt.Sprintf("tw-kafkain-%d", time.Now().UnixNano())
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	if _, err := adm.CreateTopic(t.Context(), 2, 1, nil, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic) })

	produce(t, brokers, topic, kongLines(0, 20)...)
	cfg := testConfig(brokers, topic, topic+"-group")
	s := &sink{}
	_, stop := start(t, cfg, s)
	waitFor(t, "20 offsets committed", func() bool { return committed(t, brokers, cfg.Group) == 20 })
	stop()
	if got := values(s.records()); len(got) != 20 {
		t.Fatalf("got %d distinct records, want 20", len(got))
	}
}
