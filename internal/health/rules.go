package health

import (
	"fmt"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// ruleTrack is what the Monitor knows of one rule's counters.
type ruleTrack struct {
	// Last reported sums over the reporting detectors.
	evals, matches, errors uint64
	seen                   time.Time // last report naming the rule
	present                bool      // named by the latest report
	everMatched            bool

	// When Evals (Matches) last increased, and the Monitor's event count
	// then: silence counts only while events keep flowing.
	evalAt, matchAt         time.Time
	evalEvents, matchEvents uint64

	// The current run-time error episode: from the first error seen to
	// rule_silence after the last one.
	errStart, errLast time.Time
	errCount          uint64

	errAlerted, notEvalAlerted, quietAlerted bool
}

// RuleCounters are one rule's cumulative counters from one detector, as in
// detect.RuleStats: the detect stage copies ID, Evals, Matches and Errors.
// (A local type keeps this package free of the rule engine.)
type RuleCounters struct {
	ID      string
	Evals   uint64
	Matches uint64
	Errors  uint64
}

// ObserveRules records the detectors' cumulative per-rule counters at wall
// time now. rules may hold one entry per rule per detector (the detect
// stage's partitions, concatenated): entries with the same ID are summed.
// A rule missing from rules counts as not evaluated. A sum that went down
// (a partition revoked and its detector dropped) is taken as the new
// baseline, neither an increase nor a stall.
func (m *Monitor) ObserveRules(rules []RuleCounters, now time.Time) {
	type sum struct{ evals, matches, errors uint64 }
	sums := make(map[string]sum, len(rules))
	for i := range rules {
		s := sums[rules[i].ID]
		s.evals += rules[i].Evals
		s.matches += rules[i].Matches
		s.errors += rules[i].Errors
		sums[rules[i].ID] = s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Expected rules are tracked from the first report even if absent: a
	// canary rule that is not loaded is as quiet as one that stopped
	// matching.
	for id := range m.cfg.ExpectMatches {
		if _, ok := m.rules[id]; !ok {
			m.rules[id] = &ruleTrack{evalAt: now, matchAt: now, evalEvents: m.events, matchEvents: m.events, seen: now}
		}
	}
	for _, r := range m.rules {
		r.present = false
	}
	for id, s := range sums {
		r, ok := m.rules[id]
		if !ok {
			r = &ruleTrack{evals: s.evals, matches: s.matches, evalAt: now, matchAt: now, evalEvents: m.events, matchEvents: m.events}
			m.rules[id] = r
			// Errors already counted when the rule is first seen are
			// errors all the same: the baseline is zero.
		}
		r.seen, r.present = now, true
		if s.matches > 0 {
			r.everMatched = true
		}
		if s.evals > r.evals {
			r.evalAt, r.evalEvents = now, m.events
			if r.notEvalAlerted {
				r.notEvalAlerted = false
				m.recovered("rule evaluated again", "rule", id)
			}
		}
		if s.matches > r.matches {
			r.matchAt, r.matchEvents = now, m.events
			if r.quietAlerted {
				r.quietAlerted = false
				m.recovered("expected rule matched again", "rule", id)
			}
		}
		if s.errors > r.errors {
			if r.errStart.IsZero() {
				r.errStart = now
			}
			r.errLast = now
			r.errCount += s.errors - r.errors
		}
		r.evals, r.matches, r.errors = s.evals, s.matches, s.errors
	}
}

func (m *Monitor) recovered(msg string, args ...any) {
	m.stats.Recovered++
	m.log.Info(msg, args...)
}

func (m *Monitor) checkRules(now time.Time, out []schema.Alert) []schema.Alert {
	for _, id := range sortedKeys(m.rules) {
		r := m.rules[id]
		_, expected := m.cfg.ExpectMatches[id]
		if !expected && now.Sub(r.seen) > m.cfg.ForgetAfter {
			delete(m.rules, id)
			continue
		}
		group := map[string]string{"rule.id": id}
		keys := []string{"rule.id"}

		if !r.errStart.IsZero() && now.Sub(r.errLast) >= m.cfg.RuleSilence {
			if r.errAlerted {
				m.recovered("rule errors stopped", "rule", id, "errors", r.errCount)
			}
			r.errStart, r.errLast, r.errCount, r.errAlerted = time.Time{}, time.Time{}, 0, false
		}
		if !r.errStart.IsZero() && !r.errAlerted {
			r.errAlerted = true
			m.log.Warn("rule errors", "rule", id, "errors", r.errCount)
			out = append(out, alert(finding{
				rule: RuleRuleErrors, name: "Detection rule errors", severity: "medium",
				description: "A detection rule failed at run time on some events: it cannot match those events. The events and the errors are in the dead-letter topic.",
				group:       group, keys: keys, start: r.errStart,
				count: int64(r.errCount), value: float64(r.errCount), agg: "errors",
				msg: fmt.Sprintf("Rule %s failed on %d events since %s; see the dead-letter topic for the reasons",
					id, r.errCount, r.errStart.UTC().Format(time.RFC3339)),
			}, now))
		}

		flowed := m.events - r.evalEvents
		if r.everMatched && !r.notEvalAlerted && now.Sub(r.evalAt) >= m.cfg.RuleSilence && flowed >= m.cfg.RuleMinEvents {
			r.notEvalAlerted = true
			why := "it is still loaded: its events may all be late (allowed_lateness) or its detectors stalled"
			if !r.present {
				why = "it is no longer in the loaded rule set"
			}
			m.log.Warn("rule not evaluated", "rule", id, "since", r.evalAt, "events", flowed, "loaded", r.present)
			out = append(out, alert(finding{
				rule: RuleRuleNotEvaluated, name: "Detection rule not evaluated", severity: "high",
				description: "A detection rule that used to match has not been evaluated while events kept arriving: whatever it detects goes unseen.",
				group:       group, keys: keys, start: r.evalAt,
				count: int64(flowed), value: now.Sub(r.evalAt).Seconds(), agg: "silence_seconds",
				msg: fmt.Sprintf("Rule %s not evaluated for %s while %d events arrived; %s",
					id, round(now.Sub(r.evalAt)), flowed, why),
			}, now))
		}

		if d, ok := m.cfg.ExpectMatches[id]; ok {
			flowed := m.events - r.matchEvents
			if !r.quietAlerted && now.Sub(r.matchAt) >= d && flowed >= m.cfg.RuleMinEvents {
				r.quietAlerted = true
				m.log.Warn("expected rule quiet", "rule", id, "since", r.matchAt, "events", flowed, "loaded", r.present)
				out = append(out, alert(finding{
					rule: RuleRuleQuiet, name: "Expected rule stopped matching", severity: "medium",
					description: "A rule listed in detect.health.expect_matches (a canary or heartbeat) has not matched for longer than its bound while events kept arriving.",
					group:       group, keys: keys, start: r.matchAt,
					count: int64(flowed), value: now.Sub(r.matchAt).Seconds(), agg: "silence_seconds",
					msg: fmt.Sprintf("Rule %s has not matched for %s (expected within %s) while %d events arrived",
						id, round(now.Sub(r.matchAt)), d, flowed),
				}, now))
			}
		}
	}
	return out
}
