package replay

import (
	"slices"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// TestReplayRecyclesChunks replays an events topic of one partition
// holding more chunks than the reader may have in flight (its channel's 4,
// the merge's head, the one it fills), so the reader decodes into chunks
// the merge handed back: every event is replayed once and the alerts are
// those of detecting the events in time order in one pass.
func TestReplayRecyclesChunks(t *testing.T) {
	cl, opts := fakeKafka(t, 1, "events")
	const n = 7 * chunkEvents
	evs := make([]schema.Event, n)
	for i := range evs {
		evs[i] = adminEvent(i, base.Add(time.Duration(i)*100*time.Millisecond))
	}
	produceEvents(t, cl, "events", evs)
	rs := loadRules(t, testRules).Subset("t-admin")
	cfg := Config{Kafka: opts, Topic: "events", Input: InputEvents, Rules: rs,
		From: base.Add(-time.Hour), To: base.Add(time.Hour), Detect: detect.DefaultConfig(), DedupIDs: 1000}
	got, res := replayAll(t, cfg)
	if res.Events != n || res.Duplicates != 0 {
		t.Fatalf("%d events, %d duplicates; want %d and 0 (%s)", res.Events, res.Duplicates, n, res.Summary())
	}
	d, err := detect.New(rs, detect.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := d.Observe(t.Context(), slices.Clone(evs))
	if err != nil {
		t.Fatal(err)
	}
	g, w := ids(got), ids(want)
	slices.Sort(g)
	slices.Sort(w)
	if len(w) == 0 || !slices.Equal(g, w) {
		t.Fatalf("replay raised %d alerts, sequential detection %d; first difference in\n%v\nvs\n%v", len(g), len(w), g[:min(len(g), 5)], w[:min(len(w), 5)])
	}
}
