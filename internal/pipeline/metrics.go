package pipeline

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StageMetrics are one stage's Prometheus series. A nil *StageMetrics
// records nothing, so handlers and tests need no registry.
type StageMetrics struct {
	recordsIn   prometheus.Counter
	recordsOut  *prometheus.CounterVec
	retries     prometheus.Counter
	fetchErrors prometheus.Counter
	batchTime   prometheus.Histogram
	lagGauge    *prometheus.GaugeVec
}

// NewStageMetrics registers the series of stage on reg, initialised to zero.
func NewStageMetrics(reg prometheus.Registerer, stage string) *StageMetrics {
	p := "trailwatch_" + stage + "_"
	m := &StageMetrics{
		recordsIn:   prometheus.NewCounter(prometheus.CounterOpts{Name: p + "records_in_total", Help: "Records consumed by the stage."}),
		recordsOut:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: p + "records_out_total", Help: "Records produced by the stage, by topic."}, []string{"topic"}),
		retries:     prometheus.NewCounter(prometheus.CounterOpts{Name: p + "batch_retries_total", Help: "Batches retried after a failed handle, produce or commit."}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: p + "fetch_errors_total", Help: "Fetch errors from Kafka."}),
		batchTime:   prometheus.NewHistogram(prometheus.HistogramOpts{Name: p + "batch_seconds", Help: "Time to handle, produce and commit one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}),
		lagGauge:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: p + "consumer_lag", Help: "Records behind the high watermark, per input partition."}, []string{"topic", "partition"}),
	}
	reg.MustRegister(m.recordsIn, m.recordsOut, m.retries, m.fetchErrors, m.batchTime, m.lagGauge)
	return m
}

func (m *StageMetrics) in(n int) {
	if m != nil {
		m.recordsIn.Add(float64(n))
	}
}

func (m *StageMetrics) out(recs []*kgo.Record) {
	if m == nil {
		return
	}
	// One series lookup per run of records to the same topic, not per
	// record: outputs come grouped by topic.
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].Topic == recs[i].Topic {
			j++
		}
		m.recordsOut.WithLabelValues(recs[i].Topic).Add(float64(j - i))
		i = j
	}
}

func (m *StageMetrics) retry() {
	if m != nil {
		m.retries.Inc()
	}
}

func (m *StageMetrics) fetchError() {
	if m != nil {
		m.fetchErrors.Inc()
	}
}

func (m *StageMetrics) took(d time.Duration) {
	if m != nil {
		m.batchTime.Observe(d.Seconds())
	}
}

func (m *StageMetrics) lag(topic string, p int32, n int64) {
	if m != nil {
		m.lagGauge.WithLabelValues(topic, strconv.Itoa(int(p))).Set(float64(n))
	}
}
