package health

import (
	"context"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// maxPending bounds the alerts Run holds for a failing emit. Past it the
// oldest are dropped (Stats.Dropped, logged): health alerts describe the
// present, and an emit that fails this long is itself a page elsewhere
// (the producer's errors, the consumer lag seen by another process).
const maxPending = 1000

// Run evaluates the conditions every check_interval until ctx ends. On
// each tick it first feeds ObserveRules with rules() (nil skips rule
// checks' input), then hands Check's alerts to emit. Alerts whose emit
// failed are offered again on the next tick along with the new ones; their
// ids are deterministic, so a partly successful emit repeated is harmless.
// emit is called on Run's goroutine only, with a ctx that ends with Run's.
func (m *Monitor) Run(ctx context.Context, rules func() []RuleCounters, emit func(context.Context, []schema.Alert) error) {
	t := time.NewTicker(m.cfg.CheckInterval)
	defer t.Stop()
	var pending []schema.Alert
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Stop wins over a tick that raced with it.
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if rules != nil {
			m.ObserveRules(rules(), now)
		}
		pending = append(pending, m.Check(now)...)
		if len(pending) == 0 {
			continue
		}
		if over := len(pending) - maxPending; over > 0 {
			m.mu.Lock()
			m.stats.Dropped += uint64(over)
			m.mu.Unlock()
			m.log.Error("health alerts dropped: emit keeps failing", "dropped", over)
			pending = pending[over:]
		}
		if err := emit(ctx, pending); err != nil {
			m.log.Warn("cannot emit health alerts; retrying next check", "alerts", len(pending), "err", err)
			continue
		}
		pending = nil
	}
}
