// Package enrich adds context to normalized events before detection: the
// real client behind trusted proxies (proxies), the hops of one request
// linked by request or trace id (hop), membership of named IP lists and
// threat feeds (iplist), location and network owner (geoip), the
// parsed user agent (useragent), who owns the credential (identity), and
// the actor's sessions, first sightings, distinct counts and travel
// (actor). Chain runs them in that order, so every later step sees the
// real client address. actor is Stateful: its state outlives the process
// through a changelog the detect stage keeps. docs/enrichment.md lists every field each one writes.
//
// Enrichment runs inside the detect stage on each decoded batch; it has no
// topic or delivery guarantee of its own. Every enricher is idempotent (a
// retried batch is enriched to the same result), fills a field only when
// the normalizer left it empty, and never fails because of an event: bad
// input leaves the event as it was. Enriching an event does no network
// I/O: databases and lists are in memory, reloaded from local files when
// they change; only iplist's threat feeds are downloaded over the network,
// by background refreshers on their own schedule, never per event.
package enrich

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/trailwatch/trailwatch/enrich/internal/state"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Enricher adds fields to events in place.
type Enricher interface {
	// Enrich is called by the detect stage once per decoded batch, before
	// detection, from one goroutine at a time per stage (implementations
	// are nonetheless safe for concurrent use). It modifies evs in place.
	// It returns an error only when ctx is done; the caller then abandons
	// the batch uncommitted, to be redelivered and enriched again.
	Enrich(ctx context.Context, evs []schema.Event) error
	// Close stops background reloads and releases resources, waiting at
	// most until ctx is done. It is idempotent.
	Close(ctx context.Context) error
}

// StateChange is one update of an enricher's durable state; a nil Value
// deletes Key. (It is defined in an internal package so that enrichers can
// return it without importing this one.)
type StateChange = state.Change

// Stateful is an enricher whose state must outlive the process: the detect
// stage writes DrainChanges' records to a compacted changelog topic in the
// batch's partition after each Enrich, and feeds them back through Restore
// when it is assigned that partition, before any event.
type Stateful interface {
	// DrainChanges returns the changes since the last call, at most one
	// per key, and forgets them. It is called from the goroutine that
	// calls Enrich, after Enrich returned.
	DrainChanges() []StateChange
	// Restore applies one changelog record, oldest first; a later record
	// for the same key replaces the earlier one. An error means the record
	// is unreadable: the caller logs it and goes on (the key's state
	// starts afresh).
	Restore(key, value []byte) error
}

// StateNamer is implemented by a Stateful enricher to name its keys in a
// Chain's changelog. The name must not contain '/' and must not change
// between releases; a Stateful without it is named by its Go type.
type StateNamer interface{ StateName() string }

// Chain runs enrichers in order.
type Chain struct {
	steps []Enricher
}

// NewChain returns a chain of steps, run in the order given.
func NewChain(steps ...Enricher) *Chain { return &Chain{steps: steps} }

// Len returns the number of enrichers in the chain; 0 means Enrich does
// nothing and the caller may skip it.
func (c *Chain) Len() int { return len(c.steps) }

// Enrich runs each enricher over evs in order and stops at the first
// error, which is ctx's (see Enricher.Enrich).
func (c *Chain) Enrich(ctx context.Context, evs []schema.Event) error {
	for _, s := range c.steps {
		if err := s.Enrich(ctx, evs); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every enricher, last first, and joins their errors.
func (c *Chain) Close(ctx context.Context) error {
	var errs []error
	for i := len(c.steps) - 1; i >= 0; i-- {
		errs = append(errs, c.steps[i].Close(ctx))
	}
	return errors.Join(errs...)
}

// stateName is the changelog key prefix of a Stateful step.
func stateName(s Enricher) string {
	if n, ok := s.(StateNamer); ok {
		return n.StateName()
	}
	return fmt.Sprintf("%T", s)
}

// DrainChanges implements Stateful: the changes of every Stateful member,
// each key prefixed by the member's name and '/', so members never collide
// in one changelog.
func (c *Chain) DrainChanges() []StateChange {
	var out []StateChange
	for _, s := range c.steps {
		st, ok := s.(Stateful)
		if !ok {
			continue
		}
		prefix := stateName(s) + "/"
		for _, ch := range st.DrainChanges() {
			key := make([]byte, 0, len(prefix)+len(ch.Key))
			key = append(append(key, prefix...), ch.Key...)
			out = append(out, StateChange{Key: key, Value: ch.Value})
		}
	}
	return out
}

// Restore implements Stateful: it hands the record to the member its key
// prefix names. A record of a member that is not in the chain (an enricher
// since turned off) is ignored.
func (c *Chain) Restore(key, value []byte) error {
	name, rest, ok := bytes.Cut(key, []byte("/"))
	if !ok {
		return fmt.Errorf("enrich restore: key %q has no member prefix", key)
	}
	for _, s := range c.steps {
		st, ok := s.(Stateful)
		if ok && stateName(s) == string(name) {
			return st.Restore(rest, value)
		}
	}
	return nil
}
