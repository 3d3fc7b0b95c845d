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
	kr := &kgo.Record{
		Topic:     topic,
		Key:       []byte(r.Origin),
		Value:     r.Data,
		Timestamp: r.Observed,
		Headers: []kgo.RecordHeader{
			{Key: ingest.HeaderSource, Value: []byte(r.Source)},
			{Key: ingest.HeaderCollector, Value: []byte(r.Collector)},
			{Key: ingest.HeaderHost, Value: []byte(r.Host)},
			{Key: ingest.HeaderOrigin, Value: []byte(r.Origin)},
			{Key: ingest.HeaderStream, Value: []byte(r.Stream)},
			{Key: ingest.HeaderOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
			{Key: ingest.HeaderObserved, Value: r.Observed.UTC().AppendFormat(nil, time.RFC3339Nano)},
		},
	}
	if r.Truncated {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: ingest.HeaderTruncated, Value: []byte("true")})
	}
	return kr
}

// DecodeRaw rebuilds the collected record from a raw-topic record.
func DecodeRaw(kr *kgo.Record) ingest.Record {
	r := ingest.Record{Data: kr.Value, Observed: kr.Timestamp}
	for _, h := range kr.Headers {
		switch h.Key {
		case ingest.HeaderSource:
			r.Source = string(h.Value)
		case ingest.HeaderCollector:
			r.Collector = string(h.Value)
		case ingest.HeaderHost:
			r.Host = string(h.Value)
		case ingest.HeaderOrigin:
			r.Origin = string(h.Value)
		case ingest.HeaderStream:
			r.Stream = string(h.Value)
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
