package detect

import (
	"fmt"
	"time"
)

// maxPendingRuleErrors bounds the run-time errors held for DrainRuleErrors;
// past it errors are dropped and counted, so a rule that fails on every
// event cannot exhaust memory between drains.
const maxPendingRuleErrors = 1024

// Stats are the detector's cumulative counters since New.
type Stats struct {
	// Events is how many events were observed or warmed.
	Events uint64
	// Late is how many events arrived older than the newest event time
	// minus allowed_lateness; threshold rules skipped them.
	Late uint64
	// Alerts is how many alerts Observe returned.
	Alerts uint64
	// Suppressed is how many alerts were held back by suppression.
	Suppressed uint64
	// Evictions is how many groups were dropped by max_groups.
	Evictions uint64
	// DistinctEvictions is how many distinct values were dropped to keep
	// a group within its window's max_distinct.
	DistinctEvictions uint64
	// TermEvictions is how many new_terms terms were dropped to keep a
	// key within max_terms.
	TermEvictions uint64
	// StepEvictions is how many sequence step events were dropped to keep
	// a step within MaxStepEvents.
	StepEvictions uint64
	// Expired is how many groups Advance dropped as no longer able to
	// affect any result.
	Expired uint64
	// Groups is the number of group states held now.
	Groups int
	// RuleErrors is how many rule evaluations failed at run time.
	RuleErrors uint64
	// RuleErrorsDropped is how many of those were not kept for
	// DrainRuleErrors because too many were pending.
	RuleErrorsDropped uint64
	// Rules holds per-rule counters, in rule set order.
	Rules []RuleStats
}

// RuleStats are one rule's cumulative counters.
type RuleStats struct {
	ID         string
	Evals      uint64
	Matches    uint64
	Alerts     uint64
	Suppressed uint64
	Errors     uint64
	// DistinctEvictions is how many distinct values the rule dropped to
	// stay within max_distinct.
	DistinctEvictions uint64
	// TermEvictions and StepEvictions are the rule's share of the
	// detector's counters of the same name.
	TermEvictions uint64
	StepEvictions uint64
	// EvalTime is the cumulative time spent evaluating the rule's
	// condition and group key, measured on one event in 64 and scaled.
	EvalTime time.Duration
	// Groups is the number of group states the rule holds now.
	Groups int
}

// RuleError is a rule that failed at run time on one event. The event is
// otherwise processed normally; the caller sends these to the dead-letter
// topic.
type RuleError struct {
	RuleID    string
	EventID   string
	Timestamp time.Time
	Err       error
}

// Error implements error.
func (e RuleError) Error() string {
	return fmt.Sprintf("rule %s on event %s: %v", e.RuleID, e.EventID, e.Err)
}

// Unwrap returns the evaluation error.
func (e RuleError) Unwrap() error { return e.Err }
