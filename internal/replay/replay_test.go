package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/kafka"
	"github.com/trailwatch/trailwatch/internal/stages"
	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testRules: a windowless rule on every /admin request, and a window of 5
// refused requests from one address in a minute (not actor-keyed).
const testRules = `
rules:
  - id: t-admin
    title: Admin request
    severity: medium
    where: url.path startsWith "/admin"
  - id: t-burst
    title: Refused burst
    severity: high
    where: http.response.status_code == 401
    window: {count: 5, over: 1m, group_by: [source.ip]}
`

func loadRules(t testing.TB, body string) *detect.RuleSet {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err := detect.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

var base = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// line is an nginx combined line at base+sec from ip.
func line(sec int, ip, path string, status int) string {
	ts := base.Add(time.Duration(sec) * time.Second).Format("02/Jan/2006:15:04:05 -0700")
	return fmt.Sprintf(`%s - - [%s] "GET %s HTTP/1.1" %d 17 "-" "test/1.0"`, ip, ts, path, status)
}

// testLines: 60 requests a second apart spread over 3 origins (so over
// partitions): benign traffic, two /admin requests, and from second 20 a
// burst of 401s from one address seen through every origin.
func testLines() map[string][]string {
	out := map[string][]string{}
	for i := range 60 {
		origin := fmt.Sprintf("/var/log/host%d/access.log", i%3)
		l := line(i, fmt.Sprintf("10.0.0.%d", i%7+1), fmt.Sprintf("/api/%d", i), 200)
		switch {
		case i == 10 || i == 40:
			l = line(i, "10.9.9.9", "/admin/users", 200)
		case i >= 20 && i < 30:
			l = line(i, "203.0.113.5", fmt.Sprintf("/login/%d", i), 401)
		}
		out[origin] = append(out[origin], l)
	}
	return out
}

// produceRaw writes lines as collectors tailing the files do: raw records
// keyed by origin, observed at each line's own time plus one second, sent
// in time order across the files.
func produceRaw(t testing.TB, cl *kgo.Client, topic string, byOrigin map[string][]string) {
	t.Helper()
	var recs []ingest.Record
	for origin, ls := range byOrigin {
		var off int64
		for _, l := range ls {
			ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", strings.SplitN(strings.SplitN(l, "[", 2)[1], "]", 2)[0])
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, ingest.Record{Data: []byte(l), Source: "nginx", Collector: "file", Host: "h", Origin: origin, Offset: off, Observed: ts.Add(time.Second)})
			off += int64(len(l)) + 1
		}
	}
	slices.SortStableFunc(recs, func(a, b ingest.Record) int {
		if c := a.Observed.Compare(b.Observed); c != 0 {
			return c
		}
		return strings.Compare(a.Origin, b.Origin)
	})
	if err := cl.ProduceSync(t.Context(), stages.RawRecords(topic, recs)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func fakeKafka(t testing.TB, partitions int32, topics ...string) (*kgo.Client, []kgo.Opt) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topics[0]))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, opts
}

