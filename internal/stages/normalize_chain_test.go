package stages

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/integrity"
	"github.com/trailwatch/trailwatch/internal/pipeline"
	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// TestNormalizeBuildsIntegrityChain runs the normalize stage with the
// integrity chain folded in, on kfake through the pipeline runner, across a
// restart: verify finds every raw record covered by a signed checkpoint,
// those that failed to normalize too; the checkpoints list each record's
// digest and every event's raw hash is that digest.
func TestNormalizeBuildsIntegrityChain(t *testing.T) {
	const raw, events, dlq, cpTopic = "trailwatch.raw", "trailwatch.events", "trailwatch.dlq", "trailwatch.integrity"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, raw), kfake.SeedTopics(1, events, dlq))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	prod, err := kgo.NewClient(append(base, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx := t.Context()
	if err := integrity.EnsureTopic(ctx, prod, 1, -1, cpTopic); err != nil {
		t.Fatal(err)
	}
	// An hour old: every batch ends with a checkpoint, so all is covered.
	observed := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	n := 0
	produce := func(count int) {
		t.Helper()
		var recs []*kgo.Record
		for range count {
			line := fmt.Sprintf(`198.51.100.%d - - [25/Nov/2026:10:00:00 +0000] "GET /api/items/%d HTTP/1.1" 200 12 "-" "curl/8"`, n%250, n)
			if n%7 == 3 {
				line = fmt.Sprintf("garbage line %d", n) // DLQ, still chained
			}
			r := ingest.Record{Data: []byte(line), Source: "nginx", Collector: "file", Host: "h1", Origin: "/var/log/a.log", Stream: "s", Offset: int64(n), Observed: observed, Truncated: n%11 == 5}
			kr := RawRecord(raw, &r)
			kr.Partition = int32(n % 2)
			recs = append(recs, kr)
			n++
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := integrity.NewSigner(key)
	ks := integrity.NewKafkaSource(base, raw, cpTopic)
	cfg := integrity.DefaultConfig()
	cfg.CheckpointEvery = 40
	run := func(wantTo int64) {
		t.Helper()
		chain, err := integrity.NewCheckpointer(cfg, raw, cpTopic, signer, ks.Last, ks.Records, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := NewNormalize(events, dlq, nil)
		h.Chain = chain
		r, err := pipeline.NewRunner(pipeline.Stage{Name: "normalize", Group: "tw-normalize", Topics: []string{raw}, Handler: h}, base, prod)
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
	run(99)
	produce(100)
	run(149)

	rep, err := integrity.Verify(ctx, ks, integrity.Options{Keys: map[string]ed25519.PublicKey{signer.KeyID(): signer.Public()}, FailUncovered: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 300 || len(rep.Uncovered) != 0 {
		t.Fatalf("verify: records %d, uncovered %+v, findings %+v", rep.Records, rep.Uncovered, rep.Findings)
	}

	// The chain was built from the very digests the events carry: every
	// checkpoint lists each record's digest prefix.
	digests := map[[2]int64]integrity.Hash{}
	for p := int32(0); p < 2; p++ {
		err := ks.Records(ctx, p, 0, -1, func(r *kgo.Record) error {
			digests[[2]int64{int64(p), r.Offset}] = integrity.RecordDigest(r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cks, bad, err := ks.Checkpoints(ctx)
	if err != nil || len(bad) != 0 {
		t.Fatalf("checkpoints: %v %+v", err, bad)
	}
	listed := 0
	for _, c := range cks {
		for i := range c.Count {
			d := digests[[2]int64{int64(c.Partition), c.From + i}]
			if !bytes.Equal(c.Digests[i*4:i*4+4], d[:4]) {
				t.Errorf("checkpoint %d..%d of partition %d: record %d's digest prefix differs", c.From, c.To, c.Partition, c.From+i)
			}
			listed++
		}
	}
	if listed != 300 {
		t.Errorf("checkpoints list %d records, want 300", listed)
	}

	cl, err := kgo.NewClient(append(base, kgo.ConsumeTopics(events), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Every good line makes one event; the rest went to the DLQ.
	want := goodLines(300)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	seen := 0
	for seen < want {
		fs := cl.PollFetches(pctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("after %d of %d events: %v", seen, want, err)
		}
		fs.EachRecord(func(kr *kgo.Record) {
			var ev schema.Event
			if err := json.Unmarshal(kr.Value, &ev); err != nil {
				t.Fatal(err)
			}
			pos := [2]int64{int64(ev.Trailwatch.Raw.Partition), ev.Trailwatch.Raw.KafkaOffset}
			if want := digests[pos].String(); ev.Trailwatch.Raw.Hash != want {
				t.Errorf("event of raw %v: hash %s, the chain's digest %s", pos, ev.Trailwatch.Raw.Hash, want)
			}
			seen++
		})
	}
}

// goodLines counts the lines of the test's first n that normalize.
func goodLines(n int) int {
	good := 0
	for i := range n {
		if i%7 != 3 && i%11 != 5 {
			good++
		}
	}
	return good
}
