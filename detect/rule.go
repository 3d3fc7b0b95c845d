package detect

import (
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Severities lists the accepted rule severities, lowest first.
var Severities = []string{"low", "medium", "high", "critical"}

// DefaultSeverity is used when a rule does not set one.
const DefaultSeverity = "medium"

// Rule is one loaded and compiled detection rule.
type Rule struct {
	ID          string
	Title       string
	Description string
	Severity    string
	Tags        []string
	References  []string
	Author      []string
	// Where is the expr source of the condition, as written.
	Where string
	// Window makes the rule a threshold rule; nil alerts on each match.
	Window *Window
	// Sequence, NewTerms and Rate make the rule one of those kinds (see
	// sequence.go, newterms.go, rate.go); at most one of them and Window
	// is set.
	Sequence *Sequence
	NewTerms *NewTerms
	Rate     *Rate
	// Suppress is how long, in event time, a group stays quiet after it
	// alerted. Zero means no suppression (windowless rules only; threshold
	// rules default to Window.Over).
	Suppress time.Duration
	// Routes name where the rule's alerts go (alert field trailwatch.routes),
	// as configured for the notifier; empty means the default route.
	Routes []string
	// Tests are the rule's inline test cases.
	Tests []TestCase
	// File, Line and Col locate the rule's definition.
	File string
	Line int
	Col  int

	where      *vm.Program
	techniques []schema.ThreatTechnique
	hash       string // definition hash, see Hash
	// cond is where with its fast path, built on first use (condition).
	cond atomic.Pointer[cond]
}

// Window is a threshold over a sliding event-time window, evaluated
// separately per GroupBy values. Agg says what is measured: matching events
// (Count of them), distinct values of Field (Count of them), or the sum or
// average of the numeric Field (reaching Threshold).
type Window struct {
	// Count is the event count (AggCount) or distinct value count
	// (AggDistinct) that fires; unused by AggSum and AggAvg.
	Count   int
	Over    time.Duration
	GroupBy []string
	// Agg is the aggregation; the zero value counts events.
	Agg Agg
	// Field is the expr field path aggregated by distinct, sum or avg.
	Field string
	// Threshold is the sum or average that fires (AggSum, AggAvg).
	Threshold float64
	// MaxDistinct bounds the distinct values held per group (AggDistinct);
	// past it the value seen longest ago is dropped.
	MaxDistinct int

	programs []*vm.Program
	field    *vm.Program
}

// Agg is what a window aggregates.
type Agg int

// The window aggregations.
const (
	// AggCount counts matching events.
	AggCount Agg = iota
	// AggDistinct counts distinct values of a field.
	AggDistinct
	// AggSum sums a numeric field.
	AggSum
	// AggAvg averages a numeric field.
	AggAvg
)

// DefaultMaxDistinct is window.max_distinct when a distinct rule does not
// set it.
const DefaultMaxDistinct = 10_000

// String returns the YAML key of the aggregation.
func (a Agg) String() string {
	switch a {
	case AggDistinct:
		return "distinct"
	case AggSum:
		return "sum"
	case AggAvg:
		return "avg"
	}
	return "count"
}

// Aggregation names what the window measures, as alerts report it:
// "count", "distinct(user.name)", "sum(http.response.body.bytes)".
func (w *Window) Aggregation() string {
	if w.Agg == AggCount {
		return "count"
	}
	return w.Agg.String() + "(" + w.Field + ")"
}

// TestCase is one inline rule test: events fed to a fresh detector holding
// only this rule, and the alerts expected, in order.
type TestCase struct {
	Name   string
	Events []schema.Event
	// Expect lists the expected alerts in emission order; empty means none.
	Expect []Expectation
	// Pos is "file:line:col" of the test case, for reports.
	Pos string
}

// Expectation describes one expected alert. A zero Count, nil Group, nil
// Value or nil Values is not checked.
type Expectation struct {
	Count int64
	Group map[string]string
	// Value is the expected aggregated value (trailwatch.value).
	Value *float64
	// Values are the expected trailwatch.distinct_values (for new_terms,
	// the new term).
	Values []string
}

// Match reports whether alert a meets the expectation.
func (x Expectation) Match(a schema.Alert) bool {
	if x.Count != 0 && x.Count != a.Trailwatch.Count {
		return false
	}
	if x.Group != nil && !maps.Equal(x.Group, a.Trailwatch.GroupKey) {
		return false
	}
	if x.Value != nil && *x.Value != a.Trailwatch.Value {
		return false
	}
	if x.Values != nil && !slices.Equal(x.Values, a.Trailwatch.DistinctValues) {
		return false
	}
	return true
}

// Pos returns "file:line" of the rule's definition.
func (r *Rule) Pos() string { return fmt.Sprintf("%s:%d", r.File, r.Line) }

// RuleSet is a validated set of rules with unique ids, in load order.
type RuleSet struct {
	rules []*Rule
}

// Rules returns the rules in load order. The slice must not be modified.
func (rs *RuleSet) Rules() []*Rule { return rs.rules }

// Len returns the number of rules.
func (rs *RuleSet) Len() int { return len(rs.rules) }

// Get returns the rule with the given id, or nil.
func (rs *RuleSet) Get(id string) *Rule {
	for _, r := range rs.rules {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// Subset returns a rule set holding only the named rules that exist, in load
// order; it is how a single rule is run on its own (rule tests).
func (rs *RuleSet) Subset(ids ...string) *RuleSet {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := &RuleSet{}
	for _, r := range rs.rules {
		if want[r.ID] {
			out.rules = append(out.rules, r)
		}
	}
	return out
}

// RuleInfo is the static description of a rule, for metrics and listings.
type RuleInfo struct {
	ID       string
	Title    string
	Severity string
	File     string
}

// Info returns the static description of every rule.
func (rs *RuleSet) Info() []RuleInfo {
	out := make([]RuleInfo, len(rs.rules))
	for i, r := range rs.rules {
		out[i] = RuleInfo{ID: r.ID, Title: r.Title, Severity: r.Severity, File: r.File}
	}
	return out
}

// MaxWindow is how far back in event time any rule's state reaches: the
// longest window or suppression. Rebuilding state after a restart replays at
// least this much history (plus the allowed lateness).
func (rs *RuleSet) MaxWindow() time.Duration {
	var m time.Duration
	for _, r := range rs.rules {
		if r.Window != nil {
			m = max(m, r.Window.Over)
		}
		if k := r.ruleKind(); k != nil {
			m = max(m, k.span())
		}
		m = max(m, r.Suppress)
	}
	return m
}
