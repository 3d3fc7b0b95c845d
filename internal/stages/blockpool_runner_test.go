package stages

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/internal/pipeline"
	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// TestDetectReusesBlocksOnlyOnceProduced runs the detect handler in the
// real runner over many small batches, so that each batch's arena writes
// into blocks of the batches before it: every enriched record read back
// from the topic must still be the event it was made from (a block reused
// before its records were produced would have overwritten them), and blocks
// must have been reused.
func TestDetectReusesBlocksOnlyOnceProduced(t *testing.T) {
	const events, enriched, alerts, dlq = "events", "enriched", "alerts", "dlq"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, events), kfake.SeedTopics(1, enriched, alerts, dlq))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	prod, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx := t.Context()

	const n = 4000
	start := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	want := map[string]schema.Event{}
	var in []*kgo.Record
	for i := range n {
		var ev schema.Event
		ev.Timestamp = start.Add(time.Duration(i) * time.Millisecond)
		ev.Event.ID = fmt.Sprintf("ev-%d", i)
		ev.Source.IP = fmt.Sprintf("10.1.%d.%d", i%200, i%250+1)
		ev.URL.Original = fmt.Sprintf("/api/items/%d?%s", i, strings.Repeat(string(rune('a'+i%26)), 400+i%300))
		ev.HTTP.Response.StatusCode = 200 + i%3
		ev.Trailwatch.Actor = ev.ActorKey()
		want[ev.Event.ID] = ev
		in = append(in, &kgo.Record{Topic: events, Key: []byte(ev.Trailwatch.Actor), Value: normalize.AppendEvent(nil, &ev), Timestamp: ev.Timestamp})
	}
	if err := prod.ProduceSync(ctx, in...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	h := NewDetect(enriched, alerts, dlq, NewRuleBook(ruleSet(t, threshold), detect.DefaultConfig()), NewDetectMetrics(nil), nil)
	r, err := pipeline.NewRunner(pipeline.Stage{Name: "detect", Group: "tw-detect", Topics: []string{events}, Handler: h, MaxPollRecords: 300}, base, prod)
	if err != nil {
		t.Fatal(err)
	}
	stop := testenv.Start(t, ctx, r.Run)

	cl, err := kgo.NewClient(append(base, kgo.ConsumeTopics(enriched), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cl.PollFetches(pctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("after %d of %d enriched records: %v", len(seen), n, err)
		}
		fs.EachRecord(func(kr *kgo.Record) {
			var got schema.Event
			if err := normalize.DecodeEvent(kr.Value, &got); err != nil {
				t.Fatalf("enriched record at offset %d: %v", kr.Offset, err)
			}
			if w, ok := want[got.Event.ID]; !ok || !reflect.DeepEqual(got, w) {
				t.Fatalf("enriched record at offset %d is not the event it was made from: id %q, url %.40q…", kr.Offset, got.Event.ID, got.URL.Original)
			}
			seen[got.Event.ID] = true
		})
	}
	stop()
	h.blocks.mu.Lock()
	reused := h.blocks.reused
	h.blocks.mu.Unlock()
	if reused == 0 {
		t.Error("no arena block was reused: the test did not exercise the pool")
	}
}
