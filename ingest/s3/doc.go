// Package s3 is the collector for logs that AWS services deliver to an S3
// bucket: ALB and Classic ELB access logs, CloudTrail trails, S3 server
// access logs, and API Gateway or anything else delivered through Kinesis
// Data Firehose. It works against AWS S3 and S3-compatible servers (MinIO,
// Versity's gateway, Ceph RGW) with path-style addressing.
//
// It lists the bucket under a prefix, reads every new object in key order
// and emits, in mode "lines", one record per line (gzip content, recognised
// by its magic bytes whatever the key's suffix, is decompressed), or in
// mode "object" one record holding the whole decompressed object (the
// cloudtrail normalizer splits its {"Records":[…]} array). Record.Origin is
// "s3://bucket/key", Record.Stream "s3://bucket/key@etag", so a rewritten
// object is a new stream, and Record.Offset the line's byte offset in the
// decompressed content (0 in object mode).
//
// Delivery is at-least-once. An object counts as read only after Emit
// returned nil for all its records; within a large object the offset after
// each acknowledged batch is checkpointed, so a restart resumes mid-object
// (re-inflating and dropping what was acknowledged). A crash re-sends at
// most about a second of work; the sinks drop those duplicates by
// Record.ID.
//
// The checkpoint is a cursor plus a set. S3 lists keys in lexical order,
// and AWS delivers to date-partitioned keys
// (AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/…), but not
// strictly in key order: several load balancers, nodes and regions deliver
// side by side, and a key sorting before one already read may still appear.
// So each poll lists every key after the cursor; keys already read are
// remembered with their ETag in the checkpoint's done set, and the cursor
// moves over the leading run of read keys whose LastModified is older than
// settle (default 24h). The invariant assumed is: no new key appears that
// sorts before a key older than settle. With a date in the key that holds
// for any number of writers once settle exceeds a day plus the delivery
// delay; each poll then re-lists about one settle worth of keys. A prefix
// holding several regions of CloudTrail (the region sorts before the date)
// breaks it: run one collector per region prefix, or an organization trail
// per region. Objects rewritten after the cursor passed them are not seen.
//
// Bad objects are data, not a crash: an object whose gzip content is
// corrupt, or whose content exceeds max_object_bytes, is logged with its
// key, counted in Stats.FailedObjects, recorded in the checkpoint's failed
// list with the reason, and skipped; lines read before the corruption or
// the bound were emitted. Failures that may pass (network, permissions, a
// stalled body) are retried at the next poll without moving the cursor
// past the object; later objects are still read.
//
// What it deliberately does not do: read S3 event notifications from SQS
// (listing only; sqs_queue_url is refused until it is), read several
// objects in parallel, follow object versions, parse or redact content.
package s3
