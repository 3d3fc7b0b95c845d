package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/outputs/route"
	"github.com/trailwatch/trailwatch/outputs/slack"
)

func runCmd(t *testing.T, ctx context.Context, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageAndUnknownCommand(t *testing.T) {
	code, out, _ := runCmd(t, t.Context(), "", "--help")
	if code != 0 || !strings.Contains(out, "run") || !strings.Contains(out, "parse") {
		t.Errorf("--help: code %d, output %q", code, out)
	}
	code, _, errs := runCmd(t, t.Context(), "", "frobnicate")
	if code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: code %d, stderr %q", code, errs)
	}
	for _, c := range []string{"run", "parse", "version"} {
		code, out, _ := runCmd(t, t.Context(), "", c, "--help")
		if code != 0 || !strings.Contains(out, "Usage: trailwatch "+c) {
			t.Errorf("%s --help: code %d, output %q", c, code, out)
		}
	}
}

func TestParseNginx(t *testing.T) {
	in := `203.0.113.9 - - [20/Nov/2026:09:03:01 +0000] "POST /api/login HTTP/1.1" 401 53 "-" "curl/8"
not a log line
10.0.0.1 - alice [20/Nov/2026:09:03:02 +0000] "GET /api/v1/orders?id=1 HTTP/2.0" 200 912 "-" "okhttp/4"
`
	code, out, errs := runCmd(t, t.Context(), in, "parse", "--source", "nginx")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "line 2:") || !strings.Contains(errs, "parsed 3 lines: 2 events, 1 unparseable") {
		t.Errorf("stderr does not report the bad line and the totals: %q", errs)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var got []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line is not JSON: %v", err)
		}
		got = append(got, m)
	}
	if len(got) != 2 {
		t.Fatalf("got %d events, want 2", len(got))
	}
	if got[1]["user"].(map[string]any)["name"] != "alice" || got[0]["source"].(map[string]any)["ip"] != "203.0.113.9" {
		t.Errorf("events lack ECS fields: %v", got)
	}
}

// TestParseEverySource runs `trailwatch parse` on each source's golden
// input: every built-in source works from the command line.
func TestParseEverySource(t *testing.T) {
	for _, src := range normalize.Sources() {
		t.Run(src, func(t *testing.T) {
			args := []string{"parse", "--source", src}
			var input string
			switch src {
			case "regex":
				args = append(args, "--pattern", `^(?P<ip>\S+) (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d+)$`,
					"--fields", "ip=source.ip,method=http.request.method,path=url.path,status=http.response.status_code")
				input = "203.0.113.9 GET /api/x 401\n"
			case "cloudtrail":
				b, err := os.ReadFile("../../normalize/testdata/cloudtrail/s3-file.json")
				if err != nil {
					t.Fatal(err)
				}
				args, input = append(args, "--whole"), string(b)
			default:
				files, _ := filepath.Glob("../../normalize/testdata/" + src + "/*")
				for _, f := range files {
					if (strings.HasSuffix(f, ".log") || strings.HasSuffix(f, ".ndjson")) && !strings.Contains(f, "malformed") {
						if _, err := os.Stat(strings.TrimSuffix(strings.TrimSuffix(f, ".log"), ".ndjson") + ".format"); err == nil {
							continue // needs its format; the default-format file is enough here
						}
						b, err := os.ReadFile(f)
						if err != nil {
							t.Fatal(err)
						}
						input = string(b)
						break
					}
				}
			}
			if input == "" {
				t.Fatalf("no sample input for %s", src)
			}
			code, out, errs := runCmd(t, t.Context(), input, args...)
			if code != 0 || strings.Count(out, "\n") == 0 {
				t.Fatalf("exit %d, %d events; stderr: %s", code, strings.Count(out, "\n"), errs)
			}
			if !strings.Contains(out, `"trailwatch":{`) || !strings.Contains(out, `"@timestamp":`) {
				t.Errorf("output is not ECS events: %.300s", out)
			}
		})
	}
}

