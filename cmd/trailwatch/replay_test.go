package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// replaySetup writes a config for the real Kafka broker and OpenSearch
// node with names unique to the test, running the repository's rules plus
// the repartitioned ip-burst rule. No Slack: a replay that paged would
// fail to.
func replaySetup(t *testing.T) (run, cfgPath, logPath string, brokers []string, osURL string) {
	t.Helper()
	brokers = testenv.Kafka(t)
	osURL = testenv.OpenSearch(t)
	dir := t.TempDir()
	ruleDir := filepath.Join(dir, "rules")
	logPath = filepath.Join(dir, "logs", "access.log")
	for _, d := range []string{ruleDir, filepath.Dir(logPath)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ruleDir, "ip-burst.yaml"), []byte(ipBurstRule), 0o600); err != nil {
		t.Fatal(err)
	}
	repoRules, _ := filepath.Abs("../../rules")
	run = fmt.Sprintf("rp%d", time.Now().UnixNano())
	cfgPath = filepath.Join(dir, "trailwatch.yaml")
	cfg := fmt.Sprintf(`
data_dir: %[1]s/data
http: {listen: ""}
log: {level: info}
kafka:
  brokers: [%[2]s]
  group_prefix: %[3]s
  partitions: 3
  session_timeout: 6s
  topics: {raw: %[3]s.raw, events: %[3]s.events, enriched: %[3]s.enriched, alerts: %[3]s.alerts, dlq: %[3]s.dlq, notified: %[3]s.notified,
           repartition: %[3]s.repartition, state: %[3]s.state, keyed_state: %[3]s.state.keyed}
collect:
  files:
    - {name: rp, paths: ["%[1]s/logs/*.log"], source: nginx, poll_interval: 50ms, batch_lines: 50}
detect:
  rules: [%[4]s, %[5]s]
  health: {enabled: false}
index:
  type: elasticsearch
  elasticsearch: {addresses: [%[6]s], flavor: opensearch, events_index: %[3]s-events, alerts_index: %[3]s-alerts}
notify: {console: false}
`, dir, strings.Join(brokers, ","), run, repoRules, ruleDir, osURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return run, cfgPath, logPath, brokers, osURL
}

// alertIDs returns "rule/id" of NDJSON alerts, sorted.
func alertIDs(t *testing.T, ndjson string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(ndjson), "\n") {
		if l == "" {
			continue
		}
		var a schema.Alert
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("not an alert: %q", l)
		}
		out = append(out, a.Rule.ID+"/"+a.Event.ID)
	}
	slices.Sort(out)
	return out
}

