package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/ingest"
)

func BenchmarkFileCollector(b *testing.B) {
	const lines = 100_000
	dir := b.TempDir()
	path := filepath.Join(dir, "access.log")
	var sb strings.Builder
	for i := range lines {
		fmt.Fprintf(&sb, `203.0.113.%d - - [10/Oct/2025:13:55:36 +0000] "GET /api/v1/items/%d HTTP/1.1" 200 512 "-" "curl/8.5.0"`+"\n", i%256, i)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("100k lines", func(b *testing.B) {
		b.SetBytes(int64(sb.Len()))
		b.ReportAllocs()
		run := 0
		for b.Loop() {
			run++
			cfg := testConfig(dir)
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
