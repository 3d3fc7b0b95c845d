package detect

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// fastConditions are conditions beyond the pack that exercise every
// construct of the fast path and its corners: nil, mixed int/float, long
// and short sets, map keys, rune counts, concatenation.
var fastConditions = []string{
	`user.name == nil`, `nil == user.name`, `labels == nil`, `tags == nil`, `tags != nil`, `nil == nil`,
	`trailwatch.extra != nil && len(trailwatch.extra) > 0`,
	`http.response.status_code == 401.0`, `401.0 != http.response.status_code`,
	`source.geo.location.lat > 1`, `source.geo.location.lat == 0`, `source.geo.location.lon <= -0.5`,
	`trailwatch.signals.travel.speed_kmh >= 1000 && trailwatch.signals.travel.impossible`,
	`trailwatch.signals.travel.distance_km == trailwatch.signals.travel.speed_kmh`,
	`trailwatch.signals.travel.seconds < trailwatch.signals.travel.distance_km`,
	`http.response.bytes in [1, 2, 3.0, 104857601]`, `http.response.bytes > 104857600`,
	`http.response.status_code in [200, 201, 202, 203, 204, 205]`, `http.response.status_code not in [401, 403]`,
	`http.response.status_code in [401, 403.0, "x", true, nil]`, `source.geo.location.lat in [0, 1.5, 2]`,
	`url.path in ["/a", "/b", "/c", "/d", "/e", "/.env"]`, `url.path in ["/.env"]`, `url.path in []`,
	`user.name in ["alice", 1, nil]`, `trailwatch.identity.known in [true]`, `nil in [1, nil]`, `nil in [1]`,
	`"web" in event.category`, `user.name in related.user`, `"env" in labels`, `user.name in trailwatch.extra`,
	`len(url.path) > 3`, `len(tags) == 0`, `len(labels) > 0`, `len(user.name) == 5`, `len(user.name) < len(url.path)`,
	`upper(http.request.method) == "GET"`, `lower(user.name) contains "ü"`, `lower(user.name) == upper(user.name)`,
	`labels["env"] == "prod"`, `labels.env != ""`, `trailwatch.extra[user.name] == ""`, `trailwatch.extra["a.b"] == "c"`,
	`url.path startsWith user.name`, `user.name endsWith ""`, `url.original contains url.path`, `url.path endsWith ".php"`,
	`(url.original + user.name) matches "(?i)admin"`, `url.path + "/" + user.name + "/" + user.id endsWith "/"`,
	`url.path matches "^/api/(v[0-9]+)/"`, `lower(url.path) matches "(?i)\\.env$|k"`, `user.name matches "ſ|K"`,
	`!(user.name == "alice") || not (source.port > 1024)`, `!trailwatch.hop.duplicate`,
	`http.response.status_code > 1e3`, `event.duration < 9223372036854775807`, `event.duration >= -9223372036854775807`,
	`user.name < "m"`, `user.name >= url.path`, `"a" <= user.name && user.name < "b"`, `1 < source.port`,
	`trailwatch.hop.index == trailwatch.hop.index`, `source.as.number == http.response.status_code`,
	`event.severity != 3`, `trailwatch.identity.known == trailwatch.hop.duplicate`, `trailwatch.identity.known != true`,
	`true`, `false && user.name == "x"`, `true || false`, `false or true and not false`,
	`any(["/admin", "/x"], url.path startsWith #)`, `all([1, 2], # < source.port)`, `none(["a"], # == user.name)`,
	`one(["a", "b"], user.name contains #)`, `any(["a", 1, nil], # == user.name)`, `any([], true)`, `all([], false)`,
	`any(["a", "b"], any(["x", "y"], user.name == # || url.path == #))`,
	`len(threat.enrichments) > 0`, `threat.enrichments == nil`, `threat.enrichments != nil && len(threat.enrichments) == 0`,
}

