package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// lagKey names a lag series: a consumer group on one topic.
type lagKey struct{ group, topic string }

func compareLagKeys(a, b lagKey) int {
	return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.topic, b.topic))
}

// lagTrack is one group/topic's lag as last observed.
type lagTrack struct {
	lag     int64
	seen    time.Time // last observation
	above   time.Time // first observation of the current run above max_lag; zero when below
	peak    int64     // highest lag in the current run above max_lag
	alerted bool
}

// ObserveLag records a consumer group's lag on a topic (records, summed
// over partitions) observed at wall time now. The lag pages when every
// observation for lag_for stays above max_lag: the judgement uses
// observation times only, so a poller that stops reporting never turns
// stale data into an alert.
func (m *Monitor) ObserveLag(group, topic string, lag int64, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := lagKey{group, topic}
	l, ok := m.lags[k]
	if !ok {
		l = &lagTrack{}
		m.lags[k] = l
	}
	l.lag, l.seen = lag, now
	if lag <= m.cfg.MaxLag {
		if l.alerted {
			m.recovered("consumer lag recovered", "group", group, "topic", topic, "lag", lag)
		}
		l.above, l.peak, l.alerted = time.Time{}, 0, false
		return
	}
	if l.above.IsZero() {
		l.above = now
	}
	l.peak = max(l.peak, lag)
}

func (m *Monitor) checkLags(now time.Time, out []schema.Alert) []schema.Alert {
	for _, k := range slices.SortedFunc(maps.Keys(m.lags), compareLagKeys) {
		l := m.lags[k]
		if now.Sub(l.seen) > m.cfg.ForgetAfter {
			delete(m.lags, k)
			continue
		}
		if l.alerted || l.above.IsZero() || l.seen.Sub(l.above) < m.cfg.LagFor {
			continue
		}
		l.alerted = true
		m.log.Warn("consumer lag", "group", k.group, "topic", k.topic, "lag", l.lag, "since", l.above)
		out = append(out, alert(finding{
			rule: RuleConsumerLag, name: "Consumer group lagging", severity: "medium",
			description: "A pipeline stage's consumer group has stayed behind its input topic by more than detect.health.max_lag records: its outputs (alerts, the index) are late, and retention may delete records it has not read.",
			group:       map[string]string{"consumer.group": k.group, "kafka.topic": k.topic},
			keys:        []string{"consumer.group", "kafka.topic"},
			start:       l.above,
			count:       l.lag, value: float64(l.lag), agg: "lag",
			msg: fmt.Sprintf("Consumer group %s is %d records behind on %s (above %d since %s, peak %d)",
				k.group, l.lag, k.topic, m.cfg.MaxLag, l.above.UTC().Format(time.RFC3339), l.peak),
		}, now))
	}
	return out
}

// PollLag asks the brokers for groups' lag every lag_poll_interval until
// ctx ends, feeding ObserveLag per group and topic. A failed poll is logged
// and counted (Stats.LagPollErrors) and changes no state. Each poll is
// bounded by the interval, so a hung broker cannot pile polls up. adm is
// the caller's; PollLag does not close it.
func (m *Monitor) PollLag(ctx context.Context, adm *kadm.Client, groups []string) {
	if len(groups) == 0 {
		return
	}
	t := time.NewTicker(m.cfg.LagPollInterval)
	defer t.Stop()
	for {
		m.pollLag(ctx, adm, groups)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var errPollTimeout = errors.New("health: lag poll exceeded lag_poll_interval")

// pollLag does one poll and reports whether it succeeded for every group.
func (m *Monitor) pollLag(ctx context.Context, adm *kadm.Client, groups []string) bool {
	if ctx.Err() != nil {
		return false
	}
	pctx, cancel := context.WithTimeoutCause(ctx, m.cfg.LagPollInterval, errPollTimeout)
	defer cancel()
	lags, err := adm.Lag(pctx, groups...)
	now := time.Now()
	m.mu.Lock()
	m.stats.LagPolls++
	m.mu.Unlock()
	if err != nil {
		m.pollFailed("cannot poll consumer lag", "err", err, "cause", context.Cause(pctx))
		return false
	}
	ok := true
	for _, g := range lags.Sorted() {
		err := g.Error()
		if errors.Is(err, kerr.GroupIDNotFound) {
			// Not started yet, or not run in this deployment (a stage
			// left out of --stages): nothing to judge, nothing wrong.
			m.log.Debug("consumer group not found", "group", g.Group)
			continue
		}
		if err != nil {
			m.pollFailed("cannot poll consumer group lag", "group", g.Group, "err", err)
			ok = false
			continue
		}
		// Partitions whose offsets could not be listed have lag -1 and
		// are left out of the totals.
		for _, tl := range g.Lag.TotalByTopic().Sorted() {
			m.ObserveLag(g.Group, tl.Topic, tl.Lag, now)
		}
	}
	return ok
}

func (m *Monitor) pollFailed(msg string, args ...any) {
	m.mu.Lock()
	m.stats.LagPollErrors++
	m.mu.Unlock()
	m.log.Warn(msg, args...)
}
