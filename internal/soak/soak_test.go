//go:build soak

package soak

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/testenv"
)

var (
	profileFlag = flag.String("profile", "short", "soak profile: short (CI, a few minutes) or full")
	// restartServices lets the full profile restart the Kafka broker and
	// stop OpenSearch: only safe on services nobody else is using, so it
	// names their scripts' run directory (TW_RUN of scripts/services.sh).
	servicesRun = flag.String("services-run", "", "TW_RUN directory of Kafka/OpenSearch this run may restart (full profile)")
	reportFile  = flag.String("report", "", "append the result table to this markdown file")
	// cpuProfileDir: each stage process writes a CPU profile there, named
	// after the run and the process (go tool pprof BINARY FILE).
	cpuProfileDir = flag.String("cpuprofile-dir", "", "write each stage process's CPU profile to this directory")
)

// profile is the shape of one soak run.
type profile struct {
	name        string
	duration    time.Duration // traffic
	rate        int           // requests per second
	attackEvery time.Duration
}

var profiles = map[string]profile{
	"short": {name: "short", duration: 100 * time.Second, rate: 150, attackEvery: 6 * time.Second},
	"full":  {name: "full", duration: 8 * time.Minute, rate: 300, attackEvery: 10 * time.Second},
}

// TestSoak runs the whole proof: gateways, pipeline processes, traffic with
// attacks, faults on a schedule, then the verifier. It fails on any
// duplicate, missing or invented document, any attack not paged exactly
// once, any benign page, any malformed line outside the DLQ, any canary
// seen, or a pipeline that no longer processes a fresh request.
func TestSoak(t *testing.T) {
	pr, ok := profiles[*profileFlag]
	if !ok {
		t.Fatalf("-profile %q: want short or full", *profileFlag)
	}
	brokers, osURL := testenv.Kafka(t), testenv.OpenSearch(t)
	ctx := interruptible(t)
	dir := t.TempDir()
	run := fmt.Sprintf("soak%d", time.Now().UnixNano())
	t.Logf("run %s, profile %s, dir %s", run, pr.name, dir)

	gw := startGateways(t, filepath.Join(dir, "gw"))
	slack := startSlack(t)
	feed := newS3Feed(t, run)
	spec := pipelineSpec{
		run: run, dir: filepath.Join(dir, "pipeline"), brokers: brokers, osURL: osURL, slackURL: slack.srv.GetAPIURL(),
		logGlobs: []fileSource{
			{name: "nginx", source: "nginx", paths: []string{gw.nginxLog + "*"}},
			{name: "haproxy", source: "haproxy", paths: []string{gw.haproxyLog}},
		},
		stages:       [][]string{{"collect"}, {"normalize"}, {"detect"}, {"detect"}, {"index"}, {"notify"}},
		tmpfsCollect: true,
		s3:           feed.collectorYAML(),
	}
	pl := startPipeline(t, spec)
	es := search{osURL}

	gen := newGenerator(run, map[string]string{"nginx": gw.nginxURL, "haproxy": gw.haproxyURL}, pr.rate, pr.attackEvery)
	var (
		log                      faultLog
		malformed, renames, cuts int
		randomKilled             string
	)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))
	collector, det := pl.byStage("collect")[0], pl.byStage("detect")
	faults := []fault{
		{at: 10 * time.Second, name: "SIGKILL collector, restart after 2s", do: killRestart(collector, 2*time.Second)},
		{at: 18 * time.Second, name: "malformed burst of 40 lines", do: malformedBurst(gw, run, 40, &malformed)},
		{at: 22 * time.Second, name: "SIGKILL detect #1, restart after 3s", do: killRestart(det[0], 3*time.Second)},
		{at: 30 * time.Second, name: "rename+create rotation x3 (nginx, SIGUSR1)", do: rotations(3, time.Second, gw.rotateRename, &renames)},
		{at: 36 * time.Second, name: "copytruncate x2 (rsyslog's HAProxy file)", do: rotations(2, 2*time.Second, gw.rotateCopyTruncate, &cuts)},
		{at: 42 * time.Second, name: "Slack answers 429 for 8s", do: slackFault(slack, http.StatusTooManyRequests, 8*time.Second)},
		{at: 52 * time.Second, name: "Slack answers 500 for 8s", do: slackFault(slack, http.StatusInternalServerError, 8*time.Second)},
		{at: 62 * time.Second, name: "SIGKILL detect #2, restart after 2s", do: killRestart(det[1], 2*time.Second)},
		{at: 68 * time.Second, name: "SIGKILL random stage process, restart after 2s", do: killRandom(pl, 2*time.Second, rng, &randomKilled)},
	}
	if pl.collectTmpfs {
		faults = append(faults, fault{at: 74 * time.Second, name: "collector data dir full (tmpfs) for 10s", do: diskFull(pl.collectData, 10*time.Second)})
	} else {
		t.Logf("disk-full fault not injected: %v", pl.tmpfsErr)
	}
	faults = append(faults, fault{at: 88 * time.Second, name: "malformed burst of 40 lines", do: malformedBurst(gw, run, 40, &malformed)})
	if pr.name == "full" {
		faults = append(faults, fullFaults(t, pl, gw, slack, es, run, &malformed, &renames, &cuts)...)
	}

	sort.Slice(faults, func(i, j int) bool { return faults[i].at < faults[j].at })
	start := time.Now()
	fctx, stopFaults := context.WithCancel(ctx)
	faultsDone := make(chan struct{})
	go func() { defer close(faultsDone); runFaults(fctx, start, faults, &log) }()
	feedDone := make(chan struct{})
	go func() { defer close(feedDone); feed.runFor(ctx, pr.duration, 3*time.Second) }()
	gen.runFor(ctx, pr.duration)
	<-feedDone
	<-faultsDone
	stopFaults()
	t.Logf("traffic done after %s; %d requests, random kill hit %s", time.Since(start).Round(time.Second), len(gen.sent()), randomKilled)
	stopIfInterrupted(t, ctx)

	var rep report
	rep.Fresh = freshRequest(ctx, gen, es, run, 2*time.Minute)
	if strings.HasPrefix(rep.Fresh, "FAILED") {
		rep.problem("fresh request after the faults: %s", rep.Fresh)
	}
	took, err := settle(ctx, brokers, run, 4*time.Minute)
	if err != nil {
		rep.problem("%v", err)
	}
	t.Logf("pipeline settled %s after the traffic", took.Round(time.Second))
	if d := pl.dead(); len(d) > 0 {
		rep.problem("stage processes exited on their own: %s", strings.Join(d, ", "))
	}
	rep.Faults = log.done
	for _, f := range log.done {
		if strings.Contains(f, "FAILED") {
			rep.problem("fault %s", f)
		}
	}
	v := &verifier{run: run, brokers: brokers, es: es, gw: gw, gen: gen, slack: slack, pipeline: pl, s3: feed}
	v.verify(ctx, &rep)

	var b strings.Builder
	fmt.Fprintf(&b, "\nsoak profile %s, run %s, %s of traffic at %d req/s, total %s\n\n", pr.name, run, pr.duration, pr.rate, time.Since(start).Round(time.Second))
	rep.table(&b)
	t.Log(b.String())
	appendReport(b.String())
	for _, p := range rep.Problems {
		t.Error(p)
	}
	if t.Failed() {
		for _, p := range pl.procs {
			data, _ := os.ReadFile(p.stderr)
			t.Logf("--- %s (restarts %d), last lines:\n%s", p.name, p.restarts, tail(string(data), 15))
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// fullFaults are the full profile's additions, on top of the short
// schedule repeated every two minutes: the broker restarted and OpenSearch
// stopped for a minute — only with -services-run naming services this run
// owns, since both would break anyone else's tests on the shared services.
func fullFaults(t *testing.T, pl *pipeline, gw *gateways, slack *slackServer, es search, run string, malformed, renames, cuts *int) []fault {
	var out []fault
	det := pl.byStage("detect")
	for k := 1; k <= 3; k++ {
		base := time.Duration(k) * 2 * time.Minute
		out = append(out,
			fault{at: base + 0*time.Second, name: "SIGKILL collector, restart after 2s", do: killRestart(pl.byStage("collect")[0], 2*time.Second)},
			fault{at: base + 5*time.Second, name: "SIGKILL normalize, restart after 2s", do: killRestart(pl.byStage("normalize")[0], 2*time.Second)},
			fault{at: base + 10*time.Second, name: "SIGKILL detect #1 and #2 together, restart after 3s", do: func(ctx context.Context) error {
				if err := det[0].kill(); err != nil {
					return err
				}
				if err := killRestart(det[1], 3*time.Second)(ctx); err != nil {
					return err
				}
				return det[0].restart()
			}},
			fault{at: base + 15*time.Second, name: "SIGKILL index, restart after 2s", do: killRestart(pl.byStage("index")[0], 2*time.Second)},
			fault{at: base + 20*time.Second, name: "SIGKILL notify, restart after 2s", do: killRestart(pl.byStage("notify")[0], 2*time.Second)},
			fault{at: base + 25*time.Second, name: "rename+create rotation x10 at full speed", do: rotations(10, 200*time.Millisecond, gw.rotateRename, renames)},
			fault{at: base + 30*time.Second, name: "copytruncate x3", do: rotations(3, time.Second, gw.rotateCopyTruncate, cuts)},
			fault{at: base + 35*time.Second, name: "malformed burst of 200 lines", do: malformedBurst(gw, run, 200, malformed)},
			fault{at: base + 40*time.Second, name: "Slack answers 429 for 15s", do: slackFault(slack, http.StatusTooManyRequests, 15*time.Second)},
			fault{at: base + 56*time.Second, name: "Slack answers 500 for 15s", do: slackFault(slack, http.StatusInternalServerError, 15*time.Second)},
		)
		if pl.collectTmpfs {
			out = append(out, fault{at: base + 75*time.Second, name: "collector data dir full (tmpfs) for 20s", do: diskFull(pl.collectData, 20*time.Second)})
		}
	}
	if *servicesRun == "" {
		t.Logf("broker restart and OpenSearch stop not injected: pass -services-run with the TW_RUN of services only this run uses")
		return out
	}
	// Each readiness probe is bounded: a client that retries against a
	// broker still starting must not hold the fault past its deadline.
	kafkaUp := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := endOffsetsSum(ctx, pl.brokers, run+".raw")
		return err == nil
	}
	osUp := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return es.count(ctx, run+"-events") >= 0
	}
	// Outages: the schedule goes on while the service is down, so the
	// stage kills planned at 240–260 s hit the pipeline while OpenSearch
	// is away (index restarted with its sink down).
	out = append(out,
		fault{at: 100 * time.Second, name: "Kafka broker restarted (SIGTERM, 10s down, same data)",
			do: restartService(*servicesRun, "kafka", 10*time.Second, kafkaUp), outage: true},
		fault{at: 220 * time.Second, name: "OpenSearch stopped for 60s",
			do: restartService(*servicesRun, "opensearch", 60*time.Second, osUp), outage: true},
	)
	return out
}

