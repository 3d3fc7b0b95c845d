// Package httpin is the HTTP receiver collector: shippers and gateways
// (Kong's http-log plugin, Vector's and Fluent Bit's http outputs, curl)
// POST batches of log records to configured paths, each path naming the
// normalizer of what is posted there.
//
// A body is split into records by its Content-Type: application/x-ndjson
// (one record per non-blank line), application/json (a sequence of
// top-level values: an array contributes one record per element, kept as
// the element's exact bytes; any other value, typically one object, is one
// record), or text/plain (one record per non-empty line, "\r\n" accepted).
// Without a Content-Type the body is JSON if it starts with "{" or "[",
// text otherwise. Content-Encoding gzip is decompressed within
// max_body_bytes.
//
// Delivery is at-least-once. A request is answered 200 {"accepted":N} only
// after Emit returned nil, that is after Kafka acknowledged every record of
// the body. If Emit has not returned within ack_timeout, or max_in_flight
// requests are already being served, the answer is 429 with Retry-After; an
// Emit error is 503 with Retry-After. Some records of such a request may be
// stored already; the shipper resends the whole body, and because
// Record.Stream is "http<path>/<first 16 bytes of the SHA-256 of the
// decompressed body, in hex>" and Record.Offset the record's index in the
// body, the resent records get the ids the stored ones have, and the sinks
// drop them. A consequence: two byte-identical bodies posted on purpose to
// the same path are taken for one, which for access logs (each line carries
// its own timestamp and request details) does not lose anything real.
//
// Rejections are 4xx, which shippers do not retry, so they are kept for
// requests that can never succeed: 401 (bearer token missing or wrong),
// 413 (body over max_body_bytes), 400 (an array that cannot be split, or
// JSON nested deeper than max_depth: a JSON bomb), 415 (unknown media type
// or encoding). A single record over max_record_bytes does not fail the
// request: it is emitted cut, with Record.Truncated set, and the normalize
// stage dead-letters it.
//
// What it deliberately does not do: validate that each record is well-formed
// JSON (the normalizer decides and dead-letters what it cannot parse),
// redact secrets in the records (the normalizers fingerprint credentials),
// reload certificates or tokens without a restart, or speak any vendor's
// bulk protocol (Elasticsearch _bulk, Splunk HEC, Loki push).
package httpin
