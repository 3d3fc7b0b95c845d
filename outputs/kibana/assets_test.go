package kibana

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// No Kibana server runs in tests (it is not on Maven Central or in the Go
// proxy), so the assets are checked against Kibana's documented
// saved-object format here, and the fields they use against the schema.

var semver = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

// TestAssetsAreValid checks every saved object: it parses, its id is
// unique, it carries migration versions, it has the attributes its type
// requires, and every reference resolves to an object in the assets.
func TestAssetsAreValid(t *testing.T) {
	objs, err := Objects()
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]Object{}
	count := map[string]int{}
	for _, o := range objs {
		key := o.Type + "/" + o.ID
		if _, dup := byKey[key]; dup {
			t.Errorf("duplicate object %s", key)
		}
		byKey[key] = o
		count[o.Type]++
	}
	for typ, min := range map[string]int{"index-pattern": 2, "search": 3, "lens": 8, "dashboard": 3} {
		if count[typ] < min {
			t.Errorf("%d objects of type %s, want at least %d", count[typ], typ, min)
		}
	}
	for _, o := range objs {
		t.Run(o.Type+"/"+o.ID, func(t *testing.T) {
			if o.ID == "" || !semver.MatchString(o.CoreMigrationVersion) || !semver.MatchString(o.TypeMigrationVersion) {
				t.Errorf("id %q, coreMigrationVersion %q, typeMigrationVersion %q: want an id and x.y.z versions",
					o.ID, o.CoreMigrationVersion, o.TypeMigrationVersion)
			}
			names := map[string]bool{}
			for _, r := range o.References {
				if names[r.Name] {
					t.Errorf("reference name %q used twice", r.Name)
				}
				names[r.Name] = true
				if _, ok := byKey[r.Type+"/"+r.ID]; !ok {
					t.Errorf("reference %s -> %s/%s resolves to no object in the assets", r.Name, r.Type, r.ID)
				}
			}
			var attrs map[string]any
			if err := json.Unmarshal(o.Attributes, &attrs); err != nil {
				t.Fatalf("attributes: %v", err)
			}
			if s, _ := attrs["title"].(string); s == "" {
				t.Errorf("attributes.title missing")
			}
			switch o.Type {
			case "index-pattern":
				checkDataView(t, attrs)
			case "search":
				checkSearch(t, o, attrs)
			case "lens":
				checkLens(t, o)
			case "dashboard":
				checkDashboard(t, o, attrs)
			default:
				t.Errorf("unexpected type %q", o.Type)
			}
		})
	}
}

func checkDataView(t *testing.T, attrs map[string]any) {
	t.Helper()
	if attrs["timeFieldName"] != "@timestamp" {
		t.Errorf("timeFieldName %v, want @timestamp", attrs["timeFieldName"])
	}
	if title, _ := attrs["title"].(string); !strings.HasSuffix(title, "*") {
		t.Errorf("title %q is not an index pattern ending in *", title)
	}
}

func checkSearch(t *testing.T, o Object, attrs map[string]any) {
	t.Helper()
	var ss struct {
		Query struct {
			Language string `json:"language"`
		} `json:"query"`
		IndexRefName string `json:"indexRefName"`
	}
	meta, _ := attrs["kibanaSavedObjectMeta"].(map[string]any)
	src, _ := meta["searchSourceJSON"].(string)
	if err := json.Unmarshal([]byte(src), &ss); err != nil {
		t.Fatalf("kibanaSavedObjectMeta.searchSourceJSON: %v", err)
	}
	if ss.Query.Language != "kuery" {
		t.Errorf("query language %q, want kuery", ss.Query.Language)
	}
	view := refID(o, ss.IndexRefName)
	if view == "" {
		t.Fatalf("indexRefName %q names no reference", ss.IndexRefName)
	}
	fields := schemaFields(view)
	cols, _ := attrs["columns"].([]any)
	if len(cols) == 0 {
		t.Errorf("no columns")
	}
	for _, c := range cols {
		if !fields[c.(string)] {
			t.Errorf("column %q is not a field of %s", c, view)
		}
	}
	sorts, _ := attrs["sort"].([]any)
	for _, s := range sorts {
		pair, _ := s.([]any)
		if len(pair) != 2 || !fields[fmt.Sprint(pair[0])] || (pair[1] != "asc" && pair[1] != "desc") {
			t.Errorf("sort %v is not [field of %s, asc|desc]", s, view)
		}
	}
}

