package pipeline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/testenv"
)

// gate copies its input to out; the batch starting with record "0" waits
// for release, so the test can look at the runner while it is in flight.
type gate struct {
	out      string
	started  chan struct{} // the first batch is being handled
	release  chan struct{}
	inFlight atomic.Int32
	most     atomic.Int32
	handled  atomic.Int64

	mu   sync.Mutex
	seen map[string]bool
}

func (g *gate) Handle(_ context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
	g.mu.Lock()
	for _, r := range recs {
		g.seen[string(r.Value)] = true
	}
	g.mu.Unlock()
	if string(recs[0].Value) == "0" && g.release != nil {
		close(g.started)
		<-g.release
	}
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		out[i] = &kgo.Record{Topic: g.out, Value: r.Value}
	}
	g.handled.Add(int64(len(recs)))
	return out, nil
}

func (g *gate) saw(v string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen[v]
}

// committed reports the group's committed offset on partition p of topic,
// -1 when nothing is committed.
func committed(t *testing.T, adm *kadm.Client, group, topic string, p int32) int64 {
	t.Helper()
	offs, err := adm.FetchOffsets(t.Context(), group)
	if err != nil {
		return -1
	}
	if o, ok := offs.Lookup(topic, p); ok {
		return o.At
	}
	return -1
}

// With two batches in flight, the second is handled while the first is
// still in the sink, but it commits only after the first: the committed
// offset never passes an unfinished batch, and no third batch starts.
func TestRunnerOverlapCommitsInPollOrder(t *testing.T) {
	base, prod := newCluster(t, "in", "out")
	produceN(t, prod, "in", 0, 30, time.Now())
	g := &gate{out: "out", started: make(chan struct{}), release: make(chan struct{}), seen: map[string]bool{}}
	r, err := NewRunner(Stage{Name: "test", Group: "g", Topics: []string{"in"}, Handler: g, MaxPollRecords: 10, InFlight: 2}, base, prod)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{}, 4)
	r.waitingHook = func() { waiting <- struct{}{} }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	<-g.started
	select {
	case <-waiting: // the second batch is handled and waits to commit
	case <-time.After(20 * time.Second):
		t.Fatal("the second batch was not handled while the first was in flight")
	}
	adm := kadm.NewClient(prod)
	if c := committed(t, adm, "g", "in", 0); c != -1 {
		t.Fatalf("committed offset %d while the first batch is unfinished", c)
	}
	if g.saw("20") {
		t.Error("a third batch was handed over with two in flight")
	}
	close(g.release)
	testenv.WaitFor(t, "every record committed", 30*time.Second, func() bool { return committed(t, adm, "g", "in", 0) == 30 })
	// The second batch was handled while the first was held in Handle
	// (whichever goroutine entered first); never more than two at once.
	if m := g.most.Load(); m > 2 {
		t.Errorf("%d batches were handled at once, want at most 2", m)
	}
	got := consumeAll(t, base, "out", 30)
	uniq := map[string]bool{}
	for _, v := range got {
		uniq[v] = true
	}
	if len(uniq) != 30 {
		t.Errorf("output holds %d distinct records of 30", len(uniq))
	}
}

func TestRunnerOverlapRefusesStatefulHandlers(t *testing.T) {
	base, prod := newCluster(t, "in")
	for name, h := range map[string]Handler{
		"per-partition state": warmRecorder{&recorder{}},
		"acknowledger":        &ackHandler{},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewRunner(Stage{Name: "test", Group: "g", Topics: []string{"in"}, Handler: h, InFlight: 2}, base, prod)
			if err == nil {
				t.Fatal("NewRunner accepted two batches in flight")
			}
		})
	}
}

type ackHandler struct{ recorder }

func (*ackHandler) Produced() {}

// A member joining while the first has a backlog gets its partition
// without waiting for the backlog to drain: the runner stops overlapping
// and lets the rebalance through.
func TestRunnerOverlapLetsRebalanceThrough(t *testing.T) {
	base, prod := newClusterWith(t, 2, []kgo.Opt{kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}, "in", "out")
	const n = 60000
	for from := 0; from < n; from += 5000 {
		produceN(t, prod, "in", from, from+5000, time.Now())
	}
	run := func(g *gate) (stop func()) {
		r, err := NewRunner(Stage{Name: "test", Group: "g", Topics: []string{"in"}, Handler: g, MaxPollRecords: 20, InFlight: 2}, base, prod)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Error(err)
			}
		}
	}
	a := &gate{out: "out", seen: map[string]bool{}}
	stopA := run(a)
	defer stopA()
	testenv.WaitFor(t, "the first member to start", 30*time.Second, func() bool { return a.handled.Load() > 0 })
	b := &gate{out: "out", seen: map[string]bool{}}
	stopB := run(b)
	defer stopB()
	testenv.WaitFor(t, "the second member to get a partition", 30*time.Second, func() bool { return b.handled.Load() > 0 })
	if left := n - a.handled.Load(); left <= 0 {
		t.Errorf("the second member got records only after the first drained the backlog")
	}
}
