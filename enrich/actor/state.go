package actor

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/trailwatch/trailwatch/internal/dlist"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// The kinds of value whose first sighting is flagged; also bit positions
// in output.flags.
const (
	kindIP = iota
	kindASN
	kindCountry
	kindUA
	kinds
)

// seen is one value an actor used, by hash.
type seen struct {
	h       uint64
	first   int64  // first use in the current history run
	firstID uint64 // the event that was that first use
	last    int64  // latest use
	win     int64  // IPs: start of the run of uses with gaps shorter than period
}

// output is what an event was enriched with, kept so that a redelivered
// event gets the same.
type output struct {
	sessStart, reqs, bytes      int64 // reqs 0: no session
	distinctIPs, distinctActors int32
	flags                       uint8 // 1<<kind: first seen
	travel                      *schema.Travel
}

// applied is one event applied to the state.
type applied struct {
	id  uint64
	t   int64
	out output
}

// stay is a run of an actor's located events at one location.
type stay struct {
	lat, lon    float64
	t1          int64 // first event's time and id
	id1         uint64
	t2          int64 // last event's time, ip and country
	ip, country string
	// open is the travel its first event got, kept so that a replay of
	// that event gets it even after the stay before was dropped.
	open schema.Travel
}

// maxStays bounds the stays kept per actor: travel needs only the last one
// or two, a few more place late events.
const maxStays = 4

// actor is one actor's state.
type actor struct {
	key                string
	ipOnly             bool
	dlist.Links[actor] // LRU list of its pool

	firstT                                   int64 // first event, for learning
	sessStart, sessLast, sessReqs, sessBytes int64
	sessIDStart                              int64 // sessID is the id of the session started then
	sessID                                   string

	ring   []applied // last applied events; when full, head is the oldest
	head   int
	values [kinds][]seen // nil for IP-only actors
	stays  []stay        // nil for IP-only actors
}

// sessionID is the deterministic id of the actor's session that started at
// start: a hash of the actor key and the start, so a replay gives the same.
func (a *actor) sessionID(start int64) string {
	if a.sessID != "" && a.sessIDStart == start {
		return a.sessID
	}
	h := sha256.New()
	h.Write([]byte(a.key))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, start, 10))
	id := hex.EncodeToString(h.Sum(nil)[:16])
	a.sessIDStart, a.sessID = start, id
	return id
}

// lookup returns the remembered event with id (nil if none) and the
// earliest time among remembered events.
func (a *actor) lookup(id uint64) (*applied, int64) {
	minT := int64(0)
	for i := range a.ring {
		r := &a.ring[i]
		if id != 0 && r.id == id {
			return r, 0
		}
		if i == 0 || r.t < minT {
			minT = r.t
		}
	}
	return nil, minT
}

// remember records an applied event, replacing the oldest once window
// events are held.
func (a *actor) remember(r applied, window int) {
	if len(a.ring) < window {
		a.ring = append(a.ring, r)
		return
	}
	a.ring[a.head] = r
	a.head = (a.head + 1) % len(a.ring)
}

// pool is an LRU list of actors, most recent first, with its bound.
type pool struct {
	dlist.List[actor, *actor]
	max int
}

func (e *Enricher) poolOf(a *actor) *pool {
	if a.ipOnly {
		return &e.ips
	}
	return &e.creds
}

// actorKey appends schema.Event.ActorKey to b without allocating; nil
// when the event has no actor.
func actorKey(b []byte, ev *schema.Event) []byte {
	switch {
	case ev.Trailwatch.Credential.Fingerprint != "":
		return append(append(b, "cred:"...), ev.Trailwatch.Credential.Fingerprint...)
	case ev.User.Name != "":
		return append(append(b, "user:"...), ev.User.Name...)
	case ev.Source.IP != "":
		return append(append(b, "ip:"...), ev.Source.IP...)
	}
	return nil
}

