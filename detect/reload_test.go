package detect

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

const reloadV1 = `
rules:
  - id: keep
    title: Keep
    where: http.response.status_code == 401
    window: {count: 3, over: 1m, group_by: [source.ip]}
  - id: change
    title: Change
    where: http.response.status_code == 401
    window: {count: 3, over: 1m, group_by: [source.ip]}
  - id: gone
    title: Gone
    where: http.response.status_code == 401
    window: {count: 3, over: 1m, group_by: [source.ip]}
`

// reloadV2 keeps "keep" (new title only), lowers change's threshold,
// drops "gone" and adds "added".
const reloadV2 = `
rules:
  - id: added
    title: Added
    where: http.response.status_code == 401
    window: {count: 2, over: 1m, group_by: [source.ip]}
  - id: keep
    title: Keep, renamed
    description: only words changed
    where: http.response.status_code == 401
    window: {group_by: [source.ip], over: 1m, count: 3}
  - id: change
    title: Change
    where: http.response.status_code == 401
    window: {count: 2, over: 1m, group_by: [source.ip]}
`

// firedBy returns the alerts of one rule.
func firedBy(alerts []schema.Alert, id string) []schema.Alert {
	var out []schema.Alert
	for _, a := range alerts {
		if a.Rule.ID == id {
			out = append(out, a)
		}
	}
	return out
}

func TestReloadKeepsUnchangedRules(t *testing.T) {
	evs := []schema.Event{fail401(1, "192.0.2.1"), fail401(2, "192.0.2.1"), fail401(3, "192.0.2.1"), fail401(4, "192.0.2.1")}

	// Reference: the old rules, never reloaded.
	ref := mustDetector(t, mustRules(t, reloadV1), DefaultConfig())
	refAlerts, err := ref.Observe(t.Context(), evs)
	if err != nil {
		t.Fatal(err)
	}

	d := mustDetector(t, mustRules(t, reloadV1), DefaultConfig())
	before, err := d.Observe(t.Context(), evs[:2])
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 0 {
		t.Fatalf("fired before the reload: %v", before)
	}
	res := d.Reload(mustRules(t, reloadV2))
	want := ReloadResult{Kept: []string{"keep"}, Changed: []string{"change"}, Added: []string{"added"}, Removed: []string{"gone"}}
	if !slices.Equal(res.Kept, want.Kept) || !slices.Equal(res.Changed, want.Changed) ||
		!slices.Equal(res.Added, want.Added) || !slices.Equal(res.Removed, want.Removed) {
		t.Fatalf("Reload: got %+v, want %+v", res, want)
	}
	if s := d.Stats(); s.Groups != 1 || len(s.Rules) != 3 {
		t.Fatalf("after reload: %d groups and %d rules, want only keep's group and 3 rules", s.Groups, len(s.Rules))
	}
	var after []schema.Alert
	for _, ev := range evs[2:] {
		a, err := d.Observe(t.Context(), []schema.Event{ev})
		if err != nil {
			t.Fatal(err)
		}
		after = append(after, a...)
	}

	t.Run("unchanged rule fires exactly as without reload", func(t *testing.T) {
		got, wantKeep := firedBy(after, "keep"), firedBy(refAlerts, "keep")
		if len(got) != 1 || len(wantKeep) != 1 {
			t.Fatalf("keep fired %d times, reference %d; want 1 each", len(got), len(wantKeep))
		}
		g, w := got[0], wantKeep[0]
		if g.Event.ID != w.Event.ID || g.Timestamp != w.Timestamp || g.Trailwatch.Count != w.Trailwatch.Count ||
			!slices.Equal(g.Trailwatch.EventIDs, w.Trailwatch.EventIDs) {
			t.Errorf("keep alert differs from the reference:\n got %+v\nwant %+v", g.Trailwatch, w.Trailwatch)
		}
		if g.Rule.Name != "Keep, renamed" {
			t.Errorf("kept rule alerts with title %q, want the new one", g.Rule.Name)
		}
	})
	t.Run("changed rule starts fresh", func(t *testing.T) {
		// Count 2 over a fresh window: events 3 and 4, not 1 and 2.
		got := firedBy(after, "change")
		if len(got) != 1 || got[0].Timestamp != at(4) || !slices.Equal(got[0].Trailwatch.EventIDs, []string{evs[2].Event.ID, evs[3].Event.ID}) {
			t.Fatalf("change fired %+v, want once at 4s on events 3 and 4", got)
		}
	})
	t.Run("added rule starts fresh", func(t *testing.T) {
		if got := firedBy(after, "added"); len(got) != 1 || got[0].Timestamp != at(4) {
			t.Fatalf("added fired %+v, want once at 4s", got)
		}
	})
	t.Run("removed rule is gone", func(t *testing.T) {
		if got := firedBy(after, "gone"); len(got) != 0 {
			t.Fatalf("removed rule fired: %+v", got)
		}
		for _, info := range d.Rules() {
			if info.ID == "gone" {
				t.Fatal("Rules still lists the removed rule")
			}
		}
	})
}

func TestReloadKeepsEventTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AllowedLateness = 10 * time.Second
	d := mustDetector(t, mustRules(t, reloadV1), cfg)
	if _, err := d.Observe(t.Context(), []schema.Event{fail401(100, "192.0.2.1")}); err != nil {
		t.Fatal(err)
	}
	d.Reload(mustRules(t, reloadV2))
	if _, err := d.Observe(t.Context(), []schema.Event{fail401(50, "192.0.2.2")}); err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); s.Late != 1 {
		t.Fatalf("Late = %d, want 1: lateness is measured from the newest event before the reload", s.Late)
	}
}

func TestReloadSameSetKeepsSuppression(t *testing.T) {
	const src = `
id: single
title: Single
where: http.response.status_code == 401
suppress: 1h
`
	d := mustDetector(t, mustRules(t, src), DefaultConfig())
	first, err := d.Observe(t.Context(), []schema.Event{fail401(1, "192.0.2.1")})
	if err != nil || len(first) != 1 {
		t.Fatalf("first event: %d alerts, err %v", len(first), err)
	}
	res := d.Reload(mustRules(t, strings.Replace(src, "title: Single", "title: Single again", 1)))
	if !slices.Equal(res.Kept, []string{"single"}) {
		t.Fatalf("Reload: %+v, want single kept", res)
	}
	again, err := d.Observe(t.Context(), []schema.Event{fail401(2, "192.0.2.1")})
	if err != nil || len(again) != 0 {
		t.Fatalf("suppressed actor alerted again after reload: %d alerts, err %v", len(again), err)
	}
}
