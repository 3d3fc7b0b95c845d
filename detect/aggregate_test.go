package detect

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// spray is a failed login for user from ip at sec seconds after t0.
func spray(sec float64, ip, user string) schema.Event {
	ev := fail401(sec, ip)
	ev.Event.ID = fmt.Sprintf("%s/%s@%v", ip, user, sec)
	ev.User.Name = user
	return ev
}

// download is a response of n body bytes to credential fp at sec.
func download(sec float64, fp string, n int64) schema.Event {
	return schema.Event{
		Timestamp:  at(sec),
		Event:      schema.EventMeta{ID: fmt.Sprintf("%s@%v", fp, sec)},
		HTTP:       schema.HTTP{Response: schema.HTTPResponse{StatusCode: 200, Body: schema.HTTPBody{Bytes: n}}},
		Trailwatch: schema.Trailwatch{Credential: schema.Credential{Fingerprint: fp}},
	}
}

const threeUsersIn10s = `
id: spray
title: Password spraying
where: http.response.status_code == 401
window: {count: 3, over: 10s, group_by: [source.ip], distinct: user.name}
`

// aggAlert is what the aggregation tests check of an alert.
type aggAlert struct {
	at     float64
	group  string
	count  int64
	value  float64
	first  float64
	sample string
}

func summarizeAgg(alerts []schema.Alert) []aggAlert {
	out := make([]aggAlert, len(alerts))
	for i, a := range alerts {
		var group []string
		for _, v := range a.Trailwatch.GroupKey {
			group = append(group, v)
		}
		out[i] = aggAlert{
			at:     a.Timestamp.Sub(t0).Seconds(),
			group:  strings.Join(group, ","),
			count:  a.Trailwatch.Count,
			value:  a.Trailwatch.Value,
			first:  a.Trailwatch.FirstSeen.Sub(t0).Seconds(),
			sample: strings.Join(a.Trailwatch.DistinctValues, ","),
		}
	}
	return out
}

