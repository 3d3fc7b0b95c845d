package detect

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// fastKindRules exercise every typed reader bind() installs: string, int,
// bool and float keys, terms and aggregated fields, of each kind.
const fastKindRules = `
rules:
  - id: k-distinct
    title: K distinct
    where: http.response.status_code >= 400
    window: {over: 1m, group_by: [source.ip, http.response.status_code], distinct: user.name, count: 3}
  - id: k-distinct-int
    title: K distinct int
    where: "true"
    window: {over: 1m, group_by: [trailwatch.identity.known], distinct: source.as.number, count: 4}
  - id: k-sum
    title: K sum
    where: "true"
    window: {over: 1m, group_by: [url.path], sum: http.response.bytes, threshold: 200000}
  - id: k-avg-float
    title: K avg float
    where: "true"
    window: {over: 1m, group_by: [user.name], avg: source.geo.location.lat, threshold: 1}
  - id: k-terms
    title: K terms
    where: "true"
    new_terms: {by: [user.name], fields: [source.as.number, trailwatch.identity.known, source.geo.location.lat], history: 1h, learning: 1s}
  - id: k-terms-str
    title: K terms str
    where: "true"
    new_terms: {by: [trailwatch.credential.fingerprint, source.port], fields: [user_agent.original], history: 1h, learning: 2s, max_terms: 5}
  - id: k-seq
    title: K seq
    where: "true"
    sequence:
      by: [user.name]
      within: 1m
      steps:
        - {name: fail, where: 'http.response.status_code in [401, 403]', count: 2}
        - {name: ok, where: 'http.response.status_code == 200'}
  - id: k-seq-any
    title: K seq any
    where: "true"
    sequence:
      by: [source.ip]
      within: 1m
      ordered: false
      steps:
        - {name: a, where: 'url.path startsWith "/a"', count: 2}
        - {name: b, where: 'http.response.status_code >= 500'}
  - id: k-rate
    title: K rate
    where: http.response.status_code >= 400
    rate: {by: [url.path], interval: 1s, baseline: 20s, min_history: 3s, factor: 2, min_count: 3}
`

// vmOnly makes d evaluate everything the way it did before the typed
// readers and the rule index: conditions, keys, terms and aggregated
// fields on the expr VM, and every rule evaluated.
func vmOnly(d *Detector) {
	for _, rs := range d.rules {
		rs.cond = &cond{prog: rs.rule.where, slow: "forced"}
		for i := range rs.keys {
			rs.keys[i].get = nil
		}
		for i := range rs.terms {
			rs.terms[i].app = nil
		}
		rs.value.get = nil
		rs.num = nil
	}
	d.index = nil
}

// fastStream is a varied event stream in mostly increasing event time,
// with a few late and out-of-order events.
func fastStream(t *testing.T) []schema.Event {
	evs := append(fastEvents(t, 3000), observeEvents(3000, 50)...)
	rng := rand.New(rand.NewPCG(7, 9))
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	for i := range evs {
		// 0.1s apart; one event in 20 jumps back up to a minute.
		d := time.Duration(i) * 100 * time.Millisecond
		if rng.IntN(20) == 0 {
			d -= time.Duration(rng.IntN(60)) * time.Second
		}
		evs[i].Timestamp = t0.Add(d)
	}
	return evs
}

// TestFastDetectorMatchesVM runs the pack and rules of every kind over a
// varied stream twice, with the typed readers and fast conditions and with
// everything on the VM, and checks that alerts, rule errors, durable state
// changes and counters are identical.
func TestFastDetectorMatchesVM(t *testing.T) {
	pack, err := LoadDir("../rules")
	if err != nil {
		t.Fatal(err)
	}
	sets := []struct {
		name string
		rs   *RuleSet
	}{
		{"pack", pack},
		{"kinds", mustRules(t, fastKindRules)},
	}
	evs := fastStream(t)
	for _, set := range sets {
		t.Run(set.name, func(t *testing.T) {
			fast := mustDetector(t, set.rs, DefaultConfig())
			slow := mustDetector(t, set.rs, DefaultConfig())
			vmOnly(slow)
			var alerts int
			for i := 0; i < len(evs); i += 250 {
				batch := evs[i:min(i+250, len(evs))]
				got, err := fast.Observe(t.Context(), batch)
				if err != nil {
					t.Fatal(err)
				}
				want, err := slow.Observe(t.Context(), batch)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("batch at %d: alerts differ:\nfast %+v\nvm   %+v", i, got, want)
				}
				alerts += len(got)
				if g, w := fast.DrainRuleErrors(), slow.DrainRuleErrors(); !sameRuleErrors(g, w) {
					t.Fatalf("batch at %d: rule errors differ: fast %v, vm %v", i, g, w)
				}
				if g, w := fast.DrainChanges(), slow.DrainChanges(); !reflect.DeepEqual(g, w) {
					t.Fatalf("batch at %d: state changes differ: fast %d, vm %d", i, len(g), len(w))
				}
			}
			gs, ws := fast.Stats(), slow.Stats()
			for i := range gs.Rules {
				gs.Rules[i].EvalTime, ws.Rules[i].EvalTime = 0, 0
			}
			if !reflect.DeepEqual(gs, ws) {
				t.Fatalf("stats differ:\nfast %+v\nvm   %+v", gs, ws)
			}
			if alerts == 0 {
				t.Fatal("no alerts: the stream exercises nothing")
			}
			t.Logf("%d events, %d alerts", len(evs), alerts)
		})
	}
}