// fastFallbacks are conditions the fast path must leave to the VM: they
// can fail at run time, or use what it does not mirror.
var fastFallbacks = []string{
	`related.ip[0] == "10.0.0.1"`,
	`timestamp > event.created`,
	`any(threat.enrichments, .indicator.type == "url")`,
	`url.path matches user.name`,
	`http.response.status_code / source.port > 1`,
	`(user.name ?? "x") == "x"`,
	`user.name == "a" ? true : false`,
	`let p = url.path; p == "/x"`,
	`any(tags, # == "x")`,
	`any(["a", 1], url.path startsWith #)`,
}

// TestFastMatchesVM checks, for every pack rule and every condition of
// fastConditions, that the fast path returns what the expr VM returns on
// a large varied event set, and that the VM never fails where the fast
// path answers.
func TestFastMatchesVM(t *testing.T) {
	evs := fastEvents(t, 4000)
	conds := map[string]*cond{}
	pack, err := LoadDir("../rules")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pack.Rules() {
		conds["rule "+r.ID] = r.condition()
	}
	for _, src := range fastConditions {
		c, err := compileWhere(src, nil)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		conds[src] = newCond(c)
	}
	for name, c := range conds {
		t.Run(name, func(t *testing.T) {
			if c.fast == nil {
				t.Fatalf("falls back to the VM: %s", c.slow)
			}
			var m vm.VM
			matched := 0
			for i := range evs {
				ev := &evs[i]
				out, err := m.Run(c.prog, ev)
				if err != nil {
					t.Fatalf("event %d: VM error %v; the fast path cannot fail", i, err)
				}
				want, _ := out.(bool)
				got, err := c.eval(&m, ev)
				if err != nil || got != want {
					t.Fatalf("event %d (%+v): fast %v, %v; VM %v", i, *ev, got, err, want)
				}
				if want {
					matched++
				}
			}
			t.Logf("%d of %d events match", matched, len(evs))
		})
	}
}

