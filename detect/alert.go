package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// AlertID is the deterministic alert id: the first 32 hex digits of the
// SHA-256 of the rule id, the group key values, the time of the first event
// of the firing window and, for windowless rules, the event id (so two
// matching events at the same instant stay two alerts).
func AlertID(ruleID string, values []string, first time.Time, eventID string) string {
	h := sha256.New()
	h.Write([]byte(ruleID))
	for _, v := range values {
		h.Write([]byte{0})
		h.Write([]byte(v))
	}
	h.Write([]byte{0})
	h.Write([]byte(first.UTC().Format(time.RFC3339Nano)))
	if eventID != "" {
		h.Write([]byte{0})
		h.Write([]byte(eventID))
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// alert builds the alert raised by ev, the triggering event, for the window
// f; values are the group key values.
func (d *Detector) alert(rs *ruleState, values []string, ev *schema.Event, f fired, eventID string) *schema.Alert {
	r := rs.rule
	var group map[string]string
	var desc strings.Builder
	for i, name := range rs.names {
		if group == nil {
			group = make(map[string]string, len(rs.names))
		}
		group[name] = values[i]
		if i > 0 {
			desc.WriteString(", ")
		}
		fmt.Fprintf(&desc, "%s=%s", name, values[i])
	}
	a := &schema.Alert{
		Timestamp: ev.Timestamp,
		Event: schema.EventMeta{
			ID:       AlertID(r.ID, values, f.first.time(), eventID),
			Kind:     "alert",
			Severity: schema.SeverityNumber(r.Severity),
		},
		Rule: schema.Rule{
			ID:          r.ID,
			Name:        r.Title,
			Description: r.Description,
			Author:      slices.Clone(r.Author),
			Reference:   slices.Clone(r.References),
		},
		Source: ev.Source,
		User:   ev.User,
		URL:    ev.URL,
		Tags:   slices.Clone(r.Tags),
		Trailwatch: schema.AlertTrailwatch{
			Severity:   r.Severity,
			Actor:      actor(ev),
			Credential: ev.Trailwatch.Credential,
			GroupKey:   group,
			Count:      int64(f.count),
			FirstSeen:  f.first.time(),
			LastSeen:   f.last.time(),
			EventIDs:   f.ids,
			Raw:        ev.Trailwatch.Raw,
			Routes:     slices.Clone(r.Routes),
		},
	}
	if len(r.techniques) > 0 {
		a.Threat = schema.Threat{Framework: "MITRE ATT&CK", Technique: slices.Clone(r.techniques)}
	}
	if r.Window != nil {
		w := r.Window
		a.Trailwatch.Window = w.Over.String()
		a.Trailwatch.Value = f.value
		a.Trailwatch.Aggregation = w.Aggregation()
		a.Trailwatch.DistinctValues = f.samples
		switch w.Agg {
		case AggCount:
			a.Message = fmt.Sprintf("%s: %d events in %s", r.Title, f.count, a.Trailwatch.Window)
		case AggDistinct:
			a.Message = fmt.Sprintf("%s: %d distinct %s in %s (%d events)", r.Title, int(f.value), w.Field, a.Trailwatch.Window, f.count)
		default:
			a.Message = fmt.Sprintf("%s: %s = %s in %s (%d events)", r.Title, a.Trailwatch.Aggregation,
				strconv.FormatFloat(f.value, 'f', -1, 64), a.Trailwatch.Window, f.count)
		}
	} else {
		a.Message = r.Title + ":"
		if ev.HTTP.Request.Method != "" || ev.URL.Path != "" {
			a.Message += " " + strings.TrimSpace(ev.HTTP.Request.Method+" "+ev.URL.Path)
			if code := ev.HTTP.Response.StatusCode; code != 0 {
				a.Message += fmt.Sprintf(" -> %d", code)
			}
		} else {
			a.Message += " 1 event"
		}
	}
	if desc.Len() > 0 {
		a.Message += " for " + desc.String()
	}
	return a
}
