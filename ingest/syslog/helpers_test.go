package syslog

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink is an ingest.Emit that keeps every acknowledged batch. While gate is
// non-nil, emit waits for it to be closed (Kafka slow); failNext makes the
// next calls fail (Kafka down).
type sink struct {
	mu       sync.Mutex
	batches  [][]ingest.Record
	gate     chan struct{}
	failNext int
	changed  chan struct{} // signalled (non-blocking) after each accepted batch
}

func newSink() *sink { return &sink{changed: make(chan struct{}, 1)} }

func (s *sink) emit(ctx context.Context, recs []ingest.Record) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		return errors.New("broker unavailable")
	}
	s.batches = append(s.batches, recs)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return nil
}

func (s *sink) records() []ingest.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ingest.Record
	for _, b := range s.batches {
		out = append(out, b...)
	}
	return out
}

// wait blocks until at least n records arrived, failing the test after 10s.
func (s *sink) wait(t *testing.T, n int) []ingest.Record {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if recs := s.records(); len(recs) >= n {
			return recs
		}
		select {
		case <-s.changed:
		case <-timeout:
			t.Fatalf("got %d records, want %d", len(s.records()), n)
		}
	}
}

// testConfig listens on ephemeral loopback ports and flushes fast.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.TCP = "127.0.0.1:0"
	cfg.Source = "nginx"
	cfg.Host = "collector-host"
	cfg.FlushInterval = 5 * time.Millisecond
	return cfg
}

// running is a collector started by start.
type running struct {
	*Collector
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's result, set before done closes
}

// stop cancels Run and returns its error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

// start runs a collector until the test ends and waits for its listeners.
func start(t *testing.T, cfg Config, emit ingest.Emit) *running {
	t.Helper()
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{Collector: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = c.Run(ctx, emit)
		close(r.done)
	}()
	select {
	case <-c.Ready():
	case <-r.done:
		t.Fatalf("Run: %v", r.err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// dial connects to the collector's listener for proto.
func dial(t *testing.T, c *Collector, proto string) net.Conn {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(t.Context(), "tcp", c.Addr(proto).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func write(t *testing.T, w net.Conn, s string) {
	t.Helper()
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// waitClosed waits until the server closes conn (a read returns an error
// other than a timeout), failing after 10s.
func waitClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	for {
		_, err := conn.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("server did not close the connection")
		}
		return
	}
}

// until polls cond until it holds, failing after 10s. Only for conditions
// that have no event to wait on (counters).
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, what, 10*time.Second, cond)
}

func datas(recs []ingest.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Data)
	}
	return out
}
