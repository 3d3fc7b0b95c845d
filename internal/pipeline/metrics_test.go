package pipeline

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStageMetricsCountsRecordsOutByTopic counts output records per topic
// whether they come grouped by topic or interleaved.
func TestStageMetricsCountsRecordsOutByTopic(t *testing.T) {
	tests := []struct {
		name   string
		topics []string
		want   map[string]float64
	}{
		{name: "none", topics: nil, want: map[string]float64{"a": 0}},
		{name: "one run", topics: []string{"a", "a", "a"}, want: map[string]float64{"a": 3}},
		{name: "grouped", topics: []string{"a", "a", "b", "c", "c"}, want: map[string]float64{"a": 2, "b": 1, "c": 2}},
		{name: "interleaved", topics: []string{"a", "b", "a", "b", "a"}, want: map[string]float64{"a": 3, "b": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewStageMetrics(prometheus.NewRegistry(), "test")
			recs := make([]*kgo.Record, len(tt.topics))
			for i, topic := range tt.topics {
				recs[i] = &kgo.Record{Topic: topic}
			}
			m.out(recs)
			for topic, want := range tt.want {
				if got := testutil.ToFloat64(m.recordsOut.WithLabelValues(topic)); got != want {
					t.Errorf("records out to %s = %v, want %v", topic, got, want)
				}
			}
		})
	}
}
