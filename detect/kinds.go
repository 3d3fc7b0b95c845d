package detect

import (
	"fmt"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// kind is a rule kind with its own per-group state: sequence, new_terms or
// rate. Threshold windows and windowless rules predate it and are handled
// inline by the detector.
type kind interface {
	// groupBy names the fields that key the rule's groups.
	groupBy() []string
	// span is how far back in event time the kind's replayable state
	// reaches (RuleSet.MaxWindow); durable state does not count.
	span() time.Duration
	// observe handles an event that matched the rule's where, never a
	// late one, and returns the alert fired or nil (as evaluate).
	observe(d *Detector, rs *ruleState, ev *schema.Event, horizon time.Time, emit bool) *schema.Alert
}

// groupState is a kind's state in one group.
type groupState interface {
	// expire drops what can no longer affect any result, given that every
	// future non-late event is at or after horizon, and reports whether
	// nothing is left. Advance calls it through group.expired.
	expire(g *group, horizon instant) bool
	// dropped is called when the group is removed, expired or evicted.
	dropped(g *group)
}

// ruleKind returns the rule's kind, or nil for windowless and threshold
// rules.
func (r *Rule) ruleKind() kind {
	switch {
	case r.Sequence != nil:
		return r.Sequence
	case r.NewTerms != nil:
		return r.NewTerms
	case r.Rate != nil:
		return r.Rate
	}
	return nil
}

// stateful reports whether late events are skipped: they would rewrite
// state that may already have been judged.
func (r *Rule) stateful() bool { return r.Window != nil || r.ruleKind() != nil }

// detectorExt is the detector state the newer kinds add: the durable-state
// changelog and scratch buffers.
type detectorExt struct {
	changes []StateChange
	termBuf []byte
	valBuf  []byte
	steps   []int
	used    []seqPoint
}

// keyOf evaluates a rule's key fields (group_by, or a kind's `by`) into
// d.vals and d.keyBuf: plain fields through their typed readers
// (fast_group.go), the rest on the VM.
func (d *Detector) keyOf(rs *ruleState, ev *schema.Event) error {
	d.vals = d.vals[:0]
	d.keyBuf = d.keyBuf[:0]
	for i := range rs.keys {
		v, err := rs.keys[i].read(&d.vm, ev)
		if err != nil {
			return fmt.Errorf("%s: %w", rs.names[i], err)
		}
		d.keyBuf = appendKeyValue(d.keyBuf, v)
		d.vals = append(d.vals, v)
	}
	return nil
}
