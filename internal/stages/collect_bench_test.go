package stages

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/ingest/file"
	"github.com/trailwatch/trailwatch/ingest/redact"
	"github.com/trailwatch/trailwatch/internal/integrity"
	"github.com/trailwatch/trailwatch/internal/kafka"
	"github.com/trailwatch/trailwatch/internal/pipeline"
	"github.com/trailwatch/trailwatch/internal/testenv"
)

// benchLogBytes is the size of the generated access log.
const benchLogBytes = 200 << 20

// writeBenchLog writes about benchLogBytes of nginx combined lines (~210
// bytes each, 1 in 100 carrying an api_key for the redactor to replace) and
// returns the path, line count and byte count.
func writeBenchLog(b *testing.B, dir string) (path string, lines, size int64) {
	b.Helper()
	path = filepath.Join(dir, "access.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	methods := []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	statuses := []int{200, 200, 200, 201, 204, 301, 401, 403, 404, 500}
	agents := []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0",
		"curl/8.5.0",
		"python-requests/2.31.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1",
	}
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var buf []byte
	for size < benchLogBytes {
		buf = buf[:0]
		buf = fmt.Appendf(buf, "198.51.%d.%d - - [%s] \"%s /api/v1/items/%d",
			rng.IntN(256), rng.IntN(256), start.Add(time.Duration(lines)*time.Millisecond).Format("02/Jan/2006:15:04:05 -0700"),
			methods[rng.IntN(len(methods))], rng.IntN(1_000_000))
		switch {
		case lines%100 == 0:
			buf = fmt.Appendf(buf, "?api_key=sk_live_%024d", rng.Uint64())
		case lines%3 == 0:
			buf = fmt.Appendf(buf, "?page=%d&sort=asc", rng.IntN(50))
		}
		buf = fmt.Appendf(buf, " HTTP/1.1\" %d %d \"https://app.example.com/dashboard\" \"%s\"\n",
			statuses[rng.IntN(len(statuses))], rng.IntN(20_000), agents[rng.IntN(len(agents))])
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
		lines++
		size += int64(len(buf))
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path, lines, size
}

// cpuNow is the process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCollectToKafka measures file collector -> redactor -> producer ->
// broker, until Kafka acknowledged every line of a ~200 MB nginx log. The
// "kafka" cases use the real broker of internal/testenv (on loopback), the
// "kfake" ones an in-process broker. Each iteration reads the whole file
// into a fresh 3-partition topic; run it with -benchtime=1x.
//
// MB/s and lines/s are wall-clock from the collector's start to the last
// ack; MB/cpu-s divides by this process's CPU time (the real broker's CPU
// is not included). The cases with a stage beside the collector also report
// lines/s-with-stage, from the start until the stage has handled every line
// (the rate both sustain together), and cpu-µs/line of the whole process.
func BenchmarkCollectToKafka(b *testing.B) {
	path, lines, size := writeBenchLog(b, b.TempDir())
	red, err := redact.New(redact.Config{Key: "bench-key-0123456789abcdef"})
	if err != nil {
		b.Fatal(err)
	}
	linger5 := kgo.ProducerLinger(5 * time.Millisecond)
	linger0 := kgo.ProducerLinger(0)
	none := kgo.ProducerBatchCompression(kgo.NoCompression())
	lz4 := kgo.ProducerBatchCompression(kgo.Lz4Compression())
	zstd := kgo.ProducerBatchCompression(kgo.ZstdCompression())
	lz4tw := kgo.WithCompressor(kafka.LZ4Compressor())
	cases := []struct {
		name       string
		opts       []kgo.Opt
		batchLines int
		batchBytes int // 0: the collector's default (1 MiB)
		// beside runs a stage in the same process, consuming the topic
		// while the collector writes it (issue 7: hashing may cost the
		// collector ≤ 10%): "integrity" is the dedicated integrity stage
		// (a second read and digest of every record), "normalize" the
		// normalize stage, "normalize+chain" the normalize stage building
		// the chain from its own read (what `run` does when a process
		// runs both stages).
		beside string
	}{
		// cmd/trailwatch/run.go before: 5ms linger, the default snappy.
		{"snappy-1000", []kgo.Opt{linger5}, 1000, 0, ""},
		// ProduceSync unlingers its records: the linger changes nothing.
		{"linger0-snappy-1000", []kgo.Opt{linger0}, 1000, 0, ""},
		{"none-1000", []kgo.Opt{linger5, none}, 1000, 0, ""},
		// cmd/trailwatch/run.go now, with the collector's defaults.
		{"lz4-1000", []kgo.Opt{linger5, lz4}, 1000, 0, ""},
		// internal/kafka's lz4 codec (no frame checksums).
		{"lz4tw-1000", []kgo.Opt{linger5, lz4tw}, 1000, 0, ""},
		{"zstd-1000", []kgo.Opt{linger5, zstd}, 1000, 0, ""},
		// 5000 lines reach the 1 MiB batch_bytes default first.
		{"snappy-5000", []kgo.Opt{linger5}, 5000, 0, ""},
		{"none-5000", []kgo.Opt{linger5, none}, 5000, 0, ""},
		{"lz4-5000", []kgo.Opt{linger5, lz4}, 5000, 0, ""},
		{"zstd-5000", []kgo.Opt{linger5, zstd}, 5000, 0, ""},
		// 4 MiB per Emit: several 1 MB produce batches per ProduceSync.
		{"lz4-20000-4MiB", []kgo.Opt{linger5, lz4}, 20000, 4 << 20, ""},
		{"lz4-1000+integrity", []kgo.Opt{linger5, lz4}, 1000, 0, "integrity"},
		{"lz4-1000+normalize", []kgo.Opt{linger5, lz4}, 1000, 0, "normalize"},
		{"lz4-1000+normalize+chain", []kgo.Opt{linger5, lz4}, 1000, 0, "normalize+chain"},
	}
	for _, target := range []string{"kafka", "kfake"} {
		for _, tc := range cases {
			b.Run(target+"/"+tc.name, func(b *testing.B) {
				var seeds []string
				if target == "kafka" {
					seeds = testenv.Kafka(b)
				}
				var wall, cpu, both time.Duration
				iter := 0
				for b.Loop() {
					iter++
					topic := fmt.Sprintf("tw-bench-collect-%d-%d", os.Getpid(), time.Now().UnixNano())
					brokers := seeds
					var fake *kfake.Cluster
					if target == "kfake" {
						c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
						if err != nil {
							b.Fatal(err)
						}
						brokers, fake = c.ListenAddrs(), c
					}
					opts := append([]kgo.Opt{
						kgo.SeedBrokers(brokers...),
						kgo.MaxBufferedRecords(100_000),
					}, tc.opts...)
					cl, err := kgo.NewClient(opts...)
					if err != nil {
						b.Fatal(err)
					}
					adm := kadm.NewClient(cl)
					if target == "kafka" {
						if _, err := adm.CreateTopic(b.Context(), 3, 1, nil, topic); err != nil {
							cl.Close()
							b.Fatal(err)
						}
					}
					cfg := file.DefaultConfig()
					cfg.Paths = []string{path}
					cfg.Source = "nginx"
					cfg.Host = "bench"
					cfg.BatchLines = tc.batchLines
					if tc.batchBytes > 0 {
						cfg.BatchBytes = tc.batchBytes
					}
					cfg.CheckpointFile = filepath.Join(b.TempDir(), "cp.json")
					col, err := file.New(cfg, nil)
					if err != nil {
						b.Fatal(err)
					}
					ctx, cancel := context.WithCancel(b.Context())
					stopBeside := func() {}
					var besideDone <-chan struct{}
					if tc.beside != "" {
						besideDone, stopBeside = runBeside(b, tc.beside, brokers, cl, topic, lines)
					}
					var acked atomic.Int64
					var done time.Time
					inner := redact.Wrap(CollectEmit(cl, topic, nil), red, nil)
					emit := func(ctx context.Context, recs []ingest.Record) error {
						if err := inner(ctx, recs); err != nil {
							return err
						}
						if acked.Add(int64(len(recs))) == lines {
							done = time.Now()
							cancel()
						}
						return nil
					}
					c0, t0 := cpuNow(), time.Now()
					runErr := col.Run(ctx, emit)
					cancel()
					wall += done.Sub(t0)
					if besideDone != nil && runErr == nil {
						// The stage keeping up: the rate the two sustain.
						select {
						case <-besideDone:
						case <-b.Context().Done():
						}
						both += time.Since(t0)
					}
					stopBeside()
					cpu += cpuNow() - c0
					if runErr != nil {
						b.Fatal(runErr)
					}
					if got := acked.Load(); got != lines {
						b.Fatalf("acked %d lines, want %d", got, lines)
					}
					ends, err := adm.ListEndOffsets(context.Background(), topic)
					if err != nil {
						b.Fatal(err)
					}
					var stored int64
					ends.Each(func(o kadm.ListedOffset) { stored += o.Offset })
					if stored != lines {
						b.Errorf("topic holds %d records, want %d", stored, lines)
					}
					if target == "kafka" {
						if _, err := adm.DeleteTopic(context.Background(), topic); err != nil {
							b.Errorf("delete topic %s: %v", topic, err)
						}
					}
					cl.Close()
					if fake != nil {
						fake.Close()
					}
				}
				mb := float64(size) * float64(iter) / 1e6
				b.ReportMetric(mb/wall.Seconds(), "MB/s")
				b.ReportMetric(float64(lines)*float64(iter)/wall.Seconds(), "lines/s")
				b.ReportMetric(mb/cpu.Seconds(), "MB/cpu-s")
				if both > 0 {
					// Collector and stage together, the stage done.
					b.ReportMetric(float64(lines)*float64(iter)/both.Seconds(), "lines/s-with-stage")
					b.ReportMetric(cpu.Seconds()*1e6/(float64(lines)*float64(iter)), "cpu-µs/line")
				}
			})
		}
	}
}

// partitionHandler is a stage handler keeping state per partition.
type partitionHandler interface {
	pipeline.Handler
	pipeline.PartitionAware
}

// countingHandler closes done once its handler has been handed want records.
type countingHandler struct {
	partitionHandler
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *countingHandler) Handle(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	out, err := c.partitionHandler.Handle(ctx, recs)
	if err == nil {
		if n := c.n.Add(int64(len(recs))); n >= c.want && n-int64(len(recs)) < c.want {
			close(c.done)
		}
	}
	return out, err
}

// runBeside starts the stage kind (see the beside case field) on topic,
// checkpointing to topic.integrity and writing events to topic.events. It
// returns a channel closed once the stage has handled lines records, and
// the function that stops it and deletes its topics.
func runBeside(b *testing.B, kind string, brokers []string, prod *kgo.Client, topic string, lines int64) (<-chan struct{}, func()) {
	b.Helper()
	ctx := b.Context()
	cpTopic, evTopic, dlqTopic := topic+".integrity", topic+".events", topic+".dlq"
	adm := kadm.NewClient(prod)
	if _, err := adm.CreateTopics(ctx, 3, 1, nil, evTopic, dlqTopic); err != nil {
		b.Fatal(err)
	}
	if err := integrity.EnsureTopic(ctx, prod, 1, -1, cpTopic); err != nil {
		b.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	base := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	ks := integrity.NewKafkaSource(base, topic, cpTopic)
	chain, err := integrity.NewCheckpointer(integrity.DefaultConfig(), topic, cpTopic, integrity.NewSigner(key), ks.Last, ks.Records, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	var h partitionHandler = chain
	if kind != "integrity" {
		n := NewNormalize(evTopic, dlqTopic, nil)
		if kind == "normalize+chain" {
			n.Chain = chain
		}
		h = n
	}
	counted := &countingHandler{partitionHandler: h, want: lines, done: make(chan struct{})}
	r, err := pipeline.NewRunner(pipeline.Stage{Name: kind, Group: topic + "-" + kind, Topics: []string{topic}, Handler: counted}, base, prod)
	if err != nil {
		b.Fatal(err)
	}
	stop := testenv.Start(b, ctx, r.Run)
	return counted.done, func() {
		stop()
		_, _ = adm.DeleteTopics(context.Background(), cpTopic, evTopic, dlqTopic)
	}
}

// TestRawRecordsBatch checks the batch encoder the benchmark relies on:
// shared header bytes never leak between records that differ.
func TestRawRecordsBatch(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	base := ingest.Record{Source: "nginx", Collector: "file", Host: "h1", Origin: "/var/log/a.log", Stream: "s1", Observed: t0}
	tests := []struct {
		name   string
		change func(i int, r *ingest.Record)
	}{
		{"one file, one read", func(int, *ingest.Record) {}},
		{"origins and times alternate", func(i int, r *ingest.Record) {
			if i%2 == 1 {
				r.Origin, r.Stream, r.Source, r.Observed = "/var/log/b.log", "s2", "envoy", t0.Add(time.Second)
			}
		}},
		{"some truncated", func(i int, r *ingest.Record) { r.Truncated = i%3 == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := make([]ingest.Record, 10)
			for i := range in {
				in[i] = base
				in[i].Data = fmt.Appendf(nil, "line %d", i)
				in[i].Offset = int64(i) * 1000
				tt.change(i, &in[i])
			}
			out := RawRecords("raw", in)
			out[0].Headers = append(out[0].Headers, kgo.RecordHeader{Key: "extra", Value: []byte("x")})
			for i, kr := range out {
				want := RawRecord("raw", &in[i])
				if i == 0 {
					want.Headers = append(want.Headers, kgo.RecordHeader{Key: "extra", Value: []byte("x")})
				}
				if kr.Topic != "raw" || string(kr.Key) != in[i].Origin || string(kr.Value) != string(in[i].Data) || !kr.Timestamp.Equal(in[i].Observed) {
					t.Errorf("record %d: key %q value %q at %s", i, kr.Key, kr.Value, kr.Timestamp)
				}
				if got, w := fmt.Sprint(headerStrings(kr)), fmt.Sprint(headerStrings(want)); got != w {
					t.Errorf("record %d headers:\n got %s\nwant %s", i, got, w)
				}
				if got := DecodeRaw(kr); got.ID() != in[i].ID() || got.Truncated != in[i].Truncated || got.Offset != in[i].Offset {
					t.Errorf("record %d decodes to %+v", i, got)
				}
			}
		})
	}
}

func headerStrings(kr *kgo.Record) []string {
	var out []string
	for _, h := range kr.Headers {
		out = append(out, h.Key+"="+string(h.Value))
	}
	return out
}
