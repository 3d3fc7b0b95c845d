package detect

// ReloadResult says what Reload did with each rule, by id, in load order
// (Removed in the old set's order).
type ReloadResult struct {
	// Kept are the rules whose id and definition (Rule.Hash) are unchanged:
	// their groups and windows carry on.
	Kept []string
	// Changed are the rules whose definition changed: their state was
	// dropped and they start fresh.
	Changed []string
	// Added are the new rules; Removed the rules gone, whose state was
	// dropped.
	Added, Removed []string
}

// Reload replaces the detector's rules with set. It takes the detector's
// lock, so it happens between two Observe (or Warm) batches, never inside
// one. A rule whose id and Hash are unchanged keeps its groups, windows,
// suppression and statistics, and fires exactly when it would have without
// the reload; it takes the new set's *Rule (a new title or description
// shows in its next alerts). A changed rule starts with no state, a removed
// rule's state is dropped. Event-time progress (the newest event time seen,
// which lateness is measured from) is kept. set must come from LoadDir or
// LoadFiles; a nil set changes nothing.
func (d *Detector) Reload(set *RuleSet) ReloadResult {
	var res ReloadResult
	if set == nil {
		return res
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := make(map[string]*ruleState, len(d.rules))
	for _, rs := range d.rules {
		old[rs.rule.ID] = rs
	}
	ids := make(map[string]struct{}, len(set.rules))
	for _, r := range set.rules {
		ids[r.ID] = struct{}{}
	}
	kept := make(map[*ruleState]bool, len(d.rules))
	rules := make([]*ruleState, 0, len(set.rules))
	for _, r := range set.rules {
		prev, ok := old[r.ID]
		switch {
		case ok && prev.rule.hash == r.hash:
			prev.bind(r)
			kept[prev] = true
			rules = append(rules, prev)
			res.Kept = append(res.Kept, r.ID)
			continue
		case ok:
			res.Changed = append(res.Changed, r.ID)
		default:
			res.Added = append(res.Added, r.ID)
		}
		rules = append(rules, newRuleState(r))
	}
	for _, rs := range d.rules {
		if _, ok := ids[rs.rule.ID]; !ok {
			res.Removed = append(res.Removed, rs.rule.ID)
		}
	}
	// Drop the groups of changed and removed rules, oldest first, so the
	// order of any state change they report is deterministic.
	for g := d.lru.back; g != nil; {
		prev := g.prev
		if !kept[g.rule] {
			d.remove(g)
		}
		g = prev
	}
	d.rules = rules
	d.index = newRuleIndex(rules)
	d.set = set
	return res
}