// replayAll runs a replay and returns its alerts in order and the result.
func replayAll(t testing.TB, cfg Config) ([]schema.Alert, Result) {
	t.Helper()
	r, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []schema.Alert
	res, err := r.Run(t.Context(), func(_ context.Context, a []schema.Alert) error {
		got = append(got, a...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, res
}

func rawConfig(opts []kgo.Opt, rs *detect.RuleSet) Config {
	return Config{
		Kafka: opts, Topic: "raw", Input: InputRaw, Rules: rs,
		From: base.Add(-time.Hour), To: base.Add(time.Hour),
		Detect: detect.DefaultConfig(), DedupIDs: 1000, RunID: "replay-test",
	}
}

func ids(as []schema.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Rule.ID + "/" + a.Event.ID
	}
	return out
}

func TestReplaySameRangeTwiceIsIdentical(t *testing.T) {
	for _, p := range []int32{1, 3, 7} {
		t.Run(fmt.Sprintf("%d partitions", p), func(t *testing.T) {
			cl, opts := fakeKafka(t, p, "raw")
			produceRaw(t, cl, "raw", testLines())
			rs := loadRules(t, testRules)
			first, res := replayAll(t, rawConfig(opts, rs))
			second, _ := replayAll(t, rawConfig(opts, rs))
			a, _ := json.Marshal(first)
			b, _ := json.Marshal(second)
			if string(a) != string(b) {
				t.Fatalf("two replays of one range differ:\n%s\n%s", a, b)
			}
			if res.Records != 60 || res.Decoded != 60 || res.Events != 60 {
				t.Errorf("records %d, decoded %d, events %d; want 60 each", res.Records, res.Decoded, res.Events)
			}
			if got := res.AlertsByRule; got["t-admin"] != 2 || got["t-burst"] != 1 {
				t.Errorf("alerts by rule %v, want 2 t-admin and 1 t-burst", got)
			}
			for _, al := range first {
				if al.Trailwatch.RunID != "replay-test" {
					t.Errorf("alert %s not tagged with the run id: %q", al.Event.ID, al.Trailwatch.RunID)
				}
			}
		})
	}
}

// TestReplayMatchesSequentialDetection: the merged replay of a partitioned
// topic raises the alerts (ids and counts) a detector fed the same lines
// one origin file at a time in time order raises, which is what hunt and
// the live pipeline compute (cmd/trailwatch's replay test compares with
// the live pipeline itself).
func TestReplayMatchesSequentialDetection(t *testing.T) {
	cl, opts := fakeKafka(t, 3, "raw")
	lines := testLines()
	produceRaw(t, cl, "raw", lines)
	rs := loadRules(t, testRules)
	got, _ := replayAll(t, rawConfig(opts, rs))

	// The same events, normalized directly and sorted by time.
	var evs []schema.Event
	n, _ := normalize.Build(normalize.Spec{Type: "nginx"})
	for origin, ls := range lines {
		var off int64
		for _, l := range ls {
			rec := ingest.Record{Data: []byte(l), Source: "nginx", Collector: "file", Host: "h", Origin: origin, Offset: off}
			off += int64(len(l)) + 1
			var err error
			if evs, err = n.Normalize(evs, &rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.SortStableFunc(evs, func(a, b schema.Event) int { return a.Timestamp.Compare(b.Timestamp) })
	d, err := detect.New(rs, detect.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := d.Observe(t.Context(), evs)
	if err != nil {
		t.Fatal(err)
	}
	g, w := ids(got), ids(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Fatalf("replay alerts %v\nsequential alerts %v", g, w)
	}
}

func TestReplayFilter(t *testing.T) {
	cl, opts := fakeKafka(t, 3, "raw")
	produceRaw(t, cl, "raw", testLines())
	rs := loadRules(t, testRules)
	tests := []struct {
		name      string
		filter    string
		wantRules map[string]int64
		filtered  int64
	}{
		{name: "no filter", filter: "", wantRules: map[string]int64{"t-admin": 2, "t-burst": 1}},
		{name: "only the attacker", filter: `source.ip == "203.0.113.5"`, wantRules: map[string]int64{"t-burst": 1}, filtered: 50},
		{name: "everything but the attacker", filter: `source.ip != "203.0.113.5"`, wantRules: map[string]int64{"t-admin": 2}, filtered: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := rawConfig(opts, rs)
			cfg.Filter = tc.filter
			_, res := replayAll(t, cfg)
			if fmt.Sprint(res.AlertsByRule) != fmt.Sprint(tc.wantRules) {
				t.Errorf("alerts by rule %v, want %v", res.AlertsByRule, tc.wantRules)
			}
			if res.Filtered != tc.filtered {
				t.Errorf("filtered %d, want %d", res.Filtered, tc.filtered)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	rs := loadRules(t, testRules)
	good := func() Config {
		return Config{Topic: "raw", Input: InputRaw, Rules: rs, From: base, To: base.Add(time.Hour), Detect: detect.DefaultConfig()}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"misspelled field in filter", func(c *Config) { c.Filter = `source.ipp == "x"` }, `filter "source.ipp == \"x\""`},
		{"filter not a bool", func(c *Config) { c.Filter = `source.ip` }, "filter"},
		{"to before from", func(c *Config) { c.To = c.From.Add(-time.Second) }, "to: "},
		{"unknown input", func(c *Config) { c.Input = "enriched" }, `input: "enriched"`},
		{"bad run id", func(c *Config) { c.RunID = "Replay/1" }, "run_id:"},
		{"no rules", func(c *Config) { c.Rules = rs.Subset() }, "rules: no rules"},
		{"unknown source", func(c *Config) { c.Sources = map[string]normalize.Spec{"edge": {Type: "nope"}} }, "sources.edge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mutate(&c)
			_, err := New(c, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := New(good(), nil); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
}

// produceEvents writes events to the events topic as the normalize stage
// does: keyed by actor, timestamped with the event time.
func produceEvents(t testing.TB, cl *kgo.Client, topic string, evs []schema.Event) {
	t.Helper()
	recs := make([]*kgo.Record, len(evs))
	for i := range evs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(evs[i].Trailwatch.Actor), Value: normalize.AppendEvent(nil, &evs[i]), Timestamp: evs[i].Timestamp}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func adminEvent(i int, at time.Time) schema.Event {
	ev := schema.Event{Timestamp: at}
	ev.Event.ID = fmt.Sprintf("ev-%d", i)
	ev.URL.Path = "/admin/x"
	ev.Source.IP = fmt.Sprintf("192.0.2.%d", i%200+1)
	ev.Trailwatch.Actor = "ip:" + ev.Source.IP
	return ev
}

func TestReplayEventsTopicTimeBounds(t *testing.T) {
	cl, opts := fakeKafka(t, 3, "events")
	var evs []schema.Event
	for i := range 120 { // one a minute for two hours
		evs = append(evs, adminEvent(i, base.Add(time.Duration(i)*time.Minute)))
	}
	// Out of order: an event of minute 30 arriving after minute 119, and a
	// duplicate delivery of event 5.
	evs = append(evs, adminEvent(1000, base.Add(30*time.Minute+time.Second)), evs[5])
	produceEvents(t, cl, "events", evs)
	rs := loadRules(t, testRules)
	tests := []struct {
		name     string
		from, to time.Duration
		readPast time.Duration
		want     int64
		dups     int64
	}{
		{name: "first hour", from: 0, to: time.Hour, readPast: time.Minute, want: 60},
		{name: "everything, late and duplicate records included", from: 0, to: 2 * time.Hour, readPast: 3 * time.Hour, want: 121, dups: 1},
		{name: "second hour", from: time.Hour, to: 2 * time.Hour, readPast: time.Minute, want: 60},
		{name: "ten minutes", from: 10 * time.Minute, to: 20 * time.Minute, readPast: time.Minute, want: 10},
		{name: "late event needs the read-past margin", from: 25 * time.Minute, to: 35 * time.Minute, readPast: 2 * time.Hour, want: 11},
		{name: "without the margin the late record is not read", from: 25 * time.Minute, to: 35 * time.Minute, readPast: time.Nanosecond, want: 10},
		{name: "before the data", from: -2 * time.Hour, to: -time.Hour, readPast: time.Minute, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Kafka: opts, Topic: "events", Input: InputEvents, Rules: rs.Subset("t-admin"),
				From: base.Add(tc.from), To: base.Add(tc.to), ReadPast: tc.readPast, Detect: detect.DefaultConfig(), DedupIDs: 1000}
			alerts, res := replayAll(t, cfg)
			if res.Alerts != tc.want {
				t.Fatalf("%d alerts, want %d (%s)", res.Alerts, tc.want, res.Summary())
			}
			for _, a := range alerts {
				if a.Timestamp.Before(cfg.From) || !a.Timestamp.Before(cfg.To) {
					t.Errorf("alert at %s outside [%s, %s)", a.Timestamp, cfg.From, cfg.To)
				}
			}
			if res.Duplicates != tc.dups {
				t.Errorf("duplicates %d, want %d", res.Duplicates, tc.dups)
			}
		})
	}
}

func TestReplayMissingTopic(t *testing.T) {
	_, opts := fakeKafka(t, 1, "raw")
	cfg := rawConfig(opts, loadRules(t, testRules))
	cfg.Topic = "nope"
	r, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err %v, want one naming the missing topic", err)
	}
}

func TestReplaySinkErrorStopsTheRun(t *testing.T) {
	cl, opts := fakeKafka(t, 3, "raw")
	produceRaw(t, cl, "raw", testLines())
	r, err := New(rawConfig(opts, loadRules(t, testRules)), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(t.Context(), func(context.Context, []schema.Alert) error { return fmt.Errorf("disk full") })
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err %v, want the sink's", err)
	}
}

// TestReplayFromRealKafka replays a real broker's topic twice and gets the
// same alerts both times.
func TestReplayFromRealKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := fmt.Sprintf("replay-test-%d", time.Now().UnixNano())
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	cl, err := kgo.NewClient(append(opts, kgo.AllowAutoTopicCreation())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(t.Context(), cl, 3, -1, topic); err != nil {
		t.Fatal(err)
	}
	produceRaw(t, cl, topic, testLines())
	cfg := rawConfig(opts, loadRules(t, testRules))
	cfg.Topic = topic
	first, res := replayAll(t, cfg)
	second, _ := replayAll(t, cfg)
	if !slices.Equal(ids(first), ids(second)) || len(first) != 3 {
		t.Fatalf("replays differ or miss alerts: %v vs %v (%s)", ids(first), ids(second), res.Summary())
	}
}
