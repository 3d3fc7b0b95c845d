package detect

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// indexConditions add requirement shapes the pack lacks.
var indexConditions = []string{
	`http.response.status_code >= 500 && http.response.status_code <= 599`,
	`http.response.status_code < 300 || http.response.status_code == 404`,
	`500 <= http.response.status_code && 599 >= http.response.status_code && event.provider != ""`,
	`event.provider in ["a", "b"] || event.provider == "iam.amazonaws.com"`,
	`(event.action == "ConsoleLogin" && http.response.status_code > 100) || (event.action in ["StopLogging"] && http.response.status_code < -5)`,
	`http.response.status_code == 401 && http.response.status_code == 403`,
	`http.response.status_code in [401, 403.0]`, `!(http.response.status_code == 200)`,
	`event.duration > 9223372036854775806 || event.duration < -9223372036854775807`,
	`user.name == "alice" || url.path == "/admin"`, `"/.env" == url.path && user.name in ["alice", "bob"]`,
}

// indexEvents is fastEvents plus copies of some with non-ASCII text in
// the scanned fields, including a path whose lower() holds a literal the
// original lacks (the Kelvin sign lowers to k).
func indexEvents(t *testing.T) []schema.Event {
	evs := fastEvents(t, 4000)
	odd := []string{"/b374\u212a.php", "/ADM\u0130N/x", "/\u017fhell.php?cmd=1", "\xff/.env", "caf\u00e9/../etc/passwd", "s\u212aanner"}
	for i := range 600 {
		ev := evs[i]
		v := odd[i%len(odd)]
		switch i % 4 {
		case 0:
			ev.URL.Path = v
		case 1:
			ev.URL.Original = v
		case 2:
			ev.UserAgent.Original = v
		case 3:
			ev.URL.Query = v
		}
		ev.HTTP.Response.StatusCode = 200
		evs = append(evs, ev)
	}
	return evs
}

// indexCases are the conditions whose requirement the index reads.
func indexCases(t *testing.T) map[string]*cond {
	pack, err := LoadDir("../rules")
	if err != nil {
		t.Fatal(err)
	}
	conds := map[string]*cond{}
	for _, r := range pack.Rules() {
		conds["rule "+r.ID] = r.condition()
	}
	for _, src := range append(slices.Clone(fastConditions), indexConditions...) {
		prog, err := compileWhere(src, nil)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		conds[src] = newCond(prog)
	}
	return conds
}

// satisfies reports whether ev has one of the values req allows, for
// every field of req.
func satisfies(req requirement, ev *schema.Event) bool {
	for path, set := range req {
		if isScanKey(path) {
			if !scanSatisfies(set.pats, fastFields[path[1:]].s(ev)) {
				return false
			}
			continue
		}
		f := fastFields[path]
		if f.kind == kInt {
			if !set.hasInt(f.i(ev)) {
				return false
			}
		} else if _, ok := set.strs[f.s(ev)]; !ok {
			return false
		}
	}
	return true
}

// scanSatisfies is the definition of a literal scan requirement: v holds
// a literal of one of the matchers (ASCII case folded), or is not ASCII
// and the matcher folds hazardously or applies to lower(v) or upper(v).
func scanSatisfies(pats []scanAtom, v string) bool {
	folded := make([]byte, len(v))
	for i := range len(v) {
		folded[i] = lowerASCII[v[i]]
	}
	for _, a := range pats {
		if (a.fold || a.m.hazard) && !isASCII(v) {
			return true
		}
		for _, l := range a.m.lits {
			if strings.Contains(string(folded), l) {
				return true
			}
		}
	}
	return false
}

// TestRuleIndexScan checks each shared scan against scanSatisfies for
// every rule needing it, over a large varied event set.
func TestRuleIndexScan(t *testing.T) {
	evs := indexEvents(t)
	var rules []*ruleState
	for _, c := range indexCases(t) {
		rules = append(rules, &ruleState{cond: c})
	}
	x := newRuleIndex(rules)
	if x == nil || len(x.scans) < 2 {
		t.Fatal("fewer than 2 shared scans")
	}
	for _, f := range x.scans {
		for i := range evs {
			got := f.scan(f.get(&evs[i]))
			for j, r := range f.rules {
				want := scanSatisfies(x.reqs[r][f.key].pats, f.get(&evs[i]))
				if (got&f.needs[j] != 0) != want {
					t.Fatalf("event %d, rule %d: scan says %v, definition %v", i, r, got&f.needs[j] != 0, want)
				}
			}
		}
	}
}

// TestRuleIndexSound checks that whenever a condition is true, the event
// meets the requirement read from it, on every pack rule and test
// condition over a large varied event set; and that the requirement is not
// trivially empty for the pack.
func TestRuleIndexSound(t *testing.T) {
	evs := indexEvents(t)
	conds := indexCases(t)
	withReq := 0
	for name, c := range conds {
		req := need(c.prog.Node())
		if len(req) > 0 {
			withReq++
		}
		var m vm.VM
		for i := range evs {
			out, err := m.Run(c.prog, &evs[i])
			if err != nil {
				continue // the index only reads conditions on the fast path
			}
			if out == true && !satisfies(req, &evs[i]) {
				t.Fatalf("%s: true on event %d (%+v) outside its requirement %v", name, i, evs[i], req)
			}
		}
	}
	if withReq < 30 {
		t.Fatalf("only %d conditions have a requirement", withReq)
	}
}

