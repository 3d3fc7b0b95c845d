package replay

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/kafka"
	"github.com/trailwatch/trailwatch/internal/stages"
	"github.com/trailwatch/trailwatch/internal/testenv"
)

// benchLines produces n nginx raw records over 3 partitions: 5,000
// addresses, 2,000 paths, 3% refused, a few /admin requests.
func benchLines(b *testing.B, cl *kgo.Client, topic string, n int) {
	b.Helper()
	recs := make([]ingest.Record, 0, 10000)
	flush := func() {
		if err := cl.ProduceSync(b.Context(), stages.RawRecords(topic, recs)...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		recs = recs[:0]
	}
	for i := range n {
		status := 200
		if i%33 == 0 {
			status = 401
		}
		path := fmt.Sprintf("/api/v1/items/%d", i%2000)
		if i%5000 == 0 {
			path = "/admin/settings"
		}
		ts := base.Add(time.Duration(i) * time.Millisecond)
		l := fmt.Sprintf(`10.%d.%d.%d - - [%s] "GET %s HTTP/1.1" %d 512 "-" "bench/1.0"`,
			i%5000/250, i%250, i%7, ts.Format("02/Jan/2006:15:04:05 -0700"), path, status)
		recs = append(recs, ingest.Record{Data: []byte(l), Source: "nginx", Collector: "file", Host: "h",
			Origin: fmt.Sprintf("/var/log/h%d.log", i%3), Offset: int64(i), Observed: ts})
		if len(recs) == cap(recs) {
			flush()
		}
	}
	flush()
}

// BenchmarkReplayFromKafka replays 300k raw nginx records from the real
// broker through normalize, enrichment (default chain) and the shipped rule
// pack. docs/benchmarks.md records the events/s.
func BenchmarkReplayFromKafka(b *testing.B) {
	brokers := testenv.Kafka(b)
	const n = 300_000
	topic := fmt.Sprintf("replay-bench-%d", time.Now().UnixNano())
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	cl, err := kgo.NewClient(append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(b.Context(), cl, 3, -1, topic); err != nil {
		b.Fatal(err)
	}
	benchLines(b, cl, topic, n)
	shipped, err := detect.LoadDir("../../rules")
	if err != nil {
		b.Fatal(err)
	}
	for _, rc := range []struct {
		name  string
		rules *detect.RuleSet
	}{
		{fmt.Sprintf("%d shipped rules, 300k events", shipped.Len()), shipped},
		{"1 rule, 300k events", shipped.Subset(shipped.Rules()[0].ID)},
	} {
		b.Run(rc.name, func(b *testing.B) {
			b.ReportAllocs()
			var events int64
			for b.Loop() {
				r, err := New(Config{Kafka: opts, Topic: topic, Input: InputRaw, Rules: rc.rules,
					From: base.Add(-time.Hour), To: base.Add(time.Hour), Detect: detect.DefaultConfig(), DedupIDs: 16384}, nil)
				if err != nil {
					b.Fatal(err)
				}
				res, err := r.Run(b.Context(), nil)
				if err != nil {
					b.Fatal(err)
				}
				if res.Events != n {
					b.Fatalf("%d events, want %d", res.Events, n)
				}
				events += res.Events
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
