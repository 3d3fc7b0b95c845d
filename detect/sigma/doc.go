// Package sigma converts Sigma detection rules (https://sigmahq.io) into
// trailwatch rule YAML that detect.Parse loads.
//
// It understands two log sources: `category: webserver` (W3C-style field
// names such as cs-uri-stem, sc-status, c-ip) and `product: aws, service:
// cloudtrail` (CloudTrail record field names such as eventName,
// userIdentity.type), each mapped onto the ECS fields the normalizers fill.
// Detections become one expr `where` condition that keeps Sigma's matching
// semantics: string comparisons are case-insensitive unless `|cased`, `*` and
// `?` are wildcards, lists are alternatives unless `|all`. Correlation rules
// of type event_count and value_count become threshold windows (`count`, and
// `distinct` for value_count) over the rules they reference, and temporal and
// temporal_ordered become sequence rules (unordered, ordered) with a step per
// referenced rule; those base rules
// are then not emitted on their own unless the correlation says
// `generate: true`.
//
// Conversion is all-or-nothing per rule: a rule using anything the package
// cannot express faithfully (another log source, an unmapped field, a
// modifier such as |base64, keyword searches, chained correlations, ...) is
// not emitted at all; every such construct is reported as a Problem instead.
// The package deliberately does not write files, fetch rules, or generate
// rule tests: Sigma rules carry no sample events.
package sigma
