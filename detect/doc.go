// Package detect loads detection rules from YAML files and evaluates them
// over normalized events, raising schema.Alert values.
//
// A rule is an expr condition ("where") over schema.Event, type-checked when
// the file loads, optionally with a threshold window over a sliding
// event-time window per group (count events, count distinct values of a
// field, or sum or average a numeric field), a sequence of steps, a first-seen
// term (new_terms) or a rate change against the group's own baseline, and a
// suppression period. Rule files are
// loaded all-or-nothing: any problem in any file refuses the whole set, with
// every problem reported as file:line:col.
//
// The Detector is a pure state machine over event time: given the same
// sequence of events it emits the same alerts with the same ids, whatever the
// wall clock says and however the sequence is split into batches. It does no
// I/O: the caller feeds it events from a partition, forwards the alerts it
// returns, sends rule run-time errors (DrainRuleErrors) to the dead-letter
// topic, and after a restart rebuilds state by replaying already-processed
// input through Warm. new_terms history, too long to replay, is the one
// durable state: the detector hands it out as a changelog (DrainChanges) for
// the caller to persist and feeds it back through Restore. It deliberately
// does not read Kafka, persist snapshots,
// deduplicate alerts across processes, or route events by group key: the
// caller keys the input so that a group's events reach one Detector.
//
// Speed: conditions, keys and terms on plain fields run as Go closures over
// typed field readers rather than on the expr VM (fast.go, fast_group.go),
// and a per-event rule index skips the rules an event provably cannot match
// (ruleindex.go, ruleindex_scan.go); each is checked against the VM by
// tests, and none changes a result or counter.
//
// Delivery: alerts are returned synchronously from Observe; the detector keeps
// no outbox. Alert ids are deterministic (rule, group key, window start), so a
// sink that writes idempotently turns at-least-once replay into
// effectively-once alerts.
package detect
