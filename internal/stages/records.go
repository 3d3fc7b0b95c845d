// Package stages adapts each pipeline stage to Kafka records: what goes on
// which topic, with which key, headers and timestamp. It is the one place
// below cmd/ that knows every stage, and it keeps the stages themselves free
// of Kafka.
package stages

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
)

// Dead-letter header names, added to the original record's headers.
const (
	HeaderDLQStage     = "tw.dlq.stage"
	HeaderDLQReason    = "tw.dlq.reason"
	HeaderDLQTopic     = "tw.dlq.topic"
	HeaderDLQPartition = "tw.dlq.partition"
	HeaderDLQOffset    = "tw.dlq.offset"
)

// RawRecord encodes a collected record for the raw topic: the bytes as
// value, provenance as headers, the origin as key so one file's lines stay
// in order on one partition.
func RawRecord(topic string, r *ingest.Record) *kgo.Record {
	return RawRecords(topic, []ingest.Record{*r})[0]
}

// rawHeaders is the most headers RawRecord sets on one record.
const rawHeaders = 8

// RawRecords encodes recs like RawRecord, for a whole batch at once: the
// records and their headers are allocated together, and header values
// equal to the previous record's (a batch normally holds lines of one
// file, read at one time) share its bytes. The returned records must be
// treated as read-only, as kgo does.
func RawRecords(topic string, recs []ingest.Record) []*kgo.Record {
	krs := make([]*kgo.Record, len(recs))
	slab := make([]kgo.Record, len(recs))
	hdrs := make([]kgo.RecordHeader, 0, len(recs)*(rawHeaders-1))
	nums := make([]byte, 0, len(recs)*8)
	var (
		prev                                            *ingest.Record
		source, collector, host, origin, stream, observ []byte
	)
	for i := range recs {
		r := &recs[i]
		first := prev == nil
		if first || !r.Observed.Equal(prev.Observed) {
			observ = r.Observed.UTC().AppendFormat(nil, time.RFC3339Nano)
		}
		if first || r.Source != prev.Source {
			source = []byte(r.Source)
		}
		if first || r.Collector != prev.Collector {
			collector = []byte(r.Collector)
		}
		if first || r.Host != prev.Host {
			host = []byte(r.Host)
		}
		if first || r.Origin != prev.Origin {
			origin = []byte(r.Origin)
		}
		if first || r.Stream != prev.Stream {
			stream = []byte(r.Stream)
		}
		prev = r
		at := len(nums)
		nums = strconv.AppendInt(nums, r.Offset, 10)
		start := len(hdrs)
		hdrs = append(hdrs,
			kgo.RecordHeader{Key: ingest.HeaderSource, Value: source},
			kgo.RecordHeader{Key: ingest.HeaderCollector, Value: collector},
			kgo.RecordHeader{Key: ingest.HeaderHost, Value: host},
			kgo.RecordHeader{Key: ingest.HeaderOrigin, Value: origin},
			kgo.RecordHeader{Key: ingest.HeaderStream, Value: stream},
			kgo.RecordHeader{Key: ingest.HeaderOffset, Value: nums[at:len(nums):len(nums)]},
			kgo.RecordHeader{Key: ingest.HeaderObserved, Value: observ},
		)
		if r.Truncated {
			hdrs = append(hdrs, kgo.RecordHeader{Key: ingest.HeaderTruncated, Value: []byte("true")})
		}
		kr := &slab[i]
		kr.Topic, kr.Key, kr.Value, kr.Timestamp = topic, origin, r.Data, r.Observed
		// Capped, so a caller appending a header copies instead of
		// overwriting the next record's.
		kr.Headers = hdrs[start:len(hdrs):len(hdrs)]
		krs[i] = kr
	}
	return krs
}

// DecodeRaw rebuilds the collected record from a raw-topic record.
// The text headers (source, collector, host, origin, stream) are the same
// for every record of a file, so they are interned rather than converted
// once per record.
func DecodeRaw(kr *kgo.Record) ingest.Record {
	r := ingest.Record{Data: kr.Value, Observed: kr.Timestamp}
	for _, h := range kr.Headers {
		switch h.Key {
		case ingest.HeaderSource:
			r.Source = normalize.Intern(h.Value)
		case ingest.HeaderCollector:
			r.Collector = normalize.Intern(h.Value)
		case ingest.HeaderHost:
			r.Host = normalize.Intern(h.Value)
		case ingest.HeaderOrigin:
			r.Origin = normalize.Intern(h.Value)
		case ingest.HeaderStream:
			r.Stream = normalize.Intern(h.Value)
		case ingest.HeaderTruncated:
			r.Truncated = string(h.Value) == "true"
		case ingest.HeaderOffset:
			r.Offset, _ = strconv.ParseInt(string(h.Value), 10, 64)
		case ingest.HeaderObserved:
			if t, err := time.Parse(time.RFC3339Nano, string(h.Value)); err == nil {
				r.Observed = t
			}
		}
	}
	return r
}

// DLQRecord wraps an input record that a stage could not process: the
// original key, value and headers, plus where it came from and why.
func DLQRecord(topic, stage, reason string, in *kgo.Record) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(in.Headers)+5)
	hs = append(hs, in.Headers...)
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderDLQStage, Value: []byte(stage)},
		kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDLQTopic, Value: []byte(in.Topic)},
		kgo.RecordHeader{Key: HeaderDLQPartition, Value: strconv.AppendInt(nil, int64(in.Partition), 10)},
		kgo.RecordHeader{Key: HeaderDLQOffset, Value: strconv.AppendInt(nil, in.Offset, 10)},
	)
	return &kgo.Record{Topic: topic, Key: in.Key, Value: in.Value, Headers: hs}
}

// Header returns the value of the first header named key, or "".
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