func sameRuleErrors(a, b []RuleError) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].RuleID != b[i].RuleID || a[i].EventID != b[i].EventID || a[i].Err.Error() != b[i].Err.Error() {
			return false
		}
	}
	return true
}

// TestFastTermReaders checks every plain-field term reader against what
// new_terms did on the VM: IsZero on the value, then formatValue.
func TestFastTermReaders(t *testing.T) {
	evs := fastEvents(t, 300)
	for i := range evs {
		if i%7 == 0 { // -0.0 and NaN: IsZero's corners
			evs[i].Source.Geo.Location.Lat = -evs[i].Source.Geo.Location.Lat
		}
	}
	for path, app := range termFields {
		t.Run(path, func(t *testing.T) {
			prog, err := compileGroupBy(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			fast := termReader{app: app}
			slow := termReader{prog: prog}
			var m vm.VM
			for i := range evs {
				got, gok, gerr := fast.read(&m, []byte("x"), &evs[i])
				want, wok, werr := slow.read(&m, []byte("x"), &evs[i])
				if gerr != nil || werr != nil || gok != wok || string(got) != string(want) {
					t.Fatalf("event %d: fast %q %v %v, VM %q %v %v", i, got, gok, gerr, want, wok, werr)
				}
			}
		})
	}
	if len(termFields) < 100 {
		t.Fatalf("only %d term readers", len(termFields))
	}
}

// TestFastNumReaders checks every integer sum/avg reader against toFloat of
// what the VM returns.
func TestFastNumReaders(t *testing.T) {
	evs := fastEvents(t, 300)
	for path, get := range numFields {
		t.Run(path, func(t *testing.T) {
			prog, err := compileNumeric(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			var m vm.VM
			for i := range evs {
				out, err := m.Run(prog, &evs[i])
				if err != nil {
					t.Fatal(err)
				}
				want, err := toFloat(out)
				if err != nil {
					t.Fatal(err)
				}
				if got := get(&evs[i]); got != want {
					t.Fatalf("event %d: fast %v, VM %v", i, got, want)
				}
			}
		})
	}
}

// TestMayMatchScan checks the prefilter scan against its definition (the
// input, ASCII case folded, contains one of the literals; anything goes
// for non-ASCII input when a literal came from a hazardous fold), on
// strings and on byte slices.
func TestMayMatchScan(t *testing.T) {
	inputs := corpus(t)
	rng := rand.New(rand.NewPCG(3, 5))
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			const alphabet = "aAsSkK/.%2fF$;{|~\xc5\xbf"
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, p := range shippedPatterns(t) {
		m, err := newMatcher(p)
		if err != nil {
			t.Fatal(err)
		}
		if m.lits == nil {
			continue
		}
		for _, s := range inputs {
			var lower strings.Builder
			for i := 0; i < len(s); i++ {
				lower.WriteByte(lowerASCII[s[i]])
			}
			want := m.hazard && !isASCII(s)
			for _, l := range m.lits {
				want = want || strings.Contains(lower.String(), l)
			}
			if got := m.mayMatch(s); got != want {
				t.Fatalf("%q on %q: mayMatch %v, want %v", p, s, got, want)
			}
			if got := mayMatchIn(m, []byte(s)); got != want {
				t.Fatalf("%q on %q: mayMatch of bytes %v, want %v", p, s, got, want)
			}
		}
	}
}
