// Package enrich adds context to normalized events before detection: the
// real client behind trusted proxies (proxies), membership of named IP
// lists and threat feeds (iplist), location and network owner (geoip), the
// parsed user agent (useragent), and who owns the credential (identity).
// Chain runs them in that order, so every later step sees the real client
// address. docs/enrichment.md lists every field each one writes.
//
// Enrichment runs inside the detect stage on each decoded batch; it has no
// topic or delivery guarantee of its own. Every enricher is idempotent (a
// retried batch is enriched to the same result), fills a field only when
// the normalizer left it empty, and never fails because of an event: bad
// input leaves the event as it was. Enrichment deliberately does no network
// I/O: databases and lists are local files, reloaded when they change.
package enrich

import (
	"context"
	"errors"

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
