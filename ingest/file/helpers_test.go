package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/ingest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ ingest.Collector = (*Collector)(nil)

// sink is an ingest.Emit that keeps every acknowledged batch and fails the
// next failNext calls.
type sink struct {
	mu       sync.Mutex
	batches  [][]ingest.Record
	attempts []time.Time
	failNext int
}

func (s *sink) emit(ctx context.Context, recs []ingest.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts = append(s.attempts, time.Now())
	if s.failNext > 0 {
		s.failNext--
		return errors.New("broker unavailable")
	}
	s.batches = append(s.batches, recs)
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

func (s *sink) lines() []string {
	var out []string
	for _, r := range s.records() {
		out = append(out, string(r.Data))
	}
	return out
}

func (s *sink) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.attempts)
}

// testConfig reads dir/*.log with a checkpoint under dir/cp.
func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.Paths = []string{filepath.Join(dir, "*.log")}
	cfg.Source = "nginx"
	cfg.Host = "testhost"
	cfg.CheckpointFile = filepath.Join(dir, "cp", "file-file.json")
	return cfg
}

// start runs a collector on cfg in the background and returns a function
// that stops it and waits for Run to return nil. The test's cleanup stops
// it too.
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

// poll advances the fake clock by one poll interval and waits until the
// collector is idle again. Only valid inside a synctest bubble.
func poll(cfg Config) {
	time.Sleep(cfg.PollInterval)
	synctest.Wait()
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

func readCheckpoint(t *testing.T, cfg Config) checkpoint {
	t.Helper()
	cp, err := loadCheckpoint(cfg.CheckpointFile)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// offsetOf returns the checkpointed offset of the file at path, -1 if none.
func offsetOf(t *testing.T, cfg Config, path string) int64 {
	t.Helper()
	for _, p := range readCheckpoint(t, cfg).Files {
		if p.Path == path {
			return p.Offset
		}
	}
	return -1
}

func equalLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d lines %q, want %d lines %q", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("line %d = %q, want %q (all: %q)", i, got[i], want[i], got)
		}
	}
}
