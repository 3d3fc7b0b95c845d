// Package normalize turns raw records into events of the common schema. One
// file per source, named by its --source name.
//
// Normalizers are pure functions of the record: no I/O, no clock, no state
// across calls, so a fixed parser re-normalizes history identically.
package normalize

import (
	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Normalizer parses one source's raw records.
type Normalizer interface {
	// Normalize appends the events parsed from rec to dst and returns the
	// extended slice. A record may hold zero, one or many events. An error
	// means the record is bad input: the caller counts it and sends it to
	// the dead-letter topic with the error text, then goes on.
	Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error)
}