func TestParseRequiresKnownSource(t *testing.T) {
	if code, _, errs := runCmd(t, t.Context(), "", "parse"); code != 2 || !strings.Contains(errs, "--source is required") {
		t.Errorf("no source: code %d, %q", code, errs)
	}
	if code, _, errs := runCmd(t, t.Context(), "", "parse", "--source", "gopher"); code != 1 || !strings.Contains(errs, "gopher") {
		t.Errorf("unknown source: code %d, %q", code, errs)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want []string
	}{
		{"unknown key", "kafka:\n  brokerz: [x]\n", nil, []string{"kafka.brokerz: unknown key"}},
		{"bad stage and level", "stages: [collect, bogus]\nlog: {level: loud}\n", nil, []string{`stages: unknown stage "bogus"`, "log.level"}},
		{"collector without paths", "collect:\n  files:\n    - {name: x, source: nginx}\n", nil, []string{"collect.files[0].paths: required"}},
		{"unknown source", "collect:\n  files:\n    - {name: x, paths: [a], source: gopher}\n", nil, []string{`collect.files[0].source: normalize: unknown source "gopher"`}},
		{"bad named source", "normalize:\n  sources:\n    edge: {type: nginx, format: weird}\n", nil, []string{"normalize.sources.edge: normalize nginx: log_format: format has no fields"}},
		{"bad index type", "index: {type: mongo}\n", nil, []string{`index.type: "mongo"`}},
		{"bad sasl", "kafka: {brokers: [b:9092], sasl: {mechanism: GSSAPI}}\n", nil, []string{"kafka.sasl.mechanism"}},
		{"env override checked", "", []string{"TRAILWATCH_KAFKA__PARTITIONS=0"}, []string{"kafka.partitions: must be at least 1"}},
		{"elasticsearch needs addresses", "index: {type: elasticsearch, elasticsearch: {addresses: []}}\n", nil, []string{"index.elasticsearch."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = filepath.Join(t.TempDir(), "c.yaml")
				if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := tt.env
			if env == nil {
				env = []string{}
			}
			_, err := loadConfig(path, env, nil)
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDefaultConfigIsEmbeddedAndValid(t *testing.T) {
	c, err := loadConfig("", []string{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Kafka.Brokers) != 0 || c.Index.Type != "file" || !c.Notify.Console || len(c.Stages) != 5 {
		t.Errorf("defaults are not the embedded mode: %+v", c)
	}
	if c.Collect.Files[0].CheckpointFile != filepath.Join("data", "checkpoints", "file-demo.json") {
		t.Errorf("checkpoint default %q", c.Collect.Files[0].CheckpointFile)
	}
}

func TestSecretsNeverEchoedInConfigErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	body := "notify:\n  slack: {token: xoxb-canary-123, channel: ''}\nkafka: {sasl: {mechanism: PLAIN, username: u, password: pw-canary-456}, partitions: 0}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd(t, t.Context(), "", "run", "-c", path)
	if code != 1 || errs == "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, s := range []string{"xoxb-canary-123", "pw-canary-456"} {
		if strings.Contains(errs, s) {
			t.Errorf("secret %q echoed: %s", s, errs)
		}
	}
}

func TestRunRefusesUnwritableDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd(t, t.Context(), "", "run", "--data-dir", filepath.Join(file, "data"), "--http-listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "data_dir") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
		t.Errorf("want one line naming data_dir, exit 1; got %d %q", code, errs)
	}
}

func TestRunRefusesUnreachableBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	t.Setenv("TRAILWATCH_KAFKA__DIAL_TIMEOUT", "1s")
	t.Setenv("TRAILWATCH_KAFKA__STARTUP_WAIT", "2s")
	code, _, errs := runCmd(t, ctx, "", "run", "--data-dir", t.TempDir(), "--brokers", "127.0.0.1:1", "--http-listen", "127.0.0.1:0", "--log-level", "error")
	if code != 1 || !strings.Contains(errs, "127.0.0.1:1 unreachable") {
		t.Errorf("want exit 1 naming the broker; got %d %q", code, errs)
	}
}

// TestEmbeddedDemo is the README's first command, in-process: no flags but
// a temporary data dir, the embedded broker, the demo logs and the shipped
// rules. It must print the scripted attack's alerts and write the NDJSON
// files, then stop cleanly when cancelled.
func TestEmbeddedDemo(t *testing.T) {
	if err := os.Chdir("../.."); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chdir("cmd/trailwatch") })
	data := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	alerts := &lineWatcher{want: map[string]bool{"auth-bruteforce": false, "admin-probe": false, "sensitive-path-success": false}, done: make(chan struct{})}
	codec := make(chan int, 1)
	go func() {
		codec <- run(ctx, []string{"run", "--data-dir", data, "--http-listen", "127.0.0.1:0", "--log-level", "warn"}, strings.NewReader(""), alerts, io.Discard)
	}()
	select {
	case <-alerts.done:
	case code := <-codec:
		t.Fatalf("run exited early with %d", code)
	case <-time.After(60 * time.Second):
		t.Fatalf("alerts seen so far: %v", alerts.snapshot())
	}
	demo, err := os.ReadFile("testdata/demo/access.log")
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Count(demo, []byte("\n"))
	eventsPath := filepath.Join(data, "output", "events.ndjson")
	// The index stage runs beside notify: wait for it to catch up by
	// watching the files it writes (every event, the three alerts), then
	// stop.
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	alertsPath := filepath.Join(data, "output", "alerts.ndjson")
	for {
		b, _ := os.ReadFile(eventsPath)
		a, _ := os.ReadFile(alertsPath)
		got, gotAlerts := bytes.Count(b, []byte("\n")), bytes.Count(a, []byte("\n"))
		if got >= want && gotAlerts >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s events.ndjson has %d lines (the demo log %d), alerts.ndjson %d (want 3)", got, want, gotAlerts)
		}
		<-tick.C
	}
	cancel()
	if code := <-codec; code != 0 {
		t.Errorf("exit %d after cancel, want 0", code)
	}
	events, err := os.ReadFile(eventsPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Count(events, []byte("\n")); got != want {
		t.Errorf("events.ndjson has %d lines, the demo log %d", got, want)
	}
	alertsFile, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	// Threshold alerts' ids depend only on rule, group and window start, so
	// hunting the same file offline raises the same alerts, same ids.
	hunted := huntAlertIDs(t, "rules", "testdata/demo/access.log")
	for _, line := range strings.Split(strings.TrimSpace(string(alertsFile)), "\n") {
		var a struct {
			Event struct{ ID string }
			Rule  struct{ ID string }
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("alerts.ndjson: %v", err)
		}
		if a.Rule.ID == "sensitive-path-success" {
			continue // windowless: its id includes the event id, which includes the file's inode
		}
		if hunted[a.Rule.ID] != a.Event.ID {
			t.Errorf("%s: pipeline alert id %s, hunt %s", a.Rule.ID, a.Event.ID, hunted[a.Rule.ID])
		}
	}
}

