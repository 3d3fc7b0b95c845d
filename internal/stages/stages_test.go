package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

func rawRec(t *testing.T, source, line string, offset int64, truncated bool) *kgo.Record {
	t.Helper()
	r := ingest.Record{Data: []byte(line), Source: source, Collector: "file", Host: "h1", Origin: "/var/log/a.log", Stream: "1:2:0:abc", Offset: offset, Observed: time.Unix(1700000000, 0).UTC(), Truncated: truncated}
	kr := RawRecord("raw", &r)
	kr.Partition, kr.Offset = 0, offset
	return kr
}

func TestRawRecordRoundTrip(t *testing.T) {
	in := ingest.Record{Data: []byte("x"), Source: "nginx", Collector: "c", Host: "h", Origin: "/o", Stream: "s", Offset: 42, Observed: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Truncated: true}
	got := DecodeRaw(RawRecord("raw", &in))
	if got.ID() != in.ID() || got.Source != in.Source || got.Collector != in.Collector || got.Origin != in.Origin || got.Stream != in.Stream || got.Offset != in.Offset || !got.Observed.Equal(in.Observed) || !got.Truncated {
		t.Errorf("round trip changed the record: %+v", got)
	}
}

// TestDecodeRawKeepsHeadersApart decodes records from two files in turn,
// their header strings interned: each record must get its own values, and
// a repeated value the same string as before.
func TestDecodeRawKeepsHeadersApart(t *testing.T) {
	a := ingest.Record{Data: []byte("1"), Source: "nginx", Collector: "file", Host: "h1", Origin: "/var/log/a.log", Stream: "s1"}
	b := ingest.Record{Data: []byte("2"), Source: "haproxy", Collector: "syslog", Host: "h2", Origin: "/var/log/b.log", Stream: "s2"}
	var firstOrigin string
	for i, in := range []ingest.Record{a, b, a, a, b} {
		got := DecodeRaw(RawRecord("raw", &in))
		if got.Source != in.Source || got.Collector != in.Collector || got.Host != in.Host || got.Origin != in.Origin || got.Stream != in.Stream || string(got.Data) != string(in.Data) {
			t.Fatalf("record %d: decoded %+v, want %+v", i, got, in)
		}
		if i == 2 {
			firstOrigin = got.Origin
		}
		if i == 3 && unsafe.StringData(got.Origin) != unsafe.StringData(firstOrigin) {
			t.Error("a repeated origin was converted again instead of reused")
		}
	}
}

func TestNormalizeCountsBadInputByReason(t *testing.T) {
	good := `203.0.113.9 - - [20/Nov/2026:09:03:01 +0000] "POST /api/login HTTP/1.1" 401 53 "-" "curl/8"`
	tests := []struct {
		name      string
		source    string
		line      string
		truncated bool
		want      string
	}{
		{"truncated", "nginx", good[:30], true, ReasonTruncated},
		{"unknown source", "gopher", good, false, ReasonUnknownSource},
		{"wrong format", "nginx", `{"msg":"a json line to the nginx parser"}`, false, ReasonMalformed},
		{"1 MB line", "nginx", strings.Repeat("a", 1<<20), false, ReasonTooLong},
		{"binary garbage", "nginx", "\x16\x03\x01\x00\xa5\x01\x00\x00", false, ReasonBinary},
		{"invalid UTF-8", "nginx", "caf\xe9 \xff\xfe not a log", false, ReasonInvalidUTF8},
		{"JSON bomb", "envoy", strings.Repeat(`{"a":`, 5000), false, ReasonTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewNormalize("events", "dlq", nil)
			goodRec := rawRec(t, "nginx", good, 0, false)
			bad := rawRec(t, tt.source, tt.line, 100, tt.truncated)
			out, err := h.Handle(t.Context(), []*kgo.Record{goodRec, bad, rawRec(t, "nginx", good, 200, false)})
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 3 || out[0].Topic != "events" || out[2].Topic != "events" {
				t.Fatalf("the good lines around the bad one were not kept: %d records", len(out))
			}
			d := out[1]
			if d.Topic != "dlq" || string(d.Value) != tt.line {
				t.Fatalf("bad line not dead-lettered with its raw bytes")
			}
			if got := Header(d, HeaderDLQClass); got != tt.want {
				t.Errorf("class %q, want %q (reason %q)", got, tt.want, Header(d, HeaderDLQReason))
			}
			if got := testutil.ToFloat64(h.dlq.WithLabelValues(tt.want)); got != 1 {
				t.Errorf("trailwatch_normalize_dlq_total{reason=%q} = %v, want 1", tt.want, got)
			}
		})
	}
}

