package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"

	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs/elasticsearch"
)

// investigateMaxLimit bounds --limit: one search page (index.max_result_window).
const investigateMaxLimit = 10000

func cmdInvestigate(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("investigate (--credential FP | --user NAME | --ip IP) [--from TIME] [--to TIME] [--json]",
		"Print one actor's timeline from the index: every request (time, method, path,\n"+
			"status, IP, country, user agent, credential owner) and alert, oldest first,\n"+
			"then totals over the whole range (requests, distinct endpoints, IPs and\n"+
			"countries, outcomes, alerts by rule). Needs index.type elasticsearch.\n"+
			"Replay runs' alerts are left out. See docs/replay.md.", stdout, stderr)
	cfgPath := fs.StringP("config", "c", "", "YAML configuration file (index.elasticsearch)")
	cred := fs.String("credential", "", "credential fingerprint (trailwatch.credential.fingerprint)")
	user := fs.String("user", "", "user name, id or email")
	ip := fs.String("ip", "", "client IP (source.ip or client.ip)")
	fromS := fs.String("from", "24h", "start of the range (RFC 3339, date, now, or a duration ago)")
	toS := fs.String("to", "now", "end of the range, exclusive")
	asJSON := fs.Bool("json", false, "NDJSON: one line per event and alert, then a totals line")
	limit := fs.Int("limit", 500, fmt.Sprintf("most events and alerts listed each (totals always cover everything; at most %d)", investigateMaxLimit))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := 0
	for _, v := range []string{*cred, *user, *ip} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		fmt.Fprintln(stderr, "trailwatch investigate: give exactly one of --credential, --user, --ip")
		return errUsage
	}
	if *limit < 0 || *limit > investigateMaxLimit {
		fmt.Fprintf(stderr, "trailwatch investigate: --limit: 0 to %d\n", investigateMaxLimit)
		return errUsage
	}
	now := time.Now()
	from, err := parseReplayTime(*fromS, now)
	if err != nil {
		fmt.Fprintf(stderr, "trailwatch investigate: --from: %v\n", err)
		return errUsage
	}
	to, err := parseReplayTime(*toS, now)
	if err != nil {
		fmt.Fprintf(stderr, "trailwatch investigate: --to: %v\n", err)
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath, nil, nil)
	if err != nil {
		return err
	}
	if cfg.Index.Type != "elasticsearch" {
		return fmt.Errorf("index.type is %q: investigate reads Elasticsearch/OpenSearch (index.type elasticsearch)", cfg.Index.Type)
	}
	ix, err := elasticsearch.New(cfg.Index.Elasticsearch, nil)
	if err != nil {
		return fmt.Errorf("index.elasticsearch: %w", err)
	}
	defer ix.Close(context.Background())
	q := actorQuery{credential: *cred, user: *user, ip: *ip, from: from, to: to}
	tl, err := investigate(ctx, ix.Client(), cfg.Index.Elasticsearch, q, *limit)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	if *asJSON {
		return tl.writeNDJSON(w)
	}
	tl.writeTable(w)
	return nil
}

// actorQuery names the actor and the range.
type actorQuery struct {
	credential, user, ip string
	from, to             time.Time
}

// clause is the query selecting the actor's documents in [from, to).
// Alerts carry the same fields (source, user, trailwatch.credential) as
// the events that raised them.
func (q actorQuery) clause(alerts bool) map[string]any {
	var should []map[string]any
	term := func(field, v string) { should = append(should, map[string]any{"term": map[string]any{field: v}}) }
	switch {
	case q.credential != "":
		term("trailwatch.credential.fingerprint", q.credential)
	case q.user != "":
		term("user.name", q.user)
		term("user.id", q.user)
		term("user.email", q.user)
	case q.ip != "":
		term("source.ip", q.ip)
		if !alerts {
			term("client.ip", q.ip)
		}
	}
	b := map[string]any{
		"filter": []map[string]any{
			{"range": map[string]any{"@timestamp": map[string]any{"gte": q.from.UTC().Format(time.RFC3339Nano), "lt": q.to.UTC().Format(time.RFC3339Nano)}}},
			{"bool": map[string]any{"should": should, "minimum_should_match": 1}},
		},
	}
	if alerts {
		// Replay runs share the alerts index pattern in daily mode; their
		// alerts are not what happened live.
		b["must_not"] = []map[string]any{{"exists": map[string]any{"field": "trailwatch.run_id"}}}
	}
	return map[string]any{"bool": b}
}

