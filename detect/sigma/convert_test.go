package sigma

import (
	"strings"
	"testing"

	"github.com/expr-lang/expr"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// webRule wraps a detection body (indented by 4) in a webserver rule.
func webRule(detection string) string {
	return "title: T\nid: 11111111-2222-3333-4444-555555555555\nlogsource:\n  category: webserver\ndetection:\n" + detection
}

func web(path, query string, status int) schema.Event {
	return schema.Event{
		Event: schema.EventMeta{Category: []string{"web"}},
		URL:   schema.URL{Path: path, Query: query, Original: path + "?" + query},
		HTTP:  schema.HTTP{Response: schema.HTTPResponse{StatusCode: status}},
	}
}

// TestMatching checks Sigma matching semantics on converted conditions:
// each case converts one rule, checks the condition text when given, and
// evaluates it on events.
func TestMatching(t *testing.T) {
	type probe struct {
		ev   schema.Event
		want bool
	}
	tests := []struct {
		name      string
		detection string
		where     string // substring of the where condition; "" skips
		probes    []probe
	}{
		{
			name:      "plain values are case-insensitive equality",
			detection: "    sel:\n        cs-uri-stem: /Admin\n    condition: sel\n",
			where:     `lower(url.path) == "/admin"`,
			probes:    []probe{{web("/ADMIN", "", 200), true}, {web("/admin/x", "", 200), false}},
		},
		{
			name:      "cased is exact",
			detection: "    sel:\n        cs-uri-stem|cased: /Admin\n    condition: sel\n",
			where:     `url.path == "/Admin"`,
			probes:    []probe{{web("/Admin", "", 200), true}, {web("/admin", "", 200), false}},
		},
		{
			name:      "a list is OR and becomes in",
			detection: "    sel:\n        sc-status: [401, 403]\n    condition: sel\n",
			where:     `http.response.status_code in [401, 403]`,
			probes:    []probe{{web("/", "", 403), true}, {web("/", "", 404), false}},
		},
		{
			name:      "all makes a list AND",
			detection: "    sel:\n        cs-uri-query|contains|all: [a=1, b=2]\n    condition: sel\n",
			probes:    []probe{{web("/", "b=2&a=1", 200), true}, {web("/", "a=1", 200), false}},
		},
		{
			name:      "wildcards in the middle become an anchored regexp",
			detection: "    sel:\n        cs-uri-stem: '/api/v?/users/*/delete'\n    condition: sel\n",
			where:     `matches`,
			probes: []probe{
				{web("/api/v2/users/42/DELETE", "", 200), true},
				{web("/api/v10/users/42/delete", "", 200), false},
				{web("/x/api/v2/users/42/delete", "", 200), false},
			},
		},
		{
			name:      "escaped wildcards and regexp metacharacters are literal",
			detection: "    sel:\n        cs-uri-query: 'q=\\*(x).+*'\n    condition: sel\n",
			where:     `startsWith "q=*(x).+"`,
			probes:    []probe{{web("/", "q=*(x).+yz", 200), true}, {web("/", "q=a(x).+", 200), false}},
		},
		{
			name:      "endswith",
			detection: "    sel:\n        cs-uri-stem|endswith: .PHP\n    condition: sel\n",
			where:     `lower(url.path) endsWith ".php"`,
			probes:    []probe{{web("/a/b.php", "", 200), true}, {web("/a/b.php5", "", 200), false}},
		},
		{
			name:      "null is an empty field",
			detection: "    sel:\n        cs-uri-query: null\n    condition: sel\n",
			where:     `url.query == ""`,
			probes:    []probe{{web("/", "", 200), true}, {web("/", "a", 200), false}},
		},
		{
			name:      "numeric comparison modifiers",
			detection: "    sel:\n        sc-status|gte: 500\n    condition: sel\n",
			where:     `http.response.status_code >= 500`,
			probes:    []probe{{web("/", "", 503), true}, {web("/", "", 404), false}},
		},
		{
			name:      "regexp is case-sensitive unless |i",
			detection: "    a:\n        cs-uri-stem|re: '^/x[0-9]+$'\n    b:\n        cs-uri-stem|re|i: '^/Y$'\n    condition: a or b\n",
			probes:    []probe{{web("/x12", "", 200), true}, {web("/X12", "", 200), false}, {web("/y", "", 200), true}},
		},
		{
			name:      "1 of them skips underscore identifiers; not binds tighter than and",
			detection: "    a:\n        sc-status: 200\n    _b:\n        sc-status: 404\n    f:\n        cs-uri-stem: /health\n    condition: 1 of them and not f\n",
			probes:    []probe{{web("/", "", 200), true}, {web("/", "", 404), false}, {web("/health", "", 200), false}},
		},
		{
			name:      "parentheses and or",
			detection: "    a:\n        sc-status: 200\n    b:\n        cs-uri-stem: /x\n    c:\n        cs-uri-stem: /y\n    condition: a and (b or c)\n",
			probes:    []probe{{web("/y", "", 200), true}, {web("/z", "", 200), false}, {web("/x", "", 500), false}},
		},
		{
			name:      "list of maps is OR of ANDs",
			detection: "    sel:\n        - cs-uri-stem: /a\n          sc-status: 200\n        - cs-uri-stem: /b\n    condition: sel\n",
			probes:    []probe{{web("/a", "", 200), true}, {web("/a", "", 500), false}, {web("/b", "", 500), true}},
		},
		{
			name:      "cidr on octet boundaries",
			detection: "    sel:\n        c-ip|cidr: 10.20.0.0/16\n    condition: sel\n",
			where:     `source.ip startsWith "10.20."`,
		},
		{
			name:      "a lone star means the field is set",
			detection: "    sel:\n        cs-uri-query: '*'\n    condition: sel\n",
			probes:    []probe{{web("/", "a", 200), true}, {web("/", "", 200), false}},
		},
		{
			name:      "the logsource guard keeps other sources out",
			detection: "    sel:\n        sc-status: 0\n    condition: sel\n",
			probes:    []probe{{schema.Event{}, false}, {schema.Event{Event: schema.EventMeta{Category: []string{"web"}}}, true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, probs := Convert("t.yml", []byte(webRule(tt.detection)))
			if len(probs) > 0 || len(out) != 1 {
				t.Fatalf("got %d rules, problems %v", len(out), probs)
			}
			rules, err := detect.Parse("t.yaml", out[0].YAML)
			if err != nil {
				t.Fatalf("does not load: %v\n%s", err, out[0].YAML)
			}
			where := rules[0].Where
			if !strings.Contains(where, tt.where) {
				t.Errorf("where lacks %q:\n%s", tt.where, where)
			}
			prog, err := expr.Compile(where, expr.Env(schema.Event{}), expr.AsBool())
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range tt.probes {
				got, err := expr.Run(prog, &p.ev)
				if err != nil {
					t.Fatal(err)
				}
				if got != p.want {
					t.Errorf("probe %d (%s?%s %d): got %v, want %v\n%s", i, p.ev.URL.Path, p.ev.URL.Query, p.ev.HTTP.Response.StatusCode, got, p.want, where)
				}
			}
		})
	}
}

// TestProblems checks that each unsupported or malformed construct is
// reported with its reason and that the rule is not emitted.
func TestProblems(t *testing.T) {
	corr := func(body string) string {
		return "title: Base\nid: base-1\nname: base\nlogsource: {category: webserver}\ndetection:\n  sel: {sc-status: 401}\n  condition: sel\n---\n" +
			"title: C\nid: corr-1\ncorrelation:\n" + body
	}
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"other logsource", "title: T\nid: x\nlogsource: {product: linux, category: auditd}\ndetection: {s: {a: b}, condition: s}\n", []string{`logsource category="auditd" product="linux"`}},
		{"unmapped field", webRule("    s:\n        cs-cookie: x\n    condition: s\n"), []string{`field "cs-cookie" has no trailwatch mapping`}},
		{"unmapped cloudtrail field", "title: T\nid: x\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {requestParameters.userName: admin, responseElements.x: y}\n  condition: s\n",
			[]string{`"requestParameters.userName"`, `"responseElements.x"`}},
		{"base64", webRule("    s:\n        cs-uri-query|base64: x\n    condition: s\n"), []string{"modifier |base64 is not supported"}},
		{"windash", webRule("    s:\n        cs-uri-query|windash: x\n    condition: s\n"), []string{"modifier |windash is not supported"}},
		{"unknown modifier", webRule("    s:\n        cs-uri-query|frobnicate: x\n    condition: s\n"), []string{"unknown modifier |frobnicate"}},
		{"conflicting modifiers", webRule("    s:\n        cs-uri-query|contains|re: x\n    condition: s\n"), []string{"cannot be combined"}},
		{"keywords", webRule("    k:\n        - evil\n    condition: k\n"), []string{"keyword (field-less) search"}},
		{"cidr not on octet boundary", webRule("    s:\n        c-ip|cidr: 172.16.0.0/12\n    condition: s\n"), []string{"|cidr 172.16.0.0/12 is not supported"}},
		{"bad regexp", webRule("    s:\n        c-uri|re: '(?<=a)b'\n    condition: s\n"), []string{"RE2"}},
		{"2 of", webRule("    s1: {sc-status: 1}\n    s2: {sc-status: 2}\n    condition: 2 of s*\n"), []string{`"2 of" is not supported`}},
		{"unknown identifier", webRule("    s: {sc-status: 1}\n    condition: s and t\n"), []string{`unknown search identifier "t"`}},
		{"of matches nothing", webRule("    s: {sc-status: 1}\n    condition: 1 of x*\n"), []string{"matches no search identifier"}},
		{"unbalanced", webRule("    s: {sc-status: 1}\n    condition: (s\n"), []string{"missing )"}},
		{"near", webRule("    s: {sc-status: 1}\n    condition: s near s\n"), []string{"`near` is not supported"}},
		{"aggregation", webRule("    s: {sc-status: 1}\n    condition: s | count() > 5\n"), []string{"aggregation expressions"}},
		{"no condition", webRule("    s: {sc-status: 1}\n"), []string{"detection.condition: required"}},
		{"gt on a string field", webRule("    s:\n        cs-uri-stem|gt: 5\n    condition: s\n"), []string{"|gt needs a numeric field"}},
		{"bad level", "title: T\nid: x\nlevel: severe\nlogsource: {category: webserver}\ndetection: {s: {sc-status: 1}, condition: s}\n", []string{`level: "severe"`}},
		{"no title", "id: x\nlogsource: {category: webserver}\ndetection: {s: {sc-status: 1}, condition: s}\n", []string{"title: required"}},
		{"malformed", "title: T\nid: x\ntags: {a: b}\n", []string{"malformed Sigma rule"}},
		{"not yaml", "title: [\n", []string{"YAML:"}},
		{"empty", "", []string{"file holds no Sigma rule"}},
		{"rule collection", "action: global\ntitle: T\nid: x\nlogsource: {category: webserver}\ndetection: {s: {sc-status: 1}, condition: s}\n", []string{"rule collections"}},
		{"temporal of one rule", corr("  type: temporal\n  rules: [base]\n  timespan: 5m\n  group-by: [c-ip]\n"),
			[]string{"a temporal correlation needs at least 2 rules", `only used by correlation rule "corr-1"`}},
		{"temporal with a condition", corr("  type: temporal_ordered\n  rules: [base, base]\n  timespan: 5m\n  condition: {gte: 2}\n"),
			[]string{"correlation.condition: not used by temporal_ordered correlations"}},
		{"lt threshold", corr("  type: event_count\n  rules: [base]\n  timespan: 5m\n  condition: {lt: 3}\n"), []string{"correlation.condition.lt: not supported"}},
		{"missing reference", corr("  type: event_count\n  rules: [nope]\n  timespan: 5m\n  condition: {gte: 3}\n"), []string{`"nope" is not among`}},
		{"bad timespan", corr("  type: event_count\n  rules: [base]\n  timespan: soon\n  condition: {gte: 3}\n"), []string{"correlation.timespan"}},
		{"value_count without field", corr("  type: value_count\n  rules: [base]\n  timespan: 5m\n  condition: {gte: 3}\n"), []string{"condition.field: required for value_count"}},
		{"unmapped group-by", corr("  type: event_count\n  rules: [base]\n  timespan: 5m\n  group-by: [x-forwarded-for]\n  condition: {gte: 3}\n"), []string{`field "x-forwarded-for" has no trailwatch mapping`}},
		{"chained correlation", corr("  type: event_count\n  rules: [corr-1]\n  timespan: 5m\n  condition: {gte: 3}\n"), []string{"chained correlations"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, probs := Convert("p.yml", []byte(tt.src))
			for _, c := range out {
				if c.ID == "sigma-corr-1" || c.ID == "sigma-x" || strings.HasPrefix(c.ID, "sigma-1111") {
					t.Errorf("rule with problems emitted:\n%s", c.YAML)
				}
			}
			var all []string
			for _, p := range probs {
				if p.File != "p.yml" {
					t.Errorf("problem file = %q", p.File)
				}
				all = append(all, p.String())
			}
			text := strings.Join(all, "\n")
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("problems lack %q:\n%s", w, text)
				}
			}
		})
	}
}

