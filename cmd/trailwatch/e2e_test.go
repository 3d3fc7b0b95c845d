package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// childEnv makes the test binary act as the trailwatch binary: the e2e test
// re-executes itself with this variable set, so a real separate process can
// be SIGKILLed mid-stream.
const childEnv = "TW_E2E_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		ctx, stop := signalContext()
		defer stop()
		os.Exit(run(ctx, strings.Fields(args), os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// slackRecorder counts chat.postMessage calls on slack-go's test server.
type slackRecorder struct {
	mu   sync.Mutex
	msgs []url.Values
}

func (s *slackRecorder) bind(c slacktest.Customize) {
	c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v, _ := url.ParseQuery(string(body))
		s.mu.Lock()
		s.msgs = append(s.msgs, v)
		n := len(s.msgs)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1700000000.%06d"}`, v.Get("channel"), n)
	})
}

func (s *slackRecorder) messages() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.msgs...)
}

type child struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

// syncBuffer is written by exec's copying goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startChild(t *testing.T, args string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+args)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stderr: stderr, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("child stderr:\n%s", stderr.String())
		}
	})
	return c
}

// alive fails the test at once if the child has exited.
func (c *child) alive(t *testing.T) {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		t.Fatalf("trailwatch exited early (%v):\n%s", err, c.stderr.String())
	default:
	}
}

// osClient is a minimal client for the real OpenSearch node: count and
// fetch documents to check what the pipeline indexed.
type osClient struct{ base string }

func (c osClient) search(t *testing.T, index, query string, size int) (total int, hits []json.RawMessage) {
	t.Helper()
	body := fmt.Sprintf(`{"size":%d,"track_total_hits":true,"query":%s}`, size, query)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, c.base+"/"+index+"/_search?ignore_unavailable=true", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var out struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
			Hits []struct {
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return 0, nil
	}
	for _, h := range out.Hits.Hits {
		hits = append(hits, h.Source)
	}
	return out.Hits.Total.Value, hits
}

func (c osClient) refresh(t *testing.T, index string) {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, c.base+"/"+index+"/_refresh?ignore_unavailable=true", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// waitFor polls an observable condition (documents in the index, consumer
// lag) until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, what, timeout, cond)
}

func appendLines(t *testing.T, path string, lines []string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

// e2eLines returns lines [from, to): benign requests, each with a unique
// path so every line can be found in the index, and from line 250 on a
// brute force of 15 refused logins from one address within 15 seconds.
func e2eLines(from, to int) []string {
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var out []string
	for i := from; i < to; i++ {
		ts := base.Add(time.Duration(i) * 100 * time.Millisecond).Format("02/Jan/2006:15:04:05 -0700")
		ip, status, path := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), 200, fmt.Sprintf("/api/e2e/%d", i)
		if i >= 250 && i < 265 {
			ip, status = "203.0.113.77", 401
		}
		out = append(out, fmt.Sprintf(`%s - - [%s] "POST %s HTTP/1.1" %d 17 "-" "e2e/1.0"`, ip, ts, path, status))
	}
	return out
}