// get returns key's actor, most recently used now, creating it (first seen
// at t) and evicting the least recently used one past the bound.
func (e *Enricher) get(k []byte, t int64) *actor {
	if a := e.actors[string(k)]; a != nil { // no allocation for the lookup
		e.poolOf(a).MoveToFront(a)
		return a
	}
	key := string(k)
	a := &actor{key: key, ipOnly: strings.HasPrefix(key, "ip:"), firstT: t}
	e.insert(a)
	return a
}

// insert adds a new actor and evicts past the bound.
func (e *Enricher) insert(a *actor) {
	e.actors[a.key] = a
	p := e.poolOf(a)
	p.PushFront(a)
	for i := range a.values[kindIP] {
		e.index(a, a.values[kindIP][i].h)
	}
	if p.Len() > p.max {
		old := p.Back()
		if old.ipOnly {
			e.st.IPEvictions++
		} else {
			e.st.Evictions++
		}
		e.remove(old)
		e.change(old.key, nil)
	}
}

// remove forgets a.
func (e *Enricher) remove(a *actor) {
	delete(e.actors, a.key)
	e.poolOf(a).Remove(a)
	for _, s := range a.values[kindIP] {
		e.unindex(a, s.h)
	}
}

// change records key's new state (nil: deleted) for the next drain. A
// caller that never drains would make deletions pile up: past twice the
// actor bounds they are dropped and counted.
func (e *Enricher) change(key string, a *actor) {
	if strings.HasPrefix(key, "ip:") {
		// IP-only actors have no first sightings, the only state that
		// outlives the detect stage's warm-up replay; the replay rebuilds
		// their sessions and replay windows. Persisting them would write a
		// record per client address per batch.
		return
	}
	if _, ok := e.pending[key]; !ok {
		if len(e.order) >= 2*(e.cfg.MaxActors+e.cfg.MaxIPActors) {
			e.st.ChangesDropped += uint64(len(e.order))
			clear(e.pending)
			e.order = e.order[:0]
		}
		e.order = append(e.order, key)
	}
	e.pending[key] = a
}

// index notes that a uses the IP hashed h, for distinct_actors.
func (e *Enricher) index(a *actor, h uint64) { e.byIP[h] = append(e.byIP[h], a) }

func (e *Enricher) unindex(a *actor, h uint64) {
	as := e.byIP[h]
	for i, b := range as {
		if b == a {
			as[i] = as[len(as)-1]
			as[len(as)-1] = nil
			as = as[:len(as)-1]
			break
		}
	}
	if len(as) == 0 {
		delete(e.byIP, h)
		return
	}
	e.byIP[h] = as
}

// correlate computes an event's session and signals from a's state, and
// updates the state with it when mutate is set.
func (e *Enricher) correlate(a *actor, ev *schema.Event, t int64, id uint64, mutate bool) output {
	var o output
	b := ev.HTTP.Response.Bytes
	if b == 0 {
		b = ev.HTTP.Response.Body.Bytes
	}
	inSession := a.sessReqs > 0 && t >= a.sessStart-e.gap && t < a.sessLast+e.gap
	if mutate {
		a.firstT = min(a.firstT, t)
		switch {
		case a.sessReqs == 0 || t >= a.sessLast+e.gap:
			a.sessStart, a.sessLast, a.sessReqs, a.sessBytes = t, t, 1, b
			e.st.Sessions++
			inSession = true
		case inSession:
			// Includes a late event up to gap before the start: it joins
			// the session, whose id and start stay those its first event set.
			a.sessReqs++
			a.sessBytes += b
			a.sessLast = max(a.sessLast, t)
		}
	}
	if inSession {
		o.sessStart, o.reqs, o.bytes = a.sessStart, a.sessReqs, a.sessBytes
	} else {
		e.st.Late++
	}
	var ipHash uint64
	if ev.Source.IP != "" {
		ipHash = hashString(kindIP, ev.Source.IP)
	}
	if !a.ipOnly {
		var fresh uint8
		if ipHash != 0 {
			fresh |= e.see(a, kindIP, ipHash, t, id, mutate)
			n := int32(0)
			for _, s := range a.values[kindIP] {
				if s.win <= t && t < s.last+e.period {
					n++
				}
			}
			o.distinctIPs = max(n, 1)
		}
		if asn := ev.Source.AS.Number; asn != 0 {
			fresh |= e.see(a, kindASN, hashInt(kindASN, asn), t, id, mutate)
		}
		if c := ev.Source.Geo.CountryISOCode; c != "" {
			fresh |= e.see(a, kindCountry, hashString(kindCountry, c), t, id, mutate)
		}
		if ua := ev.UserAgent.Original; ua != "" {
			fresh |= e.see(a, kindUA, hashString(kindUA, ua), t, id, mutate)
		}
		if t > a.firstT+e.learning {
			o.flags = fresh
		}
	}
	if ipHash != 0 {
		n := int32(0)
		for _, b := range e.byIP[ipHash] {
			if s := b.find(kindIP, ipHash); s != nil && s.win <= t && t < s.last+e.period {
				n++
			}
		}
		o.distinctActors = n
	}
	return o
}