func TestDistinct(t *testing.T) {
	a, b := "203.0.113.9", "198.51.100.23"
	tests := []struct {
		name      string
		lateness  time.Duration
		window    string // replaces the rule's window when set
		events    []schema.Event
		want      []aggAlert
		wantLate  uint64
		wantEvict uint64
	}{
		{
			name:   "fires at exactly count distinct values",
			events: []schema.Event{spray(0, a, "u1"), spray(1, a, "u2"), spray(2, a, "u3")},
			want:   []aggAlert{{at: 2, group: a, count: 3, value: 3, first: 0, sample: "u1,u2,u3"}},
		},
		{
			name:   "count minus one distinct value does not fire, however many events",
			events: []schema.Event{spray(0, a, "u1"), spray(1, a, "u2"), spray(2, a, "u1"), spray(3, a, "u2"), spray(4, a, "u2")},
		},
		{
			name:   "repeats count as events, not values",
			events: []schema.Event{spray(0, a, "u1"), spray(1, a, "u1"), spray(2, a, "u2"), spray(3, a, "u3")},
			want:   []aggAlert{{at: 3, group: a, count: 4, value: 3, first: 1, sample: "u1,u2,u3"}},
		},
		{
			name:   "empty values are not counted",
			events: []schema.Event{spray(0, a, "u1"), spray(1, a, ""), spray(2, a, "u2")},
		},
		{
			name:   "values slide out of the window",
			events: []schema.Event{spray(0, a, "u1"), spray(6, a, "u2"), spray(10, a, "u3"), spray(12, a, "u4")},
			want:   []aggAlert{{at: 12, group: a, count: 3, value: 3, first: 6, sample: "u2,u3,u4"}},
		},
		{
			// count includes u1@0: a value seen without a gap keeps its
			// events (documented; last-seen times only).
			name:   "a repeat keeps a value in the window",
			events: []schema.Event{spray(0, a, "u1"), spray(6, a, "u2"), spray(9, a, "u1"), spray(12, a, "u3")},
			want:   []aggAlert{{at: 12, group: a, count: 4, value: 3, first: 6, sample: "u2,u1,u3"}},
		},
		{
			name:   "groups are independent",
			events: []schema.Event{spray(0, a, "u1"), spray(0, b, "u2"), spray(1, a, "u3"), spray(2, b, "u4")},
		},
		{
			name: "suppressed, then fires again on values seen after the alert",
			events: []schema.Event{
				spray(0, a, "u1"), spray(1, a, "u2"), spray(2, a, "u3"), // fires at 2, quiet until 12
				spray(3, a, "u4"), spray(4, a, "u5"), spray(5, a, "u6"), // suppressed
				spray(12, a, "u7"), // window (2,12] holds u4..u7
			},
			want: []aggAlert{
				{at: 2, group: a, count: 3, value: 3, first: 0, sample: "u1,u2,u3"},
				{at: 12, group: a, count: 4, value: 4, first: 3, sample: "u4,u5,u6,u7"},
			},
		},
		{
			name:     "late events are counted and skipped",
			lateness: 5 * time.Second,
			events:   []schema.Event{spray(100, b, "x"), spray(0, a, "u1"), spray(1, a, "u2"), spray(2, a, "u3")},
			wantLate: 3,
		},
		{
			name:     "out of order within lateness and within the window counts",
			lateness: 5 * time.Second,
			events:   []schema.Event{spray(10, a, "u1"), spray(8, a, "u2"), spray(9, a, "u3")},
			want:     []aggAlert{{at: 9, group: a, count: 3, value: 3, first: 8, sample: "u2,u3,u1"}},
		},
		{
			name:     "out of order but older than the trailing window does not count",
			lateness: time.Minute,
			events:   []schema.Event{spray(20, a, "u1"), spray(21, a, "u2"), spray(5, a, "u3")},
		},
		{
			name:      "max_distinct equal to count still fires",
			window:    "window: {count: 3, over: 10s, group_by: [source.ip], distinct: user.name, max_distinct: 3}",
			events:    []schema.Event{spray(0, a, "u1"), spray(1, a, "u2"), spray(2, a, "u2"), spray(3, b, "u1"), spray(4, b, "u2"), spray(5, b, "u3")},
			want:      []aggAlert{{at: 5, group: b, count: 3, value: 3, first: 3, sample: "u1,u2,u3"}},
			wantEvict: 0,
		},
		{
			name:      "with suppress 0s the restarted window fires again",
			window:    "window: {count: 2, over: 10s, distinct: user.name, max_distinct: 2}\nsuppress: 0s",
			events:    []schema.Event{spray(0, a, "u1"), spray(1, a, "u2"), spray(2, a, "u3"), spray(3, a, "u4")},
			want:      []aggAlert{{at: 1, count: 2, value: 2, first: 0, sample: "u1,u2"}, {at: 3, count: 2, value: 2, first: 2, sample: "u3,u4"}},
			wantEvict: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := threeUsersIn10s
			if tt.window != "" {
				src = src[:strings.Index(src, "window:")] + tt.window + "\n"
			}
			cfg := DefaultConfig()
			cfg.AllowedLateness = tt.lateness
			d := mustDetector(t, mustRules(t, src), cfg)
			alerts, err := d.Observe(t.Context(), tt.events)
			if err != nil {
				t.Fatal(err)
			}
			if got := summarizeAgg(alerts); !slices.Equal(got, tt.want) {
				t.Errorf("alerts:\n got %+v\nwant %+v", got, tt.want)
			}
			st := d.Stats()
			if st.Late != tt.wantLate {
				t.Errorf("late: got %d, want %d", st.Late, tt.wantLate)
			}
			if st.DistinctEvictions != tt.wantEvict || st.Rules[0].DistinctEvictions != tt.wantEvict {
				t.Errorf("distinct evictions: got %d (rule %d), want %d", st.DistinctEvictions, st.Rules[0].DistinctEvictions, tt.wantEvict)
			}
		})
	}
}

