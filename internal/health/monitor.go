package health

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Health rule ids, as rule.id on the alerts the Monitor raises.
const (
	RuleSourceSilent     = "trailwatch-health-source-silent"
	RuleRuleErrors       = "trailwatch-health-rule-errors"
	RuleRuleNotEvaluated = "trailwatch-health-rule-not-evaluated"
	RuleRuleQuiet        = "trailwatch-health-rule-quiet"
	RuleConsumerLag      = "trailwatch-health-consumer-lag"
)

// Ruleset is rule.ruleset on every health alert, and its tag.
const Ruleset = "trailwatch-health"

// Monitor tracks source streams, rule counters and consumer lag, and turns
// their failures into alerts. All methods are safe for concurrent use: the
// detect stage feeds it from its batch handler while Run and PollLag run
// on their own goroutines.
type Monitor struct {
	cfg    Config
	log    *slog.Logger
	ignore map[string]bool

	mu      sync.Mutex
	streams map[streamKey]*stream
	rules   map[string]*ruleTrack
	lags    map[lagKey]*lagTrack
	events  uint64 // events observed since New: "events keep flowing"
	stats   Stats
}

// Stats are the Monitor's counters since New, and what it tracks now.
type Stats struct {
	// Streams, Rules and Lags are how many source streams, rules and
	// group/topic lag series are tracked now.
	Streams, Rules, Lags int
	// Silent, RulesErroring, RulesNotEvaluated, RulesQuiet and Lagging
	// count the conditions alerted and not yet cleared.
	Silent, RulesErroring, RulesNotEvaluated, RulesQuiet, Lagging int
	// Alerts is how many alerts Check returned, by health rule id.
	Alerts map[string]uint64
	// Recovered is how many alerted conditions cleared.
	Recovered uint64
	// Evicted is how many streams were forgotten to stay within
	// max_streams.
	Evicted uint64
	// LagPolls and LagPollErrors count PollLag's polls and failed ones.
	LagPolls, LagPollErrors uint64
	// Dropped is how many alerts Run gave up on because too many failed
	// emits were pending.
	Dropped uint64
}

// New validates cfg and returns a Monitor with no history. It does no I/O;
// a nil logger discards.
func New(cfg Config, logger *slog.Logger) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{
		cfg: cfg, log: logger.With("component", "health"), ignore: map[string]bool{},
		streams: map[streamKey]*stream{}, rules: map[string]*ruleTrack{}, lags: map[lagKey]*lagTrack{},
		stats: Stats{Alerts: map[string]uint64{}},
	}
	for _, s := range cfg.IgnoreSources {
		m.ignore[s] = true
	}
	// Series start at zero so a dashboard shows every kind.
	for _, id := range []string{RuleSourceSilent, RuleRuleErrors, RuleRuleNotEvaluated, RuleRuleQuiet, RuleConsumerLag} {
		m.stats.Alerts[id] = 0
	}
	return m, nil
}

// Check returns the alerts for the conditions that became due by now, each
// once per episode, and forgets what was not heard of for forget_after.
// Conditions that cleared were already logged as they cleared (when the
// stream, rule or lag reported again). The caller produces the alerts to
// the alerts topic; Run does that on a ticker.
func (m *Monitor) Check(now time.Time) []schema.Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []schema.Alert
	out = m.checkStreams(now, out)
	out = m.checkRules(now, out)
	out = m.checkLags(now, out)
	for i := range out {
		m.stats.Alerts[out[i].Rule.ID]++
		out[i].Trailwatch.Routes = slices.Clone(m.cfg.Routes)
	}
	return out
}

// Stats returns a snapshot of the counters.
func (m *Monitor) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Alerts = maps.Clone(m.stats.Alerts)
	s.Streams, s.Rules, s.Lags = len(m.streams), len(m.rules), len(m.lags)
	for _, st := range m.streams {
		if st.alerted {
			s.Silent++
		}
	}
	for _, r := range m.rules {
		if r.errAlerted {
			s.RulesErroring++
		}
		if r.notEvalAlerted {
			s.RulesNotEvaluated++
		}
		if r.quietAlerted {
			s.RulesQuiet++
		}
	}
	for _, l := range m.lags {
		if l.alerted {
			s.Lagging++
		}
	}
	return s
}

// finding is what a health alert says; alert turns it into a schema.Alert.
type finding struct {
	rule, name, description, severity string
	// group is the condition's key, as group_key; its values in key
	// order make the alert id.
	group map[string]string
	keys  []string
	start time.Time // episode start: first_seen and part of the id
	count int64
	value float64
	agg   string
	msg   string
}

// alert builds the deterministic alert for f, raised at now.
func alert(f finding, now time.Time) schema.Alert {
	values := make([]string, len(f.keys))
	for i, k := range f.keys {
		values[i] = f.group[k]
	}
	return schema.Alert{
		Timestamp: now,
		Event: schema.EventMeta{
			ID:       alertID(f.rule, values, f.start),
			Kind:     "alert",
			Category: []string{"configuration"},
			Type:     []string{"info"},
			Dataset:  Ruleset,
			Severity: schema.SeverityNumber(f.severity),
		},
		Rule: schema.Rule{
			ID: f.rule, Name: f.name, Description: f.description,
			Reference: []string{"docs/health.md"}, Ruleset: Ruleset,
		},
		Message: f.msg,
		Tags:    []string{Ruleset},
		Trailwatch: schema.AlertTrailwatch{
			Severity:    f.severity,
			GroupKey:    f.group,
			Count:       f.count,
			Value:       f.value,
			Aggregation: f.agg,
			FirstSeen:   f.start,
			LastSeen:    now,
		},
	}
}

// alertID is the deterministic id of a health alert: the first 32 hex
// digits of the SHA-256 of the health rule id, the key values and the
// episode start, NUL-separated (the scheme of detect.AlertID).
func alertID(rule string, values []string, start time.Time) string {
	h := sha256.New()
	h.Write([]byte(rule))
	for _, v := range values {
		h.Write([]byte{0})
		h.Write([]byte(v))
	}
	h.Write([]byte{0})
	h.Write([]byte(start.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// sortedKeys returns m's keys in order, for deterministic output.
func sortedKeys[K interface{ ~string }, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}

// round shortens d for messages.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute)
	case d >= time.Minute:
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
