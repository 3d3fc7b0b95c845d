package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/ingest/redact"
	"github.com/trailwatch/trailwatch/internal/testenv"
)

// The canary secrets: each contains "CANARY", which must appear nowhere the
// pipeline writes.
const (
	canary       = "CANARY"
	canaryAPIKey = "CANARY-apikey-5f1e2d4c3b"
	canaryPass   = "CANARYpw3c2b1a"
)

// canaryJWT is a bearer JWT whose signature is the secret; its claims are
// public and end up in the token.
var canaryJWT = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
	base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://auth.example.com/","sub":"canary-user","client_id":"canary-app"}`)) +
	".CANARYjwtsig9b8a7c6d5e4f3a2b1c0d"

// canaryLines: benign calls carrying the canary API key, a brute force of
// 12 refused calls with it from one address (fires auth-bruteforce), a
// bearer JWT in access_token and a password in the referer's userinfo.
func canaryLines() []string {
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var out []string
	add := func(i int, ip, target string, status int, ref string) {
		ts := base.Add(time.Duration(i) * 500 * time.Millisecond).Format("02/Jan/2006:15:04:05 -0700")
		out = append(out, fmt.Sprintf(`%s - - [%s] "GET %s HTTP/1.1" %d 17 "%s" "canary/1.0"`, ip, ts, target, status, ref))
	}
	for i := range 30 {
		add(i, fmt.Sprintf("10.9.0.%d", i+1), fmt.Sprintf("/api/canary/%d?page=1&api_key=%s", i, canaryAPIKey), 200, "-")
	}
	for i := range 12 {
		add(30+i, "203.0.113.66", fmt.Sprintf("/api/login?api_key=%s&try=%d", canaryAPIKey, i), 401, "-")
	}
	add(42, "10.9.1.1", "/api/canary/jwt?access_token="+canaryJWT, 200, "-")
	add(43, "10.9.1.2", "/api/canary/ref", 200, "https://bob:"+canaryPass+"@ref.example.com/page")
	return out
}