func TestDistinctCap(t *testing.T) {
	// Four values in the window but a cap of three: the oldest is evicted
	// and counted, so the window never holds four.
	rs := mustRules(t, "id: cap\ntitle: Cap\nwhere: \"true\"\nwindow: {count: 3, over: 1m, distinct: user.name, max_distinct: 3}\nsuppress: 0s\n")
	d := mustDetector(t, rs, DefaultConfig())
	evs := []schema.Event{spray(0, "a", "u1"), spray(1, "a", "u1"), spray(2, "a", "u2")}
	if got, _ := d.Observe(t.Context(), evs); len(got) != 0 {
		t.Fatalf("fired below count: %+v", summarizeAgg(got))
	}
	st := d.Stats()
	if st.DistinctEvictions != 0 {
		t.Fatalf("evicted %d below the cap", st.DistinctEvictions)
	}
	rs = mustRules(t, "id: cap\ntitle: Cap\nwhere: \"true\"\nwindow: {count: 2, over: 1m, distinct: user.name, max_distinct: 2}\nsuppress: 1h\n")
	d = mustDetector(t, rs, DefaultConfig())
	evs = []schema.Event{spray(0, "a", "u1"), spray(1, "a", "u2"), spray(2, "a", "u3"), spray(3, "a", "u4"), spray(4, "a", "u5")}
	got, _ := d.Observe(t.Context(), evs)
	if len(got) != 1 {
		t.Fatalf("got %d alerts, want 1", len(got))
	}
	// After the alert at 1 the window restarts: u3 and u4 fill it (suppressed),
	// u5 evicts u3.
	if st := d.Stats(); st.DistinctEvictions != 1 || st.Suppressed != 2 {
		t.Errorf("evictions %d, suppressed %d; want 1, 2", st.DistinctEvictions, st.Suppressed)
	}
}

const sum100In10s = `
id: exfil
title: Large download volume
where: http.response.status_code == 200
window: {over: 10s, group_by: [trailwatch.credential.fingerprint], sum: http.response.body.bytes, threshold: 100}
`

func TestSumAvg(t *testing.T) {
	f, g := "fp-1", "fp-2"
	avg := strings.Replace(sum100In10s, "sum:", "avg:", 1)
	tests := []struct {
		name     string
		rule     string
		lateness time.Duration
		events   []schema.Event
		want     []aggAlert
		wantLate uint64
	}{
		{
			name:   "sum fires at exactly the threshold",
			rule:   sum100In10s,
			events: []schema.Event{download(0, f, 40), download(1, f, 20), download(2, f, 40)},
			want:   []aggAlert{{at: 2, group: f, count: 3, value: 100, first: 0}},
		},
		{
			name:   "sum one below the threshold does not fire",
			rule:   sum100In10s,
			events: []schema.Event{download(0, f, 40), download(1, f, 20), download(2, f, 39)},
		},
		{
			name:   "sum slides out of the window",
			rule:   sum100In10s,
			events: []schema.Event{download(0, f, 60), download(5, f, 30), download(10, f, 30), download(11, f, 40)},
			want:   []aggAlert{{at: 11, group: f, count: 3, value: 100, first: 5}},
		},
		{
			name:   "sum: groups are independent",
			rule:   sum100In10s,
			events: []schema.Event{download(0, f, 60), download(1, g, 60)},
		},
		{
			name: "sum: suppressed, then fires again",
			rule: sum100In10s,
			events: []schema.Event{
				download(0, f, 100),                     // fires, quiet until 10
				download(1, f, 100), download(2, f, 50), // suppressed
				download(10, f, 0), // window (0,10] holds 150
			},
			want: []aggAlert{{at: 0, group: f, count: 1, value: 100, first: 0}, {at: 10, group: f, count: 3, value: 150, first: 1}},
		},
		{
			name:     "sum: late events are counted and skipped",
			rule:     sum100In10s,
			lateness: 5 * time.Second,
			events:   []schema.Event{download(100, g, 1), download(0, f, 100)},
			wantLate: 1,
		},
		{
			name:     "sum: out of order within lateness and the window counts",
			rule:     sum100In10s,
			lateness: 5 * time.Second,
			events:   []schema.Event{download(10, f, 50), download(8, f, 50)},
			want:     []aggAlert{{at: 8, group: f, count: 2, value: 100, first: 8}},
		},
		{
			name:   "avg fires at exactly the threshold",
			rule:   avg,
			events: []schema.Event{download(0, f, 50), download(1, f, 150)},
			want:   []aggAlert{{at: 1, group: f, count: 2, value: 100, first: 0}},
		},
		{
			name:   "avg just below the threshold does not fire",
			rule:   avg,
			events: []schema.Event{download(0, f, 50), download(1, f, 149)},
		},
		{
			name:   "avg slides out of the window",
			rule:   avg,
			events: []schema.Event{download(0, f, 10), download(5, f, 99), download(10, f, 101)},
			want:   []aggAlert{{at: 10, group: f, count: 2, value: 100, first: 5}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.AllowedLateness = tt.lateness
			d := mustDetector(t, mustRules(t, tt.rule), cfg)
			alerts, err := d.Observe(t.Context(), tt.events)
			if err != nil {
				t.Fatal(err)
			}
			if got := summarizeAgg(alerts); !slices.Equal(got, tt.want) {
				t.Errorf("alerts:\n got %+v\nwant %+v", got, tt.want)
			}
			if got := d.Stats().Late; got != tt.wantLate {
				t.Errorf("late: got %d, want %d", got, tt.wantLate)
			}
		})
	}
}

