package health

import (
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// feed records n arrivals of a stream, gap apart from start, and returns
// the last arrival's time.
func feed(m *Monitor, source, name string, n int, start time.Time, gap time.Duration) time.Time {
	at := start
	for i := range n {
		at = start.Add(time.Duration(i) * gap)
		m.ObserveEvents(source, name, 3, at.Add(-time.Second), at)
	}
	return at
}

func TestSourceSilentEpisodes(t *testing.T) {
	m := newMonitor(t, nil) // min_silence 15m, factor 4
	last := feed(m, "nginx", "demo", 20, t0, 10*time.Second)

	none(t, m.Check(last.Add(15*time.Minute)), "silent exactly min_silence")
	a := only(t, m.Check(last.Add(15*time.Minute+time.Second)), RuleSourceSilent)
	if got := a.Trailwatch.GroupKey; got["trailwatch.source"] != "nginx" || got["trailwatch.raw.collector"] != "demo" {
		t.Errorf("group key = %v", got)
	}
	if !a.Trailwatch.FirstSeen.Equal(last) || a.Trailwatch.Severity != "high" || a.Trailwatch.Count != 60 {
		t.Errorf("first_seen %v severity %q count %d; want %v high 60", a.Trailwatch.FirstSeen, a.Trailwatch.Severity, a.Trailwatch.Count, last)
	}
	if !strings.Contains(a.Message, "nginx/demo") || !strings.Contains(a.Message, "usual gap 10s") {
		t.Errorf("message %q lacks the stream or its usual gap", a.Message)
	}
	none(t, m.Check(last.Add(time.Hour)), "same episode, later check")
	if s := m.Stats(); s.Silent != 1 || s.Alerts[RuleSourceSilent] != 1 {
		t.Errorf("stats silent %d alerts %d, want 1 1", s.Silent, s.Alerts[RuleSourceSilent])
	}

	// Events again: the episode clears, and the stream can page again.
	back := last.Add(2 * time.Hour)
	m.ObserveEvents("nginx", "demo", 1, back, back)
	if s := m.Stats(); s.Silent != 0 || s.Recovered != 1 {
		t.Errorf("after recovery: silent %d recovered %d, want 0 1", s.Silent, s.Recovered)
	}
	none(t, m.Check(back.Add(time.Minute)), "just recovered")
	b := only(t, m.Check(back.Add(16*time.Minute)), RuleSourceSilent)
	if b.Event.ID == a.Event.ID {
		t.Error("second episode reused the first episode's id")
	}
}

func TestAlertsCarryRoutes(t *testing.T) {
	m := newMonitor(t, func(c *Config) { c.Routes = []string{"platform-oncall"} })
	last := feed(m, "nginx", "demo", 10, t0, time.Second)
	a := only(t, m.Check(last.Add(time.Hour)), RuleSourceSilent)
	if len(a.Trailwatch.Routes) != 1 || a.Trailwatch.Routes[0] != "platform-oncall" {
		t.Errorf("routes = %v, want [platform-oncall]", a.Trailwatch.Routes)
	}
}

func TestSourceAlertIDDeterministic(t *testing.T) {
	// Two monitors with the same history raise the same id: a retried
	// produce, or a replayed check, pages once.
	var ids []string
	for range 2 {
		m := newMonitor(t, nil)
		last := feed(m, "nginx", "demo", 12, t0, time.Second)
		ids = append(ids, only(t, m.Check(last.Add(time.Hour)), RuleSourceSilent).Event.ID)
	}
	if ids[0] != ids[1] {
		t.Errorf("ids %v differ", ids)
	}
}

func TestSourceSilenceThreshold(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(*Config)
		source    string
		arrivals  int
		gap       time.Duration
		quietAt   time.Duration // no alert this long after the last arrival
		alertAt   time.Duration // an alert this long after it; 0: never
		wantLimit string        // in the message
	}{
		{name: "not enough history", source: "nginx", arrivals: 9, gap: time.Second, quietAt: 24 * time.Hour},
		{name: "just enough history", source: "nginx", arrivals: 10, gap: time.Second, quietAt: 15 * time.Minute, alertAt: 16 * time.Minute, wantLimit: "pages after 15m0s"},
		{name: "sparse stream waits for factor x usual gap", source: "cron", arrivals: 20, gap: 10 * time.Minute,
			quietAt: 40 * time.Minute, alertAt: 41 * time.Minute, wantLimit: "usual gap 10m0s, pages after 40m0s"},
		{name: "per-source floor", source: "s3", arrivals: 20, gap: time.Minute,
			edit:    func(c *Config) { c.SourceMinSilence = map[string]time.Duration{"s3": 2 * time.Hour} },
			quietAt: 2 * time.Hour, alertAt: 2*time.Hour + time.Second, wantLimit: "pages after 2h0m0s"},
		{name: "ignored source", source: "batch", arrivals: 50, gap: time.Second, quietAt: 24 * time.Hour,
			edit: func(c *Config) { c.IgnoreSources = []string{"batch"} }},
		{name: "min_arrivals lowered", source: "nginx", arrivals: 3, gap: time.Second, quietAt: 15 * time.Minute, alertAt: 16 * time.Minute,
			edit: func(c *Config) { c.MinArrivals = 3 }, wantLimit: "pages after 15m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMonitor(t, tt.edit)
			last := feed(m, tt.source, "c1", tt.arrivals, t0, tt.gap)
			none(t, m.Check(last.Add(tt.quietAt)), "before the threshold")
			if tt.alertAt == 0 {
				return
			}
			a := only(t, m.Check(last.Add(tt.alertAt)), RuleSourceSilent)
			if !strings.Contains(a.Message, tt.wantLimit) {
				t.Errorf("message %q lacks %q", a.Message, tt.wantLimit)
			}
		})
	}
}