// TestCanarySecretsNeverTravel runs the whole pipeline in a child process
// against the real Kafka broker and OpenSearch node over log lines holding
// canary secrets, then looks for the canaries everywhere the pipeline
// writes: every record (key, value, headers) of every topic, every document
// of both indices, the data directory, the process's stdout (console
// alerts) and stderr (logs). None may hold one; the events must carry the
// canary's fingerprint instead.
func TestCanarySecretsNeverTravel(t *testing.T) {
	brokers := testenv.Kafka(t)
	osURL := testenv.OpenSearch(t)

	dir := t.TempDir()
	logPath := filepath.Join(dir, "logs", "access.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	run := fmt.Sprintf("canary%d", time.Now().UnixNano())
	repoRules, _ := filepath.Abs("../../rules")
	dataDir := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "trailwatch.yaml")
	// No collect.redact settings: redaction is always on, and the default
	// key is created under the data dir.
	cfg := fmt.Sprintf(`
data_dir: %[1]s
http: {listen: ""}
log: {level: debug}
kafka:
  brokers: [%[2]s]
  group_prefix: %[3]s
  partitions: 2
  topics: {raw: %[3]s.raw, events: %[3]s.events, enriched: %[3]s.enriched, alerts: %[3]s.alerts, dlq: %[3]s.dlq, notified: %[3]s.notified}
collect:
  files:
    - {name: canary, paths: ["%[4]s"], source: nginx, poll_interval: 50ms, batch_lines: 10}
detect:
  rules: [%[5]s]
index:
  type: elasticsearch
  elasticsearch:
    addresses: [%[6]s]
    flavor: opensearch
    events_index: %[3]s-events
    alerts_index: %[3]s-alerts
notify:
  console: true
`, dataDir, strings.Join(brokers, ","), run, logPath, repoRules, osURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := canaryLines()
	appendLines(t, logPath, lines)

	c, stdout := startChildStdout(t, "run -c "+cfgPath)
	es := osClient{osURL}
	events, alerts := run+"-events", run+"-alerts"
	waitFor(t, "every canary line to be indexed", 120*time.Second, func() bool {
		c.alive(t)
		es.refresh(t, events)
		n, _ := es.search(t, events, `{"match_all":{}}`, 0)
		return n >= len(lines)
	})
	waitFor(t, "the brute-force alert on the console", 60*time.Second, func() bool {
		c.alive(t)
		return strings.Contains(stdout.String(), "auth-bruteforce")
	})
	// Stop cleanly so every log line is written before we read them.
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		c.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("trailwatch did not stop within 30s of SIGTERM")
	}

	secrets := []string{canary, canaryAPIKey, canaryPass, canaryJWT}
	// leaks records the first leak per place (a topic, an index, a file)
	// and counts the others, so a failure names every place briefly.
	type leak struct {
		example string
		n       int
	}
	found := map[string]*leak{}
	var places []string
	leaks := func(place, where string, b []byte) {
		for _, s := range secrets {
			if i := bytes.Index(b, []byte(s)); i >= 0 {
				if found[place] == nil {
					lo, hi := max(0, i-80), min(len(b), i+len(s)+40)
					found[place] = &leak{example: fmt.Sprintf("%s: …%s…", where, b[lo:hi])}
					places = append(places, place)
				}
				found[place].n++
				return
			}
		}
	}
	defer func() {
		for _, p := range places {
			t.Errorf("canary secrets leaked into %s (%d times), e.g. %s", p, found[p].n, found[p].example)
		}
	}()

	// Every record of every topic.
	topics := []string{run + ".raw", run + ".events", run + ".enriched", run + ".alerts", run + ".dlq", run + ".notified"}
	perTopic := scanTopics(t, brokers, topics, func(r *kgo.Record) {
		where := fmt.Sprintf("partition %d offset %d", r.Partition, r.Offset)
		leaks("topic "+r.Topic, where+" key", r.Key)
		leaks("topic "+r.Topic, where+" value", r.Value)
		for _, h := range r.Headers {
			leaks("topic "+r.Topic, where+" header "+h.Key, h.Value)
		}
	})
	for _, tp := range []string{run + ".raw", run + ".events", run + ".alerts"} {
		if perTopic[tp] == 0 {
			t.Errorf("topic %s is empty: the scan proves nothing", tp)
		}
	}

	// Every document of both indices.
	var eventDocs []json.RawMessage
	for _, idx := range []string{events, alerts} {
		es.refresh(t, idx)
		n, hits := es.search(t, idx, `{"match_all":{}}`, 1000)
		if len(hits) != n || n == 0 {
			t.Errorf("index %s: fetched %d of %d documents", idx, len(hits), n)
		}
		for i, h := range hits {
			leaks("index "+idx, fmt.Sprintf("document %d", i), h)
		}
		if idx == events {
			eventDocs = hits
		}
	}

	// What the process printed and everything it stored.
	leaks("stdout (console alerts)", "stdout", []byte(stdout.String()))
	leaks("stderr (logs)", "stderr", []byte(c.stderr.String()))
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		leaks("file "+path, path, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The events carry the canary key's fingerprint instead.
	keyFile := filepath.Join(dataDir, "fingerprint.key")
	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("no default fingerprint key: collect.redact is not wired (%v)", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", keyFile, st.Mode().Perm())
	}
	r, err := redact.New(redact.Config{KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := r.Redact([]byte("api_key=" + canaryAPIKey))
	token := strings.TrimPrefix(string(tok), "api_key=")
	hexPart := token[strings.LastIndexByte(token, '_')+1:]
	withToken, withFingerprint := 0, 0
	for _, h := range eventDocs {
		var doc struct {
			URL struct {
				Query string `json:"query"`
			} `json:"url"`
			Trailwatch struct {
				Credential struct {
					Fingerprint string `json:"fingerprint"`
					Type        string `json:"type"`
				} `json:"credential"`
			} `json:"trailwatch"`
		}
		if err := json.Unmarshal(h, &doc); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(doc.URL.Query, token) {
			withToken++
			if doc.Trailwatch.Credential.Fingerprint == hexPart && doc.Trailwatch.Credential.Type == "apikey" {
				withFingerprint++
			}
		}
	}
	if withToken != 42 {
		t.Errorf("%d events hold the canary key's token %s in url.query, want 42", withToken, token)
	}
	if withFingerprint != withToken {
		t.Errorf("%d of %d events with the token carry trailwatch.credential.fingerprint %s (type apikey): the nginx normalizer must call normalize.ApplyCredential on url.query", withFingerprint, withToken, hexPart)
	}
}

// startChildStdout is startChild that also keeps the child's stdout, where
// the console notifier prints alerts.
func startChildStdout(t *testing.T, args string) (*child, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+args)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stderr: stderr, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("child stdout:\n%s\nchild stderr:\n%s", stdout.String(), stderr.String())
		}
	})
	return c, stdout
}

// scanTopics reads every record of topics from the start up to the end
// offsets they have now, calls fn for each, and returns the count per topic.
func scanTopics(t *testing.T, brokers, topics []string, fn func(*kgo.Record)) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(mustClient(t, brokers)).ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[int32]int64{}
	left := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		if o.Offset > 0 {
			if want[o.Topic] == nil {
				want[o.Topic] = map[int32]int64{}
			}
			want[o.Topic][o.Partition] = o.Offset
			left++
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	count := map[string]int{}
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading the topics: %d partitions not read to their end: %v", left, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			count[r.Topic]++
			fn(r)
			if end, ok := want[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
				delete(want[r.Topic], r.Partition)
				left--
			}
		})
	}
	return count
}
