package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/testenv"
)

// benchNoIndexConf is the single-process pipeline without the index: the
// file collector, normalize, detect (default enrichment, the shipped rules,
// the repartition topic and the keyed stage) and notify with no notifier.
const benchNoIndexConf = `
data_dir: %[1]s/data
http: {listen: ""}
log: {level: warn}
kafka:
  brokers: [%[2]s]
  group_prefix: %[3]s
  partitions: 3
  topics: {raw: %[3]s.raw, events: %[3]s.events, enriched: %[3]s.enriched, alerts: %[3]s.alerts, dlq: %[3]s.dlq, notified: %[3]s.notified,
           repartition: %[3]s.repartition, state: %[3]s.state, keyed_state: %[3]s.state.keyed}
collect:
  redact: {key: bench-fingerprint-key-0123456789abcdef}
  files:
    - {name: bench, paths: [%[4]s], source: nginx, poll_interval: 50ms}
detect:
  rules: [%[5]s]
index: {type: none}
notify:
  console: false
`

// BenchmarkPipelineNoIndex runs the whole pipeline but the index in this
// process, on the real test broker, over a file of 200k nginx lines written
// before it starts (the soak harness's load lines: 25,000 addresses, each
// with its API key in the query). It times from start until the detect and
// keyed-detect groups have committed every event, and reports events/s;
// docs/benchmarks.md records the results.
func BenchmarkPipelineNoIndex(b *testing.B) {
	brokers := testenv.Kafka(b)
	const n = 200_000
	dir := b.TempDir()
	logPath := filepath.Join(dir, "access.log")
	f, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	ts := time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700")
	for i := range n {
		ip := fmt.Sprintf("10.40.%d.%d", i%100, i%250+1)
		fmt.Fprintf(w, "%s - - [%s] \"GET /api/load/bench/%d?api_key=lk%s HTTP/1.1\" 200 3 \"-\" \"load/1.0\"\n",
			ip, ts, i+1, strings.ReplaceAll(ip, ".", ""))
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	rules, _ := filepath.Abs("../../rules")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	var elapsed time.Duration
	for i := 0; b.Loop(); i++ {
		run := fmt.Sprintf("bench%d", time.Now().UnixNano())
		runDir := filepath.Join(dir, run)
		cfgPath := filepath.Join(dir, run+".yaml")
		if err := os.WriteFile(cfgPath, fmt.Appendf(nil, benchNoIndexConf, runDir, strings.Join(brokers, ","), run, logPath, rules), 0o600); err != nil {
			b.Fatal(err)
		}
		cfg, err := loadConfig(cfgPath, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, stop := context.WithCancel(b.Context())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- runPipeline(ctx, cfg, slog.New(slog.DiscardHandler), io.Discard) }()
		waitDetected(b, adm, run, n, done)
		elapsed += time.Since(start)
		stop()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "events/s")
}

// waitDetected polls until the enriched topic holds n records and both
// detect groups have committed the end of their input (or the pipeline
// stopped, or five minutes passed).
func waitDetected(b *testing.B, adm *kadm.Client, run string, n int64, done <-chan error) {
	b.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Minute)
	for {
		select {
		case err := <-done:
			b.Fatalf("pipeline stopped before detecting every event: %v", err)
		case <-deadline:
			b.Fatal("timed out waiting for the detect groups to commit every event")
		case <-tick.C:
		}
		if caughtUp(b.Context(), adm, run, n) {
			return
		}
	}
}

func caughtUp(ctx context.Context, adm *kadm.Client, run string, n int64) bool {
	ends, err := adm.ListEndOffsets(ctx, run+".enriched")
	if err != nil {
		return false
	}
	var enriched int64
	ends.Each(func(o kadm.ListedOffset) { enriched += o.Offset })
	if enriched < n {
		return false
	}
	groups := map[string]string{run + "-detect": run + ".events", run + "-detect-keyed": run + ".repartition"}
	lags, err := adm.Lag(ctx, run+"-detect", run+"-detect-keyed")
	if err != nil {
		return false
	}
	for g, topic := range groups {
		l, ok := lags[g]
		if !ok || l.Error() != nil || len(l.Lag[topic]) == 0 {
			return false
		}
		for _, pl := range l.Lag[topic] {
			if pl.Lag != 0 {
				return false
			}
		}
	}
	return true
}
