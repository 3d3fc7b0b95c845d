package stages

import (
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/internal/pipeline"
	"github.com/trailwatch/trailwatch/normalize"
)

// benchEventRecords returns n enriched events from keys addresses, encoded
// as the events topic holds them, over three partitions by actor.
func benchEventRecords(n, keys int) []*kgo.Record {
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	out := make([]*kgo.Record, n)
	for i := range out {
		ev := enrichedEvent(start, i, keys)
		key := []byte(ev.ActorKey())
		out[i] = &kgo.Record{Topic: "events", Partition: actorPartition(key, 3), Offset: int64(i), Key: key,
			Value: normalize.AppendEvent(nil, &ev), Timestamp: ev.Timestamp}
	}
	return out
}

// processCPUTime is the CPU time the process used so far, user and
// system: on a shared machine it says more than the wall clock.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDetectRepartition measures what the repartition topic costs
// the detect stage with the shipped rules, whole events against projected
// ones: the events handler (enrich off, rules, encoding of the enriched
// and repartition records) and the keyed handler (decoding and the keyed
// rules), per batch of 1000 events, with the repartition bytes per event.
func BenchmarkDetectRepartition(b *testing.B) {
	set, err := detect.LoadDir("../../rules")
	if err != nil {
		b.Fatal(err)
	}
	recs := benchEventRecords(1000, 250)
	for _, mode := range []struct {
		name  string
		whole bool
	}{{"whole", true}, {"projected", false}} {
		book := NewRuleBook(set, detect.DefaultConfig())
		newDetect := func() *Detect {
			h := NewDetect("enriched", "alerts", "dlq", book, NewDetectMetrics(nil), nil)
			h.RepartitionTopic, h.RepartitionWhole = "repart", mode.whole
			return h
		}
		b.Run("events handler/"+mode.name+"/1000 events, 53 rules", func(b *testing.B) {
			h := newDetect()
			var repBytes, repRecs int
			b.ReportAllocs()
			cpu := processCPUTime()
			for b.Loop() {
				out, err := h.Handle(b.Context(), recs)
				if err != nil {
					b.Fatal(err)
				}
				repBytes, repRecs = 0, 0
				for _, r := range out {
					if r.Topic == "repart" {
						repBytes += len(r.Value)
						repRecs++
					}
				}
			}
			b.ReportMetric(float64(processCPUTime()-cpu)/float64(b.N*len(recs)), "cpu-ns/event")
			b.ReportMetric(float64(repBytes)/float64(len(recs)), "repart-B/event")
			b.ReportMetric(float64(repRecs)/float64(len(recs)), "repart-recs/event")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/event")
		})
		b.Run("keyed handler/"+mode.name+"/1000 events, 53 rules", func(b *testing.B) {
			out, err := newDetect().Handle(b.Context(), recs)
			if err != nil {
				b.Fatal(err)
			}
			rep := repartitioned(out)
			benchHandle(b, NewKeyedDetect("alerts", "dlq", book, NewDetectMetrics(nil), nil), rep, len(recs))
		})
	}
}

// BenchmarkDetectHandle is the detect stage's events handler as the
// pipeline runs it: the default enrichment, the shipped rules, projected
// repartition records, over a full poll (5000 events of 1.3 KB from three
// partitions), with the CPU time per event.
func BenchmarkDetectHandle(b *testing.B) {
	set, err := detect.LoadDir("../../rules")
	if err != nil {
		b.Fatal(err)
	}
	recs := benchEventRecords(5000, 500)
	en, err := enrich.New(enrich.DefaultConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer en.Close(b.Context())
	h := NewDetect("enriched", "alerts", "dlq", NewRuleBook(set, detect.DefaultConfig()), NewDetectMetrics(nil), nil)
	h.Enricher, h.RepartitionTopic = en, "repart"
	benchHandle(b, h, recs, len(recs))
}

// benchHandle handles recs with h in a loop and reports the process's CPU
// time and the wall time per event, of events per batch.
func benchHandle(b *testing.B, h pipeline.Handler, recs []*kgo.Record, events int) {
	b.ReportAllocs()
	cpu := processCPUTime()
	for b.Loop() {
		if _, err := h.Handle(b.Context(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPUTime()-cpu)/float64(b.N*events), "cpu-ns/event")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}