func TestAggAlertFields(t *testing.T) {
	tests := []struct {
		name        string
		rule        string
		events      []schema.Event
		aggregation string
		message     string
		ids         string
	}{
		{
			name:        "count",
			rule:        threeIn10s,
			events:      []schema.Event{fail401(0, "a"), fail401(1, "a"), fail401(2, "a")},
			aggregation: "count",
			message:     "Three failures: 3 events in 10s for source.ip=a",
			ids:         "a@0,a@1,a@2",
		},
		{
			name:        "distinct",
			rule:        threeUsersIn10s,
			events:      []schema.Event{spray(0, "a", "u1"), spray(1, "a", "u2"), spray(2, "a", "u3")},
			aggregation: "distinct(user.name)",
			message:     "Password spraying: 3 distinct user.name in 10s (3 events) for source.ip=a",
			ids:         "a/u1@0,a/u2@1,a/u3@2",
		},
		{
			name:        "sum",
			rule:        sum100In10s,
			events:      []schema.Event{download(0, "fp", 99), download(1, "fp", 1)},
			aggregation: "sum(http.response.body.bytes)",
			message:     "Large download volume: sum(http.response.body.bytes) = 100 in 10s (2 events) for trailwatch.credential.fingerprint=fp",
			ids:         "fp@0,fp@1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustDetector(t, mustRules(t, tt.rule), DefaultConfig())
			alerts, err := d.Observe(t.Context(), tt.events)
			if err != nil || len(alerts) != 1 {
				t.Fatalf("got %d alerts, err %v", len(alerts), err)
			}
			tw := alerts[0].Trailwatch
			if tw.Aggregation != tt.aggregation || alerts[0].Message != tt.message || strings.Join(tw.EventIDs, ",") != tt.ids {
				t.Errorf("got aggregation %q, message %q, ids %v", tw.Aggregation, alerts[0].Message, tw.EventIDs)
			}
			if tw.Window != "10s" || tw.Value == 0 {
				t.Errorf("window %q, value %v", tw.Window, tw.Value)
			}
		})
	}
}

// aggRules are one rule of each new kind, quiet for 4s after alerting,
// over the stream of aggStream.
const aggRules = `
rules:
  - id: spray
    title: Spray
    where: http.response.status_code == 401
    window: {count: 3, over: 10s, group_by: [source.ip], distinct: user.name}
    suppress: 4s
  - id: volume
    title: Volume
    where: "true"
    window: {over: 10s, group_by: [source.ip], sum: http.response.body.bytes, threshold: 1000}
    suppress: 4s
  - id: big
    title: Big
    where: "true"
    window: {over: 5s, group_by: [source.ip], avg: http.response.body.bytes, threshold: 300}
    suppress: 4s
`

// aggStream is burst() with varied user names and response sizes.
func aggStream() []schema.Event {
	evs := burst()
	for i := range evs {
		evs[i].User.Name = fmt.Sprintf("u%d", i%5)
		evs[i].HTTP.Response.Body.Bytes = int64(i * 37 % 500)
	}
	return evs
}