// TestReplayMatchesTheLivePipeline runs the pipeline (`trailwatch run`, a
// separate process) over a brute force and a burst spread over every
// partition (so through the repartition topic), then replays the raw
// topic twice: both replays raise the same alerts, with the same ids, as
// the live pipeline did, and write them to the run's own topic and index.
func TestReplayMatchesTheLivePipeline(t *testing.T) {
	run, cfgPath, logPath, brokers, osURL := replaySetup(t)
	live := startChild(t, "run -c "+cfgPath)
	appendLines(t, logPath, e2eLines(0, 300))
	appendLines(t, logPath, ipBurstLines(0, 20))
	adm := kadm.NewClient(mustClient(t, brokers))
	waitFor(t, "every line collected into the raw topic", 90*time.Second, func() bool {
		live.alive(t)
		ends, err := adm.ListEndOffsets(t.Context(), run+".raw")
		if err != nil {
			return false
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n == 300+60
	})
	waitCaughtUp(t, brokers, run+"-normalize", run+".raw")
	waitCaughtUp(t, brokers, run+"-detect", run+".events")
	waitCaughtUp(t, brokers, run+"-detect-keyed", run+".repartition")

	var liveAlerts []string
	scanTopics(t, brokers, []string{run + ".alerts"}, func(r *kgo.Record) {
		var a schema.Alert
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		liveAlerts = append(liveAlerts, a.Rule.ID+"/"+a.Event.ID)
	})
	slices.Sort(liveAlerts)
	for _, want := range []string{"auth-bruteforce/", "e2e-ip-burst/"} {
		if !slices.ContainsFunc(liveAlerts, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Fatalf("the live pipeline raised no %s alert: %v", want, liveAlerts)
		}
	}

	replayOnce := func(runID string) []string {
		code, out, errs := runCmd(t, t.Context(), "", "replay", "-c", cfgPath, "--from", "1h", "--run-id", runID, "--output", "-", "-q")
		if code != 0 {
			t.Fatalf("replay exit %d: %s", code, errs)
		}
		if !strings.Contains(errs, "replay "+runID+": ") || !strings.Contains(errs, "alerts written to topic "+run+".alerts.replay."+runID+", index "+run+"-alerts-replay-"+runID) {
			t.Errorf("summary: %s", errs)
		}
		return alertIDs(t, out)
	}
	first, second := replayOnce("first"), replayOnce("second")
	if !slices.Equal(first, second) {
		t.Errorf("two replays of one range differ:\n%v\n%v", first, second)
	}
	if !slices.Equal(first, liveAlerts) {
		t.Errorf("replay alerts differ from the live pipeline's:\nreplay %v\nlive   %v", first, liveAlerts)
	}

	// The run's own topic and index hold the alerts, tagged with the run.
	n := 0
	scanTopics(t, brokers, []string{run + ".alerts.replay.first"}, func(r *kgo.Record) {
		var a schema.Alert
		if err := json.Unmarshal(r.Value, &a); err != nil || a.Trailwatch.RunID != "first" {
			t.Errorf("replay topic record not tagged with the run: %s", r.Value)
		}
		n++
	})
	if n != len(first) {
		t.Errorf("%d alerts in the run's topic, want %d", n, len(first))
	}
	es := osClient{osURL}
	idx := run + "-alerts-replay-first"
	es.refresh(t, idx)
	if total, _ := es.search(t, idx, `{"term":{"trailwatch.run_id":"first"}}`, 0); total != len(first) {
		t.Errorf("%d alerts in index %s tagged with the run, want %d", total, idx, len(first))
	}
}

func TestReplayRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "no --from", args: []string{"replay"}, wantCode: 2, wantErr: "--from: required"},
		{name: "bad --from", args: []string{"replay", "--from", "yesterday"}, wantCode: 2, wantErr: `"yesterday" is not RFC 3339`},
		{name: "filter refused with expr's reason", args: []string{"replay", "--from", "1h", "--rules", "../../rules", "--filter", `source.ipp == "1.2.3.4"`}, wantCode: 1, wantErr: "filter"},
		{name: "unknown topic kind", args: []string{"replay", "--from", "1h", "--rules", "../../rules", "--topic", "enriched"}, wantCode: 1, wantErr: `--topic: "enriched" is not raw or events`},
		{name: "investigate needs one actor", args: []string{"investigate", "--ip", "1.2.3.4", "--user", "bob"}, wantCode: 2, wantErr: "exactly one of"},
		{name: "investigate needs elasticsearch", args: []string{"investigate", "--ip", "1.2.3.4"}, wantCode: 1, wantErr: "index.type is \"file\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(dir)
			args := tc.args
			for i, a := range args {
				if a == "../../rules" {
					abs, _ := filepath.Abs(filepath.Join(wd0, "../../rules"))
					args[i] = abs
				}
			}
			code, _, errs := runCmd(t, t.Context(), "", args...)
			if code != tc.wantCode || !strings.Contains(errs, tc.wantErr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.wantCode, errs, tc.wantErr)
			}
		})
	}
}

// wd0 is the package directory, where the tests start.
var wd0, _ = os.Getwd()

func TestParseReplayTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"now", now},
		{"36h", now.Add(-36 * time.Hour)},
		{"2026-11-20", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)},
		{"2026-11-20T12:30", time.Date(2026, 11, 20, 12, 30, 0, 0, time.UTC)},
		{"2026-11-20T12:30:05+01:00", time.Date(2026, 11, 20, 11, 30, 5, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseReplayTime(tc.in, now)
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
	if _, err := parseReplayTime("-2h", now); err == nil {
		t.Error("a negative duration (the future) was accepted")
	}
}
