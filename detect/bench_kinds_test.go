package detect

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// kindRules are one rule of each newer kind, shaped like the shipped ones.
var kindRules = []struct{ name, src string }{
	{"sequence", `
id: bench-sequence
title: Failures then success
where: user.name != ""
sequence:
  by: [user.name]
  within: 10m
  steps:
    - {name: failures, where: 'http.response.status_code in [401, 403]', count: 5}
    - {name: success, where: 'http.response.status_code == 200'}
`},
	{"new_terms", `
id: bench-new-asn
title: New ASN
where: trailwatch.credential.fingerprint != ""
new_terms: {by: [trailwatch.credential.fingerprint], fields: [source.as.number], history: 30d, learning: 1h}
`},
	{"rate", `
id: bench-rate
title: Rate
where: http.response.status_code >= 500
rate: {by: [url.domain], interval: 1m, baseline: 1h, min_history: 5m, factor: 5, min_count: 50}
`},
}

// kindEvents is a stream of n access events over keys users, credentials
// and domains, one per millisecond, with a status mix and 50 networks.
func kindEvents(n, keys int) []schema.Event {
	evs := make([]schema.Event, n)
	statuses := []int{200, 401, 401, 403, 500, 200, 401, 503}
	for i := range evs {
		ev := realisticEvent()
		ev.Timestamp = t0.Add(time.Duration(i) * time.Millisecond)
		ev.Event.ID = fmt.Sprintf("e%d", i)
		ev.User.Name = fmt.Sprintf("user%d", i%keys)
		ev.Trailwatch.Credential.Fingerprint = fmt.Sprintf("fp%d", i%keys)
		ev.URL.Domain = fmt.Sprintf("api%d.example.com", i%keys)
		ev.Source.AS.Number = int64(64500 + i%53)
		ev.HTTP.Response.StatusCode = statuses[i%len(statuses)]
		evs[i] = ev
	}
	return evs
}

// BenchmarkKinds runs one rule of each newer kind over 100k events from
// 10k keys, in batches of 1000, moving event time forward on each pass.
func BenchmarkKinds(b *testing.B) {
	const n, keys, batch = 100_000, 10_000, 1000
	evs := kindEvents(n, keys)
	for _, k := range kindRules {
		b.Run(k.name, func(b *testing.B) {
			d := mustDetector(b, mustRules(b, k.src), DefaultConfig())
			var i, alerts int
			b.ReportAllocs()
			for b.Loop() {
				chunk := evs[i : i+batch]
				out, err := d.Observe(b.Context(), chunk)
				if err != nil {
					b.Fatal(err)
				}
				alerts += len(out)
				d.DrainChanges()
				if i += batch; i == n {
					i = 0
					for j := range evs {
						evs[j].Timestamp = evs[j].Timestamp.Add(n * time.Millisecond)
					}
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(alerts)/float64(b.N), "alerts/op")
		})
	}
}

// BenchmarkKindMemory measures the heap held per key by each newer kind:
// 100k keys, 8 events each, one of each status (sequence: 4 failures and
// 2 successes held; rate: 2 errors; new_terms: 8 distinct terms), HeapAlloc
// growth after a GC divided by the groups held.
func BenchmarkKindMemory(b *testing.B) {
	const keys, per = 100_000, 8
	evs := kindEvents(keys*per, keys)
	for i := range evs {
		evs[i].Source.AS.Number = int64(64500 + i/keys) // 8 terms per key
		evs[i].HTTP.Response.StatusCode = []int{200, 401, 401, 403, 500, 200, 401, 503}[i/keys]
	}
	for _, k := range kindRules {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				d := mustDetector(b, mustRules(b, k.src), DefaultConfig())
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				d.Warm(evs)
				d.DrainChanges()
				runtime.GC()
				runtime.ReadMemStats(&after)
				groups := d.Stats().Groups
				if groups != keys {
					b.Fatalf("%d groups, want %d", groups, keys)
				}
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(groups), "bytes/key")
				runtime.KeepAlive(d)
			}
		})
	}
}