func (a *actor) find(k int, h uint64) *seen {
	for i := range a.values[k] {
		if a.values[k][i].h == h {
			return &a.values[k][i]
		}
	}
	return nil
}

// see reports whether the value hashed h of kind k is first seen by the
// event (t, id): it was unknown, unused for longer than history, known
// only from later events, or first seen by this very event (a replay).
// With mutate it records the use. It returns the kind's flag bit, or 0.
func (e *Enricher) see(a *actor, k int, h uint64, t int64, id uint64, mutate bool) uint8 {
	if e.seen(a, k, h, t, id, mutate) {
		return 1 << k
	}
	return 0
}

func (e *Enricher) seen(a *actor, k int, h uint64, t int64, id uint64, mutate bool) bool {
	s := a.find(k, h)
	if s == nil {
		if !mutate {
			return true
		}
		vs := a.values[k]
		if len(vs) >= e.cfg.MaxValues {
			// Drop the least recently used value.
			j := 0
			for i := range vs {
				if vs[i].last < vs[j].last {
					j = i
				}
			}
			if k == kindIP {
				e.unindex(a, vs[j].h)
			}
			vs[j] = vs[len(vs)-1]
			vs = vs[:len(vs)-1]
			e.st.ValueEvictions++
		}
		a.values[k] = append(vs, seen{h: h, first: t, firstID: id, last: t, win: t})
		if k == kindIP {
			e.index(a, h)
		}
		return true
	}
	fresh := t > s.last+e.history || t < s.first || (s.first == t && s.firstID == id)
	if !mutate {
		return fresh
	}
	if t > s.last+e.history || t < s.first {
		s.first, s.firstID = t, id
	}
	switch {
	case t >= s.last+e.period:
		s.win = t // a new run of uses
	case t < s.win && s.win-t < e.period:
		s.win = t // a late use extends the run back
	}
	s.last = max(s.last, t)
	return fresh
}

// eventID identifies an event for redelivery: its id, else its raw
// record's hash, else its raw origin and offset; 0 when it has none.
func eventID(ev *schema.Event) uint64 {
	switch {
	case ev.Event.ID != "":
		return hashString(0, ev.Event.ID)
	case ev.Trailwatch.Raw.Hash != "":
		return hashString(0, ev.Trailwatch.Raw.Hash)
	case ev.Trailwatch.Raw.Origin != "":
		return hashInt(hashString(0, ev.Trailwatch.Raw.Origin), ev.Trailwatch.Raw.Offset)
	}
	return 0
}

// FNV-1a, 64 bits: stable across processes (the hashes are persisted),
// unlike hash/maphash, and allocation-free.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashString hashes s with seed mixed in; never 0.
func hashString(seed uint64, s string) uint64 {
	h := uint64(fnvOffset) ^ seed
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return max(h, 1)
}

// hashInt hashes n with seed mixed in; never 0.
func hashInt(seed uint64, n int64) uint64 {
	h := uint64(fnvOffset) ^ seed
	for i := range 8 {
		h ^= uint64(n>>(8*i)) & 0xff
		h *= fnvPrime
	}
	return max(h, 1)
}
