package integrity_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/integrity"
)

// benchRecords builds n raw records shaped like the collector's: a ~186-byte
// nginx line and the seven tw.* provenance headers.
func benchRecords(n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Topic: "trailwatch.raw", Offset: int64(i), Timestamp: t0.Add(time.Duration(i) * time.Millisecond),
			Key: []byte("/var/log/nginx/access.log"),
			Value: fmt.Appendf(nil, `198.51.%d.%d - - [25/Nov/2026:10:00:00 +0000] "GET /api/v1/items/%06d?page=3&sort=asc HTTP/1.1" 200 5120 "https://app.example.com/dashboard" "python-requests/2.31.0"`,
				i%256, i/256%256, i%1_000_000),
			Headers: []kgo.RecordHeader{
				{Key: "tw.source", Value: []byte("nginx")},
				{Key: "tw.collector", Value: []byte("files")},
				{Key: "tw.host", Value: []byte("gw-1")},
				{Key: "tw.origin", Value: []byte("/var/log/nginx/access.log")},
				{Key: "tw.stream", Value: []byte("")},
				{Key: "tw.offset", Value: fmt.Appendf(nil, "%d", i*186)},
				{Key: "tw.observed", Value: []byte("2026-11-25T10:00:00.123456789Z")},
			},
		}
	}
	return recs
}

// BenchmarkChain measures the hashing a raw record costs: digest + its
// 40 bytes in the segment, the chain alone given the digests (what it adds
// to the normalize stage), and the whole dedicated stage handler (plus
// digest prefixes and signing every 10k).
// SetBytes counts the line bytes, to compare with the collector's MB/s.
func BenchmarkChain(b *testing.B) {
	recs := benchRecords(5000)
	lineBytes := int64(0)
	for _, r := range recs {
		lineBytes += int64(len(r.Value))
	}
	b.Run("digest+segment, 5000 records", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(lineBytes)
		var dg integrity.Digester
		var seg integrity.Segment
		seg.Reset(integrity.Hash{})
		for b.Loop() {
			for _, r := range recs {
				seg.Add(r.Offset, dg.Digest(r))
			}
		}
		_ = seg.Head()
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
	})
	// What the chain adds to the normalize stage, which already has every
	// record's digest (Normalize.Chain).
	b.Run("Checkpointer.HandleDigests, 5000 records", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(lineBytes)
		digests := make([]integrity.Hash, len(recs))
		for i, r := range recs {
			digests[i] = integrity.RecordDigest(r)
		}
		h := benchCheckpointer(b)
		next := int64(0)
		for b.Loop() {
			for _, r := range recs {
				r.Offset = next
				next++
			}
			if _, err := h.HandleDigests(b.Context(), recs, digests); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("Checkpointer.Handle, 5000 records", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(lineBytes)
		h := benchCheckpointer(b)
		next := int64(0)
		for b.Loop() {
			for _, r := range recs {
				r.Offset = next
				next++
			}
			if _, err := h.Handle(b.Context(), recs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
	})
}

// benchCheckpointer returns a checkpointer cutting every 10k records only.
func benchCheckpointer(b *testing.B) *integrity.Checkpointer {
	b.Helper()
	cfg := integrity.DefaultConfig()
	cfg.CheckpointInterval = 24 * time.Hour
	src := &copySource{}
	h, err := integrity.NewCheckpointer(cfg, "trailwatch.raw", "trailwatch.integrity", newSigner(b), src.last, src.Records, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return h
}
