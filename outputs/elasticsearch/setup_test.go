package elasticsearch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
)

// TestSetupIsIdempotentOnOpenSearch installs templates and targets on the
// real node in every mode, runs again (everything unchanged), then tampers
// with a stored template and runs again (that template and the target's
// mapping updated). Lifecycle policies are left out: the test node has no
// ISM plugin (see TestSetupLifecycleOnRealNode and TestSetupRequests).
func TestSetupIsIdempotentOnOpenSearch(t *testing.T) {
	addr := nodeURL(t)
	tests := []struct {
		mode string
		// targetKind is the report kind of the created target, "" for none.
		targetKind string
	}{
		{mode: ModeSingle, targetKind: "index"},
		{mode: ModeDaily},
		{mode: ModeDataStream, targetKind: "data stream"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			cfg := testConfig(t, addr)
			cfg.Mode = tt.mode
			ix := newIndexer(t, cfg)
			t.Cleanup(func() { cleanupSetup(t, addr, cfg) })

			first, err := ix.install(t.Context(), ix.resources(false))
			if err != nil {
				t.Fatalf("first run: %v", err)
			}
			wantKinds := []string{"component template", "index template"}
			if tt.targetKind != "" {
				wantKinds = append(wantKinds, tt.targetKind)
			}
			assertReport(t, "first run", first, len(wantKinds)*2, ActionCreated)
			for i, it := range first.Items[:len(wantKinds)] {
				if it.Kind != wantKinds[i] {
					t.Errorf("first run item %d kind %q, want %q", i, it.Kind, wantKinds[i])
				}
			}

			second, err := ix.install(t.Context(), ix.resources(false))
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			assertReport(t, "second run", second, len(wantKinds)*2, ActionUnchanged)
			if second.Changed() {
				t.Errorf("second run Changed() = true")
			}

			// Someone (an older trailwatch) left a different mapping.
			stale := `{"template":{"mappings":{"properties":{"message":{"type":"text"}}}},"_meta":{"trailwatch_hash":"old"}}`
			nodeSend(t, http.MethodPut, addr+"/_component_template/"+cfg.EventsIndex+"-mappings", stale)
			third, err := ix.install(t.Context(), ix.resources(false))
			if err != nil {
				t.Fatalf("third run: %v", err)
			}
			for _, it := range third.Items {
				want := ActionUnchanged
				if it.Name == cfg.EventsIndex+"-mappings" || (it.Name == cfg.EventsIndex && it.Kind == tt.targetKind) {
					want = ActionUpdated
				}
				if it.Action != want {
					t.Errorf("third run: %s %s %s, want %s", it.Action, it.Kind, it.Name, want)
				}
			}
		})
	}
}

