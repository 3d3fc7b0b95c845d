package detect

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// writeFiles writes name -> content into a new temp dir and returns the
// paths, in the order given by names.
func writeFiles(t *testing.T, files map[string]string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return dir, paths
}

const sharedMacros = `
macros:
  auth_failure: http.response.status_code in auth_codes
  api_call: url.path startsWith "/api/"
  api_auth_failure: api_call && auth_failure
  agent: lower(user_agent.original)
  src_ip: source.ip
lists:
  auth_codes: [401, 403]
  admin_paths: [/admin, /wp-admin, /actuator]
  scanner_agents: [sqlmap, nikto, nuclei]
`

func TestMacrosSharedAcrossFiles(t *testing.T) {
	dir, _ := writeFiles(t, map[string]string{
		"_macros.yaml": sharedMacros,
		"rules.yaml": `
rules:
  - id: api-auth
    title: API auth failure
    where: api_auth_failure && !(url.path in admin_paths)
  - id: scanner
    title: Scanner
    where: "any(scanner_agents, agent contains #)"
  - id: per-client
    title: Per client
    where: auth_failure
    window: {count: 2, over: 1m, group_by: [src_ip]}
`,
	})
	rs, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := mustDetector(t, rs, DefaultConfig())
	ev := func(sec float64, path string, code int, agent string) schema.Event {
		e := fail401(sec, "192.0.2.1")
		e.URL.Path, e.HTTP.Response.StatusCode, e.UserAgent.Original = path, code, agent
		return e
	}
	tests := []struct {
		name string
		ev   schema.Event
		want []string // rule ids fired, in order
	}{
		{"api 401 fires api-auth", ev(1, "/api/users", 401, "curl"), []string{"api-auth"}},
		{"second failure fires the window grouped by the macro", ev(2, "/login", 403, "curl"), []string{"per-client"}},
		{"admin path excluded by list", ev(3, "/admin", 401, "curl"), nil},
		{"scanner agent via list and macro", ev(4, "/", 200, "Mozilla/5.0 Nuclei"), []string{"scanner"}},
		{"nothing matches", ev(5, "/api/x", 200, "curl"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alerts, err := d.Observe(t.Context(), []schema.Event{tt.ev})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range alerts {
				got = append(got, a.Rule.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("fired %v, want %v", got, tt.want)
			}
			if slices.Contains(got, "per-client") {
				if g := alerts[0].Trailwatch.GroupKey; g["src_ip"] != "192.0.2.1" {
					t.Errorf("group key %v, want src_ip=192.0.2.1", g)
				}
			}
		})
	}
}

func TestMacroErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error, each required
	}{
		{
			name: "duplicate name across files names both positions",
			files: map[string]string{
				"a.yaml": "macros:\n  auth_failure: http.response.status_code == 401\n",
				"b.yaml": "lists:\n  other: [x]\nmacros:\n  auth_failure: http.response.status_code == 403\n",
			},
			want: []string{"b.yaml:4:3: macros.auth_failure: duplicate macro or list name (first defined at ", "a.yaml:2:17)"},
		},
		{
			name: "macro and list share a name",
			files: map[string]string{
				"a.yaml": "lists:\n  paths: [/a]\nmacros:\n  paths: url.path == \"/\"\n",
			},
			want: []string{"a.yaml:4:3: macros.paths: duplicate macro or list name (first defined at ", "a.yaml:2:3)"},
		},
		{
			name: "cycle across files with positions",
			files: map[string]string{
				"a.yaml": "macros:\n  a_one: a_two || url.path == \"/\"\n",
				"b.yaml": "macros:\n  a_two: a_three && true\n  a_three: a_one\n",
			},
			want: []string{"a.yaml:2:10: macros.a_one: macro cycle a_one -> a_two -> a_three -> a_one (a_two at ", "b.yaml:2:10, a_three at ", "b.yaml:3:12)"},
		},
		{
			name: "self reference",
			files: map[string]string{
				"a.yaml": "macros:\n  loop: loop && true\n",
			},
			want: []string{"a.yaml:2:9: macros.loop: macro cycle loop -> loop"},
		},
		{
			name: "wrong type at the using rule names the macro",
			files: map[string]string{
				"_m.yaml": sharedMacros,
				"r.yaml":  "id: r\ntitle: R\nwhere: auth_failure > 3\n",
			},
			want: []string{"r.yaml:3:21: where: invalid operation: > (mismatched types bool and int) (using macro \"auth_failure\" (bool, defined at ", "_m.yaml:3:17)"},
		},
		{
			name: "list used as a condition",
			files: map[string]string{
				"_m.yaml": sharedMacros,
				"r.yaml":  "id: r\ntitle: R\nwhere: admin_paths\n",
			},
			want: []string{"r.yaml:3:8: where: expected bool, but got []interface {} (using list \"admin_paths\" (of string, defined at "},
		},
		{
			name: "non-scalar macro in group_by",
			files: map[string]string{
				"_m.yaml": sharedMacros,
				"r.yaml":  "id: r\ntitle: R\nwhere: \"true\"\nwindow: {count: 2, over: 1m, group_by: [scanner_agents]}\n",
			},
			want: []string{"r.yaml:4:41: window.group_by[0]: \"scanner_agents\" is of type []interface {}"},
		},
		{
			name: "unknown field inside a macro is reported at the macro",
			files: map[string]string{
				"a.yaml": "macros:\n  bad: url.pth == \"/\"\nrules:\n  - id: r\n    title: R\n    where: bad || true\n",
			},
			want: []string{"a.yaml:2:8: macros.bad: unknown name \"url.pth\""},
		},
		{
			name: "names that would hide fields, builtins or keywords",
			files: map[string]string{
				"a.yaml": "macros:\n  url: \"true\"\n  lower: \"true\"\n  not: \"true\"\n  Bad-Name: \"true\"\n",
			},
			want: []string{
				`a.yaml:2:3: macros.url: "url" is an event field`,
				`a.yaml:3:3: macros.lower: "lower" is an expr builtin function`,
				`a.yaml:4:3: macros.not: "not" is an expr keyword`,
				`a.yaml:5:3: macros.Bad-Name: name must be lowercase`,
			},
		},
		{
			name: "mixed list",
			files: map[string]string{
				"a.yaml": "lists:\n  codes: [401, \"403\", {a: 1}]\n",
			},
			want: []string{"a.yaml:2:16: lists.codes[1]: 403 is a string but the list holds int values", "a.yaml:2:23: lists.codes[2]: want a string, number or bool, got a mapping"},
		},
		{
			name: "sections not mappings, unknown top-level key",
			files: map[string]string{
				"a.yaml": "macros: [a]\nlists: x\nid: r\n",
			},
			want: []string{"a.yaml:1:9: macros: want a mapping", "a.yaml:2:8: lists: want a mapping", `a.yaml:3:1: unknown top-level field "id"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, paths := writeFiles(t, tt.files)
			rs, err := LoadFiles(paths...)
			if err == nil {
				t.Fatalf("loaded %d rules, want an error", rs.Len())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestMacroFileOnlyAndUnused(t *testing.T) {
	_, paths := writeFiles(t, map[string]string{"_m.yaml": sharedMacros})
	rs, err := LoadFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Len() != 0 {
		t.Fatalf("got %d rules from a macros-only file", rs.Len())
	}
}

func TestMacroInMatchesIsPrefiltered(t *testing.T) {
	// A `matches` inside a macro goes through the same literal prefilter
	// as one written in the rule: same results.
	rules, err := Parse("m.yaml", []byte(`
macros:
  sqli: url.query matches "(?i)union\\s+select"
rules:
  - id: r
    title: R
    where: sqli
`))
	if err != nil {
		t.Fatal(err)
	}
	d := mustDetector(t, &RuleSet{rules: rules}, DefaultConfig())
	for _, tt := range []struct {
		query string
		want  int
	}{{"id=1 UNION  SELECT pw", 1}, {"id=1", 0}} {
		t.Run(tt.query, func(t *testing.T) {
			ev := fail401(1, "192.0.2.1")
			ev.URL.Query = tt.query
			alerts, err := d.Observe(t.Context(), []schema.Event{ev})
			if err != nil {
				t.Fatal(err)
			}
			if len(alerts) != tt.want {
				t.Fatalf("got %d alerts, want %d", len(alerts), tt.want)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	rules, err := Parse("r.yaml", []byte(`
rules:
  - id: paged
    title: Paged
    where: http.response.status_code == 401
    routes: [oncall, audit]
  - id: quiet
    title: Quiet
    where: http.response.status_code == 401
    routes: audit
  - id: default
    title: Default
    where: http.response.status_code == 401
`))
	if err != nil {
		t.Fatal(err)
	}
	rs := &RuleSet{rules: rules}
	if got := rs.Routes(); !slices.Equal(got, []string{"audit", "oncall"}) {
		t.Errorf("RuleSet.Routes: got %v", got)
	}
	alerts, err := mustDetector(t, rs, DefaultConfig()).Observe(t.Context(), []schema.Event{fail401(1, "192.0.2.1")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"paged": {"oncall", "audit"}, "quiet": {"audit"}, "default": nil}
	for _, a := range alerts {
		t.Run(a.Rule.ID, func(t *testing.T) {
			if !slices.Equal(a.Trailwatch.Routes, want[a.Rule.ID]) {
				t.Errorf("routes %v, want %v", a.Trailwatch.Routes, want[a.Rule.ID])
			}
		})
	}
	if len(alerts) != 3 {
		t.Fatalf("got %d alerts, want 3", len(alerts))
	}

	_, err = Parse("bad.yaml", []byte("id: r\ntitle: R\nwhere: \"true\"\nroutes: [OnCall, audit, audit, {a: b}]\n"))
	for _, w := range []string{
		`bad.yaml:4:10: routes[0]: route name "OnCall" must be lowercase`,
		`bad.yaml:4:25: routes[2]: "audit" listed twice`,
		`bad.yaml:4:32: routes[3]: want a string, got a mapping`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestRuleHash(t *testing.T) {
	const base = `
macros:
  fail: http.response.status_code == 401
  unused: "true"
lists:
  paths: [/a, /b]
id: r
title: R
where: fail && url.path in paths
window: {count: 3, over: 1m, group_by: [source.ip]}
`
	hash := func(t *testing.T, src string) string {
		t.Helper()
		// A file holding macros and a single rule is not allowed, so the
		// rule goes under rules:.
		src = strings.Replace(src, "\nid: r\n", "\nrules:\n- id: r\n", 1)
		var b strings.Builder
		for i, line := range strings.Split(src, "\n") {
			if i > 0 {
				b.WriteString("\n")
			}
			inRule := strings.HasPrefix(line, "title") || strings.HasPrefix(line, "where") ||
				strings.HasPrefix(line, "window") || strings.HasPrefix(line, "description") ||
				strings.HasPrefix(line, "tests") || strings.HasPrefix(line, "severity")
			if inRule {
				b.WriteString("  ")
			}
			b.WriteString(line)
		}
		rules, err := Parse("h.yaml", []byte(b.String()))
		if err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		return rules[0].Hash()
	}
	want := hash(t, base)
	tests := []struct {
		name string
		src  string
		same bool
	}{
		{"title and description do not count", strings.Replace(base, "title: R", "title: Other\ndescription: words", 1), true},
		{"key order and flow style do not count", strings.Replace(base, "{count: 3, over: 1m, group_by: [source.ip]}", "{over: 1m, group_by: [source.ip], count: 3}", 1), true},
		{"unused macro does not count", strings.Replace(base, `unused: "true"`, `unused: "false"`, 1), true},
		{"threshold counts", strings.Replace(base, "count: 3", "count: 4", 1), false},
		{"severity counts", strings.Replace(base, "title: R", "title: R\nseverity: high", 1), false},
		{"used macro counts", strings.Replace(base, "== 401", "== 403", 1), false},
		{"used list counts", strings.Replace(base, "[/a, /b]", "[/a, /c]", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hash(t, tt.src); (got == want) != tt.same {
				t.Errorf("hash %s vs base %s: same=%v, want %v", got, want, got == want, tt.same)
			}
		})
	}
}