func TestSourceUsualGapIgnoresOneOutage(t *testing.T) {
	// One long gap among 64 (an earlier outage) must not stretch the
	// usual gap, or the next outage would page hours late.
	m := newMonitor(t, nil)
	last := feed(m, "nginx", "demo", 30, t0, 10*time.Second)
	last = feed(m, "nginx", "demo", 30, last.Add(3*time.Hour), 10*time.Second)
	a := only(t, m.Check(last.Add(16*time.Minute)), RuleSourceSilent)
	if !strings.Contains(a.Message, "usual gap 10s") {
		t.Errorf("message %q: the outage stretched the usual gap", a.Message)
	}
}

func TestObserveStreamKeys(t *testing.T) {
	ev := func(source, collector, origin string) schema.Event {
		var e schema.Event
		e.Timestamp = t0
		e.Trailwatch.Source = source
		e.Trailwatch.Raw.Collector = collector
		e.Trailwatch.Raw.Origin = origin
		return e
	}
	batch := []schema.Event{
		ev("nginx", "edge", "/var/log/nginx/a.log"),
		ev("nginx", "edge", "/var/log/nginx/b.log"),
		ev("nginx", "edge", "/var/log/nginx/a.log"),
		ev("cloudtrail", "s3", "s3://b/k1"),
	}
	tests := []struct {
		key      string
		streams  int
		groupKey string
		silent   []string // stream names that page
	}{
		{key: KeyCollector, streams: 2, groupKey: "trailwatch.raw.collector", silent: []string{"s3", "edge"}},
		{key: KeyOrigin, streams: 3, groupKey: "trailwatch.raw.origin", silent: []string{"s3://b/k1", "/var/log/nginx/a.log", "/var/log/nginx/b.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			m := newMonitor(t, func(c *Config) { c.SourceKey = tt.key; c.MinArrivals = 2 })
			m.Observe(batch, t0)
			m.Observe(batch, t0.Add(time.Second))
			s := m.Stats()
			if s.Streams != tt.streams {
				t.Fatalf("streams = %d, want %d", s.Streams, tt.streams)
			}
			alerts := m.Check(t0.Add(time.Hour))
			var names []string
			for _, a := range alerts {
				names = append(names, a.Trailwatch.GroupKey[tt.groupKey])
			}
			// Sorted by source, then name.
			if strings.Join(names, ",") != strings.Join(tt.silent, ",") {
				t.Errorf("silent streams = %v, want %v", names, tt.silent)
			}
			if m.events != 8 {
				t.Errorf("events counted = %d, want 8", m.events)
			}
		})
	}
}

func TestStreamsBounded(t *testing.T) {
	m := newMonitor(t, func(c *Config) { c.MaxStreams = 2; c.ForgetAfter = 24 * time.Hour })
	m.ObserveEvents("a", "1", 1, t0, t0)
	m.ObserveEvents("b", "1", 1, t0, t0.Add(time.Second))
	m.ObserveEvents("a", "1", 1, t0, t0.Add(2*time.Second)) // b is now least recent
	m.ObserveEvents("c", "1", 1, t0, t0.Add(3*time.Second))
	s := m.Stats()
	if s.Streams != 2 || s.Evicted != 1 {
		t.Fatalf("streams %d evicted %d, want 2 1", s.Streams, s.Evicted)
	}
	if _, ok := m.streams[streamKey{"b", "1"}]; ok {
		t.Error("the least recently seen stream was kept")
	}
	// Past forget_after the rest go too.
	m.Check(t0.Add(25 * time.Hour))
	if s := m.Stats(); s.Streams != 0 {
		t.Errorf("streams after forget_after = %d, want 0", s.Streams)
	}
}