// TestFastFallsBack checks that conditions the fast path does not mirror
// run on the VM, errors included.
func TestFastFallsBack(t *testing.T) {
	ev := realisticEvent()
	ev.Related.IP = nil
	for _, src := range fastFallbacks {
		t.Run(src, func(t *testing.T) {
			prog, err := compileWhere(src, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := newCond(prog)
			if c.fast != nil || c.slow == "" {
				t.Fatalf("fast path built (slow %q)", c.slow)
			}
			var m vm.VM
			out, wantErr := m.Run(prog, &ev)
			want, _ := out.(bool)
			got, err := c.eval(&m, &ev)
			if got != want || (err == nil) != (wantErr == nil) {
				t.Fatalf("eval %v, %v; VM %v, %v", got, err, want, wantErr)
			}
		})
	}
}

// TestFastPackHasNoFallback fails when a shipped rule's condition runs on
// the expr VM: a rule author adding one should extend the fast path (see
// fast.go) or accept the cost knowingly, here.
func TestFastPackHasNoFallback(t *testing.T) {
	pack, err := LoadDir("../rules")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pack.Rules() {
		t.Run(r.ID, func(t *testing.T) {
			if c := r.condition(); c.fast == nil {
				t.Errorf("%s: where runs on the expr VM: %s", r.Pos(), c.slow)
			}
			if r.Window == nil {
				return
			}
			for _, g := range r.Window.GroupBy {
				if fastGroupKey(g) == nil {
					t.Errorf("%s: group_by %s runs on the expr VM", r.Pos(), g)
				}
			}
		})
	}
}

// TestFastMacrosAndLists checks that what the loader patches into a
// condition (a macro, a list) is on the fast path and agrees with the VM.
func TestFastMacrosAndLists(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yaml")
	src := `macros:
  failed_login: http.response.status_code in denied_codes && url.path matches "(?i)/login"
lists:
  denied_codes: [401, 403]
rules:
  - id: m
    title: M
    where: failed_login && user.name != ""
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := LoadFiles(file)
	if err != nil {
		t.Fatal(err)
	}
	c := rs.Get("m").condition()
	if c.fast == nil {
		t.Fatalf("falls back: %s", c.slow)
	}
	var m vm.VM
	evs := fastEvents(t, 500)
	for i := range evs {
		out, err := m.Run(c.prog, &evs[i])
		if err != nil {
			t.Fatal(err)
		}
		if got := c.fast(&evs[i]); got != out {
			t.Fatalf("event %d: fast %v, VM %v", i, got, out)
		}
	}
}

// TestFastGroupKeys checks every plain-field group key reader against the
// VM program compileGroupBy builds for the same source.
func TestFastGroupKeys(t *testing.T) {
	evs := fastEvents(t, 300)
	for path := range groupFields {
		t.Run(path, func(t *testing.T) {
			prog, err := compileGroupBy(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			get := fastGroupKey(path)
			var m vm.VM
			for i := range evs {
				out, err := m.Run(prog, &evs[i])
				if err != nil {
					t.Fatal(err)
				}
				if want, got := formatValue(out), get(&evs[i]); got != want {
					t.Fatalf("event %d: fast %q, VM %q", i, got, want)
				}
			}
		})
	}
	for _, src := range []string{"lower(user.name)", "labels", "tags", "timestamp", "user"} {
		if fastGroupKey(src) != nil {
			t.Errorf("%s: has a fast reader", src)
		}
	}
}

// FuzzFastCondition compares the fast path with the VM on events whose
// string and number fields come from the fuzzer.
func FuzzFastCondition(f *testing.F) {
	f.Add("/api/login", "Mozilla/5.0", "alice", int64(401), 1.5)
	f.Add("/static/../../etc/passwd?x=${jndi:ldap://a}", "sqlmap/1.8", "ſK", int64(math.MaxInt64), math.NaN())
	f.Add("", "", "", int64(0), 0.0)
	pack, err := LoadDir("../rules")
	if err != nil {
		f.Fatal(err)
	}
	var conds []*cond
	for _, r := range pack.Rules() {
		conds = append(conds, r.condition())
	}
	for _, src := range fastConditions {
		prog, err := compileWhere(src, nil)
		if err != nil {
			f.Fatal(err)
		}
		conds = append(conds, newCond(prog))
	}
	f.Fuzz(func(t *testing.T, s, ua, user string, n int64, x float64) {
		ev := realisticEvent()
		ev.URL.Original, ev.URL.Path, ev.URL.Query = s, s, s
		ev.UserAgent.Original, ev.HTTP.Request.Method, ev.TLS.VersionProtocol = ua, ua, ua
		ev.User.Name, ev.User.ID, ev.Labels = user, user, map[string]string{"env": user}
		ev.HTTP.Response.StatusCode, ev.HTTP.Response.Bytes, ev.Source.Port = int(n), n, int(n)
		ev.Source.Geo.Location.Lat, ev.Trailwatch.Signals.Travel.SpeedKMH = x, x
		var m vm.VM
		for _, c := range conds {
			out, err := m.Run(c.prog, &ev)
			if err != nil {
				t.Fatalf("%s: VM error %v", c.prog.Source().String(), err)
			}
			if got, _ := c.eval(&m, &ev); got != out {
				t.Fatalf("%s: fast %v, VM %v", c.prog.Source().String(), got, out)
			}
		}
	})
}

// fastEvents returns n events: the benchmark's realistic mix, every pack
// rule test event, and random mutations of both that set each field to
// an empty, unicode, extreme or rule-relevant value.
func fastEvents(t testing.TB, n int) []schema.Event {
	t.Helper()
	pack, err := LoadDir("../rules")
	if err != nil {
		t.Fatal(err)
	}
	var base []schema.Event
	strs := []string{"", " ", "alice", "ALICE", "Ünïcödé/𝔘 ſ K", "\xff\xfe", "/api/login", "/ADMIN/x", "/.env",
		"/actuator/health", "/actuator/env", "GET", "post", "TRACE", "aws", "ssl", "tls", "1.0", "No", "Root",
		"AssumedRole", "a:root", "/static/../../etc/passwd", "${jndi:ldap://x}", "%24%7bjndi:", "?cmd=whoami;id",
		strings.Repeat("a", 3000), "/wp-admin/shell.php", "env", "prod", "a.b", "c"}
	keys := []string{"", "env", "a.b", "alice"} // map keys
	for i := range 40 {
		ev := realisticEvent()
		ev.HTTP.Response.StatusCode = []int{200, 200, 200, 401, 404, 500, 200, 403}[i%8]
		ev.URL.Path = []string{"/api/login", "/api/orders", "/admin", "/api/export", "/.env"}[i%5]
		base = append(base, ev)
	}
	// Every string a pack rule test uses is a value rules look for.
	for _, r := range pack.Rules() {
		for _, tc := range r.Tests {
			for _, ev := range tc.Events {
				base = append(base, ev)
				collectStrings(reflect.ValueOf(ev), &strs, &keys)
			}
		}
	}
	ints := []int64{0, 1, -1, 200, 299, 300, 401, 403, 404, 429, 500, 599, 600, 1000, 1024, 104857600, 104857601,
		1 << 53, 1<<53 + 1, math.MaxInt32 + 1, math.MaxInt64, math.MinInt64}
	floats := []float64{0, math.Copysign(0, -1), 1, 1.5, -0.5, 401, 1000, 1e300, math.NaN(), math.Inf(1), math.Inf(-1)}
	rng := rand.New(rand.NewPCG(4, 300))
	out := append(make([]schema.Event, 0, max(n, len(base))), base...)
	for len(out) < n {
		ev := base[rng.IntN(len(base))]
		mutate(rng, reflect.ValueOf(&ev).Elem(), pools{strs, keys, ints, floats})
		out = append(out, ev)
	}
	return out
}

// collectStrings appends every non-empty string in v to out, and map
// keys also to keys.
func collectStrings(v reflect.Value, out, keys *[]string) {
	switch v.Kind() {
	case reflect.String:
		if v.String() != "" {
			*out = append(*out, v.String())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				collectStrings(v.Field(i), out, keys)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			collectStrings(v.Index(i), out, keys)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			*keys = append(*keys, it.Key().String())
			collectStrings(it.Key(), out, keys)
			collectStrings(it.Value(), out, keys)
		}
	}
}

// pools are the values mutate draws from.
type pools struct {
	strs, keys []string
	ints       []int64
	floats     []float64
}

// mutate sets about one field in four of v, recursively, to a random value
// from the pools; slices and maps may become nil, empty or fresh.
func mutate(rng *rand.Rand, v reflect.Value, p pools) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		return
	}
	if v.Kind() == reflect.Struct {
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				mutate(rng, v.Field(i), p)
			}
		}
		return
	}
	if rng.IntN(4) != 0 {
		return
	}
	str := func() string { return p.strs[rng.IntN(len(p.strs))] }
	switch v.Kind() {
	case reflect.String:
		v.SetString(str())
	case reflect.Int, reflect.Int64:
		v.SetInt(p.ints[rng.IntN(len(p.ints))])
	case reflect.Float64:
		v.SetFloat(p.floats[rng.IntN(len(p.floats))])
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			switch rng.IntN(3) {
			case 0:
				v.SetZero()
			case 1:
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return
		}
		switch k := rng.IntN(3); k {
		case 0:
			v.SetZero()
		default:
			s := make([]string, rng.IntN(3))
			for i := range s {
				s[i] = str()
			}
			v.Set(reflect.ValueOf(s))
		}
	case reflect.Map:
		switch rng.IntN(3) {
		case 0:
			v.SetZero()
		default:
			m := map[string]string{}
			for range rng.IntN(4) {
				m[p.keys[rng.IntN(len(p.keys))]] = str()
			}
			v.Set(reflect.ValueOf(m))
		}
	}
}
