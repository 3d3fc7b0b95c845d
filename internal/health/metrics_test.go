package health

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	m := newMonitor(t, nil)
	last := feed(m, "nginx", "edge", 10, t0, time.Second)
	m.ObserveLag("trailwatch-index", "trailwatch.alerts", 42, last)
	only(t, m.Check(last.Add(time.Hour)), RuleSourceSilent)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.Collector())
	want := `
# HELP trailwatch_health_alerts_total Health alerts raised, by health rule id.
# TYPE trailwatch_health_alerts_total counter
trailwatch_health_alerts_total{rule="trailwatch-health-consumer-lag"} 0
trailwatch_health_alerts_total{rule="trailwatch-health-rule-errors"} 0
trailwatch_health_alerts_total{rule="trailwatch-health-rule-not-evaluated"} 0
trailwatch_health_alerts_total{rule="trailwatch-health-rule-quiet"} 0
trailwatch_health_alerts_total{rule="trailwatch-health-source-silent"} 1
# HELP trailwatch_health_conditions Health conditions alerted and not yet cleared, by health rule id.
# TYPE trailwatch_health_conditions gauge
trailwatch_health_conditions{rule="trailwatch-health-consumer-lag"} 0
trailwatch_health_conditions{rule="trailwatch-health-rule-errors"} 0
trailwatch_health_conditions{rule="trailwatch-health-rule-not-evaluated"} 0
trailwatch_health_conditions{rule="trailwatch-health-rule-quiet"} 0
trailwatch_health_conditions{rule="trailwatch-health-source-silent"} 1
# HELP trailwatch_health_consumer_lag Last observed consumer lag in records, by group and topic.
# TYPE trailwatch_health_consumer_lag gauge
trailwatch_health_consumer_lag{group="trailwatch-index",topic="trailwatch.alerts"} 42
# HELP trailwatch_health_streams Source streams tracked for silence.
# TYPE trailwatch_health_streams gauge
trailwatch_health_streams 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"trailwatch_health_alerts_total", "trailwatch_health_conditions", "trailwatch_health_consumer_lag", "trailwatch_health_streams"); err != nil {
		t.Error(err)
	}
}