// TestCorrelationThresholds checks the window a correlation becomes.
func TestCorrelationThresholds(t *testing.T) {
	base := "title: Base\nid: base-1\nname: base\nlogsource: {category: webserver}\ndetection:\n  sel: {sc-status: 401}\n  condition: sel\n---\n"
	tests := []struct {
		name, body string
		count      int
		over       string
		distinct   string
	}{
		{"gte", "  type: event_count\n  rules: [base]\n  timespan: 30s\n  group-by: [c-ip]\n  condition: {gte: 7}\n", 7, "30s", ""},
		{"gt adds one", "  type: event_count\n  rules: [base-1]\n  timespan: 1h\n  condition: {gt: 7}\n", 8, "1h0m0s", ""},
		{"days", "  type: value_count\n  rules: [base]\n  timespan: 2d\n  group-by: [c-ip]\n  condition: {gte: 3, field: cs-username}\n", 3, "48h0m0s", "user.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, probs := Convert("c.yml", []byte(base+"title: C\nid: c-1\ncorrelation:\n"+tt.body))
			if len(probs) > 0 || len(out) != 1 {
				t.Fatalf("got %d rules (want only the correlation), problems %v", len(out), probs)
			}
			rules, err := detect.Parse("c.yaml", out[0].YAML)
			if err != nil {
				t.Fatalf("%v\n%s", err, out[0].YAML)
			}
			w := rules[0].Window
			if w == nil || w.Count != tt.count || w.Over.String() != tt.over || w.Field != tt.distinct {
				t.Errorf("window = %+v, want count %d over %s distinct %q", w, tt.count, tt.over, tt.distinct)
			}
		})
	}
}
