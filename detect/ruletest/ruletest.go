// Package ruletest runs the inline tests of detection rules: for each test
// case it builds a fresh detector holding only the rule under test, feeds it
// the case's events, and compares the alerts raised with the expected ones.
// It is the harness behind `go test ./rules/...` and `trailwatch rules test`.
//
// It deliberately checks only what a test case states (alert count, and per
// alert its event count and group key); it does not check messages, ids or
// timing, which the detect package's own tests cover.
package ruletest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// DefaultStart is the timestamp given to a test's first event when it has
// none; each following event without one is 1 s later than its position's
// predecessor (event i gets DefaultStart + i seconds).
var DefaultStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Result is the outcome of one test case.
type Result struct {
	RuleID string
	Test   string
	// Pos is "file:line:col" of the test case.
	Pos string
	// Failure explains what differed, with a want/got listing; empty if
	// the test passed.
	Failure string
}

// Passed reports whether the test case passed.
func (r Result) Passed() bool { return r.Failure == "" }

// String formats the result as one line, or several for a failure.
func (r Result) String() string {
	if r.Passed() {
		return fmt.Sprintf("ok   %s %q", r.RuleID, r.Test)
	}
	return fmt.Sprintf("FAIL %s %q (%s)\n%s", r.RuleID, r.Test, r.Pos, r.Failure)
}

// Run runs every test case of every rule in rs, in rule order.
func Run(rs *detect.RuleSet) []Result {
	var out []Result
	for _, r := range rs.Rules() {
		for _, tc := range r.Tests {
			out = append(out, runCase(rs.Subset(r.ID), r, tc))
		}
	}
	return out
}

// Events returns a test case's events with defaults filled in: a missing
// @timestamp becomes DefaultStart plus the event's index in seconds, and a
// missing event.id becomes "test-<index>".
func Events(tc detect.TestCase) []schema.Event {
	evs := slices.Clone(tc.Events)
	for i := range evs {
		if evs[i].Timestamp.IsZero() {
			evs[i].Timestamp = DefaultStart.Add(time.Duration(i) * time.Second)
		}
		if evs[i].Event.ID == "" {
			evs[i].Event.ID = fmt.Sprintf("test-%d", i)
		}
	}
	return evs
}

func runCase(only *detect.RuleSet, r *detect.Rule, tc detect.TestCase) Result {
	res := Result{RuleID: r.ID, Test: tc.Name, Pos: tc.Pos}
	d, err := detect.New(only, detect.DefaultConfig(), nil)
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	alerts, err := d.Observe(context.Background(), Events(tc))
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	var b strings.Builder
	for _, re := range d.DrainRuleErrors() {
		fmt.Fprintf(&b, "  run-time error: %v\n", re)
	}
	if !matches(tc.Expect, alerts) {
		fmt.Fprintf(&b, "  want %d alert(s):\n", len(tc.Expect))
		for i, x := range tc.Expect {
			mark := " "
			if i >= len(alerts) || !match(x, alerts[i]) {
				mark = "-"
			}
			fmt.Fprintf(&b, "  %s [%d] %s\n", mark, i, formatExpect(x))
		}
		fmt.Fprintf(&b, "  got %d alert(s):\n", len(alerts))
		for i, a := range alerts {
			mark := " "
			if i >= len(tc.Expect) || !match(tc.Expect[i], a) {
				mark = "+"
			}
			fmt.Fprintf(&b, "  %s [%d] count=%d group=%s at %s: %s\n", mark, i, a.Trailwatch.Count,
				formatGroup(a.Trailwatch.GroupKey), a.Timestamp.Format(time.RFC3339Nano), a.Message)
		}
	}
	res.Failure = b.String()
	return res
}

func matches(want []detect.Expectation, got []schema.Alert) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if !match(want[i], got[i]) {
			return false
		}
	}
	return true
}

func match(x detect.Expectation, a schema.Alert) bool { return x.Match(a) }

func formatExpect(x detect.Expectation) string {
	s := "count=any"
	if x.Count != 0 {
		s = fmt.Sprintf("count=%d", x.Count)
	}
	if x.Group != nil {
		s += " group=" + formatGroup(x.Group)
	}
	if x.Value != nil {
		s += fmt.Sprintf(" value=%g", *x.Value)
	}
	if x.Values != nil {
		s += fmt.Sprintf(" values=%q", x.Values)
	}
	return s
}

func formatGroup(g map[string]string) string {
	parts := make([]string, 0, len(g))
	for _, k := range slices.Sorted(maps.Keys(g)) {
		parts = append(parts, k+"="+g[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