func TestNormalizeRoutesBadInputToDLQ(t *testing.T) {
	good := `203.0.113.9 - - [20/Nov/2026:09:03:01 +0000] "POST /api/login HTTP/1.1" 401 53 "-" "curl/8"`
	recs := []*kgo.Record{
		rawRec(t, "nginx", good, 0, false),
		rawRec(t, "nginx", "this is not an access log line", 100, false),
		rawRec(t, "nginx", good[:40], 200, true),
		rawRec(t, "nosuchsource", good, 300, false),
	}
	h := NewNormalize("events", "dlq", nil)
	h.Now = func() time.Time { return time.Unix(1800000000, 0) }
	out, err := h.Handle(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	var events, dlq []*kgo.Record
	for _, r := range out {
		switch r.Topic {
		case "events":
			events = append(events, r)
		case "dlq":
			dlq = append(dlq, r)
		default:
			t.Fatalf("unexpected topic %s", r.Topic)
		}
	}
	if len(events) != 1 || len(dlq) != 3 {
		t.Fatalf("got %d events and %d DLQ records, want 1 and 3", len(events), len(dlq))
	}
	var ev schema.Event
	if err := json.Unmarshal(events[0].Value, &ev); err != nil {
		t.Fatal(err)
	}
	if string(events[0].Key) != "ip:203.0.113.9" || ev.Trailwatch.Actor != "ip:203.0.113.9" {
		t.Errorf("event key %q actor %q, want the actor key", events[0].Key, ev.Trailwatch.Actor)
	}
	if !events[0].Timestamp.Equal(ev.Timestamp) || ev.Timestamp.IsZero() {
		t.Errorf("record timestamp %v, want the event time %v", events[0].Timestamp, ev.Timestamp)
	}
	if ev.Event.ID == "" || ev.HTTP.Response.StatusCode != 401 || !ev.Event.Ingested.Equal(time.Unix(1800000000, 0)) {
		t.Errorf("event fields: %+v", ev.Event)
	}
	wantReasons := []string{"", "max_line_bytes", "nosuchsource"}
	for i, d := range dlq {
		if Header(d, HeaderDLQStage) != "normalize" || Header(d, HeaderDLQTopic) != "raw" || Header(d, ingest.HeaderOrigin) != "/var/log/a.log" {
			t.Errorf("DLQ record %d lacks provenance: %+v", i, d.Headers)
		}
		reason := Header(d, HeaderDLQReason)
		if reason == "" || !strings.Contains(reason, wantReasons[i]) {
			t.Errorf("DLQ record %d reason %q, want it to mention %q", i, reason, wantReasons[i])
		}
		if string(d.Value) != string(recs[i+1].Value) {
			t.Errorf("DLQ record %d value changed", i)
		}
	}
}

const threshold = `
id: burst
title: Burst
severity: high
where: http.response.status_code == 401
window: {count: 3, over: 1m, group_by: [source.ip]}
suppress: 10m
`

func eventRecs(t *testing.T, start time.Time, from, n int) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for i := from; i < from+n; i++ {
		ev := schema.Event{Timestamp: start.Add(time.Duration(i) * time.Second)}
		ev.Event.ID = "e" + string(rune('a'+i))
		ev.Source.IP = "203.0.113.9"
		ev.HTTP.Response.StatusCode = 401
		b, _ := json.Marshal(&ev)
		out = append(out, &kgo.Record{Topic: "events", Partition: 0, Offset: int64(i), Value: b, Timestamp: ev.Timestamp})
	}
	return out
}

