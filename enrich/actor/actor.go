// Package actor correlates each event with its actor's history: the
// session it belongs to (trailwatch.session.*), what the actor had not used
// before (trailwatch.signals.first_seen.*), how many client IPs a
// credential used and how many credentials an IP used over a rolling
// period (trailwatch.signals.distinct_ips, distinct_actors), and whether
// the actor moved faster than a traveller can (trailwatch.signals.travel.*).
//
// The actor is schema.Event.ActorKey: the credential fingerprint, else the
// user name, else the client IP. trailwatch.events is keyed by it, so an
// actor's events all reach one partition and its state is local; the
// enricher must run after geoip and user_agent, whose fields it reads.
// Everything is computed in event time, never wall-clock time, so a replay
// enriches to what the first pass wrote.
//
// Out-of-order events do not corrupt state. First sightings and distinct
// counts are functions of event time over stored per-value time spans, so a
// late event lands where it belongs. A session's id and start are fixed by
// the first event that opened it; a late event within session_gap before
// it joins it, an older one gets no session fields. A late located event is
// compared with the stay (run of events at one location) before it but
// does not change the stays.
//
// Redelivery: each actor remembers what its last replay_window events were
// enriched with, by event id; such an event gets exactly that again and
// changes nothing. Once the window is full, an event older than all of it
// is taken as a replay from further back and enriched against the current
// state without counting it again. The window is part of the durable
// state, so a batch redelivered after a crash is recognised too.
//
// Durable state: Enricher implements enrich.Stateful with one record per
// actor (session, replay window, value sets, stays), written when the
// actor changed and deleted when it is evicted. The IP → actors index
// behind distinct_actors is rebuilt from those records on Restore.
//
// It deliberately does not count across partitions: distinct_actors counts
// the actors whose partitions this process holds, which is exact with one
// partition (or one detect process); cluster-wide counts are the detection
// engine's distinct rules over a repartitioned key.
package actor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Config bounds what the enricher remembers and sets its thresholds.
type Config struct {
	// Enabled turns the enricher on; default true.
	Enabled bool `koanf:"enabled"`
	// SessionGap is the inactivity that ends a session; default 30m.
	SessionGap time.Duration `koanf:"session_gap"`
	// History is how long a value (IP, ASN, country, user agent) stays
	// known after the actor last used it; default 720h (30 days).
	History time.Duration `koanf:"history"`
	// Learning is how long after an actor's first event nothing is flagged
	// as first seen, while its baseline forms; default 24h. 0 exempts only
	// the actor's first event (it has nothing to compare with).
	Learning time.Duration `koanf:"learning"`
	// Period is the rolling window of distinct_ips and distinct_actors;
	// default 1h.
	Period time.Duration `koanf:"period"`
	// MaxSpeedKMH is the speed above which travel is impossible; default
	// 1000 (an airliner).
	MaxSpeedKMH float64 `koanf:"max_speed_kmh"`
	// MinDistanceKM is the shortest distance flagged as impossible travel,
	// so that GeoIP jitter between nearby cities is not; default 500.
	MinDistanceKM float64 `koanf:"min_distance_km"`
	// MaxActors bounds the credentials and users remembered (LRU); default
	// 50000.
	MaxActors int `koanf:"max_actors"`
	// MaxIPActors bounds the IP-only actors remembered (LRU), apart from
	// MaxActors so that a scan from many addresses cannot evict the
	// history of credentials; default 100000.
	MaxIPActors int `koanf:"max_ip_actors"`
	// MaxValues bounds each kind of value (IP, ASN, country, user agent)
	// kept per actor; the least recently used is dropped; default 16.
	MaxValues int `koanf:"max_values"`
	// ReplayWindow is how many of its last events each actor remembers to
	// recognise a redelivery; default 8.
	ReplayWindow int `koanf:"replay_window"`
}

// DefaultConfig returns the defaults: on, 30m sessions, 30d history, 24h
// learning, 1h period, 1000 km/h over 500 km, 50k actors, 100k IP actors,
// 16 values per kind, 8 replayable events per actor.
func DefaultConfig() Config {
	return Config{
		Enabled:       true,
		SessionGap:    30 * time.Minute,
		History:       30 * 24 * time.Hour,
		Learning:      24 * time.Hour,
		Period:        time.Hour,
		MaxSpeedKMH:   1000,
		MinDistanceKM: 500,
		MaxActors:     50_000,
		MaxIPActors:   100_000,
		MaxValues:     16,
		ReplayWindow:  8,
	}
}

// Validate reports every problem with c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, errors.New(key+": must be positive"))
		}
	}
	positive("session_gap", c.SessionGap)
	positive("history", c.History)
	if c.Learning < 0 {
		errs = append(errs, errors.New("learning: must not be negative"))
	}
	positive("period", c.Period)
	if c.MaxSpeedKMH <= 0 {
		errs = append(errs, errors.New("max_speed_kmh: must be positive"))
	}
	if c.MinDistanceKM < 0 {
		errs = append(errs, errors.New("min_distance_km: must not be negative"))
	}
	atLeast := func(key string, n, lo int) {
		if n < lo {
			errs = append(errs, fmt.Errorf("%s: must be at least %d", key, lo))
		}
	}
	atLeast("max_actors", c.MaxActors, 1)
	atLeast("max_ip_actors", c.MaxIPActors, 1)
	atLeast("max_values", c.MaxValues, 1)
	atLeast("replay_window", c.ReplayWindow, 1)
	return errors.Join(errs...)
}

