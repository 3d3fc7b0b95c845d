package stages

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/pipeline"
)

// CollectEmit returns the ingest.Emit that writes records to the raw topic
// and returns only after Kafka acknowledged all of them, which is what lets
// a collector checkpoint. out counts acknowledged records and may be nil.
func CollectEmit(cl *kgo.Client, topic string, out prometheus.Counter) ingest.Emit {
	return func(ctx context.Context, recs []ingest.Record) error {
		if err := pipeline.Produce(ctx, cl, RawRecords(topic, recs)); err != nil {
			return err
		}
		if out != nil {
			out.Add(float64(len(recs)))
		}
		return nil
	}
}
