package detect

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// realisticEvent is a fully populated access event, as a normalizer and
// enrichers would leave it.
func realisticEvent() schema.Event {
	return schema.Event{
		Timestamp:   t0,
		Event:       schema.EventMeta{ID: "0f3c9a1e", Kind: "event", Category: []string{"web"}, Type: []string{"access"}, Outcome: "failure", Dataset: "nginx.access", Duration: 12_000_000},
		Source:      schema.Endpoint{IP: "203.0.113.9", Port: 51234, Geo: schema.Geo{CountryISOCode: "NL"}, AS: schema.AS{Number: 64500}},
		Destination: schema.Endpoint{IP: "10.0.0.5", Port: 443},
		User:        schema.User{Name: "alice"},
		UserAgent:   schema.UserAgent{Original: "python-requests/2.32.3"},
		HTTP: schema.HTTP{
			Version:  "1.1",
			Request:  schema.HTTPRequest{Method: "POST", Bytes: 312},
			Response: schema.HTTPResponse{StatusCode: 401, Bytes: 64},
		},
		URL:        schema.URL{Original: "/api/login?next=%2F", Path: "/api/login", Query: "next=%2F", Domain: "api.example.com"},
		Related:    schema.Related{IP: []string{"203.0.113.9", "10.0.0.5"}, User: []string{"alice"}},
		Trailwatch: schema.Trailwatch{Actor: "user:alice", Source: "nginx", Credential: schema.Credential{Fingerprint: "fp-1", Type: "basic"}},
	}
}

// typicalWhere is the kind of condition the shipped rules use.
const typicalWhere = `http.response.status_code in [401, 403] && url.path startsWith "/api/" && http.request.method == "POST"`