// ruleSet loads one rule file's content, as the pipeline loads rules.
func ruleSet(t *testing.T, content string) *detect.RuleSet {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rule.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err := detect.LoadFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func newDetectHandler(t *testing.T) *Detect {
	t.Helper()
	rs := ruleSet(t, threshold)
	return NewDetect("enriched", "alerts", "dlq", NewRuleBook(rs, detect.DefaultConfig()), NewDetectMetrics(nil), nil)
}

func alertsOf(out []*kgo.Record) (alerts []string, enriched int) {
	for _, r := range out {
		switch r.Topic {
		case "alerts":
			alerts = append(alerts, string(r.Key))
		case "enriched":
			enriched++
		}
	}
	return alerts, enriched
}

func TestDetectWarmRebuildsStateWithoutRealerting(t *testing.T) {
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	first := newDetectHandler(t)
	first.Assigned("events", 0)
	out, err := first.Handle(t.Context(), eventRecs(t, start, 0, 4))
	if err != nil {
		t.Fatal(err)
	}
	alerts, enriched := alertsOf(out)
	if len(alerts) != 1 || enriched != 4 {
		t.Fatalf("first run: %d alerts, %d enriched; want 1 and 4", len(alerts), enriched)
	}

	// A restart: the runner replays the committed history into Warm, then
	// hands over new events. The group is still suppressed: no new alert.
	second := newDetectHandler(t)
	second.Assigned("events", 0)
	second.Warm(t.Context(), eventRecs(t, start, 0, 4))
	out, err = second.Handle(t.Context(), eventRecs(t, start, 4, 3))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := alertsOf(out); len(again) != 0 {
		t.Errorf("after warm-up the detector alerted again: %v", again)
	}

	// Without warm-up the same new events would alert: the test above is
	// not passing by accident.
	cold := newDetectHandler(t)
	out, err = cold.Handle(t.Context(), eventRecs(t, start, 4, 3))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := alertsOf(out); len(a) != 1 {
		t.Errorf("cold detector: %d alerts, want 1", len(a))
	}
}

func TestDetectSendsUndecodableEventsToDLQ(t *testing.T) {
	h := newDetectHandler(t)
	bad := &kgo.Record{Topic: "events", Value: []byte("{not json")}
	out, err := h.Handle(t.Context(), []*kgo.Record{bad})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Topic != "dlq" || !strings.Contains(Header(out[0], HeaderDLQReason), "decode event") {
		t.Fatalf("got %+v, want one DLQ record naming the decode error", out)
	}
}

func TestDetectEnrichesBeforeRulesAndOutput(t *testing.T) {
	h := newDetectHandler(t)
	en, err := enrich.New(enrich.DefaultConfig(), nil) // user-agent parsing is on by default
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = en.Close(t.Context()) })
	h.Enricher = en
	ev := schema.Event{Timestamp: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	ev.Event.ID = "e1"
	ev.UserAgent.Original = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	b, _ := json.Marshal(&ev)
	out, err := h.Handle(t.Context(), []*kgo.Record{{Topic: "events", Key: []byte("ip:x"), Value: b, Timestamp: ev.Timestamp}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Topic != "enriched" || string(out[0].Key) != "ip:x" {
		t.Fatalf("got %+v", out)
	}
	var got schema.Event
	if err := json.Unmarshal(out[0].Value, &got); err != nil {
		t.Fatal(err)
	}
	if got.UserAgent.Name != "Chrome" || got.UserAgent.OS.Name == "" {
		t.Errorf("enriched event lacks the parsed user agent: %+v", got.UserAgent)
	}
}

// recNotifier records what it was asked to send.
type recNotifier struct{ sent []string }

func (r *recNotifier) Notify(_ context.Context, alerts ...schema.Alert) (bool, error) {
	for _, a := range alerts {
		r.sent = append(r.sent, a.Event.ID)
	}
	return false, nil
}
func (r *recNotifier) Close(context.Context) error { return nil }

func alertRec(t *testing.T, id string) *kgo.Record {
	t.Helper()
	a := schema.Alert{Event: schema.EventMeta{ID: id, Kind: "alert"}}
	b, _ := json.Marshal(&a)
	return &kgo.Record{Topic: "alerts", Key: []byte(id), Value: b}
}

// TestNotifyPagesOnceAcrossRestartsAndForgetsAfterTTL runs the notify
// handler on an in-process broker: markers written by one handler are
// loaded by the next, which does not page again; markers older than the
// TTL are dropped and tombstoned.
func TestNotifyPagesOnceAcrossRestartsAndForgetsAfterTTL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "notified"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	base := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	prod, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	first := &recNotifier{}
	h := NewNotify("notified", "dlq", []Notifier{{Name: "slack", AlertNotifier: first}}, nil, nil, nil)
	h.Now = clock
	out, err := h.Handle(t.Context(), []*kgo.Record{alertRec(t, "a1"), alertRec(t, "a1")})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.sent) != 1 || len(out) != 1 {
		t.Fatalf("paged %v with %d markers, want a1 once", first.sent, len(out))
	}
	if err := prod.ProduceSync(t.Context(), out...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// A restart: the markers are loaded, a1 is not paged again, a2 is.
	sent, err := LoadSent(t.Context(), base, "notified")
	if err != nil {
		t.Fatal(err)
	}
	second := &recNotifier{}
	h2 := NewNotify("notified", "dlq", []Notifier{{Name: "slack", AlertNotifier: second}}, sent, nil, nil)
	h2.Now = clock
	h2.lastPrune = now // no prune yet
	out, err = h2.Handle(t.Context(), []*kgo.Record{alertRec(t, "a1"), alertRec(t, "a2")})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(second.sent) != "[a2]" {
		t.Errorf("after restart paged %v, want only a2", second.sent)
	}
	if err := prod.ProduceSync(t.Context(), out...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// Past the TTL the markers are dropped and tombstoned.
	now = now.Add(h2.TTL + 2*time.Hour)
	out, err = h2.Handle(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Value != nil || out[1].Value != nil {
		t.Fatalf("want 2 tombstones, got %+v", out)
	}
	if err := prod.ProduceSync(t.Context(), out...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	sent, err = LoadSent(t.Context(), base, "notified")
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 0 {
		t.Errorf("tombstoned markers still loaded: %v", sent)
	}
}
