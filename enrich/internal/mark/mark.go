// Package mark writes what enrichers add to an event: tags, labels and
// trailwatch.extra entries, each idempotent so that enriching a retried
// batch twice leaves the event as enriching it once. It holds no state.
package mark

import (
	"slices"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Tag appends tag to ev.Tags unless it is already there.
func Tag(ev *schema.Event, tag string) {
	if !slices.Contains(ev.Tags, tag) {
		ev.Tags = append(ev.Tags, tag)
	}
}

// Label sets ev.Labels[k] = v, allocating the map on first use.
func Label(ev *schema.Event, k, v string) {
	if ev.Labels == nil {
		ev.Labels = make(map[string]string, 2)
	}
	ev.Labels[k] = v
}

// Extra sets ev.Trailwatch.Extra[k] = v, allocating the map on first use.
func Extra(ev *schema.Event, k, v string) {
	if ev.Trailwatch.Extra == nil {
		ev.Trailwatch.Extra = make(map[string]string, 2)
	}
	ev.Trailwatch.Extra[k] = v
}

// RelatedIP appends ip to related.ip unless it is empty or already there.
func RelatedIP(ev *schema.Event, ip string) {
	if ip != "" && !slices.Contains(ev.Related.IP, ip) {
		ev.Related.IP = append(ev.Related.IP, ip)
	}
}
