package integrity_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/internal/integrity"
	"github.com/trailwatch/trailwatch/internal/pipeline"
	"github.com/trailwatch/trailwatch/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	_ pipeline.Handler        = (*integrity.Checkpointer)(nil)
	_ pipeline.PartitionAware = (*integrity.Checkpointer)(nil)
	_ integrity.Source        = (*integrity.KafkaSource)(nil)
)

func checkpointer(t *testing.T, s *integrity.Signer, src *copySource, every int, file *integrity.FileSink) *integrity.Checkpointer {
	t.Helper()
	cfg := integrity.DefaultConfig()
	cfg.CheckpointEvery, cfg.CheckpointInterval = every, 24*365*time.Hour
	h, err := integrity.NewCheckpointer(cfg, "trailwatch.raw", "trailwatch.integrity", s, src.last, src.Records, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCheckpointerRestartAndRetry(t *testing.T) {
	signer := newSigner(t)
	src := &copySource{parts: map[int32][]*kgo.Record{}}
	for off := range int64(50) {
		src.parts[0] = append(src.parts[0], rawRecord(0, off, t0.Add(time.Duration(off)*time.Second)))
	}
	recs := src.parts[0]
	tests := []struct {
		name string
		run  func(t *testing.T) []integrity.Checkpoint
	}{
		{
			// The runner retries a batch whose produce failed: the
			// checkpoints must come out byte-identical, not extend the
			// chain twice.
			name: "retried batch",
			run: func(t *testing.T) []integrity.Checkpoint {
				src.cks = nil
				h := checkpointer(t, signer, src, 10, nil)
				first := handle(t, h, recs[:25])
				again := handle(t, h, recs[:25])
				if !reflect.DeepEqual(first, again) {
					t.Fatalf("retry produced different checkpoints:\n%+v\n%+v", first, again)
				}
				src.cks = append(src.cks, first...)
				return append(first, handle(t, h, recs[25:])...)
			},
		},
		{
			// A restart resumes at the committed offset (27) though the
			// last checkpoint ends at 19: 20..26 are re-read from the raw
			// topic so the chain has no hole.
			name: "restart after the last checkpoint",
			run: func(t *testing.T) []integrity.Checkpoint {
				src.cks = nil
				h := checkpointer(t, signer, src, 10, nil)
				src.cks = append(src.cks, handle(t, h, recs[:27])...)
				h2 := checkpointer(t, signer, src, 10, nil)
				h2.Assigned("trailwatch.raw", 0)
				return append(src.cks, handle(t, h2, recs[27:])...)
			},
		},
		{
			// After a revoke and reassignment the batch may start inside
			// a checkpointed range (commit lost): covered records are
			// skipped.
			name: "batch inside a checkpointed range",
			run: func(t *testing.T) []integrity.Checkpoint {
				src.cks = nil
				h := checkpointer(t, signer, src, 10, nil)
				src.cks = append(src.cks, handle(t, h, recs[:30])...)
				h.Revoked("trailwatch.raw", 0)
				return append(src.cks, handle(t, h, recs[15:])...)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cks := tt.run(t)
			var ranges []string
			for _, c := range cks {
				ranges = append(ranges, strconv.FormatInt(c.From, 10)+".."+strconv.FormatInt(c.To, 10))
			}
			if want := "0..9 10..19 20..29 30..39 40..49"; strings.Join(ranges, " ") != want {
				t.Fatalf("checkpoint ranges %v, want %s", ranges, want)
			}
			src.cks = cks
			rep, err := integrity.Verify(t.Context(), src, integrity.Options{Keys: keys(signer)})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || rep.Records != 50 {
				t.Fatalf("verify: records %d findings %+v", rep.Records, rep.Findings)
			}
		})
	}
}

func TestCheckpointFile(t *testing.T) {
	signer := newSigner(t)
	src := build(t, signer, 1, 20, true)
	path := filepath.Join(t.TempDir(), "audit", "checkpoints.jsonl")
	h := checkpointer(t, signer, &copySource{parts: src.parts}, 10, integrity.NewFileSink(path))
	want := handle(t, h, src.parts[0])
	got, err := integrity.ReadCheckpointFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("file holds %+v\nwant %+v", got, want)
	}
	if err := os.WriteFile(path, []byte("{not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := integrity.ReadCheckpointFile(path); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Fatalf("damaged file: err %v, want one naming line 1", err)
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	keyFile, pubFile, err := integrity.GenerateKey(filepath.Join(dir, "tw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := integrity.GenerateKey(filepath.Join(dir, "tw")); err == nil {
		t.Fatal("GenerateKey overwrote an existing key")
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", st.Mode(), err)
	}
	s, err := integrity.LoadSigner(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := integrity.LoadPublicKey(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(s.Public()) {
		t.Fatal("public key file does not match the private key")
	}
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 7
	seedFile := filepath.Join(dir, "seed.b64")
	if err := os.WriteFile(seedFile, []byte(base64.StdEncoding.EncodeToString(seed)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := integrity.LoadSigner(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey); !s2.Public().Equal(want) {
		t.Fatal("base64 seed loaded as another key")
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("c2VjcmV0LXNlY3JldA=="), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := integrity.LoadSigner(bad); err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("bad key: err %v (must fail without echoing the file)", err)
	}
}

// TestStageKafka runs the stage on kfake through the pipeline runner,
// restarts it, verifies the topics end to end, then appends a checkpoint
// forged without the key, as a Kafka admin could, which must be reported.
func TestStageKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "trailwatch.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	prod, err := kgo.NewClient(append(base, kgo.DefaultProduceTopic("trailwatch.raw"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx := t.Context()
	if err := integrity.EnsureTopic(ctx, prod, 1, -1, "trailwatch.integrity"); err != nil {
		t.Fatal(err)
	}
	produce := func(n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := range n {
			r := rawRecord(int32(i%2), 0, time.Now().Add(-time.Hour).Truncate(time.Millisecond))
			r.Offset = 0
			recs = append(recs, r)
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	signer := newSigner(t)
	ks := integrity.NewKafkaSource(base, "trailwatch.raw", "trailwatch.integrity")
	// Record times an hour old: every batch ends with a checkpoint, so
	// everything gets covered.
	cfg := integrity.DefaultConfig()
	cfg.CheckpointEvery = 40
	runStage := func(wantTo int64) {
		t.Helper()
		h, err := integrity.NewCheckpointer(cfg, "trailwatch.raw", "trailwatch.integrity", signer, ks.Last, ks.Records, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pipeline.NewRunner(pipeline.Stage{Name: "integrity", Group: "tw-integrity", Topics: []string{"trailwatch.raw"}, Handler: h}, base, prod)
		if err != nil {
			t.Fatal(err)
		}
		defer testenv.Start(t, ctx, r.Run)()
		for p := int32(0); p < 2; p++ {
			testenv.WaitFor(t, fmt.Sprintf("partition %d's last checkpoint to end at %d", p, wantTo), 30*time.Second, func() bool {
				last, err := ks.Last(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				return last != nil && last.To == wantTo
			})
		}
	}
	produce(200)
	runStage(99)
	produce(100)
	runStage(149)

	rep, err := integrity.Verify(ctx, ks, integrity.Options{Keys: keys(signer)})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 300 || len(rep.Uncovered) != 0 {
		t.Fatalf("verify: records %d uncovered %+v findings %+v", rep.Records, rep.Uncovered, rep.Findings)
	}

	// A checkpoint forged without the key, appended to the topic.
	forged, err := ks.Last(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	forged.From, forged.To, forged.Prev = forged.To+1, forged.To+1, forged.Hash()
	forged.Count, forged.Digests = 1, forged.Digests[:4]
	forged.Sign(newSigner(t))
	kr, err := forged.Record("trailwatch.integrity")
	if err != nil {
		t.Fatal(err)
	}
	kr.Partition = 0
	if err := prod.ProduceSync(ctx, kr).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rep, err = integrity.Verify(ctx, ks, integrity.Options{Keys: keys(signer)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != integrity.KindBadSignature || rep.Findings[0].Partition != 1 || rep.Findings[0].Offset != 150 {
		t.Fatalf("forged checkpoint: findings %+v", rep.Findings)
	}
}

func TestFlushCoversQuietTail(t *testing.T) {
	signer := newSigner(t)
	src := &copySource{parts: map[int32][]*kgo.Record{}}
	for off := range int64(5) {
		src.parts[0] = append(src.parts[0], rawRecord(0, off, time.Now().Add(-time.Hour)))
	}
	cfg := integrity.DefaultConfig()
	cfg.CheckpointEvery = 10
	h, err := integrity.NewCheckpointer(cfg, "trailwatch.raw", "trailwatch.integrity", signer, src.last, src.Records, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var produced []*kgo.Record
	produce := func(_ context.Context, recs []*kgo.Record) error { produced = append(produced, recs...); return nil }
	// Cut at the end of the batch (records an hour old): in flight until
	// the next batch, so Flush must not add one behind it.
	if got := handle(t, h, src.parts[0][:3]); len(got) != 1 {
		t.Fatalf("batch end: %d checkpoints, want 1", len(got))
	}
	src.cks = nil
	if err := h.Flush(t.Context(), produce); err != nil || len(produced) != 0 {
		t.Fatalf("flush while in flight: produced %d (%v)", len(produced), err)
	}
	// A batch cut at checkpoint_every leaves a tail; once the runner says
	// its checkpoint is in the topic, a quiet partition's tail is signed
	// without waiting for another batch.
	h3, err := integrity.NewCheckpointer(cfg, "trailwatch.raw", "trailwatch.integrity", signer, src.last, src.Records, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var tail []*kgo.Record
	for off := range int64(13) {
		tail = append(tail, rawRecord(1, off, time.Now()))
	}
	if got := handle(t, h3, tail); len(got) != 1 {
		t.Fatalf("13 fresh records, every 10: %d checkpoints, want 1", len(got))
	}
	h3.SetClock(func() time.Time { return time.Now().Add(time.Hour) })
	if err := h3.Flush(t.Context(), produce); err != nil || len(produced) != 0 {
		t.Fatalf("flush before the batch was acknowledged: produced %d (%v)", len(produced), err)
	}
	h3.Produced()
	if err := h3.Flush(t.Context(), produce); err != nil || len(produced) != 1 {
		t.Fatalf("flush after the acknowledgement: produced %d (%v), want the tail's checkpoint", len(produced), err)
	}
	produced = nil
	cfg.CheckpointInterval = 24 * time.Hour
	h2, err := integrity.NewCheckpointer(cfg, "trailwatch.raw", "trailwatch.integrity", signer, src.last, src.Records, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := handle(t, h2, src.parts[0]); len(got) != 0 {
		t.Fatalf("young tail cut at batch end: %+v", got)
	}
	if err := h2.Flush(t.Context(), produce); err != nil || len(produced) != 0 {
		t.Fatalf("flush of a tail younger than the interval: produced %d (%v)", len(produced), err)
	}
	// A day later the partition is still quiet: Flush signs its tail.
	h2.SetClock(func() time.Time { return time.Now().Add(24 * time.Hour) })
	if err := h2.Flush(t.Context(), produce); err != nil || len(produced) != 1 {
		t.Fatalf("flush of a quiet tail: produced %d (%v)", len(produced), err)
	}
	c, err := integrity.DecodeCheckpoint(produced[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	src.cks = []integrity.Checkpoint{c}
	rep, err := integrity.Verify(t.Context(), src, integrity.Options{Keys: keys(signer)})
	if err != nil {
		t.Fatal(err)
	}
	if c.From != 0 || c.To != 4 || !rep.OK() || len(rep.Uncovered) != 0 {
		t.Fatalf("flushed checkpoint %d..%d; verify findings %+v uncovered %+v", c.From, c.To, rep.Findings, rep.Uncovered)
	}
}
