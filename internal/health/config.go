package health

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Source stream keys: what, besides trailwatch.source, tells one feed from
// another.
const (
	// KeyCollector keys streams by trailwatch.raw.collector, the collector
	// instance name: one stream per configured collector and source.
	KeyCollector = "collector"
	// KeyOrigin keys streams by trailwatch.raw.origin (a file path, a
	// syslog sender, a Kafka partition). Finer, but S3 objects and syslog
	// TCP connections make one-shot origins, which never build a history.
	KeyOrigin = "origin"
)

// Config is the `detect.health` section.
type Config struct {
	// Enabled turns the monitor on. It is the caller's switch: a Monitor
	// built from a disabled config still works. Default true.
	Enabled bool `koanf:"enabled"`
	// CheckInterval is how often Run evaluates the conditions and emits
	// what is due. Default 30s.
	CheckInterval time.Duration `koanf:"check_interval"`
	// Routes names the notifier routes health alerts go to (as a rule's
	// `routes:`), so the pipeline's operators rather than the security
	// team can be paged; empty means the default route.
	Routes []string `koanf:"routes"`

	// SourceKey is "collector" (default) or "origin": see KeyCollector
	// and KeyOrigin.
	SourceKey string `koanf:"source_key"`
	// MinArrivals is how many arrivals (batches holding the stream's
	// events) a stream needs before its silence can page: below it there
	// is no usual gap to compare with. Default 10.
	MinArrivals int `koanf:"min_arrivals"`
	// MinSilence is the shortest silence that pages, whatever the usual
	// gap: busy streams, whose usual gap is a fraction of a second, page
	// after this. Default 15m.
	MinSilence time.Duration `koanf:"min_silence"`
	// SilenceFactor scales the usual gap (the 95th percentile of the last
	// 64 gaps between arrivals): a stream is silent when nothing arrived
	// for max(min_silence, silence_factor × usual gap). Default 4.
	SilenceFactor float64 `koanf:"silence_factor"`
	// SourceMinSilence overrides min_silence per trailwatch.source name,
	// for feeds known to pause (nightly batch exports, hourly S3
	// deliveries).
	SourceMinSilence map[string]time.Duration `koanf:"source_min_silence"`
	// IgnoreSources lists trailwatch.source names whose silence never
	// pages.
	IgnoreSources []string `koanf:"ignore_sources"`
	// MaxStreams bounds the streams tracked; past it the least recently
	// seen stream is forgotten (Stats.Evicted). Default 10000.
	MaxStreams int `koanf:"max_streams"`
	// ForgetAfter is how long a stream, a lag series or a rule no longer
	// reported is kept after its last sign of life. Default 168h (7 days).
	ForgetAfter time.Duration `koanf:"forget_after"`

	// RuleSilence is how long a rule that used to match may go without
	// being evaluated while events flow before it pages, and how long a
	// rule must stay free of new run-time errors for its error episode to
	// end. Default 15m.
	RuleSilence time.Duration `koanf:"rule_silence"`
	// RuleMinEvents is how many events must have arrived since a rule's
	// last evaluation (or match, for expect_matches) for its silence to
	// count as "events keep flowing". Default 100.
	RuleMinEvents uint64 `koanf:"rule_min_events"`
	// ExpectMatches maps rule ids to the longest time they may go without
	// a match while events flow (canary and heartbeat rules). Opt-in: most
	// rules are rightly silent for days.
	ExpectMatches map[string]time.Duration `koanf:"expect_matches"`

	// MaxLag is the consumer lag, in records summed over a topic's
	// partitions, above which a group is behind. Default 100000.
	MaxLag int64 `koanf:"max_lag"`
	// LagFor is how long the lag must stay above max_lag, as observed by
	// consecutive polls, before it pages. Default 5m.
	LagFor time.Duration `koanf:"lag_for"`
	// LagPollInterval is how often PollLag asks the brokers for the
	// groups' committed and end offsets; each poll is bounded by it.
	// Default 30s.
	LagPollInterval time.Duration `koanf:"lag_poll_interval"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Enabled:         true,
		CheckInterval:   30 * time.Second,
		SourceKey:       KeyCollector,
		MinArrivals:     10,
		MinSilence:      15 * time.Minute,
		SilenceFactor:   4,
		MaxStreams:      10000,
		ForgetAfter:     7 * 24 * time.Hour,
		RuleSilence:     15 * time.Minute,
		RuleMinEvents:   100,
		MaxLag:          100000,
		LagFor:          5 * time.Minute,
		LagPollInterval: 30 * time.Second,
	}
}

// Validate reports every problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive", key))
		}
	}
	positive("check_interval", c.CheckInterval)
	positive("min_silence", c.MinSilence)
	positive("forget_after", c.ForgetAfter)
	positive("rule_silence", c.RuleSilence)
	positive("lag_for", c.LagFor)
	positive("lag_poll_interval", c.LagPollInterval)
	if c.SourceKey != KeyCollector && c.SourceKey != KeyOrigin {
		errs = append(errs, fmt.Errorf("source_key: %q is not %q or %q", c.SourceKey, KeyCollector, KeyOrigin))
	}
	if c.MinArrivals < 2 {
		errs = append(errs, errors.New("min_arrivals: must be at least 2 (one gap)"))
	}
	if c.SilenceFactor < 1 {
		errs = append(errs, errors.New("silence_factor: must be at least 1"))
	}
	if c.MaxStreams <= 0 {
		errs = append(errs, errors.New("max_streams: must be positive"))
	}
	if c.MaxLag < 0 {
		errs = append(errs, errors.New("max_lag: must not be negative"))
	}
	for _, src := range slices.Sorted(maps.Keys(c.SourceMinSilence)) {
		if c.SourceMinSilence[src] <= 0 {
			errs = append(errs, fmt.Errorf("source_min_silence.%s: must be positive", src))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.ExpectMatches)) {
		if c.ExpectMatches[id] <= 0 {
			errs = append(errs, fmt.Errorf("expect_matches.%s: must be positive", id))
		}
	}
	return errors.Join(errs...)
}
