// Package route matches alerts to notifier destinations: a Match names
// severities, tags, rule ids and route names (the rule's `routing:` list,
// alert field trailwatch.routes), and an alert matches when every listed
// criterion has at least one hit. It holds no destinations itself: the
// Slack routes and the response actions each pair a Match with their own.
package route

import (
	"errors"
	"fmt"
	"slices"
)

// Severities are the known severity names.
var Severities = []string{"low", "medium", "high", "critical"}

// Match selects alerts. Empty lists match everything; a Match with every
// list empty matches every alert.
type Match struct {
	// Severity lists severities (low, medium, high, critical).
	Severity []string `koanf:"severity" json:"severity,omitempty"`
	// Tags lists tags; any one present on the alert matches.
	Tags []string `koanf:"tags" json:"tags,omitempty"`
	// Rules lists rule ids.
	Rules []string `koanf:"rules" json:"rules,omitempty"`
	// Routes lists route names from the rule's routing field.
	Routes []string `koanf:"routes" json:"routes,omitempty"`
}

// Alert is what a Match reads from an alert.
type Alert struct {
	Severity string
	Tags     []string
	Rule     string
	Routes   []string
}

// Matches reports whether a satisfies every non-empty list of m.
func (m Match) Matches(a Alert) bool {
	if len(m.Severity) > 0 && !slices.Contains(m.Severity, a.Severity) {
		return false
	}
	if len(m.Rules) > 0 && !slices.Contains(m.Rules, a.Rule) {
		return false
	}
	if len(m.Tags) > 0 && !anyIn(m.Tags, a.Tags) {
		return false
	}
	if len(m.Routes) > 0 && !anyIn(m.Routes, a.Routes) {
		return false
	}
	return true
}

// IsEmpty reports whether m matches every alert.
func (m Match) IsEmpty() bool {
	return len(m.Severity) == 0 && len(m.Tags) == 0 && len(m.Rules) == 0 && len(m.Routes) == 0
}

// Validate reports unknown severities.
func (m Match) Validate() error {
	var errs []error
	for _, s := range m.Severity {
		if !slices.Contains(Severities, s) {
			errs = append(errs, fmt.Errorf("severity: %q is not one of low, medium, high, critical", s))
		}
	}
	return errors.Join(errs...)
}

func anyIn(want, have []string) bool {
	for _, h := range have {
		if slices.Contains(want, h) {
			return true
		}
	}
	return false
}
