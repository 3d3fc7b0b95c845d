// Package kafkain is the collector for a Kafka topic some gateway already
// writes its logs to (Kong's kafka-log plugin, Envoy or APISIX Kafka
// loggers, a Vector or Fluent Bit pipeline). It consumes the topics as a
// consumer group, on the same cluster as trailwatch or another one, and
// emits each record's value as one ingest.Record.
//
// Record.Origin is "kafka://topic/partition", Record.Stream
// "<cluster>/<topic>/<partition>" (cluster is the configured name, by
// default the sorted broker list), Record.Offset the upstream offset and
// Record.Data the value bytes, untouched. Keys, headers and upstream
// timestamps are not carried; records with a null value (tombstones) are
// skipped and counted.
//
// Delivery is at-least-once. Upstream offsets are committed only after
// Emit returned nil for every record of a poll; an Emit error retries the
// same batch with backoff until it succeeds or ctx ends, and nothing is
// committed meanwhile. Rebalances wait until the batch in hand is
// committed (BlockRebalanceOnPoll), so a partition moving to another
// process never re-reads acknowledged records, unless this member was
// evicted from the group while Emit blocked longer than the group's
// rebalance timeout; then the commit fails, is logged, and the new owner
// re-reads the batch. Re-read records keep their Record.ID, so the sinks
// drop them.
//
// What it deliberately does not do: decode or redact values (the
// normalizer named by source does), consume with transactions or read
// only committed records of a transactional producer, or create the
// upstream topics.
package kafkain