func TestAggDeterminismAndWarm(t *testing.T) {
	rs := mustRules(t, aggRules)
	evs := aggStream()
	ids := func(alerts []schema.Alert) []string {
		var out []string
		for _, a := range alerts {
			out = append(out, a.Event.ID)
		}
		return out
	}
	run := func(batch int, advance bool) []string {
		d := mustDetector(t, rs, DefaultConfig())
		var out []string
		for start := 0; start < len(evs); start += batch {
			alerts, err := d.Observe(t.Context(), evs[start:min(start+batch, len(evs))])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ids(alerts)...)
			if advance {
				d.Advance(evs[min(start+batch, len(evs))-1].Timestamp)
			}
		}
		return out
	}
	all := run(len(evs), false)
	perRule := map[string]int{}
	d := mustDetector(t, rs, DefaultConfig())
	alerts, _ := d.Observe(t.Context(), evs)
	for _, a := range alerts {
		perRule[a.Rule.ID]++
	}
	if perRule["spray"] < 3 || perRule["volume"] < 3 || perRule["big"] < 3 {
		t.Fatalf("the stream must fire every rule a few times: %v", perRule)
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
			if got := run(v.batch, v.advance); !slices.Equal(got, all) {
				t.Errorf("alert ids differ:\n got %v\nwant %v", got, all)
			}
		})
	}
	for _, k := range []int{1, 50, 151, 299} {
		t.Run(fmt.Sprintf("warm %d events then observe", k), func(t *testing.T) {
			d := mustDetector(t, rs, DefaultConfig())
			d.Warm(evs[:k])
			after, err := d.Observe(t.Context(), evs[k:])
			if err != nil {
				t.Fatal(err)
			}
			d2 := mustDetector(t, rs, DefaultConfig())
			before, _ := d2.Observe(t.Context(), evs[:k])
			if joined := append(ids(before), ids(after)...); !slices.Equal(joined, all) {
				t.Errorf("warm+observe != one run:\n before %v\n after  %v\n all    %v", ids(before), ids(after), all)
			}
		})
	}
}

func TestAggAdvanceAndEviction(t *testing.T) {
	t.Run("Advance expires aggregation groups", func(t *testing.T) {
		d := mustDetector(t, mustRules(t, threeUsersIn10s+"suppress: 0s\n"), DefaultConfig())
		if _, err := d.Observe(t.Context(), []schema.Event{spray(0, "a", "u1"), spray(5, "b", "u1")}); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			maxSeen float64
			groups  int
		}{
			{60, 2}, // horizon 0
			{71, 1}, // horizon 11: a (newest 0) is out of reach, b (5) not
			{76, 0}, // horizon 16: b out of reach
		}
		for _, s := range steps {
			if _, err := d.Observe(t.Context(), []schema.Event{{Timestamp: at(s.maxSeen)}}); err != nil {
				t.Fatal(err)
			}
			d.Advance(at(s.maxSeen))
			if st := d.Stats(); st.Groups != s.groups {
				t.Errorf("after maxSeen %v: %d groups, want %d", s.maxSeen, st.Groups, s.groups)
			}
		}
	})
	t.Run("max_groups evicts aggregation groups", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxGroups = 2
		d := mustDetector(t, mustRules(t, sum100In10s), cfg)
		alerts, err := d.Observe(t.Context(), []schema.Event{
			download(0, "a", 60),
			download(1, "b", 1),
			download(2, "c", 1),  // evicts a
			download(3, "a", 40), // a starts over: 40, no alert
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(alerts) != 0 {
			t.Errorf("an evicted group kept its sum: %+v", summarizeAgg(alerts))
		}
		if st := d.Stats(); st.Evictions != 2 || st.Groups != 2 {
			t.Errorf("evictions %d, groups %d; want 2, 2", st.Evictions, st.Groups)
		}
	})
}

func TestExpectationValue(t *testing.T) {
	rs, err := Parse("t.yaml", []byte(threeUsersIn10s+`tests:
  - name: three users
    events:
      - {source.ip: 192.0.2.1, user.name: a, http.response.status_code: 401}
      - {source.ip: 192.0.2.1, user.name: b, http.response.status_code: 401}
      - {source.ip: 192.0.2.1, user.name: c, http.response.status_code: 401}
    expect: [{count: 3, value: 3, group: {source.ip: 192.0.2.1}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	x := rs[0].Tests[0].Expect[0]
	if x.Value == nil || *x.Value != 3 {
		t.Fatalf("value not parsed: %+v", x)
	}
	a := schema.Alert{Trailwatch: schema.AlertTrailwatch{Count: 3, Value: 3, GroupKey: map[string]string{"source.ip": "192.0.2.1"}}}
	if !x.Match(a) {
		t.Error("Match refused a matching alert")
	}
	a.Trailwatch.Value = 4
	if x.Match(a) {
		t.Error("Match accepted a different value")
	}
}
