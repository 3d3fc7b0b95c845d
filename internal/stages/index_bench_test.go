package stages

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs/elasticsearch"
)

// enrichedDoc returns the document the detect stage writes to the enriched
// topic for the i-th request of a web session: an nginx access event with
// geo, AS, session and first-seen enrichment, encoded by
// normalize.AppendEvent (~1.2 KB, the size the soak harness indexes).
func enrichedDoc(prefix string, i int) []byte {
	ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	ip := fmt.Sprintf("198.51.%d.%d", i%251, i%241)
	geo := schema.Geo{CountryISOCode: "FR", CountryName: "France", CityName: "Paris", Location: schema.GeoPoint{Lat: 48.8534, Lon: 2.3488}}
	as := schema.AS{Number: 64500 + int64(i%7), Organization: schema.ASOrganization{Name: "Example Transit SAS"}}
	ev := schema.Event{
		Timestamp: ts,
		Event: schema.EventMeta{ID: fmt.Sprintf("%s-%032x", prefix, i), Kind: "event", Category: []string{"web"}, Type: []string{"access"},
			Outcome: "success", Dataset: "nginx.access", Module: "nginx", Ingested: ts.Add(40 * time.Millisecond)},
		Source:    schema.Endpoint{IP: ip, Address: ip, Geo: geo, AS: as},
		User:      schema.User{Name: "svc-billing"},
		UserAgent: schema.UserAgent{Original: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0", Name: "Chrome", Version: "124.0", OS: schema.UserAgentOS{Name: "Linux"}},
		HTTP: schema.HTTP{Version: "1.1", Request: schema.HTTPRequest{Method: "GET", Referrer: "https://shop.example.com/cart"},
			Response: schema.HTTPResponse{StatusCode: 200, Body: schema.HTTPBody{Bytes: 2326}}},
		URL:     schema.URL{Original: fmt.Sprintf("/api/v1/items/%d?page=2", i), Path: fmt.Sprintf("/api/v1/items/%d", i), Query: "page=2"},
		Related: schema.Related{IP: []string{ip}, User: []string{"svc-billing"}},
		Trailwatch: schema.Trailwatch{
			Actor: "user:svc-billing", Source: "nginx",
			Raw:     schema.RawRef{Origin: "/var/log/nginx/access.log", Offset: int64(i) * 211, Collector: "file"},
			Session: schema.Session{ID: fmt.Sprintf("s-%016x", i/50), Start: ts.Add(-time.Minute), Requests: int64(i%50 + 1), Bytes: int64(i%50+1) * 2326},
			Signals: schema.Signals{FirstSeen: schema.FirstSeen{IP: i%50 == 0}, DistinctIPs: 1},
		},
	}
	return normalize.AppendEvent(nil, &ev)
}

// enrichedRecords returns n enriched-topic records with ids unique to prefix.
func enrichedRecords(topic, prefix string, n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Value: enrichedDoc(prefix, i), Offset: int64(i)}
	}
	return recs
}

func BenchmarkIndexDocHead(b *testing.B) {
	doc := enrichedDoc("bench", 7)
	b.Logf("document: %d bytes", len(doc))
	b.Run("readDocHead", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if _, _, err := readDocHead(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if _, _, err := decodeDocHead(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIndexHandle runs the index stage's Handle with the real
// Elasticsearch writer against the OpenSearch node of scripts/services.sh,
// 1000 enriched documents per call (the soak harness's batch). ns/doc is
// wall time, which includes the node's work on the same cores; cpu-ns/doc
// is this process's CPU (user+system) during Handle; with
// TW_BENCH_OPENSEARCH_PID set to the node's pid, node-cpu-ns/doc is the
// node's (from /proc, 10 ms ticks; other users of the node count too).
func BenchmarkIndexHandle(b *testing.B) {
	node := testenv.OpenSearch(b)
	const n = 1000
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	base := "twbench-index-handle-" + hex.EncodeToString(rnd[:])
	cfg := elasticsearch.DefaultConfig()
	cfg.Addresses = []string{node}
	cfg.Flavor = elasticsearch.FlavorOpenSearch
	cfg.EventsIndex, cfg.AlertsIndex = base+"-ev", base+"-al"
	b.Cleanup(func() { deleteIndices(b, node, base) })
	w, err := elasticsearch.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = w.Close(b.Context()) }()
	if err := w.EnsureIndices(b.Context()); err != nil {
		b.Fatal(err)
	}
	h := NewIndex("enriched", "alerts", "dlq", w, nil, nil)
	// Warm the index (mapping, first segment) outside the measurement.
	if out, err := h.Handle(b.Context(), enrichedRecords("enriched", "warm", n)); err != nil || len(out) != 0 {
		b.Fatalf("warm-up Handle = %d DLQ records, %v", len(out), err)
	}
	b.ReportAllocs()
	round := 0
	var cpu, nodeCPUTotal time.Duration
	for b.Loop() {
		b.StopTimer()
		recs := enrichedRecords("enriched", fmt.Sprintf("r%d", round), n)
		round++
		c0, n0 := processCPU(), nodeCPU(b)
		b.StartTimer()
		out, err := h.Handle(b.Context(), recs)
		b.StopTimer()
		cpu += processCPU() - c0
		nodeCPUTotal += nodeCPU(b) - n0
		b.StartTimer()
		if err != nil || len(out) != 0 {
			b.Fatalf("Handle = %d DLQ records, %v", len(out), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(round*n), "ns/doc")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(round*n), "cpu-ns/doc")
	if os.Getenv("TW_BENCH_OPENSEARCH_PID") != "" {
		b.ReportMetric(float64(nodeCPUTotal.Nanoseconds())/float64(round*n), "node-cpu-ns/doc")
	}
	b.ReportMetric(float64(round*n)/b.Elapsed().Seconds(), "docs/s")
}

// nodeCPU is the user+system CPU time of the process TW_BENCH_OPENSEARCH_PID
// names (0 when unset), from /proc/<pid>/stat in clock ticks of 10 ms.
func nodeCPU(b *testing.B) time.Duration {
	pid := os.Getenv("TW_BENCH_OPENSEARCH_PID")
	if pid == "" {
		return 0
	}
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		b.Fatalf("TW_BENCH_OPENSEARCH_PID: %v", err)
	}
	// Fields after the parenthesised command: state is field 3, utime 14,
	// stime 15.
	rest := stat[bytes.LastIndexByte(stat, ')')+2:]
	f := strings.Fields(string(rest))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// processCPU is this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
