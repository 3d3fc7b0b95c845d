package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/twmb/franz-go/pkg/kfake.(*Cluster).run"))
}

// recorder is a handler copying each input value to the output topic, and
// remembering what it saw (live and warm).
type recorder struct {
	out      string
	failNext int // fail this many Handle calls first
	window   time.Duration

	mu    sync.Mutex
	live  []string
	warm  []string
	calls int
}

func (r *recorder) Handle(_ context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.failNext > 0 {
		r.failNext--
		return nil, errors.New("sink down")
	}
	var out []*kgo.Record
	for _, rec := range recs {
		r.live = append(r.live, string(rec.Value))
		out = append(out, &kgo.Record{Topic: r.out, Value: rec.Value})
	}
	return out, nil
}

type warmRecorder struct{ *recorder }

func (w warmRecorder) Assigned(string, int32)    {}
func (w warmRecorder) Revoked(string, int32)     {}
func (w warmRecorder) WarmWindow() time.Duration { return w.window }
func (w warmRecorder) Warm(_ context.Context, recs []*kgo.Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, rec := range recs {
		w.warm = append(w.warm, string(rec.Value))
	}
}

func (r *recorder) snapshot() (live, warm []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.live...), append([]string(nil), r.warm...)
}

func newCluster(t *testing.T, topics ...string) (base []kgo.Opt, prod *kgo.Client) {
	t.Helper()
	return newClusterWith(t, 1, nil, topics...)
}

// newClusterWith starts kfake with topics of the given partitions and a
// producer with prodOpts.
func newClusterWith(t *testing.T, partitions int32, prodOpts []kgo.Opt, topics ...string) (base []kgo.Opt, prod *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	base = []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	prod, err = kgo.NewClient(append(base, prodOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return base, prod
}

func produceN(t *testing.T, cl *kgo.Client, topic string, from, to int, ts time.Time) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i)), Timestamp: ts.Add(time.Duration(i) * time.Second)})
	}
	if err := Produce(t.Context(), cl, recs); err != nil {
		t.Fatal(err)
	}
}

// runUntil runs a runner until the group committed offset `committed` on
// partition 0 of "in" (polling Kafka for it), then stops the runner.
func runUntil(t *testing.T, base []kgo.Opt, prod *kgo.Client, h Handler, committed int64) {
	t.Helper()
	r, err := NewRunner(Stage{Name: "test", Group: "g", Topics: []string{"in"}, Handler: h}, base, prod)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	adm := kadm.NewClient(prod)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for {
		offs, err := adm.FetchOffsets(t.Context(), "g")
		if err == nil {
			if o, ok := offs.Lookup("in", 0); ok && o.At >= committed {
				break
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("group never committed offset %d", committed)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func consumeAll(t *testing.T, base []kgo.Opt, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(append(base, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records from %s", len(got), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func TestRunnerProducesThenCommitsAndResumes(t *testing.T) {
	base, prod := newCluster(t, "in", "out")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	produceN(t, prod, "in", 0, 10, t0)

	first := &recorder{out: "out"}
	runUntil(t, base, prod, first, 10)

	produceN(t, prod, "in", 10, 15, t0)
	second := &recorder{out: "out"}
	runUntil(t, base, prod, second, 15)
	live, _ := second.snapshot()
	if fmt.Sprint(live) != "[10 11 12 13 14]" {
		t.Errorf("after restart the runner processed %v, want only the 5 new records", live)
	}
	got := consumeAll(t, base, "out", 15)
	if len(got) != 15 {
		t.Errorf("output has %d records, want 15", len(got))
	}
}

func TestRunnerRetriesFailedBatchWithoutCommitting(t *testing.T) {
	base, prod := newCluster(t, "in", "out")
	produceN(t, prod, "in", 0, 3, time.Now())
	rec := &recorder{out: "out", failNext: 2}
	runUntil(t, base, prod, rec, 3)
	rec.mu.Lock()
	calls := rec.calls
	rec.mu.Unlock()
	if calls < 3 {
		t.Errorf("handler called %d times, want the batch retried after 2 failures", calls)
	}
	if got := consumeAll(t, base, "out", 3); fmt.Sprint(got) != "[0 1 2]" {
		t.Errorf("output %v", got)
	}
}

func TestRunnerWarmsStateFromCommittedHistory(t *testing.T) {
	base, prod := newCluster(t, "in", "out")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	produceN(t, prod, "in", 0, 10, t0) // record i at t0+i s

	first := &recorder{out: "out", window: 3 * time.Second}
	runUntil(t, base, prod, warmRecorder{first}, 10)

	produceN(t, prod, "in", 10, 12, t0)
	second := &recorder{out: "out", window: 3 * time.Second}
	runUntil(t, base, prod, warmRecorder{second}, 12)
	live, warm := second.snapshot()
	if fmt.Sprint(live) != "[10 11]" {
		t.Errorf("live = %v, want only new records", live)
	}
	// The last committed record is 9 at t0+9s; a 3s window reaches back to
	// t0+6s: records 6..9 rebuild state and are not handled again.
	if fmt.Sprint(warm) != "[6 7 8 9]" {
		t.Errorf("warm = %v, want [6 7 8 9]", warm)
	}
}

func TestBackoffStopsOnCancel(t *testing.T) {
	b := Backoff{Min: time.Hour, Max: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
}
