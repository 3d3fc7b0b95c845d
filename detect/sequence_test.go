package detect

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

const failThenSuccess = `
id: fail-then-success
title: Failures then success
where: user.name != ""
sequence:
  by: [user.name]
  within: 10m
  steps:
    - {name: failures, where: 'http.response.status_code in [401, 403]', count: 3}
    - {name: success, where: 'http.response.status_code == 200'}
`

// login is a login by user with the given status at sec seconds after t0.
func login(sec float64, user string, status int) schema.Event {
	return schema.Event{
		Timestamp: at(sec),
		Event:     schema.EventMeta{ID: fmt.Sprintf("%s-%d@%v", user, status, sec)},
		User:      schema.User{Name: user},
		HTTP:      schema.HTTP{Response: schema.HTTPResponse{StatusCode: status}},
	}
}

// fires returns the times (seconds after t0) of the alerts.
func fires(alerts []schema.Alert) []float64 {
	out := []float64{}
	for _, a := range alerts {
		out = append(out, a.Timestamp.Sub(t0).Seconds())
	}
	return out
}

func TestSequence(t *testing.T) {
	unordered := `
id: both
title: Both
sequence:
  by: [user.name]
  within: 1m
  ordered: false
  steps:
    - {name: a, where: 'http.response.status_code == 401'}
    - {name: b, where: 'http.response.status_code == 200'}
`
	tests := []struct {
		name string
		rule string
		cfg  func(*Config)
		evs  []schema.Event
		want []float64
	}{
		{"three failures then success fire", failThenSuccess, nil,
			[]schema.Event{login(0, "al", 401), login(10, "al", 403), login(20, "al", 401), login(30, "al", 200)}, []float64{30}},
		{"success before the failures is quiet", failThenSuccess, nil,
			[]schema.Event{login(0, "al", 200), login(10, "al", 401), login(20, "al", 401), login(30, "al", 401)}, []float64{}},
		{"too few failures are quiet", failThenSuccess, nil,
			[]schema.Event{login(0, "al", 401), login(10, "al", 401), login(30, "al", 200)}, []float64{}},
		{"failures spread over more than within are quiet", failThenSuccess, nil,
			[]schema.Event{login(0, "al", 401), login(10, "al", 401), login(20, "al", 401), login(600, "al", 200)}, []float64{}},
		{"failures of another user do not count", failThenSuccess, nil,
			[]schema.Event{login(0, "al", 401), login(10, "bo", 401), login(20, "al", 401), login(30, "al", 200)}, []float64{}},
		{"the group starts over after firing", failThenSuccess, func(c *Config) {},
			[]schema.Event{login(0, "al", 401), login(1, "al", 401), login(2, "al", 401), login(3, "al", 200), login(700, "al", 200),
				login(701, "al", 401), login(702, "al", 401), login(703, "al", 401), login(704, "al", 200)}, []float64{3, 704}},
		{"a second success within suppress is suppressed", failThenSuccess, nil,
			[]schema.Event{login(0, "al", 401), login(1, "al", 401), login(2, "al", 401), login(3, "al", 200),
				login(4, "al", 401), login(5, "al", 401), login(6, "al", 401), login(7, "al", 200)}, []float64{3}},
		{"a late failure is skipped", failThenSuccess, func(c *Config) { c.AllowedLateness = time.Second },
			[]schema.Event{login(0, "al", 401), login(10, "al", 401), login(100, "bo", 200), login(20, "al", 401), login(110, "al", 200)}, []float64{}},
		{"an out-of-order failure within lateness counts", failThenSuccess, nil,
			[]schema.Event{login(0, "al", 401), login(20, "al", 401), login(10, "al", 401), login(30, "al", 200)}, []float64{30}},
		{"unordered fires in either order", unordered, nil,
			[]schema.Event{login(0, "al", 200), login(10, "al", 401), login(20, "bo", 401), login(30, "bo", 200)}, []float64{10, 30}},
		{"unordered needs every step within", unordered, nil,
			[]schema.Event{login(0, "al", 200), login(60, "al", 401)}, []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			d := mustDetector(t, mustRules(t, tt.rule), cfg)
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

func TestSequenceAlertFields(t *testing.T) {
	d := mustDetector(t, mustRules(t, failThenSuccess), DefaultConfig())
	evs := []schema.Event{login(0, "al", 401), login(5, "al", 200), login(10, "al", 401), login(20, "al", 401), login(30, "al", 401), login(40, "al", 200)}
	alerts, err := d.Observe(t.Context(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 {
		t.Fatalf("got %d alerts, want 1", len(alerts))
	}
	a := alerts[0]
	tw := a.Trailwatch
	if tw.Aggregation != "sequence(failures>success)" || tw.Count != 4 || tw.Window != "10m0s" {
		t.Errorf("aggregation %q count %d window %q", tw.Aggregation, tw.Count, tw.Window)
	}
	if !tw.FirstSeen.Equal(at(10)) || !tw.LastSeen.Equal(at(40)) {
		t.Errorf("first %v last %v, want the three newest failures and the success", tw.FirstSeen, tw.LastSeen)
	}
	wantIDs := []string{"al-401@10", "al-401@20", "al-401@30", "al-200@40"}
	if !slices.Equal(tw.EventIDs, wantIDs) {
		t.Errorf("ids %v, want %v", tw.EventIDs, wantIDs)
	}
	if tw.GroupKey["user.name"] != "al" {
		t.Errorf("group %v", tw.GroupKey)
	}
	if want := "Failures then success: failures (3) then success (1) within 10m0s for user.name=al"; a.Message != want {
		t.Errorf("message %q, want %q", a.Message, want)
	}
	if want := AlertID("fail-then-success", []string{"al"}, at(10), ""); a.Event.ID != want {
		t.Errorf("id %s, want %s", a.Event.ID, want)
	}
}

func TestSequenceWarmAndAdvance(t *testing.T) {
	evs := []schema.Event{login(0, "al", 401), login(1, "al", 401), login(2, "al", 401), login(3, "al", 200),
		login(10, "bo", 401), login(11, "bo", 401), login(12, "bo", 401), login(13, "bo", 200)}
	rs := mustRules(t, failThenSuccess)
	whole := mustDetector(t, rs, DefaultConfig())
	want, _ := whole.Observe(t.Context(), evs)
	for split := range len(evs) + 1 {
		d := mustDetector(t, rs, DefaultConfig())
		d.Warm(evs[:split])
		d.Advance(at(float64(split)))
		got, _ := d.Observe(t.Context(), evs[split:])
		var wantTail []schema.Alert // the alerts raised by events not warmed
		for _, a := range want {
			if split < len(evs) && !a.Timestamp.Before(evs[split].Timestamp) {
				wantTail = append(wantTail, a)
			}
		}
		if len(got) != len(wantTail) {
			t.Fatalf("split %d: got %d alerts, want %d", split, len(got), len(wantTail))
		}
		for i := range got {
			if got[i].Event.ID != wantTail[i].Event.ID {
				t.Errorf("split %d: alert %d id differs", split, i)
			}
		}
	}
	d := mustDetector(t, rs, DefaultConfig())
	d.Observe(t.Context(), append(evs[:2:2], login(700, "zz", 500)))
	d.Advance(at(700))
	if s := d.Stats(); s.Groups != 0 || s.Expired != 1 {
		t.Errorf("after advance past within+lateness: groups %d expired %d", s.Groups, s.Expired)
	}
}

func TestSequenceStepCap(t *testing.T) {
	d := mustDetector(t, mustRules(t, failThenSuccess), DefaultConfig())
	evs := make([]schema.Event, 0, MaxStepEvents+10)
	for i := range MaxStepEvents + 10 {
		evs = append(evs, login(float64(i)/10, "al", 401))
	}
	d.Observe(t.Context(), evs)
	s := d.Stats()
	if s.StepEvictions != 10 || s.Rules[0].StepEvictions != 10 {
		t.Errorf("step evictions %d (rule %d), want 10", s.StepEvictions, s.Rules[0].StepEvictions)
	}
	alerts, _ := d.Observe(t.Context(), []schema.Event{login(200, "al", 200)})
	if len(alerts) != 1 {
		t.Errorf("got %d alerts after the capped failures, want 1", len(alerts))
	}
}
