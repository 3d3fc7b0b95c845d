package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/trailwatch/trailwatch/internal/silence"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
)

// groupPrefix starts the state key of every group.
const groupPrefix = "group/"

// group is one alert group's paging state, persisted as JSON under
// "group/<id>". The page is the top-level message; pending alerts are
// accepted but not yet shown on it.
type group struct {
	Rule    string `json:"rule"`
	Key     string `json:"key,omitempty"`
	Channel string `json:"channel,omitempty"` // the channel ID once posted (bot mode)
	TS      string `json:"ts,omitempty"`      // the page's ts (bot mode)

	PagedAt   time.Time `json:"paged_at,omitzero"`   // zero: no page yet
	UpdatedAt time.Time `json:"updated_at,omitzero"` // last page or update
	Since     time.Time `json:"since,omitzero"`      // first pending alert accepted

	Alerts int       `json:"alerts"` // on the page
	Count  int64     `json:"count"`
	First  time.Time `json:"first,omitzero"`
	Last   time.Time `json:"last,omitzero"`

	Pending      int       `json:"pending"`
	PendingCount int64     `json:"pending_count"`
	PendingFirst time.Time `json:"pending_first,omitzero"`
	PendingLast  time.Time `json:"pending_last,omitzero"`

	// Latest is the newest alert (by last_seen): the page shows it.
	Latest  schema.Alert `json:"latest"`
	AckedBy string       `json:"acked_by,omitempty"`

	dirty bool // changed outside Accept/Flush (a button), to persist
}

// groupID names a group in state keys and buttons.
func groupID(rule, key string) string {
	sum := sha256.Sum256([]byte(rule + "\x00" + key))
	return hex.EncodeToString(sum[:12])
}

// buttonValue carries the group in a button: rule and key, newline-joined
// (rule ids have no newline), so a click works even after the group's
// state expired.
func buttonValue(rule, key string) string { return rule + "\n" + key }

func parseButtonValue(v string) (rule, key string, ok bool) {
	rule, key, ok = strings.Cut(v, "\n")
	return rule, key, ok && rule != ""
}

// Grouping implements outputs.Grouper.
func (n *Notifier) Grouping() bool { return n.cfg.Grouping }

// Restore implements outputs.Grouper.
func (n *Notifier) Restore(state map[string][]byte) {
	n.gmu.Lock()
	defer n.gmu.Unlock()
	for k, v := range state {
		id, ok := strings.CutPrefix(k, groupPrefix)
		if !ok {
			continue
		}
		var g group
		if err := json.Unmarshal(v, &g); err != nil {
			n.log.Warn("slack group state unreadable; skipped", "key", k, "err", err)
			continue
		}
		n.groups[id] = &g
	}
}

// Accept implements outputs.Grouper: each alert joins its group's pending
// state (or is dropped by a route).
func (n *Notifier) Accept(now time.Time, alerts ...schema.Alert) map[string][]byte {
	n.gmu.Lock()
	defer n.gmu.Unlock()
	changes := map[string][]byte{}
	for i := range alerts {
		a := &alerts[i]
		ch, drop := n.route(a)
		if drop {
			n.stats.dropped.Add(1)
			continue
		}
		rule, key := silence.AlertKey(a)
		id := groupID(rule, key)
		g := n.groups[id]
		if g == nil {
			g = &group{Rule: rule, Key: key, Channel: ch}
			n.groups[id] = g
		}
		if g.Pending == 0 {
			g.Since = now
			g.PendingFirst, g.PendingLast = a.Trailwatch.FirstSeen, a.Trailwatch.LastSeen
		}
		g.Pending++
		g.PendingCount += a.Trailwatch.Count
		g.PendingFirst = earliest(g.PendingFirst, a.Trailwatch.FirstSeen)
		g.PendingLast = latest(g.PendingLast, a.Trailwatch.LastSeen)
		if g.Latest.Event.ID == "" || !a.Trailwatch.LastSeen.Before(g.Latest.Trailwatch.LastSeen) {
			g.Latest = *a
		}
		changes[groupPrefix+id] = mustJSON(g)
	}
	return changes
}

// due is a group to send, copied so sending runs without the lock.
type due struct {
	id      string
	g       group
	newPage bool
}