// BenchmarkWhere compares ways of running a compiled condition. The
// detector uses the winner: a reused *vm.VM with a *schema.Event env and
// the default optimizer (see compileWhere).
func BenchmarkWhere(b *testing.B) {
	ev := realisticEvent()
	compile := func(b *testing.B, opts ...expr.Option) *vm.Program {
		prog, err := expr.Compile(typicalWhere, append([]expr.Option{expr.Env(schema.Event{}), expr.AsBool()}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		return prog
	}
	check := func(b *testing.B, out any, err error) {
		if err != nil || out != true {
			b.Fatalf("got %v, %v", out, err)
		}
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	}
	b.Run("expr.Run/value", func(b *testing.B) {
		prog := compile(b)
		b.ReportAllocs()
		for b.Loop() {
			out, err := expr.Run(prog, ev)
			check(b, out, err)
		}
		report(b)
	})
	b.Run("expr.Run/pointer", func(b *testing.B) {
		prog := compile(b)
		b.ReportAllocs()
		for b.Loop() {
			out, err := expr.Run(prog, &ev)
			check(b, out, err)
		}
		report(b)
	})
	b.Run("vm.Run/reused VM/pointer/no optimize", func(b *testing.B) {
		prog := compile(b, expr.Optimize(false))
		var m vm.VM
		b.ReportAllocs()
		for b.Loop() {
			out, err := m.Run(prog, &ev)
			check(b, out, err)
		}
		report(b)
	})
	b.Run("vm.Run/reused VM/pointer", func(b *testing.B) {
		prog, err := compileWhere(typicalWhere, nil)
		if err != nil {
			b.Fatal(err)
		}
		var m vm.VM
		b.ReportAllocs()
		for b.Loop() {
			out, err := m.Run(prog, &ev)
			check(b, out, err)
		}
		report(b)
	})
}

// observeEvents is BenchmarkObserve's stream: n access events one
// millisecond apart from keys source addresses, with a mix of statuses,
// paths and 97 user names.
func observeEvents(n, keys int) []schema.Event {
	evs := make([]schema.Event, n)
	statuses := []int{200, 200, 200, 401, 404, 500, 200, 403}
	paths := []string{"/api/login", "/api/orders", "/admin", "/api/export", "/.env"}
	for i := range evs {
		ev := realisticEvent()
		ev.Timestamp = t0.Add(time.Duration(i) * time.Millisecond)
		ev.Event.ID = fmt.Sprintf("e%d", i)
		ev.Source.IP = fmt.Sprintf("10.%d.%d.%d", i%keys/65536, i%keys/256%256, i%keys%256)
		ev.Trailwatch.Actor = "ip:" + ev.Source.IP
		ev.HTTP.Response.StatusCode = statuses[i%len(statuses)]
		ev.URL.Path = paths[i%len(paths)]
		ev.User.Name = fmt.Sprintf("user%d", i%97)
		ev.HTTP.Response.Bytes = int64(i % 5000)
		evs[i] = ev
	}
	return evs
}

// BenchmarkObserve runs the shipped rules over a stream of access events
// from many sources, in batches of 1000.
func BenchmarkObserve(b *testing.B) {
	shipped, err := LoadDir("../rules")
	if err != nil {
		b.Fatal(err)
	}
	// One rule of each aggregation, over the same stream as the shipped
	// rules: distinct users per source, response bytes per credential.
	distinct := mustRules(b, `
id: bench-spray
title: Spray
where: http.response.status_code == 401
window: {over: 5m, group_by: [source.ip], distinct: user.name, count: 5}
`)
	sum := mustRules(b, `
id: bench-volume
title: Volume
where: http.response.status_code == 200
window: {over: 10m, group_by: [source.ip], sum: http.response.bytes, threshold: 20000}
`)
	sets := []struct {
		name string
		rs   *RuleSet
	}{
		{fmt.Sprintf("%d shipped rules", shipped.Len()), shipped},
		{"1 distinct rule", distinct},
		{"1 sum rule", sum},
	}
	for _, set := range sets {
		rs, keys := set.rs, 10_000
		b.Run(fmt.Sprintf("%s, %dk keys", set.name, keys/1000), func(b *testing.B) {
			const n = 100_000
			evs := observeEvents(n, keys)
			d := mustDetector(b, rs, DefaultConfig())
			const batch = 1000
			var i, alerts int
			var off time.Duration
			b.ReportAllocs()
			for b.Loop() {
				chunk := evs[i : i+batch]
				if off > 0 {
					for j := range chunk {
						chunk[j].Timestamp = chunk[j].Timestamp.Add(off)
					}
				}
				out, err := d.Observe(b.Context(), chunk)
				if err != nil {
					b.Fatal(err)
				}
				alerts += len(out)
				if i += batch; i == n {
					// Replay the stream later in event time, so windows
					// keep sliding forward.
					i, off = 0, time.Duration(n)*time.Millisecond
				}
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*batch)/secs, "events/s")
			b.ReportMetric(float64(b.N*batch*rs.Len())/secs, "checks/s")
			b.ReportMetric(float64(alerts)/float64(b.N), "alerts/op")
		})
	}
}

// BenchmarkGroupMemory measures the heap held per active group key: it
// creates 100k groups (3 events each) with one rule, forces a GC before and
// after, and divides the growth of runtime.MemStats.HeapAlloc by the group
// count. The events stay alive throughout, so the figure is the detector's
// own state (event id strings are shared with the input, not copied).
func BenchmarkGroupMemory(b *testing.B) {
	const groups, perGroup = 100_000, 3
	rules := []struct {
		name, window string
	}{
		{"count", "{count: 100, over: 1h, group_by: [source.ip]}"},
		{"distinct", "{count: 100, over: 1h, group_by: [source.ip], distinct: user.name}"},
		{"sum", "{over: 1h, group_by: [source.ip], sum: http.response.bytes, threshold: 1e12}"},
	}
	evs := make([]schema.Event, 0, groups*perGroup)
	for i := range groups {
		ip := fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256)
		for k := range perGroup {
			ev := fail401(float64(i)/1000, ip)
			ev.Event.ID = fmt.Sprintf("%032x", i*perGroup+k)
			ev.User.Name = fmt.Sprintf("user%d", k)
			evs = append(evs, ev)
		}
	}
	for _, r := range rules {
		b.Run(fmt.Sprintf("%s, 100k keys, %d events each", r.name, perGroup), func(b *testing.B) {
			rs := mustRules(b, "id: m\ntitle: M\nwhere: \"true\"\nwindow: "+r.window+"\n")
			var perKey float64
			for b.Loop() {
				d := mustDetector(b, rs, DefaultConfig())
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				if _, err := d.Observe(b.Context(), evs); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if g := d.Stats().Groups; g != groups {
					b.Fatalf("%d groups", g)
				}
				perKey = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / groups
				runtime.KeepAlive(d)
			}
			b.ReportMetric(perKey, "bytes/key")
		})
	}
}
