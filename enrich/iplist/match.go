package iplist

import (
	"context"
	"net/netip"
	"strings"

	"github.com/trailwatch/trailwatch/enrich/internal/mark"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// MaxEnrichments bounds threat.enrichments per event: an address on many
// feeds is still one document of bounded size.
const MaxEnrichments = 8

// MatchedType is the ECS threat.enrichments.matched.type written.
const MatchedType = "indicator_match_rule"

// Enrich implements enrich.Enricher. It never fails on an event: a value
// that does not parse is left alone. It returns only ctx's error, before
// touching the batch. It does no I/O.
func (e *Enricher) Enrich(ctx context.Context, evs []schema.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := e.snap.Load()
	for i := range evs {
		ev := &evs[i]
		if ev.Source.IP != "" {
			e.matchIP(ev, s, ev.Source.IP, "source.ip")
		}
		if ev.Client.IP != "" && ev.Client.IP != ev.Source.IP {
			e.matchIP(ev, s, ev.Client.IP, "client.ip")
		}
		if s.domains {
			if ev.URL.Domain != "" {
				e.matchDomain(ev, s, ev.URL.Domain, "url.domain")
			}
			if d := ev.Destination.Domain; d != "" && !strings.EqualFold(d, ev.URL.Domain) {
				e.matchDomain(ev, s, d, "destination.domain")
			}
		}
		if s.urls && ev.URL.Full != "" {
			e.matchURL(ev, s, ev.URL.Full)
		}
	}
	return nil
}

func (e *Enricher) matchIP(ev *schema.Event, s *snapshot, ip, field string) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	a = a.Unmap()
	key := addrU128(a)
	typ := "ipv4-addr"
	if !a.Is4() {
		typ = "ipv6-addr"
	}
	for i, l := range s.lists {
		src := l.table.lookup(key)
		if src < 0 {
			continue
		}
		e.hit(ev, i, l, src, schema.ThreatIndicator{Type: typ, IP: ip}, ip, field)
	}
}

// matchDomain looks d up, then each parent domain, in every list: the
// most specific listed domain of each list matches.
func (e *Enricher) matchDomain(ev *schema.Event, s *snapshot, d, field string) {
	atomic := d
	d = strings.TrimSuffix(strings.ToLower(d), ".")
	for i, l := range s.lists {
		if len(l.domains) == 0 {
			continue
		}
		for cur := d; ; {
			if src, ok := l.domains[cur]; ok {
				e.hit(ev, i, l, src, schema.ThreatIndicator{Type: "domain-name", Domain: cur}, atomic, field)
				break
			}
			dot := strings.IndexByte(cur, '.')
			if dot < 0 {
				break
			}
			cur = cur[dot+1:]
		}
	}
}

// matchURL looks the event's full URL up, normalized as indicators are,
// then the same URL without its query.
func (e *Enricher) matchURL(ev *schema.Event, s *snapshot, full string) {
	u, ok := normURL(full)
	if !ok {
		return
	}
	bare, _, hasQuery := strings.Cut(u, "?")
	for i, l := range s.lists {
		if len(l.urls) == 0 {
			continue
		}
		src, ok := l.urls[u]
		if !ok && hasQuery {
			src, ok = l.urls[bare]
		}
		if ok {
			e.hit(ev, i, l, src, schema.ThreatIndicator{Type: "url", URL: l.entries[src].value}, full, "url.full")
		}
	}
}

// hit records that entry src of list l (at position i) matched ev's field.
func (e *Enricher) hit(ev *schema.Event, i int, l *list, src int32, ind schema.ThreatIndicator, atomic, field string) {
	e.srcs[i].matches.Add(1)
	en := &l.entries[src]
	mark.Tag(ev, l.tag)
	if en.label != "" {
		mark.Label(ev, l.labelKey, en.label)
	}
	if !l.threat {
		return
	}
	mark.Tag(ev, l.threatTag)
	ind.Provider = l.name
	ind.Description = en.desc
	if ind.Description == "" {
		ind.Description = en.label
	}
	ind.Confidence = en.confidence
	if ind.Confidence == "" {
		ind.Confidence = l.confidence
	}
	te := schema.ThreatEnrichment{Indicator: ind, Matched: schema.ThreatMatched{Atomic: atomic, Field: field, Type: MatchedType}}
	for _, have := range ev.Threat.Enrichments {
		// The same indicator of the same feed on the same field: enriched
		// before (a retried batch), perhaps from an older feed version.
		h := have.Indicator
		if h.Provider == ind.Provider && h.Type == ind.Type && h.IP == ind.IP && h.Domain == ind.Domain && h.URL == ind.URL && have.Matched.Field == field {
			return
		}
	}
	if len(ev.Threat.Enrichments) >= MaxEnrichments {
		e.truncated.Add(1)
		return
	}
	ev.Threat.Enrichments = append(ev.Threat.Enrichments, te)
}
