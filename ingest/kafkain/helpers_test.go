package kafkain

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/testenv"
)

// kfake stops its cluster loop asynchronously after Close; under load it
// can outlive the last test by a moment.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/twmb/franz-go/pkg/kfake.(*Cluster).run"))
}

var _ ingest.Collector = (*Collector)(nil)

// upstream starts a kfake cluster holding topic with the given partitions.
func upstream(t testing.TB, topic string, partitions int32) []string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return cluster.ListenAddrs()
}

// produce writes values to topic, round-robin over partitions, and waits
// for the acknowledgements.
func produce(t testing.TB, brokers []string, topic string, values ...[]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Value: v}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// committed returns the group's committed offsets summed over partitions.
func committed(t testing.TB, brokers []string, group string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return 0 // not joined yet
	}
	if errors.Is(err, kerr.CoordinatorNotAvailable) || errors.Is(err, kerr.CoordinatorLoadInProgress) || errors.Is(err, kerr.NotCoordinator) {
		return -1 // a fresh broker is still creating its offsets topic: ask again
	}
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil {
			sum += o.At
		}
	})
	return sum
}

func testConfig(brokers []string, topic, group string) Config {
	cfg := DefaultConfig()
	cfg.Brokers = brokers
	cfg.Topics = []string{topic}
	cfg.Group = group
	cfg.Cluster = "upstream"
	cfg.Source = "kong"
	cfg.Host = "testhost"
	cfg.SessionTimeout = 6 * time.Second
	return cfg
}

// sink is an ingest.Emit keeping every acknowledged batch; it fails the
// next failNext calls, or every call when failAll is set.
type sink struct {
	mu       sync.Mutex
	recs     []ingest.Record
	failNext int
	failAll  bool
}

func (s *sink) emit(_ context.Context, recs []ingest.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAll || s.failNext > 0 {
		if s.failNext > 0 {
			s.failNext--
		}
		return errors.New("broker unavailable")
	}
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *sink) records() []ingest.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ingest.Record(nil), s.recs...)
}

// start runs a collector on cfg in the background and returns a function
// that stops it and waits for Run to return nil.
func start(t *testing.T, cfg Config, s *sink) (*Collector, func()) {
	t.Helper()
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, s.emit) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	})
	t.Cleanup(stop)
	return c, stop
}

// waitFor polls an observable condition until it holds, failing after 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, what, 30*time.Second, cond)
}

// kongLines returns n Kong kafka-log style JSON values.
func kongLines(from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, fmt.Appendf(nil, `{"client_ip":"203.0.113.%d","started_at":1760104536%03d,"request":{"method":"GET","uri":"/v1/items/%d"},"response":{"status":200}}`, i%256, i%1000, i))
	}
	return out
}

func values(recs []ingest.Record) map[string]bool {
	m := map[string]bool{}
	for _, r := range recs {
		m[string(r.Data)] = true
	}
	return m
}
