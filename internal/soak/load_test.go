//go:build soak

package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/testenv"
)

var (
	ratesFlag    = flag.String("rates", "1000,2500,5000,10000", "load: offered rates in lines per second, one step each")
	stepFlag     = flag.Duration("step", 20*time.Second, "load: how long each rate is offered")
	noIndexLines = flag.Int("noindex-lines", 300000, "load: lines for the without-index measurement")
	noIndexWarm  = flag.Int("noindex-warmup", 0, "lines of each unreported warm-up run before the without-index measurement (0: as many as -noindex-lines), so the broker's JIT is warm")
	noIndexWarms = flag.Int("noindex-warmups", 6, "most warm-up runs; they stop once the broker's CPU per event no longer falls")
	noIndexRuns  = flag.Int("noindex-runs", 3, "measured without-index runs; the report gives each and their median")
)

// loadWriter appends nginx access lines, each naming its sequence number,
// to a file the pipeline tails: a synthetic gateway log, since a real
// nginx serving 10k req/s would take one of the machine's two cores from
// the pipeline being measured.
type loadWriter struct {
	run string
	f   *os.File
	w   *bufio.Writer
	seq int
}

func (l *loadWriter) line(ip string, status int, now time.Time) {
	l.seq++
	fmt.Fprintf(l.w, "%s - - [%s] \"GET /api/load/%s/%d?api_key=lk%s HTTP/1.1\" %d 3 \"-\" \"load/1.0\"\n",
		ip, now.Format("02/Jan/2006:15:04:05 -0700"), l.run, l.seq, strings.ReplaceAll(ip, ".", ""), status)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// TestLoad measures, without faults: sustained end-to-end throughput
// (log line → indexed document) and alert latency (line written → Slack
// message received) at each offered rate; a bare bulk loader sending the
// same documents to the same node; and the pipeline's rate without the
// index.
func TestLoad(t *testing.T) {
	brokers, osURL := testenv.Kafka(t), testenv.OpenSearch(t)
	ctx := interruptible(t)
	dir := t.TempDir()
	run := fmt.Sprintf("load%d", time.Now().UnixNano())
	es := search{osURL}
	slack := startSlack(t)
	var (
		mu      sync.Mutex
		written = map[string]time.Time{} // attacker address → when its 10th line was written
		lat     []time.Duration
	)
	slack.onAccept = func(p page) {
		mu.Lock()
		defer mu.Unlock()
		for ip, at := range written {
			if containsIP(p.text, ip) {
				lat = append(lat, time.Since(at))
				delete(written, ip)
				return
			}
		}
	}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(logs, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lw := &loadWriter{run: run, f: f, w: bufio.NewWriterSize(f, 1<<20)}
	pl := startPipeline(t, pipelineSpec{
		run: run, dir: filepath.Join(dir, "pipeline"), brokers: brokers, osURL: osURL, slackURL: slack.srv.GetAPIURL(),
		logGlobs: []fileSource{{name: "load", source: "nginx", paths: []string{filepath.Join(logs, "*.log")}}},
		stages:   [][]string{{"collect"}, {"normalize"}, {"detect"}, {"detect"}, {"index"}, {"notify"}},
	})
	// Warm up: the first documents create the index and its template.
	lw.line("10.30.0.1", 200, time.Now())
	_ = lw.w.Flush()
	testenv.WaitFor(t, "the first document", 2*time.Minute, func() bool { return es.count(ctx, run+"-events") >= 1 })

	var out strings.Builder
	fmt.Fprintf(&out, "\n| offered lines/s | written | indexed/s (sustained) | drain after step | alert p50 | alert p99 | alerts | lag |\n|---|---|---|---|---|---|---|---|\n")
	var best float64
	attack := 0
	for _, rs := range strings.Split(*ratesFlag, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(rs))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		lat = nil
		mu.Unlock()
		before := es.count(ctx, run+"-events")
		start := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		budget, n := 0.0, 0
		nextAttack := start.Add(500 * time.Millisecond)
		for now := range tick.C {
			if now.Sub(start) >= *stepFlag {
				break
			}
			budget += float64(rate) / 100
			for ; budget >= 1; budget-- {
				lw.line(fmt.Sprintf("10.30.%d.%d", n%50, n%200+1), 200, now)
				n++
			}
			if now.After(nextAttack) {
				// A brute force of 10 refused requests in one write.
				attack++
				ip := fmt.Sprintf("198.18.%d.%d", attack/250, attack%250+1)
				for range 10 {
					lw.line(ip, 401, now)
					n++
				}
				_ = lw.w.Flush()
				mu.Lock()
				written[ip] = time.Now()
				mu.Unlock()
				nextAttack = now.Add(time.Second)
			}
			_ = lw.w.Flush()
		}
		tick.Stop()
		writeEnd := time.Now()
		want := before + n
		var doneAt time.Time
		deadline := writeEnd.Add(3 * time.Minute)
		// No forced refresh while polling: a _refresh every 250 ms makes
		// the node cut a segment each time, which the bare loader below
		// does not pay. Both sides are timed until their documents are
		// visible through the node's own periodic refresh.
		for time.Now().Before(deadline) {
			stopIfInterrupted(t, ctx)
			if es.count(ctx, run+"-events") >= want {
				doneAt = time.Now()
				break
			}
			pause(ctx, 250*time.Millisecond)
		}
		if doneAt.IsZero() {
			t.Errorf("rate %d: %d of %d documents indexed after 3m", rate, es.count(ctx, run+"-events")-before, n)
			doneAt = time.Now()
		}
		pause(ctx, 3*time.Second) // the last pages of the step
		sustained := float64(n) / doneAt.Sub(start).Seconds()
		best = max(best, sustained)
		drain := doneAt.Sub(writeEnd)
		lagGrows := "steady"
		if drain > 5*time.Second || sustained < 0.9*float64(rate) {
			lagGrows = "grows"
		}
		mu.Lock()
		l := append([]time.Duration(nil), lat...)
		mu.Unlock()
		fmt.Fprintf(&out, "| %d | %d | %.0f | %.1fs | %s | %s | %d | %s |\n", rate, n, sustained, drain.Seconds(),
			percentile(l, 0.5).Round(time.Millisecond), percentile(l, 0.99).Round(time.Millisecond), len(l), lagGrows)
		t.Logf("rate %d: %d lines, %.0f indexed/s, drain %.1fs, %d alerts", rate, n, sustained, drain.Seconds(), len(l))
	}

	// The bare loader: the same documents, read back from the index,
	// pre-encoded as _bulk bodies of 1000 creates and sent by two workers
	// (trailwatch's indexer default) to the same node.
	var ids []string
	var docs []json.RawMessage
	if err := es.scan(ctx, run+"-events", func(id string, src json.RawMessage) {
		ids = append(ids, id)
		docs = append(docs, append(json.RawMessage(nil), src...))
	}); err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatalf("bare loader: no documents to load from %s-events", run)
	}
	var bodies [][]byte
	for i := 0; i < len(docs); i += 1000 {
		j := min(i+1000, len(docs))
		bodies = append(bodies, bulkBody(run+"-bare", ids[i:j], docs[i:j]))
	}
	_, _, _ = es.do(ctx, "PUT", "/"+run+"-bare", "application/json", []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0}}`))
	work := make(chan []byte)
	var wg sync.WaitGroup
	var bulkErr error
	var errMu sync.Mutex
	bstart := time.Now()
	for range 2 {
		wg.Go(func() {
			for b := range work {
				if err := es.bulk(ctx, b); err != nil {
					errMu.Lock()
					bulkErr = err
					errMu.Unlock()
				}
			}
		})
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	for deadline := time.Now().Add(3 * time.Minute); es.count(ctx, run+"-bare") < len(docs); pause(ctx, 250*time.Millisecond) {
		stopIfInterrupted(t, ctx)
		if time.Now().After(deadline) {
			t.Fatalf("bare loader: %d of %d documents visible after 3m", es.count(ctx, run+"-bare"), len(docs))
		}
	}
	bare := float64(len(docs)) / time.Since(bstart).Seconds()
	if bulkErr != nil {
		t.Errorf("bare loader: %v", bulkErr)
	}
	fmt.Fprintf(&out, "\nbare bulk loader: %d documents in %d bulk requests, %.0f docs/s; trailwatch's best sustained rate %.0f docs/s = %.2f of it\n",
		len(docs), len(bodies), bare, best, best/bare)

	// Without the index: a fresh run whose file holds every line before the
	// processes start; the rate is lines over the time from the first raw
	// record to the last enriched one. The measured pipeline and the
	// node's indices go first: a node still merging the segments just
	// written, and idle stages still polling, would take CPU from it.
	for _, p := range pl.procs {
		p.stop(10 * time.Second)
	}
	if code, body, err := es.do(ctx, "DELETE", "/"+run+"-events,"+run+"-alerts,"+run+"-bare?ignore_unavailable=true", "", nil); err != nil || code != 200 {
		t.Logf("deleting the load indices: %d %s %v", code, body, err)
	}
	out.WriteString(measureNoIndex(t, ctx, brokers, filepath.Join(dir, "noindex")))
	t.Log(out.String())
	appendReport(out.String())
}

// TestLoadNoIndex is the without-index measurement of TestLoad alone
// (scripts/soak.sh noindex), for working on the pipeline's CPU cost.
func TestLoadNoIndex(t *testing.T) {
	out := measureNoIndex(t, interruptible(t), testenv.Kafka(t), t.TempDir())
	t.Log(out)
	appendReport(out)
}

// measureNoIndex warms the broker, then runs -noindex-runs measured passes
// without the index and returns their reports and median rate: on a
// machine shared with other work one run can land in a busy minute.
func measureNoIndex(t *testing.T, ctx context.Context, brokers []string, dir string) string {
	warmBroker(t, ctx, brokers)
	var b strings.Builder
	var rates []float64
	for i := 1; i <= max(*noIndexRuns, 1); i++ {
		res := noIndex(t, ctx, brokers, filepath.Join(dir, fmt.Sprint(i)), *noIndexLines)
		b.WriteString(res.report)
		if res.rate > 0 {
			rates = append(rates, res.rate)
		}
	}
	if len(rates) > 1 {
		slices.Sort(rates)
		m := rates[len(rates)/2]
		if len(rates)%2 == 0 {
			m = (m + rates[len(rates)/2-1]) / 2
		}
		fmt.Fprintf(&b, "without index, median of %d runs: %.0f events/s\n", len(rates), m)
	}
	return b.String()
}

// warmBroker runs unreported without-index passes, each of as many lines
// as the measurement (-noindex-warmup), until the broker's CPU per event
// stops falling (a pass within 15 % of the one before), at most
// -noindex-warmups of them. A broker whose JVM has just started costs
// several times the CPU per event of a warm one, and its JIT keeps
// compiling for millions of events (docs/benchmarks.md): the measurement
// is of the pipeline, not of the broker's warm-up. Passes of equal size
// compare like with like: a pass's fixed costs (topics, groups, process
// start) weigh more per event in a short one.
func warmBroker(t *testing.T, ctx context.Context, brokers []string) {
	lines := *noIndexWarm
	if lines <= 0 {
		lines = *noIndexLines
	}
	prev := 0.0
	for i := 1; i <= *noIndexWarms; i++ {
		res := noIndex(t, ctx, brokers, t.TempDir(), lines)
		t.Logf("warm-up %d: %s", i, res.report)
		if res.brokerUS <= 0 || (prev > 0 && res.brokerUS >= 0.85*prev) {
			return
		}
		prev = res.brokerUS
	}
}

// noIndexResult is one run without the index: its report line, events per
// second and the broker's CPU per event in µs (0 when unknown).
type noIndexResult struct {
	report         string
	rate, brokerUS float64
}

// noIndex runs lines through the pipeline without the index.
func noIndex(t *testing.T, ctx context.Context, brokers []string, dir string, lines int) noIndexResult {
	run := fmt.Sprintf("noidx%d", time.Now().UnixNano())
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(logs, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	lw := &loadWriter{run: run, f: f, w: bufio.NewWriterSize(f, 1<<20)}
	now := time.Now()
	for i := range lines {
		lw.line(fmt.Sprintf("10.40.%d.%d", i%100, i%250+1), 200, now)
	}
	_ = lw.w.Flush()
	f.Close()
	// The services' CPU over the same span: the broker's is part of the
	// pipeline's cost; OpenSearch's should be near zero (it is not used),
	// and shows when it was not.
	services := []string{"kafka", "opensearch", "opensearch-secure"}
	svcFrom := make([]time.Duration, len(services))
	for i, name := range services {
		svcFrom[i], _ = pidCPU(servicePID(name))
	}
	pl := startPipeline(t, pipelineSpec{
		run: run, dir: filepath.Join(dir, "pipeline"), brokers: brokers, indexOff: true,
		logGlobs: []fileSource{{name: "load", source: "nginx", paths: []string{filepath.Join(logs, "*.log")}}},
		stages:   [][]string{{"collect"}, {"normalize"}, {"detect"}, {"detect"}, {"notify"}},
	})
	var first, last time.Time
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		stopIfInterrupted(t, ctx)
		raw, _ := endOffsetsSum(ctx, brokers, run+".raw")
		if raw > 0 && first.IsZero() {
			first = time.Now()
		}
		enr, _ := endOffsetsSum(ctx, brokers, run+".enriched")
		if enr >= int64(lines) {
			last = time.Now()
			break
		}
		pause(ctx, 100*time.Millisecond)
	}
	if last.IsZero() {
		t.Errorf("without index: the enriched topic did not reach %d records in 5m", lines)
		return noIndexResult{report: "\nwithout index: did not finish\n"}
	}
	// CPU per event: on a machine shared with other work the rate varies
	// run to run, the CPU each process spent much less.
	var parts []string
	var total time.Duration
	for _, p := range pl.procs {
		d, err := p.cpu()
		if err != nil {
			t.Errorf("CPU time of %s: %v", p.name, err)
			continue
		}
		total += d
		parts = append(parts, fmt.Sprintf("%s %.2fs", p.name, d.Seconds()))
	}
	svcTo := make([]time.Duration, len(services))
	svcErr := make([]error, len(services))
	for i, name := range services {
		svcTo[i], svcErr[i] = pidCPU(servicePID(name))
	}
	// Stop them now: idle, they still poll, and a later measurement in
	// the same test would share the machine with them.
	for _, p := range pl.procs {
		p.stop(10 * time.Second)
	}
	var svc []string
	var brokerPerEvent float64
	for i, name := range services {
		if svcErr[i] != nil || svcFrom[i] == 0 {
			continue
		}
		d := svcTo[i] - svcFrom[i]
		perEvent := float64(d.Microseconds()) / float64(lines)
		if i == 0 {
			name, brokerPerEvent = "broker", perEvent
		}
		svc = append(svc, fmt.Sprintf("%s %.2fs (%.1f µs/event)", name, d.Seconds(), perEvent))
	}
	rate := float64(lines) / last.Sub(first).Seconds()
	return noIndexResult{rate: rate, brokerUS: brokerPerEvent, report: fmt.Sprintf("\nwithout index (file → Kafka → normalize → enrich → detect, 5 processes): %d lines in %.1fs = %.0f events/s; "+
		"CPU: trailwatch %.2fs (%.1f µs/event: %s), %s\n",
		lines, last.Sub(first).Seconds(), rate,
		total.Seconds(), float64(total.Microseconds())/float64(lines), strings.Join(parts, ", "), strings.Join(svc, ", "))}
}

// servicePID is the process id of a service of scripts/services.sh (its
// TW_RUN: kafka, opensearch, opensearch-secure), or 0 when it cannot be
// read.
func servicePID(name string) int {
	run := os.Getenv("TW_RUN")
	if *servicesRun != "" {
		run = *servicesRun
	}
	if run == "" {
		run = "/tmp/trailwatch-services"
	}
	_, pid, _ := readServicePID(run, name)
	return pid
}
