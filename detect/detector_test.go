package detect

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// at returns t0 plus sec seconds.
func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// mustRules parses rules from YAML source.
func mustRules(t testing.TB, src string) *RuleSet {
	t.Helper()
	rules, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return &RuleSet{rules: rules}
}

func mustDetector(t testing.TB, rs *RuleSet, cfg Config) *Detector {
	t.Helper()
	d, err := New(rs, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fail401 is a failed login from ip at sec seconds after t0.
func fail401(sec float64, ip string) schema.Event {
	return schema.Event{
		Timestamp: at(sec),
		Event:     schema.EventMeta{ID: fmt.Sprintf("%s@%v", ip, sec)},
		Source:    schema.Endpoint{IP: ip},
		HTTP: schema.HTTP{
			Request:  schema.HTTPRequest{Method: "POST"},
			Response: schema.HTTPResponse{StatusCode: 401},
		},
		URL: schema.URL{Path: "/api/login"},
	}
}

const threeIn10s = `
id: three-in-10s
title: Three failures
severity: high
tags: [attack.t1110, owasp.api2]
references: [https://attack.mitre.org/techniques/T1110/]
author: tester
where: http.response.status_code == 401
window: {count: 3, over: 10s, group_by: [source.ip]}
`

// wantAlert is what a test checks of an alert: trigger time, group,
// count and first event time.
type wantAlert struct {
	at    float64
	ip    string
	count int64
	first float64
}

func summarize(alerts []schema.Alert) []wantAlert {
	out := make([]wantAlert, len(alerts))
	for i, a := range alerts {
		out[i] = wantAlert{
			at:    a.Timestamp.Sub(t0).Seconds(),
			ip:    a.Trailwatch.GroupKey["source.ip"],
			count: a.Trailwatch.Count,
			first: a.Trailwatch.FirstSeen.Sub(t0).Seconds(),
		}
	}
	return out
}

func TestThreshold(t *testing.T) {
	a, b := "203.0.113.9", "198.51.100.23"
	tests := []struct {
		name     string
		lateness time.Duration
		events   []schema.Event
		want     []wantAlert
		wantLate uint64
	}{
		{
			name:   "fires at exactly count",
			events: []schema.Event{fail401(0, a), fail401(1, a), fail401(2, a)},
			want:   []wantAlert{{at: 2, ip: a, count: 3, first: 0}},
		},
		{
			name:   "count minus one does not fire",
			events: []schema.Event{fail401(0, a), fail401(1, a)},
		},
		{
			name:   "events spread over more than the window do not fire",
			events: []schema.Event{fail401(0, a), fail401(6, a), fail401(12, a)},
		},
		{
			name:   "window is half-open: a span of exactly over does not fire",
			events: []schema.Event{fail401(0, a), fail401(5, a), fail401(10, a)},
		},
		{
			name:   "the window slides",
			events: []schema.Event{fail401(0, a), fail401(6, a), fail401(12, a), fail401(13, a)},
			want:   []wantAlert{{at: 13, ip: a, count: 3, first: 6}},
		},
		{
			name: "suppressed until suppress after the alert, then fires again",
			events: []schema.Event{
				fail401(0, a), fail401(1, a), fail401(2, a), // fires at 2, quiet until 12
				fail401(3, a), fail401(4, a), fail401(5, a), // a full window, suppressed
				fail401(12, a), // window (2,12] holds 3,4,5,12
			},
			want: []wantAlert{{at: 2, ip: a, count: 3, first: 0}, {at: 12, ip: a, count: 4, first: 3}},
		},
		{
			name: "an event counts toward one alert only",
			events: []schema.Event{
				fail401(0, a), fail401(1, a), fail401(2, a),
				fail401(20, a), fail401(21, a),
			},
			want: []wantAlert{{at: 2, ip: a, count: 3, first: 0}},
		},
		{
			name: "two groups are independent",
			events: []schema.Event{
				fail401(0, a), fail401(0, b), fail401(1, a), fail401(1, b), fail401(2, a),
			},
			want: []wantAlert{{at: 2, ip: a, count: 3, first: 0}},
		},
		{
			name:     "late events are counted and skipped",
			lateness: 5 * time.Second,
			events:   []schema.Event{fail401(100, b), fail401(0, a), fail401(1, a), fail401(2, a)},
			wantLate: 3,
		},
		{
			name:     "out of order within lateness",
			lateness: 5 * time.Second,
			events:   []schema.Event{fail401(10, a), fail401(8, a), fail401(9, a)},
			want:     []wantAlert{{at: 9, ip: a, count: 3, first: 8}},
		},
		{
			name:     "an out-of-order event completes a window reaching past it",
			lateness: 30 * time.Second,
			events:   []schema.Event{fail401(20, a), fail401(24, a), fail401(30, b), fail401(15, a)},
			want:     []wantAlert{{at: 15, ip: a, count: 3, first: 15}},
		},
		{
			name:     "zero lateness drops any out-of-order event",
			lateness: 0,
			events:   []schema.Event{fail401(10, a), fail401(8, a), fail401(11, a)},
			wantLate: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.AllowedLateness = tt.lateness
			d := mustDetector(t, mustRules(t, threeIn10s), cfg)
			alerts, err := d.Observe(t.Context(), tt.events)
			if err != nil {
				t.Fatal(err)
			}
			if got := summarize(alerts); !slices.Equal(got, tt.want) {
				t.Errorf("alerts:\n got %+v\nwant %+v", got, tt.want)
			}
			if got := d.Stats().Late; got != tt.wantLate {
				t.Errorf("late: got %d, want %d", got, tt.wantLate)
			}
		})
	}
}

func TestAlertFields(t *testing.T) {
	d := mustDetector(t, mustRules(t, threeIn10s), DefaultConfig())
	evs := []schema.Event{fail401(0, "203.0.113.9"), fail401(1, "203.0.113.9"), fail401(2, "203.0.113.9")}
	evs[2].User.Name = "alice"
	evs[2].Trailwatch.Credential = schema.Credential{Fingerprint: "fp1", Type: "bearer"}
	for i := range evs {
		evs[i].Trailwatch.Raw = schema.RawRef{Hash: fmt.Sprintf("digest-%d", i), Partition: 2, KafkaOffset: int64(40 + i)}
	}
	alerts, err := d.Observe(t.Context(), evs)
	if err != nil || len(alerts) != 1 {
		t.Fatalf("got %d alerts, err %v", len(alerts), err)
	}
	a := alerts[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"@timestamp", a.Timestamp, at(2)},
		{"event.kind", a.Event.Kind, "alert"},
		{"event.id", a.Event.ID, AlertID("three-in-10s", []string{"203.0.113.9"}, at(0), "")},
		{"event.id length", len(a.Event.ID), 32},
		{"event.severity", a.Event.Severity, 73},
		{"rule.id", a.Rule.ID, "three-in-10s"},
		{"rule.name", a.Rule.Name, "Three failures"},
		{"rule.reference", strings.Join(a.Rule.Reference, ","), "https://attack.mitre.org/techniques/T1110/"},
		{"rule.author", strings.Join(a.Rule.Author, ","), "tester"},
		{"threat.framework", a.Threat.Framework, "MITRE ATT&CK"},
		{"threat.technique", fmt.Sprint(a.Threat.Technique), "[{T1110}]"},
		{"tags", strings.Join(a.Tags, ","), "attack.t1110,owasp.api2"},
		{"trailwatch.severity", a.Trailwatch.Severity, "high"},
		{"group_key", fmt.Sprint(a.Trailwatch.GroupKey), "map[source.ip:203.0.113.9]"},
		{"count", a.Trailwatch.Count, int64(3)},
		{"window", a.Trailwatch.Window, "10s"},
		{"first_seen", a.Trailwatch.FirstSeen, at(0)},
		{"last_seen", a.Trailwatch.LastSeen, at(2)},
		{"event_ids", strings.Join(a.Trailwatch.EventIDs, ","), "203.0.113.9@0,203.0.113.9@1,203.0.113.9@2"},
		{"actor", a.Trailwatch.Actor, "cred:fp1"},
		{"credential", a.Trailwatch.Credential.Fingerprint, "fp1"},
		{"source.ip", a.Source.IP, "203.0.113.9"},
		{"user.name", a.User.Name, "alice"},
		{"url.path", a.URL.Path, "/api/login"},
		{"message", a.Message, "Three failures: 3 events in 10s for source.ip=203.0.113.9"},
		// The raw record of the event that fired it.
		{"raw.hash", a.Trailwatch.Raw.Hash, "digest-2"},
		{"raw.partition", a.Trailwatch.Raw.Partition, int32(2)},
		{"raw.kafka_offset", a.Trailwatch.Raw.KafkaOffset, int64(42)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEventIDsSampleAtMostTen(t *testing.T) {
	rs := mustRules(t, `
id: many
title: Many
where: "true"
window: {count: 25, over: 1m}
`)
	d := mustDetector(t, rs, DefaultConfig())
	var evs []schema.Event
	for i := range 25 {
		evs = append(evs, fail401(float64(i), "192.0.2.1"))
	}
	alerts, err := d.Observe(t.Context(), evs)
	if err != nil || len(alerts) != 1 {
		t.Fatalf("got %d alerts, err %v", len(alerts), err)
	}
	a := alerts[0]
	if len(a.Trailwatch.EventIDs) != 10 || a.Trailwatch.Count != 25 || a.Trailwatch.GroupKey != nil {
		t.Errorf("got %d ids, count %d, group %v", len(a.Trailwatch.EventIDs), a.Trailwatch.Count, a.Trailwatch.GroupKey)
	}
	if a.Message != "Many: 25 events in 1m0s" {
		t.Errorf("message: %q", a.Message)
	}
}

func TestWindowless(t *testing.T) {
	env := func(sec float64, ip string, status int) schema.Event {
		return schema.Event{
			Timestamp: at(sec),
			Event:     schema.EventMeta{ID: fmt.Sprintf("e%v", sec)},
			Source:    schema.Endpoint{IP: ip},
			HTTP:      schema.HTTP{Request: schema.HTTPRequest{Method: "GET"}, Response: schema.HTTPResponse{StatusCode: status}},
			URL:       schema.URL{Path: "/.env"},
		}
	}
	tests := []struct {
		name     string
		suppress string
		events   []schema.Event
		want     []float64 // trigger times
	}{
		{"each match alerts", "", []schema.Event{env(0, "a", 200), env(1, "a", 200), env(2, "a", 404)}, []float64{0, 1}},
		{"two matches at the same instant are two alerts", "", []schema.Event{env(0, "a", 200), env(0, "a", 200)}, []float64{0, 0}},
		{"suppress per actor", "suppress: 10s", []schema.Event{env(0, "a", 200), env(1, "b", 200), env(5, "a", 200), env(10, "a", 200)}, []float64{0, 1, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustRules(t, "id: env\ntitle: Env served\nwhere: http.response.status_code == 200\n"+tt.suppress)
			d := mustDetector(t, rs, DefaultConfig())
			evs := tt.events
			if tt.name == "two matches at the same instant are two alerts" {
				evs[1].Event.ID = "other"
			}
			alerts, err := d.Observe(t.Context(), evs)
			if err != nil {
				t.Fatal(err)
			}
			var got []float64
			ids := map[string]bool{}
			for _, a := range alerts {
				got = append(got, a.Timestamp.Sub(t0).Seconds())
				ids[a.Event.ID] = true
				if a.Trailwatch.Count != 1 || a.Trailwatch.GroupKey[actorGroupName] != "ip:"+a.Source.IP {
					t.Errorf("alert %+v", a.Trailwatch)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got alerts at %v, want %v", got, tt.want)
			}
			if len(ids) != len(alerts) {
				t.Errorf("alert ids collide: %v", ids)
			}
		})
	}
	d := mustDetector(t, mustRules(t, "id: env\ntitle: Env served\nwhere: http.response.status_code == 200\n"), DefaultConfig())
	alerts, _ := d.Observe(t.Context(), []schema.Event{env(0, "198.51.100.23", 200)})
	if want := "Env served: GET /.env -> 200 for trailwatch.actor=ip:198.51.100.23"; alerts[0].Message != want {
		t.Errorf("message: got %q, want %q", alerts[0].Message, want)
	}
}

// burst builds a deterministic, interleaved stream: several sources, some
// bursting, with small out-of-order jitter.
func burst() []schema.Event {
	var evs []schema.Event
	for i := range 300 {
		ip := fmt.Sprintf("192.0.2.%d", i%7)
		sec := float64(i) / 3
		if i%11 == 0 {
			sec -= 2 // out of order, within lateness
		}
		evs = append(evs, fail401(sec, ip))
	}
	return evs
}

func TestDeterminism(t *testing.T) {
	rs := mustRules(t, threeIn10s+"suppress: 4s\n")
	evs := burst()
	run := func(batch int, advance bool) []string {
		d := mustDetector(t, rs, DefaultConfig())
		var ids []string
		for start := 0; start < len(evs); start += batch {
			alerts, err := d.Observe(t.Context(), evs[start:min(start+batch, len(evs))])
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range alerts {
				ids = append(ids, a.Event.ID)
			}
			if advance {
				d.Advance(evs[min(start+batch, len(evs))-1].Timestamp)
			}
		}
		return ids
	}
	first := run(len(evs), false)
	if len(first) < 5 {
		t.Fatalf("stream raised only %d alerts; the test needs more", len(first))
	}
	for _, v := range []struct {
		name    string
		batch   int
		advance bool
	}{
		{"same run again", len(evs), false},
		{"one event per batch", 1, false},
		{"batches of 17 with Advance", 17, true},
	} {
		t.Run(v.name, func(t *testing.T) {
			if got := run(v.batch, v.advance); !slices.Equal(got, first) {
				t.Errorf("alert ids differ:\n got %v\nwant %v", got, first)
			}
		})
	}
}

func TestWarmDoesNotReemit(t *testing.T) {
	rs := mustRules(t, threeIn10s+"suppress: 4s\n")
	evs := burst()
	d := mustDetector(t, rs, DefaultConfig())
	all, err := d.Observe(t.Context(), evs)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 50, 151, 299} {
		t.Run(fmt.Sprintf("restart after %d events", k), func(t *testing.T) {
			d := mustDetector(t, rs, DefaultConfig())
			d.Warm(evs[:k])
			got, err := d.Observe(t.Context(), evs[k:])
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []string
			for _, a := range got {
				gotIDs = append(gotIDs, a.Event.ID)
			}
			// Alerts raised while warming are exactly the ones not
			// re-emitted: the union is the uninterrupted run.
			d2 := mustDetector(t, rs, DefaultConfig())
			before, _ := d2.Observe(t.Context(), evs[:k])
			var beforeIDs []string
			for _, a := range before {
				beforeIDs = append(beforeIDs, a.Event.ID)
			}
			var allIDs []string
			for _, a := range all {
				allIDs = append(allIDs, a.Event.ID)
			}
			if joined := append(beforeIDs, gotIDs...); !slices.Equal(joined, allIDs) {
				t.Errorf("warm+observe != one run:\n before %v\n after  %v\n all    %v", beforeIDs, gotIDs, allIDs)
			}
			if st := d.Stats(); st.Alerts != uint64(len(gotIDs)) {
				t.Errorf("Stats.Alerts counts warmed alerts: %d", st.Alerts)
			}
		})
	}
}

func TestMaxGroups(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxGroups = 2
	d := mustDetector(t, mustRules(t, threeIn10s), cfg)
	alerts, err := d.Observe(t.Context(), []schema.Event{
		fail401(0, "a"), fail401(0, "a"),
		fail401(1, "b"),
		fail401(2, "c"), // evicts a, the least recently touched
		fail401(3, "a"), // a starts over (evicting b): one event, no alert
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 0 {
		t.Errorf("an evicted group kept its count: %+v", summarize(alerts))
	}
	st := d.Stats()
	if st.Evictions != 2 || st.Groups != 2 || st.Rules[0].Groups != 2 {
		t.Errorf("evictions %d, groups %d, rule groups %d; want 2, 2, 2", st.Evictions, st.Groups, st.Rules[0].Groups)
	}
}

func TestAdvanceExpires(t *testing.T) {
	d := mustDetector(t, mustRules(t, threeIn10s), DefaultConfig())
	if _, err := d.Observe(t.Context(), []schema.Event{fail401(0, "a"), fail401(1, "a"), fail401(2, "a"), fail401(5, "b")}); err != nil {
		t.Fatal(err)
	}
	// a is suppressed until 12; b's event at 5 can pair with events up to
	// 15. Non-late events come no earlier than maxSeen - 1m.
	steps := []struct {
		maxSeen float64
		groups  int
	}{
		{60, 2},  // horizon 0
		{73, 1},  // horizon 13: a's suppression ended, b still in reach (5 > 13-10)
		{76, 0},  // horizon 16: b out of reach
		{200, 0}, // nothing left
	}
	for _, s := range steps {
		if _, err := d.Observe(t.Context(), []schema.Event{{Timestamp: at(s.maxSeen)}}); err != nil {
			t.Fatal(err)
		}
		if got := d.Advance(at(s.maxSeen + 3600)); got != nil {
			t.Errorf("Advance returned alerts: %v", got)
		}
		if st := d.Stats(); st.Groups != s.groups {
			t.Errorf("after maxSeen %v: %d groups, want %d", s.maxSeen, st.Groups, s.groups)
		}
	}
	if st := d.Stats(); st.Expired != 2 {
		t.Errorf("expired %d, want 2", st.Expired)
	}
}

func TestRuleErrors(t *testing.T) {
	rs := mustRules(t, `
rules:
  - id: first-tag
    title: First tag
    where: tags[0] == "x"
  - id: ok
    title: OK
    where: http.response.status_code == 401
`)
	d := mustDetector(t, rs, DefaultConfig())
	evs := []schema.Event{fail401(0, "a"), fail401(1, "a")}
	evs[1].Tags = []string{"x"}
	alerts, err := d.Observe(t.Context(), evs)
	if err != nil {
		t.Fatalf("a rule error must not fail the batch: %v", err)
	}
	if len(alerts) != 3 {
		t.Errorf("got %d alerts, want 3 (the other rule keeps working)", len(alerts))
	}
	errs := d.DrainRuleErrors()
	if len(errs) != 1 || errs[0].RuleID != "first-tag" || errs[0].EventID != evs[0].Event.ID {
		t.Fatalf("rule errors: %v", errs)
	}
	if !strings.Contains(errs[0].Error(), "rule first-tag on event") {
		t.Errorf("error text: %v", errs[0])
	}
	if again := d.DrainRuleErrors(); len(again) != 0 {
		t.Errorf("drain must forget: %v", again)
	}
	d.Warm(evs[:1])
	st := d.Stats()
	if st.RuleErrors != 2 || st.Rules[0].Errors != 2 || len(d.DrainRuleErrors()) != 0 {
		t.Errorf("warm errors are counted but not kept again: %+v", st)
	}
	if st.Rules[0].Evals != 3 || st.Rules[1].Matches != 3 || st.Rules[1].EvalTime <= 0 {
		t.Errorf("rule stats: %+v", st.Rules)
	}
}

func TestRuleErrorsBounded(t *testing.T) {
	d := mustDetector(t, mustRules(t, "id: bad\ntitle: Bad\nwhere: tags[0] == \"x\"\n"), DefaultConfig())
	evs := make([]schema.Event, maxPendingRuleErrors+5)
	if _, err := d.Observe(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if got := len(d.DrainRuleErrors()); got != maxPendingRuleErrors {
		t.Errorf("kept %d errors", got)
	}
	if st := d.Stats(); st.RuleErrorsDropped != 5 {
		t.Errorf("dropped %d, want 5", st.RuleErrorsDropped)
	}
}

func TestObserveCanceled(t *testing.T) {
	d := mustDetector(t, mustRules(t, threeIn10s), DefaultConfig())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.Observe(ctx, []schema.Event{fail401(0, "a")}); err == nil {
		t.Fatal("want the context's error")
	}
	if st := d.Stats(); st.Events != 0 {
		t.Errorf("a canceled Observe changed state: %+v", st)
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	err := Config{AllowedLateness: -time.Second}.Validate()
	for _, want := range []string{"allowed_lateness: must not be negative", "max_groups: must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v lacks %q", err, want)
		}
	}
	if _, err := New(&RuleSet{}, Config{}, nil); err == nil {
		t.Error("New must validate its config")
	}
	if _, err := New(nil, DefaultConfig(), nil); err == nil {
		t.Error("New must refuse a nil rule set")
	}
	d := mustDetector(t, mustRules(t, threeIn10s), DefaultConfig())
	if info := d.Rules(); len(info) != 1 || info[0].ID != "three-in-10s" || info[0].Severity != "high" {
		t.Errorf("Rules: %+v", info)
	}
}
