package elasticsearch

import (
	"fmt"
	"time"
)

// Lifecycle policies: ILM on Elasticsearch, ISM on OpenSearch. Both say the
// same thing in their own format:
//
//   - data_stream: roll the write index over after rollover_max_age or once
//     a primary shard reaches rollover_max_primary_shard_size (whichever
//     comes first), and delete a backing index retention days after that
//     (ILM counts from the rollover; ISM from the index's creation, at most
//     rollover_max_age earlier).
//   - daily: delete an index retention days after it was created. A replay
//     that creates last year's daily index today keeps it for the full
//     retention from today.
//   - single, or daily with retention 0: no policy (nothing to age out).

// policyName names the lifecycle policy of an index or data stream.
func policyName(index string) string { return index + "-lifecycle" }

// needsPolicy reports whether index gets a lifecycle policy.
func (c Config) needsPolicy(retentionDays int) bool {
	switch c.Mode {
	case ModeDataStream:
		return true // rollover, even when nothing is ever deleted
	case ModeDaily:
		return retentionDays > 0
	}
	return false
}

// ilmPolicy is the body of PUT _ilm/policy/<name>, without _meta.
func (c Config) ilmPolicy(retentionDays int) map[string]any {
	phases := map[string]any{}
	if c.Mode == ModeDataStream {
		phases["hot"] = map[string]any{
			"min_age": "0ms",
			"actions": map[string]any{"rollover": map[string]any{
				"max_age":                esDuration(c.RolloverMaxAge),
				"max_primary_shard_size": c.RolloverMaxPrimaryShardSize,
			}},
		}
	}
	if retentionDays > 0 {
		phases["delete"] = map[string]any{
			"min_age": fmt.Sprintf("%dd", retentionDays),
			"actions": map[string]any{"delete": map[string]any{}},
		}
	}
	return map[string]any{"policy": map[string]any{"phases": phases}}
}

// ismPolicy is the body of PUT _plugins/_ism/policies/<name>; description
// carries the definition's hash (ISM policies have no _meta).
func (c Config) ismPolicy(index string, retentionDays int) map[string]any {
	var hotActions []any
	if c.Mode == ModeDataStream {
		hotActions = append(hotActions, map[string]any{"rollover": map[string]any{
			"min_index_age":          esDuration(c.RolloverMaxAge),
			"min_primary_shard_size": c.RolloverMaxPrimaryShardSize,
		}})
	} else {
		hotActions = []any{}
	}
	hot := map[string]any{"name": "hot", "actions": hotActions, "transitions": []any{}}
	states := []any{hot}
	if retentionDays > 0 {
		hot["transitions"] = []any{map[string]any{
			"state_name": "delete",
			"conditions": map[string]any{"min_index_age": fmt.Sprintf("%dd", retentionDays)},
		}}
		states = append(states, map[string]any{
			"name": "delete", "actions": []any{map[string]any{"delete": map[string]any{}}}, "transitions": []any{},
		})
	}
	pattern := index + "-*"
	if c.Mode == ModeDataStream {
		pattern = ".ds-" + index + "-*" // the stream's backing indices
	}
	return map[string]any{"policy": map[string]any{
		"description":   "trailwatch lifecycle of " + index,
		"default_state": "hot",
		"states":        states,
		// ism_template attaches the policy to indices created after it
		// exists: every new daily index or backing index.
		"ism_template": []any{map[string]any{"index_patterns": []string{pattern}, "priority": 100}},
	}}
}

// esDuration formats d in the largest whole Elasticsearch time unit.
func esDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