func checkLens(t *testing.T, o Object) {
	t.Helper()
	var a struct {
		VisualizationType string `json:"visualizationType"`
		State             struct {
			DatasourceStates struct {
				FormBased struct {
					Layers map[string]struct {
						Columns map[string]struct {
							OperationType string `json:"operationType"`
							SourceField   string `json:"sourceField"`
							DataType      string `json:"dataType"`
						} `json:"columns"`
						ColumnOrder []string `json:"columnOrder"`
					} `json:"layers"`
				} `json:"formBased"`
			} `json:"datasourceStates"`
			Visualization map[string]any `json:"visualization"`
			Query         struct {
				Language string `json:"language"`
			} `json:"query"`
		} `json:"state"`
	}
	if err := json.Unmarshal(o.Attributes, &a); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains([]string{"lnsXY", "lnsMetric", "lnsDatatable"}, a.VisualizationType) {
		t.Errorf("visualizationType %q", a.VisualizationType)
	}
	if a.State.Query.Language != "kuery" {
		t.Errorf("query language %q, want kuery", a.State.Query.Language)
	}
	layers := a.State.DatasourceStates.FormBased.Layers
	if len(layers) == 0 {
		t.Fatal("no formBased layers")
	}
	vis, _ := json.Marshal(a.State.Visualization)
	for id, l := range layers {
		view := refID(o, "indexpattern-datasource-layer-"+id)
		if view == "" {
			t.Errorf("layer %s has no indexpattern-datasource-layer reference", id)
			continue
		}
		fields := schemaFields(view)
		order := slices.Sorted(func(yield func(string) bool) {
			for c := range l.Columns {
				if !yield(c) {
					return
				}
			}
		})
		if got := slices.Sorted(slices.Values(l.ColumnOrder)); !slices.Equal(got, order) {
			t.Errorf("layer %s columnOrder %v != columns %v", id, l.ColumnOrder, order)
		}
		for cid, c := range l.Columns {
			switch {
			case c.OperationType == "count":
				if c.SourceField != "___records___" {
					t.Errorf("column %s: count over %q, want ___records___", cid, c.SourceField)
				}
			case !fields[c.SourceField]:
				t.Errorf("column %s: %s over %q, not a field of %s", cid, c.OperationType, c.SourceField, view)
			}
			if !strings.Contains(string(vis), `"`+cid+`"`) {
				t.Errorf("column %s is not used by the visualization", cid)
			}
		}
	}
}

func checkDashboard(t *testing.T, o Object, attrs map[string]any) {
	t.Helper()
	pj, _ := attrs["panelsJSON"].(string)
	var panels []struct {
		Type     string `json:"type"`
		GridData struct {
			X, Y, W, H int
			I          string `json:"i"`
		} `json:"gridData"`
		PanelIndex   string `json:"panelIndex"`
		PanelRefName string `json:"panelRefName"`
	}
	if err := json.Unmarshal([]byte(pj), &panels); err != nil {
		t.Fatalf("panelsJSON: %v", err)
	}
	if len(panels) < 3 {
		t.Errorf("%d panels, want at least 3", len(panels))
	}
	for _, s := range []string{"optionsJSON"} {
		if err := json.Unmarshal([]byte(fmt.Sprint(attrs[s])), new(map[string]any)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	seen := map[string]bool{}
	for _, p := range panels {
		if seen[p.PanelIndex] || p.PanelIndex != p.GridData.I {
			t.Errorf("panel %q: duplicate or gridData.i %q differs", p.PanelIndex, p.GridData.I)
		}
		seen[p.PanelIndex] = true
		if p.GridData.X < 0 || p.GridData.W <= 0 || p.GridData.X+p.GridData.W > 48 || p.GridData.H <= 0 {
			t.Errorf("panel %s: gridData %+v outside the 48-column grid", p.PanelIndex, p.GridData)
		}
		var ref *Reference
		for i, r := range o.References {
			if r.Name == p.PanelIndex+":"+p.PanelRefName {
				ref = &o.References[i]
			}
		}
		if p.PanelRefName == "" || ref == nil || ref.Type != p.Type {
			t.Errorf("panel %s (%s): no reference %q of that type", p.PanelIndex, p.Type, p.PanelIndex+":"+p.PanelRefName)
		}
	}
}

// refID returns the id of o's reference called name.
func refID(o Object, name string) string {
	for _, r := range o.References {
		if r.Name == name && r.Type == "index-pattern" {
			return r.ID
		}
	}
	return ""
}

// schemaFields lists the dotted JSON field names of the documents behind a
// data view, from the schema types.
func schemaFields(view string) map[string]bool {
	typ := reflect.TypeFor[schema.Event]()
	if view == "trailwatch-alerts" {
		typ = reflect.TypeFor[schema.Alert]()
	}
	out := map[string]bool{}
	var walk func(reflect.Type, string)
	walk = func(t reflect.Type, prefix string) {
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() && ft != reflect.TypeFor[schema.GeoPoint]() {
				walk(ft, prefix+name+".")
				continue
			}
			out[prefix+name] = true
		}
	}
	walk(typ, "")
	return out
}