// timeline is what investigate found.
type timeline struct {
	Events []schema.Event
	Alerts []schema.Alert
	Totals totals
}

// totals summarize the whole range, not just the listed documents.
type totals struct {
	Requests     int64            `json:"requests"`
	Endpoints    int64            `json:"distinct_endpoints"`
	IPs          int64            `json:"distinct_ips"`
	Countries    int64            `json:"distinct_countries"`
	Outcomes     map[string]int64 `json:"outcomes"`
	Statuses     map[string]int64 `json:"status_codes"`
	Alerts       int64            `json:"alerts"`
	AlertsByRule map[string]int64 `json:"alerts_by_rule"`
}

// indexPattern is what to search for a configured index name: the daily
// indices in daily mode, the index or data stream otherwise.
func indexPattern(c elasticsearch.Config, name string) string {
	if c.Mode == elasticsearch.ModeDaily {
		return name + "-*"
	}
	return name
}

func investigate(ctx context.Context, cl *es.Client, c elasticsearch.Config, q actorQuery, limit int) (*timeline, error) {
	d := elasticsearch.DefaultConfig()
	evIndex, alIndex := c.EventsIndex, c.AlertsIndex
	if evIndex == "" {
		evIndex = d.EventsIndex
	}
	if alIndex == "" {
		alIndex = d.AlertsIndex
	}
	tl := &timeline{}
	var er struct {
		Hits struct {
			Total struct {
				Value int64 `json:"value"`
			} `json:"total"`
			Hits []struct {
				Source schema.Event `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
		Aggregations struct {
			Endpoints struct{ Value int64 } `json:"endpoints"`
			IPs       struct{ Value int64 } `json:"ips"`
			Countries struct{ Value int64 } `json:"countries"`
			Outcomes  termsAgg              `json:"outcomes"`
			Statuses  termsAgg              `json:"statuses"`
		} `json:"aggregations"`
	}
	err := search(ctx, cl, indexPattern(c, evIndex), map[string]any{
		"query": q.clause(false), "size": limit, "track_total_hits": true,
		"sort": []map[string]any{{"@timestamp": "asc"}, {"event.id": "asc"}},
		"aggs": map[string]any{
			"endpoints": map[string]any{"cardinality": map[string]any{"field": "url.path"}},
			"ips":       map[string]any{"cardinality": map[string]any{"field": "source.ip"}},
			"countries": map[string]any{"cardinality": map[string]any{"field": "source.geo.country_iso_code"}},
			"outcomes":  map[string]any{"terms": map[string]any{"field": "event.outcome", "size": 10}},
			"statuses":  map[string]any{"terms": map[string]any{"field": "http.response.status_code", "size": 50}},
		},
	}, &er)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	for _, h := range er.Hits.Hits {
		tl.Events = append(tl.Events, h.Source)
	}
	tl.Totals = totals{Requests: er.Hits.Total.Value, Endpoints: er.Aggregations.Endpoints.Value, IPs: er.Aggregations.IPs.Value,
		Countries: er.Aggregations.Countries.Value, Outcomes: er.Aggregations.Outcomes.counts(), Statuses: er.Aggregations.Statuses.counts()}

	var ar struct {
		Hits struct {
			Total struct {
				Value int64 `json:"value"`
			} `json:"total"`
			Hits []struct {
				Source schema.Alert `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
		Aggregations struct {
			Rules termsAgg `json:"rules"`
		} `json:"aggregations"`
	}
	err = search(ctx, cl, indexPattern(c, alIndex), map[string]any{
		"query": q.clause(true), "size": limit, "track_total_hits": true,
		"sort": []map[string]any{{"@timestamp": "asc"}, {"event.id": "asc"}},
		"aggs": map[string]any{"rules": map[string]any{"terms": map[string]any{"field": "rule.id", "size": 100}}},
	}, &ar)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	for _, h := range ar.Hits.Hits {
		tl.Alerts = append(tl.Alerts, h.Source)
	}
	tl.Totals.Alerts, tl.Totals.AlertsByRule = ar.Hits.Total.Value, ar.Aggregations.Rules.counts()
	return tl, nil
}

// termsAgg is a terms aggregation's answer.
type termsAgg struct {
	Buckets []struct {
		Key      any   `json:"key"`
		DocCount int64 `json:"doc_count"`
	} `json:"buckets"`
}

func (t termsAgg) counts() map[string]int64 {
	out := make(map[string]int64, len(t.Buckets))
	for _, b := range t.Buckets {
		k := fmt.Sprint(b.Key)
		if f, ok := b.Key.(float64); ok {
			k = fmt.Sprintf("%.0f", f)
		}
		out[k] = b.DocCount
	}
	return out
}

// search runs one search; a missing index is an empty answer (nothing
// indexed yet in that range), any other failure an error with the
// server's reason.
func search(ctx context.Context, cl *es.Client, index string, body map[string]any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	res, err := cl.Search(cl.Search.WithContext(ctx), cl.Search.WithIndex(index), cl.Search.WithBody(bytes.NewReader(b)),
		cl.Search.WithIgnoreUnavailable(true), cl.Search.WithAllowNoIndices(true))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.IsError() {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
		return fmt.Errorf("search %s: %s: %s", index, res.Status(), bytes.TrimSpace(msg))
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return errors.New("search " + index + ": undecodable answer: " + err.Error())
	}
	return nil
}

// writeTable prints the timeline, events and alerts interleaved by time,
// then the totals.
func (tl *timeline) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tMETHOD\tPATH\tSTATUS\tIP\tCOUNTRY\tUSER AGENT\tOWNER")
	ai := 0
	printAlerts := func(before time.Time, all bool) {
		for ; ai < len(tl.Alerts) && (all || tl.Alerts[ai].Timestamp.Before(before)); ai++ {
			a := &tl.Alerts[ai]
			fmt.Fprintf(tw, "%s\tALERT\t%s\t%s\t%s\t\t\t\n", a.Timestamp.UTC().Format(time.RFC3339), a.Rule.ID, a.Trailwatch.Severity, a.Message)
		}
	}
	for i := range tl.Events {
		ev := &tl.Events[i]
		printAlerts(ev.Timestamp, false)
		ipAddr := ev.Source.IP
		if ipAddr == "" {
			ipAddr = ev.Client.IP
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Timestamp.UTC().Format(time.RFC3339), dash(ev.HTTP.Request.Method), dash(trim(ev.URL.Path, 60)),
			dash(statusOf(ev)), dash(ipAddr), dash(ev.Source.Geo.CountryISOCode), dash(trim(ev.UserAgent.Original, 40)), dash(ev.Trailwatch.Identity.Owner))
	}
	printAlerts(time.Time{}, true)
	tw.Flush()
	t := tl.Totals
	fmt.Fprintf(w, "\n%d requests (%d listed), %d distinct endpoints, %d IPs, %d countries\n", t.Requests, len(tl.Events), t.Endpoints, t.IPs, t.Countries)
	fmt.Fprintf(w, "outcomes: %s; status codes: %s\n", joinCounts(t.Outcomes), joinCounts(t.Statuses))
	fmt.Fprintf(w, "%d alerts (%d listed): %s\n", t.Alerts, len(tl.Alerts), joinCounts(t.AlertsByRule))
}

// writeNDJSON prints each event and alert as a line, oldest first, then
// one {"totals": …} line.
func (tl *timeline) writeNDJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	ai := 0
	for i := range tl.Events {
		for ; ai < len(tl.Alerts) && tl.Alerts[ai].Timestamp.Before(tl.Events[i].Timestamp); ai++ {
			if err := enc.Encode(&tl.Alerts[ai]); err != nil {
				return err
			}
		}
		if err := enc.Encode(&tl.Events[i]); err != nil {
			return err
		}
	}
	for ; ai < len(tl.Alerts); ai++ {
		if err := enc.Encode(&tl.Alerts[ai]); err != nil {
			return err
		}
	}
	return enc.Encode(map[string]any{"totals": tl.Totals})
}

func statusOf(ev *schema.Event) string {
	if ev.HTTP.Response.StatusCode == 0 {
		return ev.Event.Outcome
	}
	return fmt.Sprint(ev.HTTP.Response.StatusCode)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// joinCounts renders a count map largest first: "success 40, failure 3".
func joinCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
