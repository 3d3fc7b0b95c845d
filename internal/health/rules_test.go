package health

import (
	"strings"
	"testing"
	"time"
)

// flow records n events arriving at now from one busy stream.
func flow(m *Monitor, n int, now time.Time) {
	m.ObserveEvents("nginx", "edge", n, now, now)
}

func TestRuleErrorsEpisodes(t *testing.T) {
	m := newMonitor(t, nil) // rule_silence 15m
	r := RuleCounters{ID: "admin-path", Evals: 10, Matches: 1}
	m.ObserveRules([]RuleCounters{r}, t0)
	none(t, m.Check(t0), "no errors yet")

	// Errors reported by two partitions' detectors are summed.
	r.Errors = 2
	m.ObserveRules([]RuleCounters{r, {ID: "admin-path", Errors: 3}}, t0.Add(time.Minute))
	a := only(t, m.Check(t0.Add(time.Minute)), RuleRuleErrors)
	if a.Trailwatch.Count != 5 || a.Trailwatch.GroupKey["rule.id"] != "admin-path" || !strings.Contains(a.Message, "failed on 5 events") {
		t.Errorf("count %d key %v message %q; want 5 errors of admin-path", a.Trailwatch.Count, a.Trailwatch.GroupKey, a.Message)
	}

	// More errors in the same episode: no second page.
	r.Errors = 9
	m.ObserveRules([]RuleCounters{r}, t0.Add(5*time.Minute))
	none(t, m.Check(t0.Add(5*time.Minute)), "same episode")
	none(t, m.Check(t0.Add(19*time.Minute)), "14m after the last error")
	if s := m.Stats(); s.RulesErroring != 1 {
		t.Fatalf("erroring = %d, want 1", s.RulesErroring)
	}
	none(t, m.Check(t0.Add(20*time.Minute)), "episode ends rule_silence after the last error")
	if s := m.Stats(); s.RulesErroring != 0 || s.Recovered != 1 {
		t.Fatalf("after the episode: erroring %d recovered %d, want 0 1", s.RulesErroring, s.Recovered)
	}

	// A new error starts a new episode with a new id.
	r.Errors = 10
	m.ObserveRules([]RuleCounters{r}, t0.Add(time.Hour))
	b := only(t, m.Check(t0.Add(time.Hour)), RuleRuleErrors)
	if b.Trailwatch.Count != 1 || b.Event.ID == a.Event.ID {
		t.Errorf("second episode: count %d, same id %v; want 1, a new id", b.Trailwatch.Count, b.Event.ID == a.Event.ID)
	}
}

func TestRuleCounterDropIsBaseline(t *testing.T) {
	// A revoked partition drops its detector: the sums go down. That is
	// neither an error nor an evaluation.
	m := newMonitor(t, nil)
	m.ObserveRules([]RuleCounters{{ID: "r", Evals: 100, Matches: 5, Errors: 4}, {ID: "r", Evals: 100, Matches: 5, Errors: 4}}, t0)
	only(t, m.Check(t0), RuleRuleErrors) // errors already counted when first seen page
	m.ObserveRules([]RuleCounters{{ID: "r", Evals: 101, Matches: 5, Errors: 4}}, t0.Add(time.Minute))
	if r := m.rules["r"]; r.errCount != 8 || !r.evalAt.Equal(t0) {
		t.Fatalf("after a drop: errors %d evalAt %v; want 8 and no evaluation recorded", r.errCount, r.evalAt)
	}
	m.ObserveRules([]RuleCounters{{ID: "r", Evals: 102, Matches: 5, Errors: 4}}, t0.Add(2*time.Minute))
	if r := m.rules["r"]; !r.evalAt.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("evalAt = %v, want the increase after the new baseline", r.evalAt)
	}
}