// Flush implements outputs.Grouper. Semantics (docs/outputs.md): a group
// with pending alerts and no page is posted once group_wait passed since
// its first pending alert; a paged group is updated in place (chat.update
// with the running totals) and gets a thread reply for the batch once
// group_interval passed since its last update; a group paged
// repeat_interval ago or more gets a new top-level message instead. A
// group silenced meanwhile drops its pending alerts. A group without
// pending alerts and not updated for repeat_interval is forgotten.
func (n *Notifier) Flush(ctx context.Context, now time.Time) (map[string][]byte, []outputs.Dropped) {
	changes := map[string][]byte{}
	var dead []outputs.Dropped
	var todo []due
	n.gmu.Lock()
	ids := make([]string, 0, len(n.groups))
	for id := range n.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids) // a stable order: tests, and fairness under rate limits
	for _, id := range ids {
		g := n.groups[id]
		if g.Pending == 0 {
			switch {
			case now.Sub(g.UpdatedAt) >= n.cfg.RepeatInterval && now.Sub(g.Since) >= n.cfg.RepeatInterval:
				delete(n.groups, id)
				changes[groupPrefix+id] = nil
			case g.dirty:
				g.dirty = false
				changes[groupPrefix+id] = mustJSON(g)
			}
			continue
		}
		if n.silenced(g.Rule, g.Key, now) {
			n.stats.silenced.Add(int64(g.Pending))
			g.Pending, g.PendingCount = 0, 0
			changes[groupPrefix+id] = mustJSON(g)
			continue
		}
		newPage := g.PagedAt.IsZero() || now.Sub(g.PagedAt) >= n.cfg.RepeatInterval
		switch {
		case g.PagedAt.IsZero() && now.Sub(g.Since) < n.cfg.GroupWait:
			continue
		case !newPage && now.Sub(g.UpdatedAt) < n.cfg.GroupInterval:
			continue
		}
		todo = append(todo, due{id: id, g: *g, newPage: newPage})
	}
	n.gmu.Unlock()

	for _, d := range todo {
		if ctx.Err() != nil {
			break
		}
		sent, err := n.sendGroup(ctx, d, now)
		if err != nil {
			retry, serr := n.classify(err)
			n.log.Warn("slack group send failed", "rule_id", d.g.Rule, "group", d.g.Key, "retry", retry, "err", serr)
			if retry {
				var rl *slack.RateLimitedError
				if errors.As(serr, &rl) {
					break // every further request would be refused too
				}
				continue // stays pending for the next Flush
			}
			dead = append(dead, outputs.Dropped{Alert: d.g.Latest, Reason: fmt.Sprintf("slack: %d pending alert(s) of the group: %v", d.g.Pending, serr)})
			sent = d.g
			sent.Pending, sent.PendingCount = 0, 0
		}
		n.gmu.Lock()
		if g := n.groups[d.id]; g != nil {
			// Alerts accepted while sending stay pending.
			sent.Pending = g.Pending - d.g.Pending
			sent.PendingCount = g.PendingCount - d.g.PendingCount
			sent.AckedBy = g.AckedBy
			if d.newPage && err == nil {
				sent.AckedBy = ""
			}
			*g = sent
			changes[groupPrefix+d.id] = mustJSON(g)
		}
		n.gmu.Unlock()
	}
	return changes, dead
}

// sendGroup posts d's page, or updates it and replies in its thread, and
// returns the group as it is after.
func (n *Notifier) sendGroup(ctx context.Context, d due, now time.Time) (group, error) {
	g := d.g
	v := view{buttons: n.buttonsFor(g.Rule, g.Key), silence: n.silences != nil}
	if d.newPage {
		v.alerts, v.count, v.first, v.last = g.Pending, g.PendingCount, g.PendingFirst, g.PendingLast
		ch, ts, err := n.post(ctx, g.Channel, "", n.render(&g.Latest, v))
		if err != nil {
			return g, err
		}
		n.stats.pages.Add(1)
		g.Channel, g.TS = ch, ts
		g.PagedAt, g.UpdatedAt = now, now
		g.Alerts, g.Count, g.First, g.Last = g.Pending, g.PendingCount, g.PendingFirst, g.PendingLast
		return g, nil
	}
	alerts, count := g.Alerts+g.Pending, g.Count+g.PendingCount
	first, last := earliest(g.First, g.PendingFirst), latest(g.Last, g.PendingLast)
	if n.api != nil && g.TS != "" {
		v.alerts, v.count, v.first, v.last = alerts, count, first, last
		if g.AckedBy != "" {
			v.status = ":eyes: Acknowledged by " + g.AckedBy
		}
		// Update first: it is idempotent, so a failed reply retried later
		// updates again rather than replying twice.
		if err := n.update(ctx, g.Channel, g.TS, n.render(&g.Latest, v)); err != nil {
			return g, err
		}
		n.stats.updates.Add(1)
	}
	if _, _, err := n.post(ctx, g.Channel, g.TS, n.followUp(&g.Latest, g.Pending, g.PendingCount, alerts)); err != nil {
		return g, err
	}
	n.stats.replies.Add(1)
	g.UpdatedAt = now
	g.Alerts, g.Count, g.First, g.Last = alerts, count, first, last
	return g, nil
}

// silenced reports whether a silence covers the group now. A store that
// cannot be read keeps the silences last read (logged).
func (n *Notifier) silenced(rule, key string, now time.Time) bool {
	if n.silences == nil {
		return false
	}
	_, ok, err := n.silences.Silenced(rule, key, now)
	if err != nil {
		n.log.Warn("reading silences failed; using the last read", "err", err)
	}
	return ok
}

// buttonsFor is the buttons' value, or "" when buttons are off.
func (n *Notifier) buttonsFor(rule, key string) string {
	if !n.signing.IsSet() {
		return ""
	}
	return buttonValue(rule, key)
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func mustJSON(g *group) []byte {
	b, err := json.Marshal(g)
	if err != nil {
		panic("slack: group state does not marshal: " + err.Error()) // plain data: cannot happen
	}
	return b
}