// e2eSetup starts slack-go's test server and writes a config pointing at
// the real Kafka broker and OpenSearch node, with names unique to the run.
func e2eSetup(t *testing.T, ruleDirs ...string) (run, cfgPath, logPath string, brokers []string, osURL string, rec *slackRecorder) {
	t.Helper()
	brokers = testenv.Kafka(t)
	osURL = testenv.OpenSearch(t)
	rec = &slackRecorder{}
	slk := slacktest.NewTestServer(rec.bind)
	slk.Start()
	t.Cleanup(slk.Stop)

	dir := t.TempDir()
	logPath = filepath.Join(dir, "logs", "access.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	run = fmt.Sprintf("e2e%d", time.Now().UnixNano())
	repoRules, _ := filepath.Abs("../../rules")
	ruleDirs = append([]string{repoRules}, ruleDirs...)
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
    - {name: e2e, paths: ["%[1]s/logs/*.log"], source: nginx, poll_interval: 50ms, batch_lines: 50}
detect:
  rules: [%[4]s]
index:
  type: elasticsearch
  elasticsearch:
    addresses: [%[5]s]
    flavor: opensearch
    events_index: %[3]s-events
    alerts_index: %[3]s-alerts
notify:
  console: false
  slack: {token: xoxb-e2e-secret-token, channel: "#api-security", api_url: "%[6]s"}
`, dir, strings.Join(brokers, ","), run, strings.Join(ruleDirs, ", "), osURL, slk.GetAPIURL())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return run, cfgPath, logPath, brokers, osURL, rec
}

// waitNotified waits until the notify and index groups committed every
// alert, so no page or alert document can still be on its way when the
// test counts them.
func waitNotified(t *testing.T, brokers []string, run string) {
	t.Helper()
	waitCaughtUp(t, brokers, run+"-notify", run+".alerts")
	waitCaughtUp(t, brokers, run+"-index", run+".alerts")
}

// waitCaughtUp waits until group committed the end of every non-empty
// partition of topic.
func waitCaughtUp(t *testing.T, brokers []string, group, topic string) {
	t.Helper()
	adm := kadm.NewClient(mustClient(t, brokers))
	waitFor(t, group+" to catch up on "+topic, 60*time.Second, func() bool {
		lags, err := adm.Lag(t.Context(), group)
		if err != nil {
			return false
		}
		l, ok := lags[group]
		if !ok || l.FetchErr != nil || l.DescribeErr != nil {
			return false
		}
		produced := false
		for _, pl := range l.Lag[topic] {
			if pl.End.Offset > 0 {
				produced = true
				if pl.Commit.At != pl.End.Offset {
					return false
				}
			}
		}
		return produced
	})
}

func TestEndToEndKillRestartExactlyOnce(t *testing.T) {
	run, cfgPath, logPath, brokers, osURL, rec := e2eSetup(t)
	es := osClient{osURL}
	events, alerts := run+"-events", run+"-alerts"
	indexed := func() int { es.refresh(t, events); n, _ := es.search(t, events, `{"match_all":{}}`, 0); return n }

	// First process: a first chunk, then SIGKILL while a second chunk is
	// being collected.
	appendLines(t, logPath, e2eLines(0, 200))
	first := startChild(t, "run -c "+cfgPath)
	waitFor(t, "the first documents to be indexed", 90*time.Second, func() bool { first.alive(t); return indexed() >= 50 })
	appendLines(t, logPath, e2eLines(200, 400))
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := <-first.done
	first.done <- killed
	appendLines(t, logPath, e2eLines(400, 600))

	// Second process: everything arrives, once.
	second := startChild(t, "run -c "+cfgPath)
	waitFor(t, "all 600 lines to be indexed", 120*time.Second, func() bool { second.alive(t); return indexed() >= 600 })

	waitNotified(t, brokers, run)

	es.refresh(t, events)
	n, hits := es.search(t, events, `{"match_all":{}}`, 1000)
	if n != 600 {
		t.Errorf("index holds %d events, want exactly 600", n)
	}
	seen := map[string]int{}
	for _, h := range hits {
		var doc struct {
			Source struct {
				IP string `json:"ip"`
			} `json:"source"`
			URL struct {
				Path string `json:"path"`
			} `json:"url"`
			HTTP struct {
				Response struct {
					StatusCode int `json:"status_code"`
				} `json:"response"`
			} `json:"http"`
			Event struct {
				Dataset string `json:"dataset"`
			} `json:"event"`
		}
		if err := json.Unmarshal(h, &doc); err != nil {
			t.Fatal(err)
		}
		seen[doc.URL.Path]++
		if doc.Source.IP == "" || doc.HTTP.Response.StatusCode == 0 || doc.Event.Dataset != "nginx.access" {
			t.Errorf("document lacks ECS fields: %s", h)
		}
	}
	for i := range 600 {
		if c := seen[fmt.Sprintf("/api/e2e/%d", i)]; c != 1 {
			t.Errorf("line %d indexed %d times, want once", i, c)
		}
	}

	es.refresh(t, alerts)
	na, ahits := es.search(t, alerts, `{"term":{"rule.id":"auth-bruteforce"}}`, 10)
	if na != 1 {
		t.Errorf("alerts index holds %d auth-bruteforce alerts, want 1: %s", na, ahits)
	}
	msgs := rec.messages()
	if len(msgs) != 1 {
		t.Fatalf("slack received %d messages, want 1", len(msgs))
	}
	if msgs[0].Get("channel") != "#api-security" || !strings.Contains(msgs[0].Get("blocks")+msgs[0].Get("text"), "203.0.113.77") {
		t.Errorf("slack message does not name the attacker: %v", msgs[0])
	}
	if strings.Contains(second.stderr.String()+first.stderr.String(), "xoxb-e2e-secret-token") {
		t.Error("the Slack token appeared in the logs")
	}

	// A clean stop: SIGTERM, exit 0.
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second.done:
		if err != nil {
			t.Errorf("second process exited with %v after SIGTERM, want 0", err)
		}
		second.done <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Error("second process did not stop within 30s of SIGTERM")
	}
}

func mustClient(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestEndToEndStagesAsSeparateProcesses runs the stages the way a fleet
// does: collect+normalize in one process, two detect processes sharing the
// events topic's partitions, and index+notify in a fourth, all meeting only
// in Kafka. Every line is indexed once and the attack is paged once.
func TestEndToEndStagesAsSeparateProcesses(t *testing.T) {
	run, cfgPath, logPath, brokers, osURL, rec := e2eSetup(t)
	appendLines(t, logPath, e2eLines(0, 400))
	procs := []*child{
		startChild(t, "run -c "+cfgPath+" --stages collect,normalize"),
		startChild(t, "run -c "+cfgPath+" --stages detect"),
		startChild(t, "run -c "+cfgPath+" --stages detect"),
		startChild(t, "run -c "+cfgPath+" --stages index,notify"),
	}
	es := osClient{osURL}
	events := run + "-events"
	waitFor(t, "all 400 lines to be indexed", 120*time.Second, func() bool {
		for _, p := range procs {
			p.alive(t)
		}
		es.refresh(t, events)
		n, _ := es.search(t, events, `{"match_all":{}}`, 0)
		return n >= 400
	})
	waitNotified(t, brokers, run)
	es.refresh(t, events)
	if n, _ := es.search(t, events, `{"match_all":{}}`, 0); n != 400 {
		t.Errorf("index holds %d events, want 400", n)
	}
	es.refresh(t, run+"-alerts")
	if n, hits := es.search(t, run+"-alerts", `{"term":{"rule.id":"auth-bruteforce"}}`, 10); n != 1 {
		t.Errorf("%d auth-bruteforce alerts indexed, want 1: %s", n, hits)
	}
	if msgs := rec.messages(); len(msgs) != 1 {
		t.Errorf("slack received %d messages, want 1", len(msgs))
	}
}

// ipBurstRule fires on 20 refused requests from one address within a
// minute. The events topic is keyed by actor, here each request's API key,
// so one address's requests are spread over every partition: only the
// repartition topic, keyed by source.ip, brings them together.
const ipBurstRule = `
id: e2e-ip-burst
title: Refused requests with many keys from one address
severity: high
where: http.response.status_code == 401
window: {count: 20, over: 1m, group_by: [source.ip]}
`

// ipBurstLines returns, for each of three attacker addresses, the refused
// requests from..to (of 20), each with its own API key, a second apart.
func ipBurstLines(from, to int) []string {
	base := time.Date(2026, 11, 20, 13, 0, 0, 0, time.UTC)
	var out []string
	for i := from; i < to; i++ {
		for a := range 3 {
			ts := base.Add(time.Duration(i) * time.Second).Format("02/Jan/2006:15:04:05 -0700")
			out = append(out, fmt.Sprintf(`198.51.100.%d - - [%s] "GET /api/burst/%d-%d?api_key=sk_live_e2e%04d%04d HTTP/1.1" 401 17 "-" "e2e/1.0"`,
				10+a, ts, a, i, a, i))
		}
	}
	return out
}

// TestEndToEndRepartitionSurvivesKill runs two detect processes and kills
// one while every attacker's window is half full. The survivor takes over
// the dead one's repartition partitions, rebuilds their windows from the
// topic, and each attacker is alerted and paged exactly once.
func TestEndToEndRepartitionSurvivesKill(t *testing.T) {
	ruleDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ruleDir, "ip-burst.yaml"), []byte(ipBurstRule), 0o600); err != nil {
		t.Fatal(err)
	}
	run, cfgPath, logPath, brokers, osURL, rec := e2eSetup(t, ruleDir)
	feed := startChild(t, "run -c "+cfgPath+" --stages collect,normalize,index,notify")
	detA := startChild(t, "run -c "+cfgPath+" --stages detect")
	detB := startChild(t, "run -c "+cfgPath+" --stages detect")

	// Half of every window, then wait until the keyed stage has read it
	// all: the state to rebuild is on both processes.
	appendLines(t, logPath, ipBurstLines(0, 10))
	waitCaughtUp(t, brokers, run+"-detect-keyed", run+".repartition")
	waitFor(t, "both detect processes to hold repartition partitions", 60*time.Second, func() bool {
		feed.alive(t)
		detA.alive(t)
		detB.alive(t)
		return keyedMembers(t, brokers, run) == 2
	})
	if err := detA.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := <-detA.done
	detA.done <- killed

	appendLines(t, logPath, ipBurstLines(10, 20))
	es := osClient{osURL}
	alerts := run + "-alerts"
	waitFor(t, "three ip-burst alerts", 120*time.Second, func() bool {
		feed.alive(t)
		detB.alive(t)
		es.refresh(t, alerts)
		n, _ := es.search(t, alerts, `{"term":{"rule.id":"e2e-ip-burst"}}`, 0)
		return n >= 3
	})
	waitCaughtUp(t, brokers, run+"-detect-keyed", run+".repartition")
	waitNotified(t, brokers, run)

	es.refresh(t, alerts)
	n, hits := es.search(t, alerts, `{"term":{"rule.id":"e2e-ip-burst"}}`, 10)
	if n != 3 {
		t.Fatalf("%d ip-burst alerts indexed, want 3 (one per address): %s", n, hits)
	}
	for _, h := range hits {
		var a schema.Alert
		if err := json.Unmarshal(h, &a); err != nil {
			t.Fatal(err)
		}
		if a.Trailwatch.Count != 20 {
			t.Errorf("alert for %v counts %d events, want 20 (10 before the kill, 10 after)", a.Trailwatch.GroupKey, a.Trailwatch.Count)
		}
	}
	pages := 0
	for _, m := range rec.messages() {
		if strings.Contains(m.Get("text")+m.Get("blocks"), "e2e-ip-burst") || strings.Contains(m.Get("text")+m.Get("blocks"), "many keys") {
			pages++
		}
	}
	if pages != 3 {
		t.Errorf("slack received %d ip-burst pages, want 3", pages)
	}
}

// keyedMembers returns how many members of the run's keyed detect group
// hold at least one partition.
func keyedMembers(t *testing.T, brokers []string, run string) int {
	t.Helper()
	adm := kadm.NewClient(mustClient(t, brokers))
	groups, err := adm.DescribeGroups(t.Context(), run+"-detect-keyed")
	if err != nil {
		return 0
	}
	n := 0
	for _, g := range groups {
		for _, m := range g.Members {
			if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
				n++
			}
		}
	}
	return n
}

// TestRunReloadsRulesOnSIGHUP changes the rules of a running pipeline: a
// new rule is picked up on SIGHUP and retro-hunted over the requests seen
// before it existed, and a broken file is refused whole while the running
// rules go on alerting.
func TestRunReloadsRulesOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	rules, logs := filepath.Join(dir, "rules"), filepath.Join(dir, "logs")
	for _, d := range []string{rules, logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rule := func(name, path string) {
		body := fmt.Sprintf("id: %s\ntitle: %s\nwhere: url.path == %q\n", name, name, path)
		if err := os.WriteFile(filepath.Join(rules, name+".yaml"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rule("reload-first", "/first")
	cfgPath := filepath.Join(dir, "trailwatch.yaml")
	cfg := fmt.Sprintf(`
data_dir: %[1]s/data
http: {listen: ""}
log: {level: info}
collect:
  files:
    - {name: reload, paths: ["%[1]s/logs/*.log"], source: nginx, poll_interval: 50ms}
detect: {rules: ["%[1]s/rules"], reload_interval: 0s, retro_hunt: {enabled: true, look_back: 8760h}}
notify: {console: false}
`, dir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(logs, "access.log")
	n := 0
	request := func(path string) {
		n++
		ts := time.Date(2026, 11, 20, 14, 0, n, 0, time.UTC).Format("02/Jan/2006:15:04:05 -0700")
		appendLines(t, logPath, []string{fmt.Sprintf(`192.0.2.%d - - [%s] "GET %s HTTP/1.1" 200 17 "-" "e2e/1.0"`, n, ts, path)})
	}
	alertsPath := filepath.Join(dir, "data", "output", "alerts.ndjson")
	alertsOf := func(id string) int {
		b, _ := os.ReadFile(alertsPath)
		return strings.Count(string(b), `"id":"`+id+`"`)
	}
	proc := startChild(t, "run -c "+cfgPath)
	request("/second") // before any rule looks for it
	request("/first")
	waitFor(t, "the first rule to alert", 60*time.Second, func() bool { proc.alive(t); return alertsOf("reload-first") == 1 })

	rule("reload-second", "/second")
	if err := proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload to be logged", 30*time.Second, func() bool {
		proc.alive(t)
		return strings.Contains(proc.stderr.String(), "rules reloaded")
	})
	waitFor(t, "the retro-hunt to find the earlier request", 60*time.Second, func() bool {
		proc.alive(t)
		return strings.Contains(proc.stderr.String(), "for reload-second: 1 alerts (reload-second 1)")
	})
	if alertsOf("reload-second") != 0 {
		t.Error("the retro-hunt's alert reached the live alerts: it must stay in its run's topic")
	}
	request("/second")
	waitFor(t, "the new rule to alert", 60*time.Second, func() bool { proc.alive(t); return alertsOf("reload-second") == 1 })

	if err := os.WriteFile(filepath.Join(rules, "broken.yaml"), []byte("id: broken\nwhere: url.path ==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused reload to be logged", 30*time.Second, func() bool {
		proc.alive(t)
		return strings.Contains(proc.stderr.String(), "rules not reloaded") && strings.Contains(proc.stderr.String(), "broken.yaml")
	})
	request("/first")
	request("/second")
	waitFor(t, "both rules to alert again after the refused reload", 60*time.Second, func() bool {
		proc.alive(t)
		return alertsOf("reload-first") == 2 && alertsOf("reload-second") == 2
	})
}

// TestEndToEndIndexOutageLosesNothing takes the OpenSearch node off the
// network mid-stream: the index stage keeps retrying while Kafka holds the
// backlog, and once the node is back every line is indexed exactly once.
func TestEndToEndIndexOutageLosesNothing(t *testing.T) {
	run, cfgPath, logPath, brokers, osURL, _ := e2eSetup(t)
	u, err := url.Parse(osURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("addresses: ["+osURL+"]"), []byte("addresses: [http://"+proxy.Addr()+"]"), 1)
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	es := osClient{osURL}
	events := run + "-events"
	indexed := func() int { es.refresh(t, events); n, _ := es.search(t, events, `{"match_all":{}}`, 0); return n }

	appendLines(t, logPath, e2eLines(0, 200))
	proc := startChild(t, "run -c "+cfgPath)
	waitFor(t, "the first lines to be indexed", 90*time.Second, func() bool { proc.alive(t); return indexed() >= 200 })

	proxy.Cut()
	appendLines(t, logPath, e2eLines(200, 400))
	// While the node is away the lines reach the events topic and wait
	// there: the index stage commits nothing it could not write.
	waitCaughtUp(t, brokers, run+"-normalize", run+".raw")
	waitFor(t, "the index stage to report the outage", 60*time.Second, func() bool {
		proc.alive(t)
		return strings.Contains(proc.stderr.String(), "retry")
	})
	if n := indexed(); n != 200 {
		t.Fatalf("%d documents indexed during the outage, want the 200 from before it", n)
	}

	proxy.Restore()
	waitFor(t, "all 400 lines to be indexed after the outage", 120*time.Second, func() bool { proc.alive(t); return indexed() >= 400 })
	waitCaughtUp(t, brokers, run+"-index", run+".enriched")
	es.refresh(t, events)
	n, hits := es.search(t, events, `{"match_all":{}}`, 1000)
	if n != 400 {
		t.Errorf("index holds %d events, want exactly 400", n)
	}
	seen := map[string]int{}
	for _, h := range hits {
		var doc struct {
			URL struct{ Path string } `json:"url"`
		}
		if err := json.Unmarshal(h, &doc); err != nil {
			t.Fatal(err)
		}
		seen[doc.URL.Path]++
	}
	for i := range 400 {
		if c := seen[fmt.Sprintf("/api/e2e/%d", i)]; c != 1 {
			t.Errorf("line %d indexed %d times, want once", i, c)
		}
	}
}
