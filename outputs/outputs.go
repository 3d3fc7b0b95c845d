// Package outputs defines the contracts of trailwatch's sinks: EventWriter
// for documents (events and alerts indexed into Elasticsearch/OpenSearch or
// appended to NDJSON files) and AlertNotifier for paging (Slack, console).
//
// The package holds interfaces and the BatchError shape only; each sink lives
// in its own subpackage and does no retrying of its own beyond one request.
// Retry with backoff and dead-lettering are the caller's job: the runner
// calls Write, retries the items a *BatchError marks Retryable, sends the
// others to the dead-letter topic with their Reason, and commits its Kafka
// offsets only when every document is accounted for. Because every document
// carries a deterministic ID and every sink treats "already there" as
// success, a retry or a replay after a crash never duplicates anything: the
// delivery guarantee is at-least-once made effectively-once at the sink.
package outputs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Document kinds: the Kafka topic a document came from decides its kind, and
// the kind decides the index or file it lands in.
const (
	KindEvents = "events"
	KindAlerts = "alerts"
)

// Document is one JSON document bound for a sink.
type Document struct {
	// Kind is KindEvents or KindAlerts.
	Kind string
	// ID is the deterministic identity (event.id / alert id). Sinks use it to
	// drop a re-delivered document, so it must be stable across retries.
	ID string
	// Body is the document, already JSON-encoded.
	Body []byte
	// Timestamp is the document's @timestamp. Optional: a sink that needs it
	// (daily index names) reads @timestamp from Body when it is zero.
	Timestamp time.Time
}

// EventWriter stores documents durably and idempotently.
type EventWriter interface {
	// Write stores docs. It returns nil only when every document is durably
	// accepted (or was already there). Otherwise it returns a *BatchError
	// naming, per document index, whether a retry may succeed; documents the
	// BatchError does not name were accepted. Any other error means nothing
	// may be assumed stored and the whole batch is retryable. Write is safe
	// to call concurrently and blocks while the sink is slow (backpressure).
	Write(ctx context.Context, docs []Document) error
	// Close flushes what is in flight within ctx's budget and releases
	// resources. It is idempotent; Write after Close fails.
	Close(ctx context.Context) error
}

// AlertNotifier pages people about alerts.
type AlertNotifier interface {
	// Notify sends alerts. On error, retry reports whether sending the same
	// alerts again may succeed (rate limits, 5xx, network failures); when it
	// is false the caller dead-letters them with err as the reason.
	Notify(ctx context.Context, alerts ...schema.Alert) (retry bool, err error)
	// Close releases resources. It is idempotent.
	Close(ctx context.Context) error
}

// ItemError is what happened to one document of a batch that was not
// accepted.
type ItemError struct {
	// Index is the document's position in the docs slice given to Write.
	Index int
	// Retryable tells whether writing the document again may succeed; when
	// false the caller sends it to the dead-letter topic with Reason.
	Retryable bool
	// Reason is a human-readable cause ("mapper_parsing_exception: ...").
	Reason string
}

// BatchError reports the documents of a Write that were not accepted.
type BatchError struct {
	// Items lists every failed document, in ascending Index order.
	Items []ItemError
}

// Error summarises the failures: how many, how many retryable, first reason.
func (e *BatchError) Error() string {
	if len(e.Items) == 0 {
		return "batch: no failures"
	}
	retryable := 0
	for _, it := range e.Items {
		if it.Retryable {
			retryable++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "batch: %d documents failed (%d retryable)", len(e.Items), retryable)
	fmt.Fprintf(&b, ": first [%d]: %s", e.Items[0].Index, e.Items[0].Reason)
	return b.String()
}

// Retryable returns the indexes of the documents worth writing again.
func (e *BatchError) Retryable() []int {
	var out []int
	for _, it := range e.Items {
		if it.Retryable {
			out = append(out, it.Index)
		}
	}
	return out
}

// Permanent returns the failures that no retry can fix.
func (e *BatchError) Permanent() []ItemError {
	var out []ItemError
	for _, it := range e.Items {
		if !it.Retryable {
			out = append(out, it)
		}
	}
	return out
}
