package health

import "github.com/prometheus/client_golang/prometheus"

var (
	descAlerts     = prometheus.NewDesc("trailwatch_health_alerts_total", "Health alerts raised, by health rule id.", []string{"rule"}, nil)
	descActive     = prometheus.NewDesc("trailwatch_health_conditions", "Health conditions alerted and not yet cleared, by health rule id.", []string{"rule"}, nil)
	descRecovered  = prometheus.NewDesc("trailwatch_health_recovered_total", "Alerted health conditions that cleared.", nil, nil)
	descStreams    = prometheus.NewDesc("trailwatch_health_streams", "Source streams tracked for silence.", nil, nil)
	descEvicted    = prometheus.NewDesc("trailwatch_health_streams_evicted_total", "Source streams forgotten to stay within detect.health.max_streams.", nil, nil)
	descPolls      = prometheus.NewDesc("trailwatch_health_lag_polls_total", "Consumer lag polls.", nil, nil)
	descPollErrors = prometheus.NewDesc("trailwatch_health_lag_poll_errors_total", "Consumer lag polls that failed for some group.", nil, nil)
	descDropped    = prometheus.NewDesc("trailwatch_health_dropped_total", "Health alerts dropped because emitting them kept failing.", nil, nil)
	descLag        = prometheus.NewDesc("trailwatch_health_consumer_lag", "Last observed consumer lag in records, by group and topic.", []string{"group", "topic"}, nil)
)

// Collector returns a prometheus.Collector exporting the Monitor's Stats
// and the last observed lag per group and topic (bounded: the pipeline's
// groups times their input topics).
func (m *Monitor) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Monitor }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAlerts, descActive, descRecovered, descStreams, descEvicted, descPolls, descPollErrors, descDropped, descLag} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Stats()
	for rule, n := range s.Alerts {
		ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.CounterValue, float64(n), rule)
	}
	for rule, n := range map[string]int{
		RuleSourceSilent: s.Silent, RuleRuleErrors: s.RulesErroring, RuleRuleNotEvaluated: s.RulesNotEvaluated,
		RuleRuleQuiet: s.RulesQuiet, RuleConsumerLag: s.Lagging,
	} {
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(n), rule)
	}
	ch <- prometheus.MustNewConstMetric(descRecovered, prometheus.CounterValue, float64(s.Recovered))
	ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(s.Streams))
	ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(s.Evicted))
	ch <- prometheus.MustNewConstMetric(descPolls, prometheus.CounterValue, float64(s.LagPolls))
	ch <- prometheus.MustNewConstMetric(descPollErrors, prometheus.CounterValue, float64(s.LagPollErrors))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(s.Dropped))
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	for k, l := range c.m.lags {
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(l.lag), k.group, k.topic)
	}
}
