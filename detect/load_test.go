package detect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadGood(t *testing.T) {
	rs, err := LoadFiles("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if rs.Len() != 2 {
		t.Fatalf("got %d rules, want 2", rs.Len())
	}
	one := rs.Get("good-one")
	if one == nil || one.Window == nil || one.Window.Count != 2 || one.Window.Over != 30*time.Second {
		t.Fatalf("good-one parsed wrong: %+v", one)
	}
	if one.Suppress != 30*time.Second {
		t.Errorf("suppress defaults to window.over: got %v", one.Suppress)
	}
	if one.Line != 2 || one.File != "testdata/good.yaml" {
		t.Errorf("position: got %s", one.Pos())
	}
	two := rs.Get("good-two")
	if two.Severity != DefaultSeverity || two.Window != nil || two.Suppress != 0 {
		t.Errorf("good-two defaults wrong: %+v", two)
	}
	if got := rs.Subset("good-two").Rules(); len(got) != 1 || got[0] != two {
		t.Errorf("Subset: got %v", got)
	}
}

func TestLoadAggregations(t *testing.T) {
	rules, err := Parse("agg.yaml", []byte(`
rules:
  - id: spray
    title: Spray
    where: "true"
    window: {over: 5m, group_by: [source.ip], distinct: user.name, count: 5}
  - id: capped
    title: Capped
    where: "true"
    window: {over: 5m, distinct: url.path, count: 5, max_distinct: 100}
  - id: volume
    title: Volume
    where: "true"
    window: {over: 10m, group_by: [trailwatch.credential.fingerprint], sum: http.response.body.bytes, threshold: 100000000}
  - id: slow
    title: Slow
    where: "true"
    window: {over: 1m, avg: event.duration, threshold: 2.5e9}
  - id: plain
    title: Plain
    where: "true"
    window: {over: 1m, count: 3}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		agg         Agg
		field       string
		count       int
		threshold   float64
		maxDistinct int
		aggregation string
	}{
		{AggDistinct, "user.name", 5, 0, DefaultMaxDistinct, "distinct(user.name)"},
		{AggDistinct, "url.path", 5, 0, 100, "distinct(url.path)"},
		{AggSum, "http.response.body.bytes", 0, 1e8, 0, "sum(http.response.body.bytes)"},
		{AggAvg, "event.duration", 0, 2.5e9, 0, "avg(event.duration)"},
		{AggCount, "", 3, 0, 0, "count"},
	}
	for i, tt := range tests {
		t.Run(rules[i].ID, func(t *testing.T) {
			w := rules[i].Window
			if w.Agg != tt.agg || w.Field != tt.field || w.Count != tt.count || w.Threshold != tt.threshold ||
				w.MaxDistinct != tt.maxDistinct || w.Aggregation() != tt.aggregation || (w.field == nil) != (tt.field == "") {
				t.Errorf("got %+v (%s)", *w, w.Aggregation())
			}
		})
	}
}

// TestLoadBad checks that every problem of every bad fixture is reported
// with its file:line:col.
func TestLoadBad(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"unknown-name", []string{`unknown-name.bad.yaml:3:8: where: unknown name "http.respone.status_code" (type schema.HTTP has no field respone)`}},
		{"unknown-root", []string{`unknown-root.bad.yaml:3:27: where: unknown name "foo"`}},
		{"type-mismatch", []string{`type-mismatch.bad.yaml:3:18: where: invalid operation: == (mismatched types string and int)`}},
		{"not-bool", []string{`not-bool.bad.yaml:3:8: where: expected bool, but got int`}},
		{"block-where", []string{`block-where.bad.yaml:5:8: where: unknown name "url.pth"`}},
		{"missing-fields", []string{`missing-fields.bad.yaml:1:1: id: required`, `missing-fields.bad.yaml:1:1: title: required`, `missing-fields.bad.yaml:1:1: where: required`}},
		{"unknown-key", []string{`unknown-key.bad.yaml:3:1: severty: unknown field`}},
		{"bad-values", []string{
			`bad-values.bad.yaml:1:5: id: "Bad_ID!" must be lowercase`,
			`bad-values.bad.yaml:3:11: severity: "urgent" is not one of low, medium, high, critical`,
			`bad-values.bad.yaml:4:8: tags[0]: "Attack.T1110" must be lowercase`,
			`bad-values.bad.yaml:6:11: suppress: want a positive duration`,
		}},
		{"bad-window", []string{
			`bad-window.bad.yaml:5:10: window.count: want a positive integer`,
			`bad-window.bad.yaml:6:9: window.over: want a positive duration`,
			`bad-window.bad.yaml:7:14: window.group_by[0]: unknown name "source.ipp"`,
			`bad-window.bad.yaml:7:26: window.group_by[1]: "http" is of type schema.HTTP; want a string, number or bool field`,
			`bad-window.bad.yaml:7:43: window.group_by[3]: "source.ip" listed twice`,
			`bad-window.bad.yaml:8:3: window.every: unknown field`,
		}},
		{"bad-aggregation", []string{
			`bad-aggregation.bad.yaml:5:45: window.sum: only one of distinct, sum, avg per window (distinct already set at 5:24)`,
			`bad-aggregation.bad.yaml:9:55: window.count: not used with sum; set window.threshold`,
			`bad-aggregation.bad.yaml:9:13: window.threshold: required with window.sum`,
			`bad-aggregation.bad.yaml:13:44: window.distinct: unknown name "user.nam" (type schema.User has no field nam)`,
			`bad-aggregation.bad.yaml:17:29: window.sum: "url.path" is of type string; want a numeric field`,
			`bad-aggregation.bad.yaml:21:34: window.threshold: only with sum or avg; count fires on window.count`,
			`bad-aggregation.bad.yaml:25:61: window.max_distinct: only with distinct`,
			`bad-aggregation.bad.yaml:29:31: window.count: 50 exceeds window.max_distinct 20, so the rule could never fire`,
			`bad-aggregation.bad.yaml:33:67: window.distinct: "user.name" is also in group_by, so each group holds one value`,
			`bad-aggregation.bad.yaml:37:60: window.threshold: want a positive number, got scalar "-5"`,
			`bad-aggregation.bad.yaml:42:7: window.count: required`,
		}},
		{"window-missing", []string{`window-missing.bad.yaml:5:3: window.count: required`, `window-missing.bad.yaml:5:3: window.over: required`}},
		{"syntax", []string{`syntax.bad.yaml:3:1: yaml syntax: `}},
		{"two-docs", []string{`two-docs.bad.yaml:4:1: one YAML document per file`}},
		{"duplicate-id", []string{`duplicate-id.bad.yaml:5:5: id: duplicate rule id "same" (first defined at testdata/duplicate-id.bad.yaml:2)`}},
		{"bad-tests", []string{
			`bad-tests.bad.yaml:7:9: tests[0].events[0]: json: unknown field "ipx"`,
			`bad-tests.bad.yaml:8:9: tests[0].events[1]: json: cannot unmarshal string`,
			`bad-tests.bad.yaml:10:5: tests[1].expect: required`,
			`bad-tests.bad.yaml:15:17: tests[2].expect[0].count: want a positive integer`,
			`bad-tests.bad.yaml:15:21: tests[2].expect[0].gruop: unknown field`,
		}},
		{"not-a-mapping", []string{`not-a-mapping.bad.yaml:1:1: want a rule mapping or a ` + "`rules:`" + ` list, got a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file+".bad.yaml")
			rs, err := LoadFiles(path)
			if err == nil {
				t.Fatalf("loaded %d rules, want an error", rs.Len())
			}
			if rs != nil {
				t.Errorf("got a rule set with an error; loading must be all-or-nothing")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q; full error:\n%s", w, msg)
				}
			}
			if n := strings.Count(msg, "\n") + 1; n != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%s", n, len(tt.want), msg)
			}
			var pe *PosError
			if !errors.As(err, &pe) {
				t.Errorf("error is not a *PosError: %T", err)
			}
		})
	}
}

func TestLoadDirAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := os.ReadFile("testdata/unknown-name.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a rule"), 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err := LoadDir(dir)
	if err != nil || rs.Len() != 2 {
		t.Fatalf("good dir: %v rules, err %v", rs, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.yml"), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err = LoadDir(dir)
	if err == nil || rs != nil {
		t.Fatalf("a bad file must refuse the whole set; got %v, %v", rs, err)
	}
	if !strings.Contains(err.Error(), "b.yml:3:8:") {
		t.Errorf("error does not locate the bad file: %v", err)
	}
	if _, err := LoadDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing directory must be an error")
	}
}
