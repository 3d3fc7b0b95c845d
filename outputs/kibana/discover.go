package kibana

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// EventsDataView is the id of the events data view in the assets.
const EventsDataView = "trailwatch-events"

// DiscoverMargin widens an alert's time range on each side in DiscoverURL,
// so the events just before and after the window show too.
const DiscoverMargin = time.Minute

// DiscoverURL returns a Kibana Discover link to an alert's events: the
// events data view, the time range first_seen..last_seen widened by
// DiscoverMargin, and a KQL query on the alert's group key fields (every
// event the rule counted, not only the sampled ids), else on its sample
// event ids, else on its actor. base is Kibana's URL including the space
// prefix ("https://kibana:5601/s/security"). It returns "" when base is
// empty, so a caller can pass an unset kibana.url through.
func DiscoverURL(base string, a schema.Alert) string {
	if base == "" {
		return ""
	}
	from, to := a.Trailwatch.FirstSeen, a.Trailwatch.LastSeen
	if from.IsZero() {
		from = a.Timestamp
	}
	if to.IsZero() || to.Before(from) {
		to = from
	}
	g := fmt.Sprintf("(time:(from:%s,to:%s))",
		risonString(from.Add(-DiscoverMargin).UTC().Format("2006-01-02T15:04:05.000Z")),
		risonString(to.Add(DiscoverMargin).UTC().Format("2006-01-02T15:04:05.000Z")))
	app := fmt.Sprintf("(dataSource:(dataViewId:%s,type:dataView),index:%s,query:(language:kuery,query:%s))",
		risonString(EventsDataView), risonString(EventsDataView), risonString(alertQuery(a)))
	return strings.TrimRight(base, "/") + "/app/discover#/?_g=" + escape(g) + "&_a=" + escape(app)
}

// alertQuery is the KQL that selects an alert's events.
func alertQuery(a schema.Alert) string {
	if len(a.Trailwatch.GroupKey) > 0 {
		fields := make([]string, 0, len(a.Trailwatch.GroupKey))
		for f := range a.Trailwatch.GroupKey {
			fields = append(fields, f)
		}
		slices.Sort(fields)
		parts := make([]string, len(fields))
		for i, f := range fields {
			parts[i] = kqlField(f) + ":" + kqlString(a.Trailwatch.GroupKey[f])
		}
		return strings.Join(parts, " and ")
	}
	if len(a.Trailwatch.EventIDs) > 0 {
		ids := make([]string, len(a.Trailwatch.EventIDs))
		for i, id := range a.Trailwatch.EventIDs {
			ids[i] = kqlString(id)
		}
		return "event.id:(" + strings.Join(ids, " or ") + ")"
	}
	if a.Trailwatch.Actor != "" {
		return "trailwatch.actor:" + kqlString(a.Trailwatch.Actor)
	}
	return ""
}

// kqlString quotes a KQL value: inside double quotes only \ and " need
// escaping, and wildcards are literal.
func kqlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// kqlField escapes the characters KQL treats specially in a field name.
func kqlField(f string) string {
	var b strings.Builder
	for _, r := range f {
		if strings.ContainsRune(`\():<>"*{} `, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// risonString quotes s as a rison string: single quotes, with ! and '
// escaped by !.
func risonString(s string) string {
	return "'" + strings.NewReplacer("!", "!!", "'", "!'").Replace(s) + "'"
}

// escape percent-encodes a rison value for the URL fragment (spaces as
// %20, not +, which Kibana would keep as a plus).
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
