// Package soak is the proof harness of issue #8: it drives real gateways
// (Debian's nginx and HAProxy, HAProxy logging through rsyslog) with
// uniquely identified requests and scripted attacks, uploads synthetic
// CloudTrail and ALB log objects to a bucket of the real S3 gateway, runs
// the pipeline as separate `trailwatch run --stages …` processes on the
// real Kafka broker and OpenSearch node, injects faults on a schedule, and
// then verifies the trail: every logged request and every uploaded
// CloudTrail record and ALB line indexed exactly once with the right
// fields, nothing invented, every attack paged once, no benign actor
// paged, every malformed line in the dead-letter topic with its reason,
// canaries nowhere. Its load mode measures throughput and alert latency.
//
// Everything but this file carries the `soak` build tag, so the normal
// suite does not compile it. Run it with
//
//	go test -tags soak -run TestSoak -timeout 30m ./internal/soak/ -args -profile short
//
// (make soak-short / make soak). See docs/reliability.md and
// docs/benchmarks.md for what it proves and the numbers it printed.
//
// It deliberately does not test components in isolation (their own tests
// do) nor fake any service: a service it cannot start fails the run.
package soak
