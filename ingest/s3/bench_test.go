package s3

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/ingest"
)

// BenchmarkS3Collector reads gzip'd ALB objects from the real S3 server.
func BenchmarkS3Collector(b *testing.B) {
	env := testS3(b)
	cl := testClient(b, env)
	bucket := newBucket(b, cl)
	const objects, perObject = 10, 10_000
	var raw int
	for o := range objects {
		body := strings.Join(albLines(o*perObject, (o+1)*perObject), "\n") + "\n"
		raw += len(body)
		put(b, cl, bucket, albKey("a", fmt.Sprintf("20251010T%04dZ", o)), gz(b, body))
	}
	b.Run(fmt.Sprintf("%d objects x %d lines gzip", objects, perObject), func(b *testing.B) {
		b.SetBytes(int64(raw))
		b.ReportAllocs()
		dir := b.TempDir()
		run := 0
		for b.Loop() {
			run++
			cfg := testConfig(env, bucket, dir)
			cfg.CheckpointFile = filepath.Join(dir, fmt.Sprintf("cp-%d.json", run))
			c, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(b.Context())
			seen := 0
			emit := func(_ context.Context, recs []ingest.Record) error {
				if seen += len(recs); seen == objects*perObject {
					cancel()
				}
				return nil
			}
			if err := c.Run(ctx, emit); err != nil {
				b.Fatal(err)
			}
			cancel()
			if seen != objects*perObject {
				b.Fatalf("read %d lines, want %d", seen, objects*perObject)
			}
		}
		b.ReportMetric(float64(objects*perObject)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
}