// lineWatcher collects console alert lines and closes done once every
// wanted rule id appeared.
type lineWatcher struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	want   map[string]bool
	done   chan struct{}
	closed bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	all := true
	for id := range w.want {
		if strings.Contains(w.buf.String(), " "+id+" ") {
			w.want[id] = true
		}
		all = all && w.want[id]
	}
	if all && !w.closed {
		close(w.done)
		w.closed = true
	}
	return len(p), nil
}

func (w *lineWatcher) snapshot() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestRulesTestAndLint(t *testing.T) {
	code, out, errs := runCmd(t, t.Context(), "", "rules", "test", "../../rules")
	if code != 0 || !strings.Contains(out, " 0 failed") {
		t.Errorf("shipped rules: exit %d\n%s%s", code, out, errs)
	}
	dir := t.TempDir()
	failing := `id: strict
title: Strict
severity: low
where: http.response.status_code == 500
tests:
  - name: expects an alert that never comes
    events: [{http.response.status_code: 200}]
    expect: [{count: 1}]
`
	if err := os.WriteFile(filepath.Join(dir, "strict.yaml"), []byte(failing), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd(t, t.Context(), "", "rules", "test", dir)
	if code != 1 || !strings.Contains(out, "FAIL strict") || !strings.Contains(out, "1 failed") {
		t.Errorf("failing test: exit %d\n%s", code, out)
	}
	if code, out, _ := runCmd(t, t.Context(), "", "rules", "lint", dir); code != 0 || !strings.Contains(out, "1 rules ok") {
		t.Errorf("lint of a valid file: exit %d %s", code, out)
	}
	bad := "id: typo\ntitle: Typo\nseverity: low\nwhere: http.respone.status_code == 500\n"
	if err := os.WriteFile(filepath.Join(dir, "typo.yaml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCmd(t, t.Context(), "", "rules", "lint", dir)
	if code != 1 || !strings.Contains(errs, "typo.yaml:4:") {
		t.Errorf("lint of a bad file: exit %d, want 1 naming typo.yaml:4: %s", code, errs)
	}
}

// TestHuntMatchesThePipeline runs hunt over the demo log: the same three
// alerts the live pipeline raises, with the same deterministic ids.
func TestHuntMatchesThePipeline(t *testing.T) {
	code, out, errs := runCmd(t, t.Context(), "", "hunt", "--source", "nginx", "--rules", "../../rules", "--key-file", filepath.Join(t.TempDir(), "none"), "../../testdata/demo/access.log")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rules := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var a struct {
			Event struct{ ID, Kind string }
			Rule  struct{ ID string }
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("not NDJSON: %q", line)
		}
		if a.Event.Kind != "alert" {
			t.Errorf("event.kind %q", a.Event.Kind)
		}
		rules[a.Rule.ID] = a.Event.ID
	}
	for _, id := range []string{"auth-bruteforce", "admin-probe", "sensitive-path-success"} {
		if rules[id] == "" {
			t.Errorf("hunt raised no %s alert: %v", id, rules)
		}
	}
	if !strings.Contains(errs, "514 lines, 514 events, 0 unparseable, 3 alerts") {
		t.Errorf("summary: %s", errs)
	}
}

// huntAlertIDs runs hunt over the demo log and returns alert id by rule.
func huntAlertIDs(t *testing.T, rulesDir, logPath string) map[string]string {
	t.Helper()
	code, out, errs := runCmd(t, t.Context(), "", "hunt", "--source", "nginx", "--rules", rulesDir, "--key-file", filepath.Join(t.TempDir(), "none"), logPath)
	if code != 0 {
		t.Fatalf("hunt exit %d: %s", code, errs)
	}
	ids := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var a struct {
			Event struct{ ID string }
			Rule  struct{ ID string }
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("not NDJSON: %q", line)
		}
		ids[a.Rule.ID] = a.Event.ID
	}
	return ids
}

func TestRulesImportSigma(t *testing.T) {
	in := t.TempDir()
	good := `title: Path traversal in URI
id: 5b2c8e3e-1111-4a6b-9f00-000000000001
status: test
logsource: {category: webserver}
detection:
  sel:
    cs-uri-query|contains: '../'
  condition: sel
level: high
tags: [attack.t1083]
`
	temporal := `title: Temporal
id: 5b2c8e3e-1111-4a6b-9f00-000000000002
correlation: {type: temporal, rules: [a, b], group-by: [c-ip], timespan: 5m}
level: high
`
	for name, body := range map[string]string{"good.yml": good, "temporal.yml": temporal} {
		if err := os.WriteFile(filepath.Join(in, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "imported")
	code, stdout, errs := runCmd(t, t.Context(), "", "rules", "import-sigma", "--out", out, in)
	if code != 0 || !strings.Contains(stdout, "converted 1 rules") {
		t.Fatalf("exit %d: %s %s", code, stdout, errs)
	}
	if !strings.Contains(errs, "temporal") {
		t.Errorf("the unsupported temporal correlation is not reported: %q", errs)
	}
	if code, stdout, errs := runCmd(t, t.Context(), "", "rules", "lint", out); code != 0 || !strings.Contains(stdout, "1 rules ok") {
		t.Errorf("imported rule does not lint: %d %s %s", code, stdout, errs)
	}
	if code, _, _ := runCmd(t, t.Context(), "", "rules", "import-sigma", "--strict", "--out", out, in); code != 1 {
		t.Errorf("--strict with a problem: exit %d, want 1", code)
	}
}

func TestUnroutedRoutes(t *testing.T) {
	cfg := defaultConfig()
	cfg.Notify.Slack.Routes = []slack.Route{{Match: route.Match{Routes: []string{"oncall"}}, Channel: "#oncall"}}
	got := unroutedRoutes([]string{"oncall", "audit", "oncal"}, cfg.Notify)
	if strings.Join(got, ",") != "audit,oncal" {
		t.Errorf("unrouted = %v, want [audit oncal]", got)
	}
}

// TestRunWaitsForABrokerComingUp starts `run` as a process while nothing
// listens on the broker's port (a broker restarting), then starts a broker
// there: the process waits, warning, and runs once the broker answers
// instead of exiting.
func TestRunWaitsForABrokerComingUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	broker := fmt.Sprintf("127.0.0.1:%d", port)
	t.Setenv("TRAILWATCH_KAFKA__DIAL_TIMEOUT", "1s")
	p := startChild(t, "run --data-dir "+t.TempDir()+" --brokers "+broker+" --stages normalize --http-listen 127.0.0.1:0 --log-level warn")
	waitFor(t, "a warning that the broker is unreachable", 30*time.Second, func() bool {
		p.alive(t)
		return strings.Contains(p.stderr.String(), "kafka brokers unreachable; retrying")
	})
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.SeedTopics(1, "trailwatch.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Running: the normalize stage's group joins the broker that came up.
	adm := kadm.NewClient(mustClient(t, []string{broker}))
	waitFor(t, "the normalize group to join the broker", 60*time.Second, func() bool {
		p.alive(t)
		groups, err := adm.DescribeGroups(t.Context(), "trailwatch-normalize")
		if err != nil {
			return false
		}
		g, ok := groups["trailwatch-normalize"]
		return ok && g.Err == nil && len(g.Members) == 1
	})
}
