package httpin

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/trailwatch/trailwatch/ingest"
)

// BenchmarkIngestNDJSON drives the handler (auth, body read, split, record
// building) with 1000-record bodies of Kong http-log entries into a no-op
// emit; the network is left out so the number is the collector's own cost.
func BenchmarkIngestNDJSON(b *testing.B) {
	const records = 1000
	entry := kongEntry(b)
	var ndjson, array bytes.Buffer
	array.WriteByte('[')
	for i := range records {
		ndjson.Write(entry)
		ndjson.WriteByte('\n')
		if i > 0 {
			array.WriteByte(',')
		}
		array.Write(entry)
	}
	array.WriteByte(']')
	cases := []struct {
		name, contentType, encoding string
		body                        []byte
	}{
		{"1000 kong entries ndjson", "application/x-ndjson", "", ndjson.Bytes()},
		{"1000 kong entries json array", "application/json", "", array.Bytes()},
		{"1000 kong entries ndjson gzip", "application/x-ndjson", "gzip", gzipped(b, ndjson.Bytes())},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			cfg := testConfig()
			cfg.Tokens = nil
			c, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			seen := 0
			h := c.handler(func(_ context.Context, recs []ingest.Record) error {
				seen += len(recs)
				return nil
			})
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequestWithContext(b.Context(), http.MethodPost, "/kong", bytes.NewReader(tc.body))
				req.Header.Set("Content-Type", tc.contentType)
				if tc.encoding != "" {
					req.Header.Set("Content-Encoding", tc.encoding)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			if seen != records*b.N {
				b.Fatalf("emitted %d records, want %d", seen, records*b.N)
			}
			b.ReportMetric(float64(seen)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
