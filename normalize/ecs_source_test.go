package normalize_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
)

var _ normalize.Normalizer = (*normalize.ECS)(nil)

func TestECSGolden(t *testing.T) {
	cloudGolden(t, "ecs", normalize.NewECS(), "*.ndjson", false)
}

func TestECS(t *testing.T) {
	n := normalize.NewECS()
	rec := &ingest.Record{Data: []byte(`{"@timestamp":"2025-03-18T23:14:33+02:00","event":{"id":"keep-me","category":"web","type":"access"},"related":{"ip":"192.0.2.1"},"tags":"t1","source":{"ip":"192.0.2.1"}}`), Origin: "o", Offset: 5, Collector: "kafka"}
	evs, err := n.Normalize(nil, rec)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Normalize: %d, %v", len(evs), err)
	}
	ev := &evs[0]
	eq(t, "@timestamp", ev.Timestamp, time.Date(2025, 3, 18, 21, 14, 33, 0, time.UTC))
	eq(t, "event.id", ev.Event.ID, "keep-me")
	eq(t, "event.category", ev.Event.Category, []string{"web"})
	eq(t, "event.type", ev.Event.Type, []string{"access"})
	eq(t, "related.ip", ev.Related.IP, []string{"192.0.2.1"})
	eq(t, "tags", ev.Tags, []string{"t1"})
	eq(t, "trailwatch.source", ev.Trailwatch.Source, "ecs")
	eq(t, "trailwatch.raw.offset", ev.Trailwatch.Raw.Offset, int64(5))
	eq(t, "trailwatch.actor", ev.Trailwatch.Actor, "ip:192.0.2.1")

	rec.Data = []byte(`{"@timestamp":"2025-03-18T21:14:33Z"}`)
	evs, err = n.Normalize(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "event.id when missing", evs[0].Event.ID, rec.ID())
}

func TestECSErrors(t *testing.T) {
	tests := []struct{ name, line, wantErr string }{
		{"missing timestamp", `{"source":{"ip":"1.2.3.4"}}`, "ecs: @timestamp: missing"},
		{"bad timestamp", `{"@timestamp":"yesterday"}`, `ecs: @timestamp: invalid time "yesterday"`},
		{"bad ip", `{"@timestamp":"2025-03-18T21:14:34Z","client":{"ip":"x"}}`, `ecs: client.ip: invalid IP address "x"`},
		{"type mismatch", `{"@timestamp":"2025-03-18T21:14:34Z","source":{"port":"443"}}`, "ecs: field source.port: cannot use JSON string as int"},
		{"nested type mismatch", `{"@timestamp":"2025-03-18T21:14:34Z","http":{"response":{"status_code":true}}}`, "ecs: field http.response.status_code: cannot use JSON bool as int"},
		{"bad outcome", `{"@timestamp":"2025-03-18T21:14:34Z","event":{"outcome":"ok"}}`, `ecs: event.outcome: "ok" is not success, failure or unknown`},
		{"port range", `{"@timestamp":"2025-03-18T21:14:34Z","destination":{"port":70000}}`, "ecs: destination.port: 70000 out of range"},
		{"year", `{"@timestamp":"2025-03-18T21:14:34Z","event":{"created":"0000-01-01T00:00:00Z"}}`, "ecs: event.created: year 0 out of range"},
	}
	n := normalize.NewECS()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := n.Normalize(nil, &ingest.Record{Data: []byte(tt.line)})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestECSHostile(t *testing.T) {
	cloudHostileTest(t, "ecs", normalize.NewECS())
}

func FuzzECS(f *testing.F) {
	cloudFuzz(f, "ecs", normalize.NewECS(), cloudSeeds(f, "ecs", "*.ndjson", false))
}

func BenchmarkECS(b *testing.B) {
	n := normalize.NewECS()
	cloudBench(b, n, cloudGoodRecords(b, n, cloudRecords(b, "ecs", "testdata/ecs/events.ndjson", false)), "events")
}
