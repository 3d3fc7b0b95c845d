package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// emitter records what Run emits and fails the first failures calls.
type emitter struct {
	mu       sync.Mutex
	failures int
	calls    [][]string // alert rule ids per call
	ids      [][]string // alert ids per call
	errs     []bool
}

func (e *emitter) emit(_ context.Context, alerts []schema.Alert) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for _, a := range alerts {
		ids = append(ids, a.Event.ID)
	}
	e.calls = append(e.calls, ruleIDs(alerts))
	e.ids = append(e.ids, ids)
	fail := len(e.calls) <= e.failures
	e.errs = append(e.errs, fail)
	if fail {
		return errors.New("produce: broker unavailable")
	}
	return nil
}

func TestRunRetriesFailedEmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMonitor(t, nil) // check_interval 30s, min_silence 15m
		for range 12 {
			m.ObserveEvents("nginx", "edge", 1, time.Now(), time.Now())
			time.Sleep(time.Second)
		}
		e := &emitter{failures: 1}
		rules := func() []RuleCounters { return []RuleCounters{{ID: "r", Evals: 1, Errors: 1}} }
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { m.Run(ctx, rules, e.emit) })

		time.Sleep(17 * time.Minute)
		synctest.Wait()
		cancel()
		wg.Wait()

		e.mu.Lock()
		defer e.mu.Unlock()
		want := [][]string{{RuleRuleErrors}, {RuleRuleErrors}, {RuleSourceSilent}}
		if !slices.EqualFunc(e.calls, want, slices.Equal) {
			t.Fatalf("emit calls = %v, want %v", e.calls, want)
		}
		if !slices.Equal(e.errs, []bool{true, false, false}) {
			t.Errorf("failures = %v, want only the first", e.errs)
		}
		if e.ids[0][0] != e.ids[1][0] {
			t.Error("the retried alert changed id")
		}
	})
}

func TestRunBoundsPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMonitor(t, func(c *Config) { c.MinArrivals = 2 })
		for i := range maxPending + 5 {
			name := fmt.Sprint(i)
			m.ObserveEvents("s", name, 1, time.Now(), time.Now())
			m.ObserveEvents("s", name, 1, time.Now(), time.Now().Add(time.Second))
		}
		e := &emitter{failures: 1 << 30}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { m.Run(ctx, nil, e.emit) })
		time.Sleep(15*time.Minute + 45*time.Second) // one tick (15m30s) past min_silence
		synctest.Wait()
		cancel()
		wg.Wait()
		if s := m.Stats(); s.Dropped != 5 || s.Silent != maxPending+5 {
			t.Errorf("dropped %d silent %d, want 5 %d", s.Dropped, s.Silent, maxPending+5)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if n := len(e.calls); n != 1 || len(e.calls[0]) != maxPending {
			t.Errorf("emit calls %d, first with %d alerts; want 1 with %d", n, len(e.calls[0]), maxPending)
		}
	})
}

func TestRunStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMonitor(t, nil)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.Run(ctx, nil, func(context.Context, []schema.Alert) error { return nil })
		}()
		synctest.Wait()
		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("Run did not return after cancel")
		}
	})
}
