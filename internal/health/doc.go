// Package health watches the watchers: it pages when the pipeline's own
// inputs or machinery fail in a way that would otherwise look like a quiet
// day. A broken feed and an idle one both produce no alerts; this package
// tells them apart.
//
// A Monitor learns, per source stream (trailwatch.source plus the collector
// instance, or the raw origin), how long the usual gap between arrivals is,
// and raises trailwatch-health-source-silent when a stream that had enough
// history stays silent for much longer than that. From the detectors'
// cumulative per-rule counters it raises trailwatch-health-rule-errors when
// a rule fails at run time, trailwatch-health-rule-not-evaluated when a rule
// that used to match is no longer evaluated while events keep flowing, and,
// for rules listed in expect_matches, trailwatch-health-rule-quiet when they
// stop matching. From consumer-group lag (PollLag, kadm) it raises
// trailwatch-health-consumer-lag when a group falls behind past a bound for
// a while.
//
// Every condition is an episode: it alerts once when it starts, is logged
// and counted when it clears, and can alert again in a later episode. Alert
// ids are deterministic (health rule id, key, episode start), so an alert
// produced twice (a retried produce) is one alert at the sinks.
//
// The Monitor does no I/O of its own except PollLag's admin requests: the
// detect stage feeds it events and rule counters, and Run hands due alerts
// to a caller-supplied emit (the alerts topic). Time always comes from the
// caller (the now arguments) or, in Run, from the time package, so tests
// drive it with plain values or testing/synctest.
//
// It deliberately does not persist state: after a restart it learns again,
// so no source-silent alert fires before a stream has min_arrivals arrivals
// in this process. It does not coordinate across processes: each detect
// process watches the streams, rules and groups it sees; with several
// processes the same silence may be reported by each (with different ids,
// as each saw a different last arrival). It sends no "resolved" alerts, as
// the alert sinks have no resolution state; recoveries are logged and
// counted (Stats).
//
// Delivery: alerts returned by Check are handed over once; Run keeps those
// whose emit failed and offers them again on the next tick (bounded, drops
// counted in Stats.Dropped).
package health
