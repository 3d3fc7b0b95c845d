package detect

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// base are the fields every rule's projection keeps (detectorFields,
// canonical and sorted).
var base = []string{"event.id", "http.request.method", "http.response.status_code", "source", "timestamp", "trailwatch.actor", "trailwatch.credential", "trailwatch.raw", "url", "user"}

// withBase returns base plus extra, sorted.
func withBase(extra ...string) []string {
	out := append(slices.Clone(base), extra...)
	slices.Sort(out)
	return out
}

func TestRuleFields(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // extra files next to rules.yaml (macros)
		rule  string
		want  []string // nil: whole
	}{
		{
			name: "condition only",
			rule: `{id: r, title: r, where: 'http.response.body.bytes > 10 && tls.version == "1.0"'}`,
			want: withBase("http.response.body.bytes", "tls.version"),
		},
		{
			name: "distinct field and group by an expression",
			rule: `{id: r, title: r, where: 'event.outcome == "failure"', window: {over: 1m, count: 3, group_by: [lower(cloud.region)], distinct: user_agent.name}}`,
			want: withBase("cloud.region", "event.outcome", "user_agent.name"),
		},
		{
			name: "sum field",
			rule: `{id: r, title: r, where: 'true', window: {over: 1m, group_by: [destination.ip], sum: destination.bytes, threshold: 10}}`,
			want: withBase("destination.bytes", "destination.ip"),
		},
		{
			name: "sequence steps and by",
			rule: `{id: r, title: r, where: 'observer.vendor != ""', sequence: {by: [service.name], within: 5m, steps: [{name: a, where: 'error.code == "x"'}, {name: b, where: 'trailwatch.session.requests > 3'}]}}`,
			want: withBase("error.code", "observer.vendor", "service.name", "trailwatch.session.requests"),
		},
		{
			name: "new terms fields",
			rule: `{id: r, title: r, where: 'true', new_terms: {by: [cloud.account.id], fields: [user_agent.os.name], history: 1h}}`,
			want: withBase("cloud.account.id", "user_agent.os.name"),
		},
		{
			name: "macros expanded",
			files: map[string]string{"_macros.yaml": `
macros:
  odd_agent: lower(user_agent.original) contains "curl"
lists:
  countries: [KP, IR]
`},
			rule: `{id: r, title: r, where: 'odd_agent && client.geo.country_iso_code in countries'}`,
			want: withBase("client.geo.country_iso_code", "user_agent.original"),
		},
		{
			name: "maps, lists and times are kept whole",
			rule: `{id: r, title: r, where: 'labels.env == "prod" && trailwatch.extra["k"] != "" && "x" in tags && event.created.Year() > 2000 && related.ip[0] != ""'}`,
			want: withBase("event.created", "labels", "related.ip", "tags", "trailwatch.extra"),
		},
		{
			name: "predicate over a struct list and a computed key",
			rule: `{id: r, title: r, where: 'any(threat.enrichments, .indicator.type == "url") && labels[observer.name] == "y"'}`,
			want: withBase("labels", "observer.name", "threat.enrichments"),
		},
		{
			name: "env read by a constant name",
			rule: `{id: r, title: r, where: '$env.trace.id != "" && $env["service"].type == "api"'}`,
			want: withBase("service.type", "trace.id"),
		},
		{
			name: "env indexed by a computed name falls back to the whole event",
			rule: `{id: r, title: r, where: '$env[observer.name] != nil'}`,
		},
		{
			name: "env as a value falls back to the whole event",
			rule: `{id: r, title: r, where: 'len(toJSON($env)) > 10'}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"rules.yaml": "rules:\n  - " + tc.rule + "\n"}
			for k, v := range tc.files {
				files[k] = v
			}
			dir := t.TempDir()
			for name, src := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			set, err := LoadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			p := set.Rules()[0].Fields()
			if tc.want == nil {
				if !p.Whole() || p.ID() != "all" || p.Fields() != nil {
					t.Fatalf("projection %v, want the whole event", p)
				}
				return
			}
			if p.Whole() || !slices.Equal(p.Fields(), tc.want) {
				t.Fatalf("fields %v\nwant   %v", p, tc.want)
			}
		})
	}
}

func TestFamilyFieldsAreTheUnion(t *testing.T) {
	set := mustRules(t, `
rules:
  - {id: a, title: a, where: 'tls.version == "1.0"', window: {over: 1m, count: 2, group_by: [source.ip]}}
  - {id: b, title: b, where: 'error.code != ""', window: {over: 1m, count: 2, group_by: [source.ip]}}
  - {id: c, title: c, where: 'service.name != ""', window: {over: 1m, count: 2, group_by: [trailwatch.actor]}}
`)
	rt := NewRouter(set)
	fams := rt.Families()
	if len(fams) != 1 {
		t.Fatalf("%d families, want 1", len(fams))
	}
	p := fams[0].Fields()
	if want := withBase("error.code", "tls.version"); !slices.Equal(p.Fields(), want) {
		t.Fatalf("family fields %v, want %v (the actor-local rule c is not in the family)", p, want)
	}
	if p.ID() == (&Projection{}).ID() || len(p.ID()) != 16 {
		t.Errorf("id %q, want 16 hex digits", p.ID())
	}
}

func TestProjectionApply(t *testing.T) {
	src := populatedEvent(1)
	set := mustRules(t, `{id: r, title: r, where: 'tls.version == "1.0" && labels.env != ""'}`)
	p := set.Rules()[0].Fields()
	var dst schema.Event
	got := p.Apply(&dst, &src)
	if got != &dst {
		t.Fatal("Apply did not write dst")
	}
	want := schema.Event{Timestamp: src.Timestamp, Source: src.Source, User: src.User, URL: src.URL, Labels: src.Labels}
	want.Event.ID = src.Event.ID
	want.HTTP.Request.Method = src.HTTP.Request.Method
	want.HTTP.Response.StatusCode = src.HTTP.Response.StatusCode
	want.TLS.Version = src.TLS.Version
	want.Trailwatch.Actor = src.Trailwatch.Actor
	want.Trailwatch.Credential = src.Trailwatch.Credential
	want.Trailwatch.Raw = src.Trailwatch.Raw
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(&want)
	if string(gb) != string(wb) {
		t.Fatalf("projected\n%s\nwant\n%s", gb, wb)
	}
	// dst is reset: a second projection leaves nothing of the first.
	other := schema.Event{}
	other.TLS.Cipher = "stale"
	p.Apply(&other, &src)
	if other.TLS.Cipher != "" {
		t.Error("a field outside the projection survived in dst")
	}
	whole := mustRules(t, `{id: r, title: r, where: '$env[observer.name] != nil'}`).Rules()[0].Fields()
	if whole.Apply(&dst, &src) != &src {
		t.Error("a whole projection must return src")
	}
}

// TestProjectionKeepsAlerts runs every shipped rule over its own test
// events, as written and laid over a fully populated event, once whole and
// once projected to the rule's fields: alerts and rule errors must be the
// same, byte for byte.
func TestProjectionKeepsAlerts(t *testing.T) {
	set, err := LoadDir("../rules")
	if err != nil {
		t.Fatal(err)
	}
	alerts, smaller := 0, 0
	for _, r := range set.Rules() {
		t.Run(r.ID, func(t *testing.T) {
			p := r.Fields()
			if p.Whole() {
				t.Fatalf("shipped rule %s reads the whole event", r.ID)
			}
			// Each test case runs on its own, as written and laid over a
			// populated event: its events are what makes the rule fire.
			for i, tc := range r.Tests {
				sparse := slices.Clone(tc.Events)
				over := make([]schema.Event, len(tc.Events))
				for j := range sparse {
					// The defaults of the rule test harness (ruletest.Events).
					if sparse[j].Timestamp.IsZero() {
						sparse[j].Timestamp = t0.Add(time.Duration(j) * time.Second)
					}
					if sparse[j].Event.ID == "" {
						sparse[j].Event.ID = fmt.Sprintf("test-%d", j)
					}
					over[j] = populatedEvent(i*100 + j)
					b, _ := json.Marshal(&sparse[j])
					if err := json.Unmarshal(b, &over[j]); err != nil {
						t.Fatal(err)
					}
				}
				for _, evs := range [][]schema.Event{sparse, over} {
					proj := make([]schema.Event, len(evs))
					for i := range evs {
						p.Apply(&proj[i], &evs[i])
						wb, _ := json.Marshal(&evs[i])
						pb, _ := json.Marshal(&proj[i])
						if len(pb) < len(wb) {
							smaller++
						}
					}
					want, wantErrs := observeJSON(t, set.Subset(r.ID), evs)
					got, gotErrs := observeJSON(t, set.Subset(r.ID), proj)
					if want != got {
						t.Errorf("%s: alerts differ\nwhole:     %s\nprojected: %s", tc.Name, want, got)
					}
					if wantErrs != gotErrs {
						t.Errorf("%s: rule errors differ\nwhole:     %s\nprojected: %s", tc.Name, wantErrs, gotErrs)
					}
					alerts += strings.Count(want, `"rule":`)
				}
			}
		})
	}
	// Guard against a vacuous pass: the inline tests fire, and projection
	// drops fields.
	t.Logf("%d alerts compared, %d events made smaller", alerts, smaller)
	if alerts < len(set.Rules()) || smaller == 0 {
		t.Errorf("%d alerts from %d rules, %d events made smaller: the comparison proves little", alerts, len(set.Rules()), smaller)
	}
}

// observeJSON runs a fresh detector over evs and returns its alerts and
// rule errors as JSON.
func observeJSON(t *testing.T, rs *RuleSet, evs []schema.Event) (string, string) {
	t.Helper()
	d := mustDetector(t, rs, DefaultConfig())
	alerts, err := d.Observe(t.Context(), evs)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(alerts)
	var errs []string
	for _, re := range d.DrainRuleErrors() {
		errs = append(errs, fmt.Sprintf("%s %s %s %v", re.RuleID, re.EventID, re.Timestamp, re.Err))
	}
	e, _ := json.Marshal(errs)
	return string(a), string(e)
}

// populatedEvent is an enriched event with every part of the schema set,
// varied by i.
func populatedEvent(i int) schema.Event {
	ev := realisticEvent()
	ev.Timestamp = t0.Add(time.Duration(i) * time.Second)
	ev.Event.ID = fmt.Sprintf("pop%d", i)
	ev.Event.Action, ev.Event.Provider, ev.Event.Module = "GetObject", "s3.amazonaws.com", "aws"
	ev.Event.Created = ev.Timestamp.Add(-time.Second)
	ev.Client = schema.Endpoint{IP: "198.51.100.7", Geo: schema.Geo{CountryISOCode: "DE", CityName: "Berlin", Location: schema.GeoPoint{Lat: 52.5, Lon: 13.4}}}
	ev.Source.Geo.CityName = "Amsterdam"
	ev.Source.AS.Organization.Name = "Example Transit"
	ev.UserAgent = schema.UserAgent{Original: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", Name: "Firefox", Version: "128.0", OS: schema.UserAgentOS{Name: "Linux", Full: "Linux x86_64"}}
	ev.URL.Full = "https://api.example.com/api/login?next=%2F"
	ev.Cloud = schema.Cloud{Provider: "aws", Region: "eu-west-1", Account: schema.CloudAccount{ID: "123456789012"}}
	ev.Observer = schema.Observer{Name: "edge-1", Vendor: "nginx", Type: "proxy"}
	ev.TLS = schema.TLS{Version: "1.3", VersionProtocol: "tls", Cipher: "TLS_AES_128_GCM_SHA256"}
	ev.Service = schema.Service{Name: fmt.Sprintf("svc%d", i%3)}
	ev.Trace.ID = fmt.Sprintf("trace%d", i)
	ev.Labels = map[string]string{"env": "prod"}
	ev.Tags = []string{"edge"}
	ev.Trailwatch.Raw = schema.RawRef{Origin: "/var/log/nginx/access.log", Offset: int64(i) * 211, Hash: "ab12cd34", Collector: "file", Partition: 2, KafkaOffset: int64(i)}
	ev.Trailwatch.Session = schema.Session{ID: "s1", Start: t0, Requests: int64(i), Bytes: 4096}
	ev.Trailwatch.Signals = schema.Signals{DistinctIPs: 2, FirstSeen: schema.FirstSeen{UserAgent: i%2 == 0}}
	ev.Trailwatch.Extra = map[string]string{"mfa": "false"}
	ev.Trailwatch.Identity = schema.Identity{Owner: "team-a", Known: true}
	return ev
}

// BenchmarkProjectionApply measures projecting a populated event to a
// shipped family's fields.
func BenchmarkProjectionApply(b *testing.B) {
	set, err := LoadDir("../rules")
	if err != nil {
		b.Fatal(err)
	}
	f := NewRouter(set).Family("source.ip")
	src := populatedEvent(1)
	var dst schema.Event
	b.ReportAllocs()
	for b.Loop() {
		f.Project(&dst, &src)
	}
}