// TestSetupMapsTypes indexes an event into a data stream set up by Setup's
// templates and reads the types the node gave its fields.
func TestSetupMapsTypes(t *testing.T) {
	addr := nodeURL(t)
	cfg := testConfig(t, addr)
	cfg.Mode = ModeDataStream
	ix := newIndexer(t, cfg)
	t.Cleanup(func() { cleanupSetup(t, addr, cfg) })
	if err := ix.EnsureIndices(t.Context()); err != nil {
		t.Fatal(err)
	}
	ev := schema.Event{
		Timestamp: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		Event:     schema.EventMeta{ID: "ev-1", Outcome: "failure"},
		Source:    schema.Endpoint{IP: "2001:db8::7", Geo: schema.Geo{Location: schema.GeoPoint{Lat: 48.85, Lon: 2.35}}},
		UserAgent: schema.UserAgent{Original: "curl/8.5.0"},
		Labels:    map[string]string{"env": "prod"},
		Trailwatch: schema.Trailwatch{
			Hop:     schema.Hop{ClientIP: "198.51.100.4"},
			Signals: schema.Signals{Travel: schema.Travel{SpeedKMH: 1200.5, Impossible: true}},
		},
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	// A field the schema does not know: kept in _source, not mapped.
	body = append(body[:len(body)-1], []byte(`,"surprise":{"x":"y"}}`)...)
	if err := ix.Write(t.Context(), []outputs.Document{{Kind: outputs.KindEvents, ID: "ev-1", Body: body}}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	var got map[string]struct {
		Mappings map[string]any `json:"mappings"`
	}
	nodeDo(t, http.MethodGet, addr+"/"+cfg.EventsIndex+"/_mapping", &got)
	if len(got) != 1 {
		t.Fatalf("mapping answer has %d indices, want the one backing index: %v", len(got), got)
	}
	var mapping map[string]any
	for name, m := range got {
		if !strings.HasPrefix(name, ".ds-"+cfg.EventsIndex) {
			t.Errorf("backing index %q, want .ds-%s-…", name, cfg.EventsIndex)
		}
		mapping = m.Mappings
	}
	for path, want := range map[string]string{
		"@timestamp":                               "date",
		"source.ip":                                "ip",
		"source.geo.location":                      "geo_point",
		"user_agent.original":                      "keyword",
		"labels.env":                               "keyword",
		"trailwatch.hop.client_ip":                 "ip",
		"trailwatch.signals.travel.speed_kmh":      "double",
		"trailwatch.signals.travel.impossible":     "boolean",
		"threat.enrichments":                       "nested",
		"trailwatch.signals.first_seen.user_agent": "boolean",
	} {
		if typ := fieldType(mapping, path); typ != want {
			t.Errorf("%s mapped %q, want %q", path, typ, want)
		}
	}
	if typ := fieldType(mapping, "surprise"); typ != "" {
		t.Errorf("unknown field mapped as %q, want unmapped (dynamic: false)", typ)
	}
	if n := count(t, addr, cfg.EventsIndex); n != 1 {
		t.Errorf("data stream has %d docs, want 1", n)
	}
}

// TestSetupLifecycleOnRealNode runs the lifecycle step against the real
// node. The test node has no ISM plugin: Setup must say so, not pretend
// retention is in place. A node with the plugin must end up holding the
// policy.
func TestSetupLifecycleOnRealNode(t *testing.T) {
	addr := nodeURL(t)
	hasISM := nodeDo(t, http.MethodGet, addr+"/_plugins/_ism/policies", nil) == http.StatusOK
	cfg := testConfig(t, addr)
	cfg.Mode = ModeDaily
	cfg.EventsRetentionDays = 30
	ix := newIndexer(t, cfg)
	t.Cleanup(func() { cleanupSetup(t, addr, cfg) })
	rep, err := ix.Setup(t.Context())
	if hasISM {
		if err != nil {
			t.Fatalf("Setup on a node with ISM: %v", err)
		}
		if code := nodeDo(t, http.MethodGet, addr+"/_plugins/_ism/policies/"+cfg.EventsIndex+"-lifecycle", nil); code != http.StatusOK {
			t.Errorf("ISM policy after Setup: HTTP %d, want 200", code)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), "ism policy "+cfg.EventsIndex+"-lifecycle") ||
		!strings.Contains(err.Error(), ErrLifecycleUnavailable.Error()) {
		t.Fatalf("Setup = %v, want the ISM policy step to fail with ErrLifecycleUnavailable", err)
	}
	if len(rep.Items) != 0 {
		t.Errorf("report %v, want nothing installed before the failing policy", rep.Items)
	}
}

// TestSetupRequests checks the bodies Setup sends, for both flavors: the
// Elasticsearch (ILM) path cannot run here (no Elasticsearch server in
// tests), so its requests are asserted field by field.
func TestSetupRequests(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		// want maps a request path to JSON-path => value checks on its body.
		want map[string]map[string]any
		// absent lists paths that must not be requested.
		absent []string
	}{
		{
			name: "elasticsearch data stream with retention",
			mutate: func(c *Config) {
				c.Mode = ModeDataStream
				c.EventsRetentionDays = 30
				c.AlertsRetentionDays = 365
			},
			want: map[string]map[string]any{
				"/_ilm/policy/trailwatch-events-lifecycle": {
					"policy.phases.hot.actions.rollover.max_age":                "1d",
					"policy.phases.hot.actions.rollover.max_primary_shard_size": "50gb",
					"policy.phases.delete.min_age":                              "30d",
					"policy.phases.delete.actions.delete":                       map[string]any{},
					"policy._meta.managed_by":                                   "trailwatch",
				},
				"/_ilm/policy/trailwatch-alerts-lifecycle": {"policy.phases.delete.min_age": "365d"},
				"/_component_template/trailwatch-events-mappings": {
					"template.mappings.dynamic":                         false,
					"template.mappings.properties.source.properties.ip": map[string]any{"type": "ip"},
					"template.mappings.properties.labels":               map[string]any{"type": "flattened", "ignore_above": float64(1024)},
				},
				"/_index_template/trailwatch-events": {
					"index_patterns": []any{"trailwatch-events"},
					"data_stream":    map[string]any{},
					"composed_of":    []any{"trailwatch-events-mappings"},
					"template.settings.index\\.lifecycle\\.name": "trailwatch-events-lifecycle",
				},
				"/_data_stream/trailwatch-alerts": nil,
			},
		},
		{
			name: "opensearch data stream with retention",
			mutate: func(c *Config) {
				c.Flavor = FlavorOpenSearch
				c.Mode = ModeDataStream
				c.EventsRetentionDays = 7
				c.RolloverMaxAge = 6 * time.Hour
			},
			want: map[string]map[string]any{
				"/_plugins/_ism/policies/trailwatch-events-lifecycle": {
					"policy.default_state":                                   "hot",
					"policy.states.0.actions.0.rollover.min_index_age":       "6h",
					"policy.states.0.transitions.0.state_name":               "delete",
					"policy.states.0.transitions.0.conditions.min_index_age": "7d",
					"policy.states.1.actions.0.delete":                       map[string]any{},
					"policy.ism_template.0.index_patterns":                   []any{".ds-trailwatch-events-*"},
				},
				// Alerts kept forever: rollover only, no delete state.
				"/_plugins/_ism/policies/trailwatch-alerts-lifecycle": {
					"policy.states.0.transitions": []any{},
				},
				"/_component_template/trailwatch-events-mappings": {
					"template.mappings.properties.labels":                                map[string]any{"type": "object", "dynamic": true},
					"template.mappings.dynamic_templates.0.labels_as_keyword.path_match": "labels.*",
				},
				"/_index_template/trailwatch-events": {"data_stream": map[string]any{}, "template": nil},
			},
		},
		{
			name:   "opensearch daily with retention",
			mutate: func(c *Config) { c.Flavor = FlavorOpenSearch; c.Mode = ModeDaily; c.EventsRetentionDays = 90 },
			want: map[string]map[string]any{
				"/_plugins/_ism/policies/trailwatch-events-lifecycle": {
					"policy.states.0.actions":              []any{},
					"policy.ism_template.0.index_patterns": []any{"trailwatch-events-*"},
				},
				"/_index_template/trailwatch-events": {"index_patterns": []any{"trailwatch-events-*"}, "data_stream": nil},
			},
			absent: []string{"/_plugins/_ism/policies/trailwatch-alerts-lifecycle", "/trailwatch-events"},
		},
		{
			name:   "elasticsearch single index",
			mutate: func(*Config) {},
			want: map[string]map[string]any{
				"/_index_template/trailwatch-events": {"index_patterns": []any{"trailwatch-events"}, "template": nil},
				"/trailwatch-events":                 nil,
			},
			absent: []string{"/_ilm/policy/trailwatch-events-lifecycle", "/_data_stream/trailwatch-events"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Addresses = []string{"http://127.0.0.1:1"}
			tt.mutate(&cfg)
			ix := newIndexer(t, cfg)
			reqs := map[string]any{}
			for _, r := range ix.SetupRequests() {
				if r.Method != http.MethodPut {
					t.Errorf("%s %s, want PUT", r.Method, r.Path)
				}
				var body any
				if r.Body != nil {
					if err := json.Unmarshal(r.Body, &body); err != nil {
						t.Fatalf("%s: body is not JSON: %v", r.Path, err)
					}
				}
				reqs[r.Path] = body
			}
			for path, checks := range tt.want {
				body, ok := reqs[path]
				if !ok {
					t.Errorf("no request to %s (have %v)", path, keys(reqs))
					continue
				}
				for jp, want := range checks {
					if got := lookup(body, jp); !reflect.DeepEqual(got, want) {
						t.Errorf("%s: %s = %#v, want %#v", path, jp, got, want)
					}
				}
			}
			for _, path := range tt.absent {
				if _, ok := reqs[path]; ok {
					t.Errorf("unexpected request to %s", path)
				}
			}
		})
	}
}

// TestMappingCoversSchema walks schema.Event and schema.Alert and checks
// that every JSON field has an explicit mapping of a type that fits its Go
// type, so a field added to the schema cannot silently go unmapped.
func TestMappingCoversSchema(t *testing.T) {
	tests := []struct {
		name    string
		typ     reflect.Type
		mapping func(string) map[string]any
	}{
		{"events", reflect.TypeFor[schema.Event](), eventsMapping},
		{"alerts", reflect.TypeFor[schema.Alert](), alertsMapping},
	}
	for _, tt := range tests {
		for _, flavor := range []string{FlavorElasticsearch, FlavorOpenSearch} {
			t.Run(tt.name+"/"+flavor, func(t *testing.T) {
				m := tt.mapping(flavor)
				n := 0
				walkFields(tt.typ, "", func(path string, ft reflect.Type) {
					n++
					got := fieldType(m, path)
					if !fits(path, ft, got) {
						t.Errorf("%s (Go %s) mapped %q", path, ft, got)
					}
				})
				if n < 20 {
					t.Fatalf("walked only %d fields", n)
				}
			})
		}
	}
}

var timeType = reflect.TypeFor[time.Time]()

// walkFields calls leaf for every leaf JSON field of t.
func walkFields(t reflect.Type, prefix string, leaf func(string, reflect.Type)) {
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != timeType && ft != reflect.TypeFor[schema.GeoPoint]() {
			walkFields(ft, prefix+name+".", leaf)
			continue
		}
		leaf(prefix+name, ft)
	}
}

