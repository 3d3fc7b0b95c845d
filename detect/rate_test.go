package detect

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

const errorSpike = `
id: error-spike
title: Error spike
where: http.response.status_code >= 500
rate:
  by: [service.name]
  interval: 1m
  baseline: 10m
  min_history: 3m
  factor: 5
  min_count: 10
`

// failure is a 5xx of service svc at sec seconds after t0.
func failure(sec float64, svc string) schema.Event {
	return schema.Event{
		Timestamp: at(sec),
		Event:     schema.EventMeta{ID: fmt.Sprintf("%s@%v", svc, sec)},
		Service:   schema.Service{Name: svc},
		HTTP:      schema.HTTP{Response: schema.HTTPResponse{StatusCode: 503}},
	}
}

// errBurst returns n failures of svc spread evenly over the minute starting
// at minute m (plus off seconds).
func errBurst(m, n int, svc string) []schema.Event {
	out := make([]schema.Event, n)
	for i := range n {
		out[i] = failure(float64(m*60)+float64(i)*50/float64(n), svc)
	}
	return out
}

func joinEvents(parts ...[]schema.Event) []schema.Event { return slices.Concat(parts...) }

func TestRate(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		evs  []schema.Event
		want []float64
	}{
		{"a spike over a steady baseline fires at the crossing event",
			nil, joinEvents(errBurst(0, 2, "a"), errBurst(1, 2, "a"), errBurst(2, 2, "a"), errBurst(3, 2, "a"), errBurst(4, 12, "a")),
			[]float64{240 + 9*50.0/12}},
		{"steady traffic is quiet",
			nil, joinEvents(errBurst(0, 12, "a"), errBurst(1, 12, "a"), errBurst(2, 12, "a"), errBurst(3, 12, "a"), errBurst(4, 12, "a")), []float64{}},
		{"a spike below factor x baseline is quiet",
			nil, joinEvents(errBurst(0, 3, "a"), errBurst(1, 3, "a"), errBurst(2, 3, "a"), errBurst(3, 3, "a"), errBurst(4, 14, "a")), []float64{}},
		{"a spike below min_count is quiet",
			nil, joinEvents(errBurst(0, 1, "a"), errBurst(3, 1, "a"), errBurst(4, 9, "a")), []float64{}},
		{"a key with less than min_history is quiet",
			nil, joinEvents(errBurst(0, 1, "a"), errBurst(2, 20, "a")), []float64{}},
		{"empty buckets count in the baseline",
			nil, joinEvents(errBurst(0, 1, "a"), errBurst(3, 20, "a")), []float64{180 + 9*50.0/20}},
		{"a bucket fires at most once, the next one again",
			nil, joinEvents(errBurst(0, 1, "a"), errBurst(3, 20, "a"), errBurst(5, 40, "a")), []float64{180 + 9*50.0/20, 300 + 20*50.0/40}}, // baseline (1+20)/5 buckets,
		{"keys are separate",
			nil, joinEvents(errBurst(0, 1, "a"), errBurst(0, 10, "b"), errBurst(3, 10, "a"), errBurst(3, 10, "b")), []float64{180 + 9*50.0/10}},
		{"a key idle for a whole baseline starts over",
			nil, joinEvents(errBurst(0, 1, "a"), errBurst(20, 20, "a")), []float64{}},
		{"late events are skipped",
			func(c *Config) { c.AllowedLateness = 0 }, joinEvents(errBurst(0, 1, "a"), errBurst(5, 1, "b"), errBurst(3, 20, "a")), []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			d := mustDetector(t, mustRules(t, errorSpike), cfg)
			alerts, err := d.Observe(t.Context(), tt.evs)
			if err != nil {
				t.Fatal(err)
			}
			if got := fires(alerts); !slices.Equal(got, tt.want) {
				t.Errorf("alerts at %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRateAlertFields(t *testing.T) {
	d := mustDetector(t, mustRules(t, errorSpike), DefaultConfig())
	alerts, _ := d.Observe(t.Context(), joinEvents(errBurst(0, 2, "a"), errBurst(1, 2, "a"), errBurst(2, 2, "a"), errBurst(3, 2, "a"), errBurst(4, 12, "a")))
	if len(alerts) != 1 {
		t.Fatalf("got %d alerts, want 1", len(alerts))
	}
	a := alerts[0]
	tw := a.Trailwatch
	if tw.Aggregation != "rate(1m0s/10m0s)" || tw.Count != 10 || tw.Value != 10 || tw.Window != "1m0s" {
		t.Errorf("aggregation %q count %d value %v window %q", tw.Aggregation, tw.Count, tw.Value, tw.Window)
	}
	if !tw.FirstSeen.Equal(at(240)) || len(tw.EventIDs) != 10 || tw.EventIDs[0] != "a@240" {
		t.Errorf("first %v ids %v", tw.FirstSeen, tw.EventIDs)
	}
	if want := "Error spike: 10 events in 1m0s, baseline 2.0 per 1m0s over 4m0s for service.name=a"; a.Message != want {
		t.Errorf("message %q, want %q", a.Message, want)
	}
}

func TestRateSuppressWarmAdvance(t *testing.T) {
	rs := mustRules(t, errorSpike+"suppress: 3m\n")
	evs := joinEvents(errBurst(0, 1, "a"), errBurst(3, 20, "a"), errBurst(5, 40, "a"), errBurst(8, 80, "a"))
	d := mustDetector(t, rs, DefaultConfig())
	alerts, _ := d.Observe(t.Context(), evs)
	// The bucket at 8m needs 5 x (1+20+40)/8 events.
	if got, want := fires(alerts), []float64{180 + 9*50.0/20, 480 + 38*50.0/80}; !slices.Equal(got, want) {
		t.Errorf("alerts at %v, want %v", got, want)
	}
	if s := d.Stats(); s.Suppressed != 1 {
		t.Errorf("suppressed %d, want 1", s.Suppressed)
	}
	for split := range len(evs) {
		w := mustDetector(t, rs, DefaultConfig())
		w.Warm(evs[:split])
		w.Advance(evs[split].Timestamp)
		got, _ := w.Observe(t.Context(), evs[split:])
		var want []schema.Alert
		for _, a := range alerts {
			if !a.Timestamp.Before(evs[split].Timestamp) {
				want = append(want, a)
			}
		}
		if !slices.EqualFunc(got, want, func(a, b schema.Alert) bool { return a.Event.ID == b.Event.ID }) {
			t.Fatalf("warm %d events: alerts at %v, want %v", split, fires(got), fires(want))
		}
	}
	d.Observe(t.Context(), errBurst(30, 1, "b"))
	d.Advance(at(30 * 60))
	if s := d.Stats(); s.Groups != 1 || s.Expired != 1 {
		t.Errorf("groups %d expired %d after advancing past baseline", s.Groups, s.Expired)
	}
	if got := rs.MaxWindow(); got != 11*time.Minute {
		t.Errorf("MaxWindow %v, want baseline+interval", got)
	}
}