// appendReport appends a load result to the -report file, if one is set.
func appendReport(text string) {
	if *reportFile == "" {
		return
	}
	if f, err := os.OpenFile(*reportFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		_, _ = f.WriteString(text)
		f.Close()
	}
}

// interrupted is closed on the first SIGINT or SIGTERM (TestMain).
var interrupted = make(chan struct{})

// TestMain turns Ctrl-C into a cancelled test: go test's default is to
// kill the binary without running cleanups, which left the gateways'
// nginx, HAProxy and rsyslogd running and the collector's tmpfs mounted
// under /tmp/TestSoak*. The test's context ends, the test fails, its
// cleanups stop every process it started and unmount what it mounted. A
// second signal kills at once.
func TestMain(m *testing.M) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "soak: interrupted; stopping the processes and cleaning up (again to kill at once)")
		close(interrupted)
		<-sigs
		os.Exit(130)
	}()
	os.Exit(m.Run())
}

// interruptible returns the test's context, also cancelled on interrupt;
// an interrupted test fails.
func interruptible(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		select {
		case <-interrupted:
			cancel()
		case <-ctx.Done():
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-interrupted:
			t.Error("interrupted")
		default:
		}
	})
	return ctx
}

// stopIfInterrupted ends the test (its cleanups stop everything it
// started) once ctx from interruptible is cancelled.
func stopIfInterrupted(t *testing.T, ctx context.Context) {
	t.Helper()
	if ctx.Err() != nil {
		t.Fatal("interrupted")
	}
}