// fits reports whether mapping type got suits a Go field of type ft.
func fits(path string, ft reflect.Type, got string) bool {
	switch {
	case ft == timeType:
		return got == "date"
	case ft == reflect.TypeFor[schema.GeoPoint]():
		return got == "geo_point"
	case ft.Kind() == reflect.Map:
		return got == "flattened" || got == "object"
	case ft.Kind() == reflect.Bool:
		return got == "boolean"
	case ft.Kind() == reflect.Float64:
		return got == "double"
	case ft.Kind() >= reflect.Int && ft.Kind() <= reflect.Int64:
		return got == "long"
	case ft.Kind() == reflect.String:
		if strings.HasSuffix(path, ".ip") || strings.HasSuffix(path, "_ip") {
			return got == "ip"
		}
		return got == "keyword" || got == "text"
	}
	return false
}

// fieldType returns the mapping type at a dotted path, "object" for an
// object without a type, "" when unmapped. A dynamically added sub-field
// (labels.env) is found the same way in a node's answer.
func fieldType(m map[string]any, path string) string {
	cur := m
	for part := range strings.SplitSeq(path, ".") {
		props, _ := cur["properties"].(map[string]any)
		next, ok := props[part].(map[string]any)
		if !ok {
			return ""
		}
		cur = next
	}
	if typ, ok := cur["type"].(string); ok {
		return typ
	}
	if _, ok := cur["properties"]; ok || cur["dynamic"] != nil {
		return "object"
	}
	return ""
}

