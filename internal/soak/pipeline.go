//go:build soak

package soak

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// soakRules are the rules the soak run loads instead of the repository's:
// each scripted attack trips exactly one of them, and benign traffic is
// shaped never to. The titles carry the ids so a Slack page names its rule.
const soakRules = `
id: soak-bruteforce
title: soak-bruteforce refused logins from one address
severity: high
where: http.response.status_code == 401
window: {count: 10, over: 1m, group_by: [source.ip]}
suppress: 1h
`

const soakProbeRule = `
id: soak-admin-probe
title: soak-admin-probe admin paths probed from one address
severity: medium
where: http.response.status_code == 404 && url.path startsWith "/admin/"
window: {count: 5, over: 1m, group_by: [source.ip]}
suppress: 1h
`

const soakSpreadRule = `
id: soak-credential-spread
title: soak-credential-spread one key from many addresses
severity: high
where: trailwatch.credential.fingerprint != ""
window: {count: 6, over: 5m, group_by: [trailwatch.credential.fingerprint], distinct: source.ip}
suppress: 1h
`

// soakRuleIDs are the rules whose pages the verifier expects.
var soakRuleIDs = []string{"soak-bruteforce", "soak-admin-probe", "soak-credential-spread"}

// pipeline is trailwatch run as one process per stage (two for detect),
// meeting only in the real Kafka broker's topics.
type pipeline struct {
	run     string // prefix of every topic, group and index of this run
	dir     string
	bin     string
	brokers []string
	osURL   string
	procs   []*proc // collect, normalize, detect-1, detect-2, index, notify
	// collectData is the collector's data dir (checkpoints): the disk-full
	// fault mounts a small tmpfs over it.
	collectData  string
	collectTmpfs bool  // collectData is a tmpfs the harness mounted
	tmpfsErr     error // why it is not
}

var buildOnce struct {
	sync.Once
	bin string
	err error
}

// buildTrailwatch builds the binary once per test process with `go build`.
func buildTrailwatch(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			buildOnce.err = err
			return
		}
		dir, err := os.MkdirTemp("", "trailwatch-soak-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.bin = filepath.Join(dir, "trailwatch")
		cmd := exec.Command("go", "build", "-o", buildOnce.bin, "./cmd/trailwatch")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build ./cmd/trailwatch: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.bin
}

// pipelineSpec says which stage processes to run and what they read.
type pipelineSpec struct {
	run       string
	dir       string
	brokers   []string
	osURL     string
	slackURL  string
	logGlobs  []fileSource
	stages    [][]string // one entry per process
	partition int
	indexOff  bool // no index stage configured at all (load without the index)
	// tmpfsCollect mounts a 4 MiB tmpfs as the collector's data dir, for
	// the disk-full fault.
	tmpfsCollect bool
	// s3 is the collect.s3 block (s3Feed.collectorYAML), or "".
	s3 string
}

type fileSource struct {
	name, source string
	paths        []string
}

const pipelineConf = `
data_dir: %[1]s
http: {listen: ""}
log: {level: info}
kafka:
  brokers: [%[2]s]
  group_prefix: %[3]s
  partitions: %[9]d
  session_timeout: 6s
  topics: {raw: %[3]s.raw, events: %[3]s.events, enriched: %[3]s.enriched, alerts: %[3]s.alerts, dlq: %[3]s.dlq, notified: %[3]s.notified,
           repartition: %[3]s.repartition, state: %[3]s.state, keyed_state: %[3]s.state.keyed}
collect:
  redact: {key: soak-fingerprint-key-0123456789abcdef}
  files:
%[4]s%[10]s
detect:
  rules: [%[5]s]
%[6]s
notify:
  console: false
  slack: {token: xoxb-soak-secret-token, channel: "#soak", api_url: "%[7]s"%[8]s}
`

// startPipeline writes one configuration per process (they differ only in
// data_dir) and starts every stage process.
func startPipeline(t testing.TB, s pipelineSpec) *pipeline {
	t.Helper()
	// Registered first, so it runs after the processes stopped.
	deleteRunTopics(t, s.brokers, s.run)
	p := &pipeline{run: s.run, dir: s.dir, bin: buildTrailwatch(t), brokers: s.brokers, osURL: s.osURL}
	rules := filepath.Join(s.dir, "rules")
	if err := os.MkdirAll(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(rules, "bruteforce.yaml"), soakRules)
	write(t, filepath.Join(rules, "probe.yaml"), soakProbeRule)
	write(t, filepath.Join(rules, "spread.yaml"), soakSpreadRule)
	var files strings.Builder
	for _, f := range s.logGlobs {
		fmt.Fprintf(&files, "    - {name: %s, paths: [%s], source: %s, poll_interval: 50ms}\n",
			f.name, `"`+strings.Join(f.paths, `", "`)+`"`, f.source)
	}
	index := fmt.Sprintf(`index:
  type: elasticsearch
  elasticsearch: {addresses: [%s], flavor: opensearch, events_index: %s-events, alerts_index: %s-alerts}`, s.osURL, s.run, s.run)
	if s.indexOff {
		index = "index: {type: file}"
	}
	slackExtra := ""
	if s.slackURL == "" {
		s.slackURL = "http://127.0.0.1:9/api/"
	}
	if s.partition == 0 {
		s.partition = 3
	}
	for i, stages := range s.stages {
		name := fmt.Sprintf("%02d-%s", i, strings.Join(stages, "+"))
		data := filepath.Join(s.dir, "data", name)
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatal(err)
		}
		if contains(stages, "collect") {
			p.collectData = data
			if s.tmpfsCollect {
				// Mounted before the process starts, unmounted after it
				// stopped (cleanups run last-registered first).
				if p.tmpfsErr = mountTmpfs(data, "4m"); p.tmpfsErr == nil {
					p.collectTmpfs = true
					t.Cleanup(func() { _ = syscall.Unmount(data, syscall.MNT_DETACH) })
				}
			}
		}
		cfg := filepath.Join(s.dir, name+".yaml")
		write(t, cfg, fmt.Sprintf(pipelineConf, data, strings.Join(s.brokers, ","), s.run, files.String(), rules, index, s.slackURL, slackExtra, s.partition, s.s3))
		args := []string{"run", "-c", cfg, "--stages", strings.Join(stages, ",")}
		if *cpuProfileDir != "" {
			// Written when the process stops (the harness's cleanup).
			args = append(args, "--cpuprofile", filepath.Join(*cpuProfileDir, s.run+"-"+name+".pprof"))
		}
		pr := newProc(t, name, filepath.Join(s.dir, name+".stderr"), p.bin, args...)
		pr.start(t)
		p.procs = append(p.procs, pr)
	}
	return p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// byStage returns the processes running stage.
func (p *pipeline) byStage(stage string) []*proc {
	var out []*proc
	for _, pr := range p.procs {
		if strings.Contains(pr.name, stage) {
			out = append(out, pr)
		}
	}
	return out
}

// stderrText concatenates every process's log.
func (p *pipeline) stderrText() string {
	var b strings.Builder
	for _, pr := range p.procs {
		data, _ := os.ReadFile(pr.stderr)
		b.Write(data)
	}
	return b.String()
}

// dead lists processes that exited without the harness killing them.
func (p *pipeline) dead() []string {
	var out []string
	for _, pr := range p.procs {
		if !pr.running() {
			out = append(out, pr.name)
		}
	}
	return out
}
