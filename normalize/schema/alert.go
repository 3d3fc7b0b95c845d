package schema

import "time"

// Alert is what a detection rule raises, in ECS alert shape: event.kind
// "alert", rule.*, threat.*, plus the project's alert details. Its ID is
// deterministic (rule, group key, window) so a restart or replay never
// produces a second, different alert for the same finding.
type Alert struct {
	Timestamp  time.Time       `json:"@timestamp"`
	Event      EventMeta       `json:"event"`
	Rule       Rule            `json:"rule"`
	Threat     Threat          `json:"threat,omitzero"`
	Message    string          `json:"message,omitempty"`
	Source     Endpoint        `json:"source,omitzero"`
	User       User            `json:"user,omitzero"`
	URL        URL             `json:"url,omitzero"`
	Tags       []string        `json:"tags,omitempty"`
	Trailwatch AlertTrailwatch `json:"trailwatch"`
}

// Rule is ECS rule.*: which rule raised an alert.
type Rule struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Author      []string `json:"author,omitempty"`
	Reference   []string `json:"reference,omitempty"`
	Ruleset     string   `json:"ruleset,omitempty"`
}

// Threat is ECS threat.*: the ATT&CK techniques an alert maps to.
type Threat struct {
	Framework string            `json:"framework,omitempty"`
	Technique []ThreatTechnique `json:"technique,omitempty"`
}

// ThreatTechnique is one ECS threat.technique entry.
type ThreatTechnique struct {
	ID string `json:"id"`
}

// AlertTrailwatch holds what ECS lacks for an alert.
type AlertTrailwatch struct {
	Severity   string            `json:"severity"`
	Actor      string            `json:"actor,omitempty"`
	Credential Credential        `json:"credential,omitzero"`
	GroupKey   map[string]string `json:"group_key,omitempty"`
	Count      int64             `json:"count"`
	// Value is the aggregated value that fired: the event count, the
	// number of distinct values, the sum or the average.
	Value float64 `json:"value,omitempty"`
	// Aggregation names it: "count", "distinct(user.name)",
	// "sum(http.response.body.bytes)", "avg(...)".
	Aggregation string `json:"aggregation,omitempty"`
	// DistinctValues samples up to 10 of the counted distinct values.
	DistinctValues []string  `json:"distinct_values,omitempty"`
	Window         string    `json:"window,omitempty"`
	FirstSeen      time.Time `json:"first_seen"`
	LastSeen       time.Time `json:"last_seen"`
	EventIDs       []string  `json:"event_ids,omitempty"`
	// Raw is the raw record of the event that fired the alert: its
	// position in the raw topic and integrity digest (docs/integrity.md).
	Raw   RawRef `json:"raw,omitzero"`
	RunID string `json:"run_id,omitempty"`
	// Routes name the notifier routes the alert goes to, from the rule's
	// `routes:`; empty means the default route.
	Routes []string `json:"routes,omitempty"`
}

// SeverityNumber maps a rule severity name to ECS event.severity.
func SeverityNumber(s string) int {
	switch s {
	case "critical":
		return 99
	case "high":
		return 73
	case "medium":
		return 47
	case "low":
		return 21
	}
	return 0
}
