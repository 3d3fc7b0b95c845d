package outputs

import (
	"context"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Grouper is an AlertNotifier that pages per alert group (rule id and group
// key) rather than per alert, Alertmanager style: it waits for a group's
// first alerts, then updates what it sent at an interval. Because sending is
// delayed past the point where the notify stage commits its input offsets,
// a Grouper keeps its groups as state records the caller persists (in the
// compacted notified topic) and hands back at start, so a restart neither
// loses an accepted alert nor pages a group twice.
//
// The caller serialises Accept, Flush and the persisting of their changes:
// the records of one key reach the topic in the order they were returned.
type Grouper interface {
	AlertNotifier
	// Grouping reports whether the notifier groups; when false the caller
	// uses Notify.
	Grouping() bool
	// Restore loads the state records read back from the topic at start
	// (key → value, keys as Accept and Flush returned them). Records it
	// cannot read are logged and skipped.
	Restore(state map[string][]byte)
	// Accept takes alerts into their groups' pending state. It does no
	// I/O; the caller persists the returned changes (key → value; a nil
	// value deletes the key) before committing the alerts' offsets.
	Accept(now time.Time, alerts ...schema.Alert) map[string][]byte
	// Flush sends what is due at now: a group's first message once its
	// wait passed, updates once its interval passed. A failure a retry may
	// fix leaves the group pending for the next Flush; a permanent one
	// drops the group's pending alerts into dead with the reason. changes
	// holds the new state of every group Flush touched, to persist.
	Flush(ctx context.Context, now time.Time) (changes map[string][]byte, dead []Dropped)
}

// Dropped is an alert a notifier gave up on, with why.
type Dropped struct {
	Alert  schema.Alert
	Reason string
}