// Stats are the enricher's counters since New.
type Stats struct {
	Actors, IPActors int    // remembered now
	Evictions        uint64 // credential and user actors evicted (max_actors)
	IPEvictions      uint64 // IP-only actors evicted (max_ip_actors)
	ValueEvictions   uint64 // values dropped from an actor's full set (max_values)
	Sessions         uint64 // sessions opened
	Replays          uint64 // events recognised in the replay window
	Stale            uint64 // events older than a full replay window: enriched, not counted
	Late             uint64 // events too old for the actor's current session
	NoActor          uint64 // events without an actor key or a timestamp: skipped
	FirstSeen        uint64 // events with any first_seen flag
	Impossible       uint64 // events with impossible travel
	Restored         uint64 // changelog records applied
	RestoreErrors    uint64 // changelog records that did not decode
	ChangesDropped   uint64 // pending changes dropped because nobody drained them
}

// Enricher is the actor correlation enricher. It is safe for concurrent
// use; calls are serialized.
type Enricher struct {
	cfg                            Config
	log                            *slog.Logger
	gap, history, learning, period int64 // nanoseconds

	mu      sync.Mutex
	actors  map[string]*actor
	creds   pool // credential and user actors
	ips     pool // IP-only actors
	byIP    map[uint64][]*actor
	pending map[string]*actor // changed since the last drain; nil = deleted
	order   []string          // pending keys, first change first
	st      Stats
}

// New validates cfg and returns the enricher, with no state.
func New(cfg Config, logger *slog.Logger) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Enricher{
		cfg: cfg, log: logger,
		gap: int64(cfg.SessionGap), history: int64(cfg.History), learning: int64(cfg.Learning), period: int64(cfg.Period),
		actors:  make(map[string]*actor),
		creds:   pool{max: cfg.MaxActors},
		ips:     pool{max: cfg.MaxIPActors},
		byIP:    make(map[uint64][]*actor),
		pending: make(map[string]*actor),
	}, nil
}

// StateName implements enrich.StateNamer: changelog keys are "actor/<actor key>".
func (e *Enricher) StateName() string { return "actor" }

// Enrich implements enrich.Enricher. It never fails on an event; it
// returns only ctx's error, before touching the batch, so a batch is
// either wholly applied to the state or not at all.
func (e *Enricher) Enrich(ctx context.Context, evs []schema.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range evs {
		e.observe(&evs[i])
	}
	return nil
}

// observe correlates one event with its actor's state and writes the
// result into it.
func (e *Enricher) observe(ev *schema.Event) {
	var buf [96]byte
	key := actorKey(buf[:0], ev)
	if key == nil || ev.Timestamp.IsZero() {
		e.st.NoActor++
		return
	}
	t := ev.Timestamp.UnixNano()
	id := eventID(ev)
	a := e.get(key, t)
	var o output
	r, minT := a.lookup(id)
	// Only an event applied now changes the state: a replay of one in the
	// window, or one older than a full window (taken as a replay from
	// further back), is enriched from the state as it is.
	switch {
	case r != nil:
		e.st.Replays++
		o = r.out
	case len(a.ring) >= e.cfg.ReplayWindow && t < minT:
		e.st.Stale++
		o = e.correlate(a, ev, t, id, false)
		o.travel = e.travelOf(a, ev, t, id, false)
	default:
		o = e.correlate(a, ev, t, id, true)
		o.travel = e.travelOf(a, ev, t, id, true)
		if o.travel != nil && o.travel.Impossible {
			e.st.Impossible++
		}
		a.remember(applied{id: id, t: t, out: o}, e.cfg.ReplayWindow)
		e.change(a.key, a)
	}
	e.write(ev, a, o)
}

// travelOf is the event's travel, nil when it has none (most events: it
// needs a located event at a new place).
func (e *Enricher) travelOf(a *actor, ev *schema.Event, t int64, id uint64, mutate bool) *schema.Travel {
	if a.ipOnly {
		return nil
	}
	tr, ok := e.travel(a, ev, t, id, mutate)
	if !ok {
		return nil
	}
	p := new(schema.Travel) // allocated only for the few events that travel
	*p = tr
	return p
}

// write fills the event's session and signals from o, leaving what a
// normalizer set.
func (e *Enricher) write(ev *schema.Event, a *actor, o output) {
	if o.reqs > 0 && ev.Trailwatch.Session.ID == "" {
		ev.Trailwatch.Session = schema.Session{
			ID:       a.sessionID(o.sessStart),
			Start:    time.Unix(0, o.sessStart).UTC(),
			Requests: o.reqs,
			Bytes:    o.bytes,
		}
	}
	sg := &ev.Trailwatch.Signals
	if o.flags != 0 {
		e.st.FirstSeen++
		sg.FirstSeen.IP = sg.FirstSeen.IP || o.flags&(1<<kindIP) != 0
		sg.FirstSeen.ASN = sg.FirstSeen.ASN || o.flags&(1<<kindASN) != 0
		sg.FirstSeen.Country = sg.FirstSeen.Country || o.flags&(1<<kindCountry) != 0
		sg.FirstSeen.UserAgent = sg.FirstSeen.UserAgent || o.flags&(1<<kindUA) != 0
	}
	if sg.DistinctIPs == 0 {
		sg.DistinctIPs = int64(o.distinctIPs)
	}
	if sg.DistinctActors == 0 {
		sg.DistinctActors = int64(o.distinctActors)
	}
	if o.travel != nil && sg.Travel == (schema.Travel{}) {
		sg.Travel = *o.travel
	}
}

// Stats returns the counters.
func (e *Enricher) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.st
	st.Actors, st.IPActors = e.creds.Len(), e.ips.Len()
	return st
}

// Close implements enrich.Enricher; there is nothing to release.
func (e *Enricher) Close(context.Context) error { return nil }