// lookup follows a dotted path ("\\." escapes a dot, numbers index arrays)
// through decoded JSON; a missing member is nil.
func lookup(v any, path string) any {
	var parts []string
	for p := range strings.SplitSeq(strings.ReplaceAll(path, `\.`, "\x00"), ".") {
		parts = append(parts, strings.ReplaceAll(p, "\x00", "."))
	}
	for _, p := range parts {
		switch cur := v.(type) {
		case map[string]any:
			v = cur[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(cur) {
				return nil
			}
			v = cur[i]
		default:
			return nil
		}
	}
	return v
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func assertReport(t *testing.T, what string, rep Report, n int, action string) {
	t.Helper()
	if len(rep.Items) != n {
		t.Fatalf("%s: %d items, want %d:\n%s", what, len(rep.Items), n, rep)
	}
	for _, it := range rep.Items {
		if it.Action != action {
			t.Errorf("%s: %s %s %s, want %s", what, it.Action, it.Kind, it.Name, action)
		}
	}
}

// nodeSend sends a JSON body straight to the node and requires a 2xx.
func nodeSend(t *testing.T, method, url, body string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s: status %d", method, url, res.StatusCode)
	}
}

// cleanupSetup removes what Setup installed beyond testConfig's cleanup:
// data streams and component templates (after the index templates that use
// them).
func cleanupSetup(t *testing.T, addr string, cfg Config) {
	for _, p := range []string{
		"/_data_stream/" + cfg.EventsIndex, "/_data_stream/" + cfg.AlertsIndex,
		"/_index_template/" + cfg.EventsIndex, "/_index_template/" + cfg.AlertsIndex,
		"/_component_template/" + cfg.EventsIndex + "-mappings", "/_component_template/" + cfg.AlertsIndex + "-mappings",
	} {
		req, _ := http.NewRequest(http.MethodDelete, addr+p, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			_ = res.Body.Close()
		} else {
			t.Logf("cleanup %s: %v", p, err)
		}
	}
}
