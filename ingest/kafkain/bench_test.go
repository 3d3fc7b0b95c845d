package kafkain

import (
	"context"
	"fmt"
	"testing"

	"github.com/trailwatch/trailwatch/ingest"
)

// BenchmarkKafkaCollector consumes from a kfake upstream cluster.
func BenchmarkKafkaCollector(b *testing.B) {
	const topic, n = "kong-log", 100_000
	brokers := upstream(b, topic, 3)
	vals := kongLines(0, n)
	size := 0
	for _, v := range vals {
		size += len(v)
	}
	produce(b, brokers, topic, vals...)
	b.Run(fmt.Sprintf("%dk records, 3 partitions", n/1000), func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		run := 0
		for b.Loop() {
			run++
			// A new group each run reads the topic from the start.
			cfg := testConfig(brokers, topic, fmt.Sprintf("bench-%d", run))
			c, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(b.Context())
			seen := 0
			emit := func(_ context.Context, recs []ingest.Record) error {
				if seen += len(recs); seen == n {
					cancel()
				}
				return nil
			}
			if err := c.Run(ctx, emit); err != nil {
				b.Fatal(err)
			}
			cancel()
			if seen != n {
				b.Fatalf("read %d records, want %d", seen, n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
