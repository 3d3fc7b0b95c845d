package stages

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailwatch/trailwatch/enrich"
)

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{"IPEvictions": "ip_evictions", "Actors": "actors", "RestoreErrors": "restore_errors", "UserAgent": "user_agent", "IPList": "ip_list"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEnrichCollectorExportsBounds checks that the actor enricher's memory
// bounds are exported: the eviction counters a capacity alert is built on.
func TestEnrichCollectorExportsBounds(t *testing.T) {
	en, err := enrich.New(enrich.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = en.Close(t.Context()) })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(EnrichCollector(en))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var enricher, stat string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "enricher":
					enricher = l.GetValue()
				case "stat":
					stat = l.GetValue()
				}
			}
			got[enricher+"/"+stat] = true
		}
	}
	for _, want := range []string{"actor/evictions", "actor/ip_evictions", "actor/value_evictions", "actor/actors"} {
		if !got[want] {
			t.Errorf("series %s not exported; have %v", want, got)
		}
	}
	if got["geo_ip/lookups"] {
		t.Error("an enricher that is off (geoip) exported counters")
	}
}
