package health

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// gapHistory is how many recent gaps between arrivals a stream keeps; the
// usual gap is their 95th percentile, so one earlier outage among them
// does not stretch it.
const gapHistory = 64

// streamKey names a source stream: trailwatch.source and the collector
// instance or origin, by source_key.
type streamKey struct{ source, name string }

func (k streamKey) String() string { return orDash(k.source) + "/" + orDash(k.name) }

func compareStreamKeys(a, b streamKey) int {
	return cmp.Or(cmp.Compare(a.source, b.source), cmp.Compare(a.name, b.name))
}

// stream is one source stream's arrival history.
type stream struct {
	last     time.Time // wall time of the last arrival
	newest   time.Time // newest event time seen
	arrivals uint64
	events   uint64
	gaps     [gapHistory]time.Duration
	ngaps    int // filled entries of gaps
	next     int // where the next gap goes
	alerted  bool
}

// usualGap is the 95th percentile of the kept gaps.
func (s *stream) usualGap() time.Duration {
	g := slices.Clone(s.gaps[:s.ngaps])
	slices.Sort(g)
	i := (len(g)*95 + 99) / 100 // ceil(0.95 n), 1-based rank
	return g[max(i, 1)-1]
}

// Observe records a batch the detect stage received at wall time now:
// events are grouped into streams (trailwatch.source plus the collector or
// origin) and each stream with events counts one arrival. Call it from the
// batch handler only, never for warm-up replays, which are not arrivals.
func (m *Monitor) Observe(evs []schema.Event, now time.Time) {
	type batch struct {
		n      int
		newest time.Time
	}
	per := map[streamKey]batch{}
	for i := range evs {
		k := m.keyOf(&evs[i])
		b := per[k]
		b.n++
		if t := evs[i].Timestamp; t.After(b.newest) {
			b.newest = t
		}
		per[k] = b
	}
	for k, b := range per {
		m.ObserveEvents(k.source, k.name, b.n, b.newest, now)
	}
}

func (m *Monitor) keyOf(ev *schema.Event) streamKey {
	if m.cfg.SourceKey == KeyOrigin {
		return streamKey{ev.Trailwatch.Source, ev.Trailwatch.Raw.Origin}
	}
	return streamKey{ev.Trailwatch.Source, ev.Trailwatch.Raw.Collector}
}

// ObserveEvents records that n events of one stream (source, and the
// collector or origin name) arrived at wall time now, the newest with
// event time newest. It counts one arrival; n <= 0 is ignored.
func (m *Monitor) ObserveEvents(source, name string, n int, newest, now time.Time) {
	if n <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events += uint64(n)
	k := streamKey{source, name}
	s, ok := m.streams[k]
	if !ok {
		if len(m.streams) >= m.cfg.MaxStreams {
			m.evictStream()
		}
		s = &stream{}
		m.streams[k] = s
	} else if now.After(s.last) {
		s.gaps[s.next] = now.Sub(s.last)
		s.next = (s.next + 1) % gapHistory
		s.ngaps = min(s.ngaps+1, gapHistory)
	}
	if s.alerted {
		s.alerted = false
		m.stats.Recovered++
		m.log.Info("source recovered", "source", source, "stream", name, "silent_for", round(now.Sub(s.last)))
	}
	if now.After(s.last) {
		s.last = now
	}
	if newest.After(s.newest) {
		s.newest = newest
	}
	s.arrivals++
	s.events += uint64(n)
}

// evictStream forgets the least recently seen stream. Linear, but only
// reached when max_streams is exceeded.
func (m *Monitor) evictStream() {
	var oldest streamKey
	var at time.Time
	first := true
	for k, s := range m.streams {
		if first || s.last.Before(at) {
			oldest, at, first = k, s.last, false
		}
	}
	delete(m.streams, oldest)
	m.stats.Evicted++
	m.log.Warn("source stream forgotten: max_streams reached", "stream", oldest.String(), "max_streams", m.cfg.MaxStreams)
}

// floor is the shortest silence of s that pages (min_silence or the
// source's override); ok is false when the stream cannot page (too little
// history, or an ignored source).
func (m *Monitor) floor(k streamKey, s *stream) (d time.Duration, ok bool) {
	if m.ignore[k.source] || s.arrivals < uint64(m.cfg.MinArrivals) || s.ngaps == 0 {
		return 0, false
	}
	if d, ok := m.cfg.SourceMinSilence[k.source]; ok {
		return d, true
	}
	return m.cfg.MinSilence, true
}

func (m *Monitor) checkStreams(now time.Time, out []schema.Alert) []schema.Alert {
	for _, k := range slices.SortedFunc(maps.Keys(m.streams), compareStreamKeys) {
		s := m.streams[k]
		silent := now.Sub(s.last)
		if silent > m.cfg.ForgetAfter {
			delete(m.streams, k)
			m.log.Info("source stream forgotten after long silence", "stream", k.String(), "silent_for", round(silent))
			continue
		}
		if s.alerted {
			continue
		}
		// The floor first: most streams are far from silent on most
		// checks, and the usual gap costs a sort.
		floor, ok := m.floor(k, s)
		if !ok || silent <= floor {
			continue
		}
		usual := s.usualGap()
		limit := max(floor, time.Duration(m.cfg.SilenceFactor*float64(usual)))
		if silent <= limit {
			continue
		}
		s.alerted = true
		nameKey := "trailwatch.raw." + m.cfg.SourceKey
		m.log.Warn("source silent", "stream", k.String(), "silent_for", round(silent), "usual_gap", round(usual))
		out = append(out, alert(finding{
			rule: RuleSourceSilent, name: "Source silent", severity: "high",
			description: "No events arrived from this source stream for much longer than its usual gap between arrivals: the collector, the log shipper or the source itself may be broken.",
			group:       map[string]string{"trailwatch.source": k.source, nameKey: k.name},
			keys:        []string{"trailwatch.source", nameKey},
			start:       s.last,
			count:       int64(s.events),
			value:       silent.Seconds(),
			agg:         "silence_seconds",
			msg: fmt.Sprintf("Source %s silent for %s (usual gap %s, pages after %s); last event time %s",
				k, round(silent), round(usual), round(limit), s.newest.UTC().Format(time.RFC3339)),
		}, now))
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
