package file

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

func BenchmarkFileCollector(b *testing.B) {
	const lines = 100_000
	var sb strings.Builder
	for i := range lines {
		fmt.Fprintf(&sb, `203.0.113.%d - - [10/Oct/2025:13:55:36 +0000] "GET /api/v1/items/%d HTTP/1.1" 200 512 "-" "curl/8.5.0"`+"\n", i%256, i)
	}
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	if _, err := zw.Write([]byte(sb.String())); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	tests := []struct {
		name, file string
		data       []byte
		poll       time.Duration
	}{
		{name: "100k lines", file: "access.log", data: []byte(sb.String()), poll: 250 * time.Millisecond},
		// Includes the one poll interval a .gz waits before it is read.
		{name: "100k lines gzip", file: "access.log.1.gz", data: zbuf.Bytes(), poll: 10 * time.Millisecond},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tt.file), tt.data, 0o644); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(sb.Len()))
			b.ReportAllocs()
			run := 0
			for b.Loop() {
				run++
				cfg := gzConfig(dir)
				cfg.PollInterval = tt.poll
				cfg.CheckpointFile = filepath.Join(dir, "cp", fmt.Sprintf("run-%d.json", run))
				c, err := New(cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(b.Context())
				seen := 0
				emit := func(_ context.Context, recs []ingest.Record) error {
					if seen += len(recs); seen == lines {
						cancel()
					}
					return nil
				}
				if err := c.Run(ctx, emit); err != nil {
					b.Fatal(err)
				}
				cancel()
				if seen != lines {
					b.Fatalf("read %d lines, want %d", seen, lines)
				}
			}
			b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