// TestRuleIndexNeed checks the requirement read from a few conditions.
func TestRuleIndexNeed(t *testing.T) {
	tests := []struct{ src, want string }{
		{`http.response.status_code == 200`, `http.response.status_code=[200,200]`},
		{`http.response.status_code >= 500 && http.response.status_code <= 599 && user.name != ""`, `http.response.status_code=[500,599]`},
		{`http.response.status_code in [401, 403] || http.response.status_code > 499`, `http.response.status_code=[401,401][403,403][500,max]`},
		{`event.provider == "a" && (event.action == "x" || event.action in ["y", "z"])`, `event.action={x,y,z} event.provider={a}`},
		{`event.provider == "a" || user.name == "b"`, ``},
		{`http.response.status_code in [401, 403.0]`, ``},
		{`!(http.response.status_code == 200)`, ``},
		{`http.response.status_code == 401 && http.response.status_code == 403`, `http.response.status_code=`},
		{`url.path matches "(?i)admin|shell" || lower(url.path) matches "^/x\\.php"`, `~url.path=admin,shell|fold:/x.php`},
		{`url.original matches "a.*b" && user.name != ""`, ``},
		{`(url.path + "x") matches "admin"`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			prog, err := compileWhere(tt.src, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := formatRequirement(need(prog.Node())); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func formatRequirement(req requirement) string {
	var parts []string
	for _, path := range slices.Sorted(maps.Keys(req)) {
		set := req[path]
		var b strings.Builder
		fmt.Fprintf(&b, "%s=", path)
		for i, a := range set.pats {
			if i > 0 {
				b.WriteString("|")
			}
			if a.fold {
				b.WriteString("fold:")
			}
			b.WriteString(strings.Join(a.m.lits, ","))
		}
		if set.strs != nil {
			fmt.Fprintf(&b, "{%s}", strings.Join(slices.Sorted(maps.Keys(set.strs)), ","))
		}
		for _, iv := range set.ivs {
			hi := fmt.Sprint(iv.hi)
			if iv.hi == math.MaxInt64 {
				hi = "max"
			}
			fmt.Fprintf(&b, "[%d,%s]", iv.lo, hi)
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, " ")
}

// TestRuleIndexSkips checks the index of the pack (plus the test
// conditions as rules): it indexes something, and never skips a rule
// whose condition is true.
func TestRuleIndexSkips(t *testing.T) {
	evs := indexEvents(t)
	var rules []*ruleState
	for _, c := range indexCases(t) {
		rules = append(rules, &ruleState{cond: c})
	}
	x := newRuleIndex(rules)
	if x == nil || len(x.fields) == 0 {
		t.Fatal("nothing indexed")
	}
	skipped := 0
	for i := range evs {
		for r, skip := range x.skips(&evs[i]) {
			if !skip {
				continue
			}
			skipped++
			if rules[r].cond.fast(&evs[i]) {
				t.Fatalf("event %d: skips %s, which is true", i, rules[r].cond.prog.Source().String())
			}
		}
	}
	if skipped == 0 {
		t.Fatal("skips nothing")
	}
	t.Logf("index on %d fields, %d skips", len(x.fields), skipped)
}

// TestRuleIndexSameResults runs the pack over a varied stream with and
// without the index and checks that alerts and counters are identical.
func TestRuleIndexSameResults(t *testing.T) {
	pack, err := LoadDir("../rules")
	if err != nil {
		t.Fatal(err)
	}
	evs := fastStream(t)
	with := mustDetector(t, pack, DefaultConfig())
	without := mustDetector(t, pack, DefaultConfig())
	if with.index == nil {
		t.Fatal("the pack has no index")
	}
	without.index = nil
	for i := 0; i < len(evs); i += 500 {
		batch := evs[i:min(i+500, len(evs))]
		got, _ := with.Observe(t.Context(), batch)
		want, _ := without.Observe(t.Context(), batch)
		if !slices.EqualFunc(got, want, func(a, b schema.Alert) bool { return a.Event.ID == b.Event.ID && a.Message == b.Message }) {
			t.Fatalf("batch at %d: %d alerts with the index, %d without", i, len(got), len(want))
		}
	}
	gs, ws := with.Stats(), without.Stats()
	for i := range gs.Rules {
		gs.Rules[i].EvalTime, ws.Rules[i].EvalTime = 0, 0
	}
	if fmt.Sprint(gs) != fmt.Sprint(ws) {
		t.Fatalf("stats differ:\nwith    %+v\nwithout %+v", gs, ws)
	}
}
