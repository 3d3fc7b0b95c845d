package stages

import (
	"reflect"
	"strings"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailwatch/trailwatch/enrich"
)

var descEnrich = prometheus.NewDesc("trailwatch_enrich_stat",
	"Counters and sizes of the enrichers that are on (evictions, cache sizes, matches…), by enricher and counter name; docs/enrichment.md lists them.",
	[]string{"enricher", "stat"}, nil)

// EnrichCollector exports every numeric counter of the enrichers' Stats,
// so the memory bounds (evictions, entries held) and feed health (refresh
// errors) are visible without a metric per field written by hand. Values
// are untyped: most are counters, a few (entries held now) gauges; the
// docs say which.
func EnrichCollector(e *enrich.Enrichment) prometheus.Collector { return enrichCollector{e} }

type enrichCollector struct{ e *enrich.Enrichment }

func (c enrichCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descEnrich }

func (c enrichCollector) Collect(ch chan<- prometheus.Metric) {
	st := reflect.ValueOf(c.e.Stats())
	for i := range st.NumField() {
		f := st.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue // an enricher that is off
		}
		name := snake(st.Type().Field(i).Name)
		walkStats(f.Elem(), "", func(stat string, v float64) {
			ch <- prometheus.MustNewConstMetric(descEnrich, prometheus.UntypedValue, v, name, stat)
		})
	}
}

// walkStats calls fn for each integer or float field of struct v (nested
// structs with their name as prefix); slices and other kinds are skipped.
func walkStats(v reflect.Value, prefix string, fn func(string, float64)) {
	for i := range v.NumField() {
		f, name := v.Field(i), prefix+snake(v.Type().Field(i).Name)
		if !v.Type().Field(i).IsExported() {
			continue
		}
		switch f.Kind() {
		case reflect.Int, reflect.Int32, reflect.Int64:
			fn(name, float64(f.Int()))
		case reflect.Uint, reflect.Uint32, reflect.Uint64:
			fn(name, float64(f.Uint()))
		case reflect.Float64:
			fn(name, f.Float())
		case reflect.Struct:
			walkStats(f, name+"_", fn)
		}
	}
}

// snake turns a Go field name into snake case: IPEvictions -> ip_evictions.
func snake(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1])) {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}
