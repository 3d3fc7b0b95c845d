package health

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestConsumerLagEpisodes(t *testing.T) {
	m := newMonitor(t, nil) // max_lag 100000, lag_for 5m
	obs := func(lag int64, after time.Duration) {
		m.ObserveLag("trailwatch-detect", "trailwatch.events", lag, t0.Add(after))
	}

	obs(200000, 0)
	obs(50000, time.Minute) // dipped below: the run restarts
	obs(200000, 2*time.Minute)
	obs(300000, 6*time.Minute)
	none(t, m.Check(t0.Add(10*time.Minute)), "above for 4m of observations")
	obs(250000, 7*time.Minute)
	a := only(t, m.Check(t0.Add(7*time.Minute)), RuleConsumerLag)
	if a.Trailwatch.GroupKey["consumer.group"] != "trailwatch-detect" || a.Trailwatch.GroupKey["kafka.topic"] != "trailwatch.events" ||
		a.Trailwatch.Count != 250000 || !a.Trailwatch.FirstSeen.Equal(t0.Add(2*time.Minute)) || !strings.Contains(a.Message, "peak 300000") {
		t.Errorf("alert %+v / %q", a.Trailwatch, a.Message)
	}
	obs(400000, 20*time.Minute)
	none(t, m.Check(t0.Add(20*time.Minute)), "same episode")

	obs(100000, 21*time.Minute) // at the bound is not above it
	if s := m.Stats(); s.Lagging != 0 || s.Recovered != 1 {
		t.Fatalf("lagging %d recovered %d, want 0 1", s.Lagging, s.Recovered)
	}
	obs(100001, 30*time.Minute)
	obs(100001, 35*time.Minute)
	b := only(t, m.Check(t0.Add(35*time.Minute)), RuleConsumerLag)
	if b.Event.ID == a.Event.ID {
		t.Error("second episode reused the first's id")
	}
}

// lagCluster starts kfake with topic (two partitions) holding produced
// records per partition, and commits committed[p] for group.
func lagCluster(t *testing.T, topic, group string, produced, committed map[int32]int) (*kfake.Cluster, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for p, n := range produced {
		for i := range n {
			r := &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%d", i)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	adm := kadm.NewClient(cl)
	var offs kadm.Offsets
	for p, at := range committed {
		offs.AddOffset(topic, p, int64(at), -1)
	}
	if err := adm.CommitAllOffsets(ctx, group, offs); err != nil {
		t.Fatal(err)
	}
	return c, adm
}

func TestPollLagKfake(t *testing.T) {
	const topic, group = "trailwatch.events", "trailwatch-detect"
	_, adm := lagCluster(t, topic, group, map[int32]int{0: 10, 1: 5}, map[int32]int{0: 4, 1: 5})
	m := newMonitor(t, func(c *Config) { c.MaxLag = 5; c.LagFor = time.Millisecond; c.LagPollInterval = 20 * time.Millisecond })

	// One poll: lag 6 on partition 0, none on 1; an unknown group adds
	// nothing.
	if !m.pollLag(t.Context(), adm, []string{group, "never-started"}) {
		t.Fatal("poll failed")
	}
	m.mu.Lock()
	l := m.lags[lagKey{group, topic}]
	n := len(m.lags)
	m.mu.Unlock()
	if l == nil || l.lag != 6 || n != 1 {
		t.Fatalf("lag series %d, %s/%s = %+v; want one series with lag 6", n, group, topic, l)
	}

	// The loop: polls until stopped; two polls above max_lag over more
	// than lag_for page.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { m.PollLag(ctx, adm, []string{group}) })
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for m.Stats().LagPolls < 3 {
		select {
		case <-deadline:
			t.Fatal("PollLag did not poll three times")
		case <-tick.C:
		}
	}
	cancel()
	wg.Wait()
	a := only(t, m.Check(time.Now()), RuleConsumerLag)
	if a.Trailwatch.Count != 6 {
		t.Errorf("lag in alert = %d, want 6", a.Trailwatch.Count)
	}
	if s := m.Stats(); s.LagPollErrors != 0 {
		t.Errorf("poll errors = %d, want 0", s.LagPollErrors)
	}
}

func TestPollLagBrokerGone(t *testing.T) {
	const topic, group = "trailwatch.events", "trailwatch-detect"
	c, adm := lagCluster(t, topic, group, map[int32]int{0: 3}, map[int32]int{0: 1})
	m := newMonitor(t, func(c *Config) { c.LagPollInterval = 300 * time.Millisecond })
	c.Close()
	if m.pollLag(t.Context(), adm, []string{group}) {
		t.Fatal("poll against a closed broker succeeded")
	}
	if s := m.Stats(); s.LagPollErrors != 1 || s.Lags != 0 {
		t.Errorf("poll errors %d lag series %d, want 1 0", s.LagPollErrors, s.Lags)
	}
}