func TestRuleNotEvaluated(t *testing.T) {
	tests := []struct {
		name    string
		matched bool // the rule matched before it stopped
		present bool // still in the reports, with Evals frozen
		events  int  // events arriving meanwhile
		want    string
	}{
		{name: "removed from the rule set", matched: true, events: 500, want: "no longer in the loaded rule set"},
		{name: "loaded but frozen", matched: true, present: true, events: 500, want: "still loaded"},
		{name: "never matched", present: true, events: 500},
		{name: "no events flowing", matched: true, events: 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMonitor(t, nil) // rule_silence 15m, rule_min_events 100
			other := RuleCounters{ID: "other", Evals: 1}
			r := RuleCounters{ID: "r", Evals: 10}
			if tt.matched {
				r.Matches = 1
			}
			flow(m, 10, t0)
			m.ObserveRules([]RuleCounters{r, other}, t0)
			for i := range 20 {
				now := t0.Add(time.Duration(i+1) * time.Minute)
				flow(m, tt.events/20, now)
				other.Evals += uint64(tt.events / 20)
				report := []RuleCounters{other}
				if tt.present {
					report = append(report, r)
				}
				m.ObserveRules(report, now)
				alerts := m.Check(now)
				if tt.want == "" || i+1 < 15 {
					none(t, alerts, "before rule_silence or not a candidate")
					continue
				}
				if i+1 > 15 {
					none(t, alerts, "same episode")
					continue
				}
				a := only(t, alerts, RuleRuleNotEvaluated)
				if !strings.Contains(a.Message, tt.want) || !a.Trailwatch.FirstSeen.Equal(t0) {
					t.Errorf("message %q first_seen %v; want %q since %v", a.Message, a.Trailwatch.FirstSeen, tt.want, t0)
				}
			}
			if tt.want == "" {
				return
			}
			// Evaluated again: cleared; frozen again: pages again.
			r.Evals++
			back := t0.Add(time.Hour)
			m.ObserveRules([]RuleCounters{r, other}, back)
			if s := m.Stats(); s.RulesNotEvaluated != 0 || s.Recovered != 1 {
				t.Fatalf("after evaluation: not-evaluated %d recovered %d, want 0 1", s.RulesNotEvaluated, s.Recovered)
			}
			flow(m, 200, back.Add(16*time.Minute))
			only(t, m.Check(back.Add(16*time.Minute)), RuleRuleNotEvaluated)
		})
	}
}

func TestRuleExpectMatches(t *testing.T) {
	m := newMonitor(t, func(c *Config) {
		c.ExpectMatches = map[string]time.Duration{"canary": time.Hour, "missing-canary": 2 * time.Hour}
	})
	canary := RuleCounters{ID: "canary", Evals: 1, Matches: 1}
	m.ObserveRules([]RuleCounters{canary}, t0)
	flow(m, 1000, t0.Add(30*time.Minute))
	canary.Evals += 1000
	m.ObserveRules([]RuleCounters{canary}, t0.Add(30*time.Minute))
	none(t, m.Check(t0.Add(59*time.Minute)), "within the bound")
	a := only(t, m.Check(t0.Add(time.Hour)), RuleRuleQuiet)
	if a.Trailwatch.GroupKey["rule.id"] != "canary" || !strings.Contains(a.Message, "expected within 1h0m0s") {
		t.Errorf("key %v message %q", a.Trailwatch.GroupKey, a.Message)
	}
	none(t, m.Check(t0.Add(90*time.Minute)), "same episode")

	// An expected rule that is not loaded at all is quiet too.
	q := only(t, m.Check(t0.Add(2*time.Hour)), RuleRuleQuiet)
	if q.Trailwatch.GroupKey["rule.id"] != "missing-canary" {
		t.Errorf("second quiet alert for %v, want missing-canary", q.Trailwatch.GroupKey)
	}

	// A match clears it; a new silence pages again.
	canary.Evals++
	canary.Matches++
	m.ObserveRules([]RuleCounters{canary}, t0.Add(3*time.Hour))
	if s := m.Stats(); s.RulesQuiet != 1 || s.Recovered != 1 {
		t.Fatalf("quiet %d recovered %d, want 1 (missing-canary) 1", s.RulesQuiet, s.Recovered)
	}
	flow(m, 100, t0.Add(4*time.Hour))
	canary.Evals += 100 // evaluated on every event, matching none
	m.ObserveRules([]RuleCounters{canary}, t0.Add(4*time.Hour))
	b := only(t, m.Check(t0.Add(4*time.Hour)), RuleRuleQuiet)
	if b.Trailwatch.GroupKey["rule.id"] != "canary" || b.Event.ID == a.Event.ID {
		t.Errorf("second canary episode: key %v, reused id %v", b.Trailwatch.GroupKey, b.Event.ID == a.Event.ID)
	}
}

func TestRulesForgotten(t *testing.T) {
	m := newMonitor(t, func(c *Config) { c.ForgetAfter = time.Hour })
	m.ObserveRules([]RuleCounters{{ID: "old", Evals: 1}}, t0)
	m.Check(t0.Add(2 * time.Hour))
	if s := m.Stats(); s.Rules != 0 {
		t.Errorf("rules = %d, want the unreported rule forgotten", s.Rules)
	}
}
