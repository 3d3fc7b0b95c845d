package actor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/trailwatch/trailwatch/enrich/internal/state"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// recordVersion starts every changelog value; a record of another version
// does not decode (its actor starts afresh).
const recordVersion = 1

// DrainChanges implements enrich.Stateful: one record per actor changed
// since the last call, keyed by the actor key, in the order they first
// changed; an evicted actor's record has a nil Value.
func (e *Enricher) DrainChanges() []state.Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.order) == 0 {
		return nil
	}
	// One buffer for every key and value: a drain touches thousands of
	// actors per batch. A value that outgrows it leaves the earlier ones
	// in the old array, still valid.
	out := make([]state.Change, len(e.order))
	size := 0
	for _, k := range e.order {
		size += len(k)
		if a := e.pending[k]; a != nil {
			size += a.sizeHint()
		}
	}
	buf := make([]byte, 0, size)
	for i, k := range e.order {
		start := len(buf)
		buf = append(buf, k...)
		out[i].Key = buf[start:len(buf):len(buf)]
		if a := e.pending[k]; a != nil {
			start = len(buf)
			buf = a.encode(buf)
			out[i].Value = buf[start:len(buf):len(buf)]
		}
	}
	clear(e.pending)
	e.order = e.order[:0]
	return out
}

// Restore implements enrich.Stateful: it replaces key's actor with the
// record's (or forgets it, for a nil value). It returns an error for a
// record that does not decode, and leaves the actor unknown.
func (e *Enricher) Restore(key, value []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := string(key)
	if old := e.actors[k]; old != nil {
		e.remove(old)
	}
	if len(value) == 0 {
		e.st.Restored++
		return nil
	}
	a, err := decode(k, value, e.cfg.MaxValues, e.cfg.ReplayWindow)
	if err != nil {
		e.st.RestoreErrors++
		return fmt.Errorf("actor restore %q: %w", k, err)
	}
	e.insert(a)
	e.st.Restored++
	return nil
}

// sizeHint is about the most encode appends, so one buffer fits a drain.
func (a *actor) sizeHint() int {
	n := 64 + 48*len(a.ring) + 80*len(a.stays)
	for k := range a.values {
		n += 40 * len(a.values[k])
	}
	for i := range a.ring {
		if a.ring[i].out.travel != nil {
			n += 64
		}
	}
	return n
}

// encode appends a's state: varints for counts and for times as deltas
// from a nearby time, fixed 8 bytes for hashes and coordinates.
func (a *actor) encode(b []byte) []byte {
	b = append(b, recordVersion)
	b = binary.AppendVarint(b, a.firstT)
	b = binary.AppendVarint(b, a.sessStart)
	b = binary.AppendVarint(b, a.sessLast)
	b = binary.AppendVarint(b, a.sessReqs)
	b = binary.AppendVarint(b, a.sessBytes)
	b = binary.AppendUvarint(b, uint64(len(a.ring)))
	prev := a.firstT
	for i := range a.ring {
		r := &a.ring[(a.head+i)%len(a.ring)] // oldest first
		b = binary.LittleEndian.AppendUint64(b, r.id)
		b = binary.AppendVarint(b, r.t-prev)
		prev = r.t
		b = binary.AppendVarint(b, r.t-r.out.sessStart)
		b = binary.AppendVarint(b, r.out.reqs)
		b = binary.AppendVarint(b, r.out.bytes)
		b = binary.AppendVarint(b, int64(r.out.distinctIPs))
		b = binary.AppendVarint(b, int64(r.out.distinctActors))
		b = append(b, r.out.flags)
		if r.out.travel == nil {
			b = append(b, 0)
		} else {
			b = appendTravel(append(b, 1), r.out.travel)
		}
	}
	for k := range a.values {
		b = binary.AppendUvarint(b, uint64(len(a.values[k])))
		for _, s := range a.values[k] {
			b = binary.LittleEndian.AppendUint64(b, s.h)
			b = binary.AppendVarint(b, s.first-a.firstT)
			b = binary.LittleEndian.AppendUint64(b, s.firstID)
			b = binary.AppendVarint(b, s.last-s.first)
			b = binary.AppendVarint(b, s.last-s.win)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(a.stays)))
	for _, s := range a.stays {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.lat))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.lon))
		b = binary.AppendVarint(b, s.t1)
		b = binary.LittleEndian.AppendUint64(b, s.id1)
		b = binary.AppendVarint(b, s.t2)
		b = appendString(b, s.ip)
		b = appendString(b, s.country)
		b = appendTravel(b, &s.open)
	}
	return b
}

func appendTravel(b []byte, o *schema.Travel) []byte {
	b = appendString(b, o.FromIP)
	b = appendString(b, o.FromCountry)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(o.DistanceKM))
	b = binary.AppendVarint(b, o.Seconds)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(o.SpeedKMH))
	if o.Impossible {
		return append(b, 1)
	}
	return append(b, 0)
}

func (r *reader) travel() schema.Travel {
	var o schema.Travel
	o.FromIP, o.FromCountry = r.str(), r.str()
	o.DistanceKM = math.Float64frombits(r.u64())
	o.Seconds = r.varint()
	o.SpeedKMH = math.Float64frombits(r.u64())
	o.Impossible = r.byte() == 1
	return o
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorrupt = errors.New("truncated or corrupt record")

// reader decodes a record, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length, failing past limit.
func (r *reader) count(limit int) int {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(limit) {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) str() string {
	n := r.count(len(r.b))
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.b = nil
}

// decode reads a record written by encode. Sets larger than the current
// bounds (the bounds were lowered since) are cut to the most recent.
func decode(key string, b []byte, maxValues, window int) (*actor, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, fmt.Errorf("unknown record version")
	}
	r := &reader{b: b[1:]}
	a := &actor{key: key, ipOnly: strings.HasPrefix(key, "ip:")}
	a.firstT = r.varint()
	a.sessStart, a.sessLast, a.sessReqs, a.sessBytes = r.varint(), r.varint(), r.varint(), r.varint()
	n := r.count(len(r.b))
	prev := a.firstT
	for range n {
		var x applied
		x.id = r.u64()
		x.t = prev + r.varint()
		prev = x.t
		x.out.sessStart = x.t - r.varint()
		x.out.reqs, x.out.bytes = r.varint(), r.varint()
		x.out.distinctIPs, x.out.distinctActors = int32(r.varint()), int32(r.varint())
		x.out.flags = r.byte()
		if r.byte() == 1 {
			tr := r.travel()
			x.out.travel = &tr
		}
		a.remember(x, window)
	}
	for k := range a.values {
		n := r.count(len(r.b))
		vs := make([]seen, 0, n)
		for range n {
			s := seen{h: r.u64(), first: a.firstT + r.varint(), firstID: r.u64()}
			s.last = s.first + r.varint()
			s.win = s.last - r.varint()
			vs = append(vs, s)
		}
		for len(vs) > maxValues {
			j := 0
			for i := range vs {
				if vs[i].last < vs[j].last {
					j = i
				}
			}
			vs = append(vs[:j], vs[j+1:]...)
		}
		if len(vs) > 0 {
			a.values[k] = vs
		}
	}
	n = r.count(len(r.b))
	for range n {
		s := stay{lat: math.Float64frombits(r.u64()), lon: math.Float64frombits(r.u64()), t1: r.varint(), id1: r.u64(), t2: r.varint()}
		s.ip, s.country = r.str(), r.str()
		s.open = r.travel()
		a.stays = append(a.stays, s)
	}
	if len(a.stays) > maxStays {
		a.stays = a.stays[len(a.stays)-maxStays:]
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	return a, nil
}
