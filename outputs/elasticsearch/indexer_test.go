package elasticsearch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/outputs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of http.DefaultClient used by the
		// test helpers to query the node directly.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func newIndexer(t *testing.T, cfg Config) *Indexer {
	t.Helper()
	ix, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ix.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ix
}

func TestWriteIndexesAndDedupes(t *testing.T) {
	addr := nodeURL(t)
	day1 := time.Date(2024, 5, 1, 23, 59, 0, 0, time.UTC)
	day2 := time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		suffix string
		// indices maps an index name suffix to the documents expected there.
		indices map[string]int
	}{
		{name: "single index", suffix: ModeSingle, indices: map[string]int{"": 7}},
		{name: "daily indices from @timestamp", suffix: ModeDaily, indices: map[string]int{"-2024.05.01": 4, "-2024.05.02": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, addr)
			cfg.Mode = tt.suffix
			ix := newIndexer(t, cfg)
			if err := ix.EnsureIndices(t.Context()); err != nil {
				t.Fatal(err)
			}
			// Twice: the second run proves EnsureIndices idempotent.
			if err := ix.EnsureIndices(t.Context()); err != nil {
				t.Fatalf("second EnsureIndices: %v", err)
			}
			// Day 1's four docs run 23:59:00..23:59:03, all on day 1.
			docs := append(makeDocs(t, "a", 4, day1), makeDocs(t, "b", 3, day2)...)
			if err := ix.Write(t.Context(), docs); err != nil {
				t.Fatalf("first Write: %v", err)
			}
			// A re-delivery of the whole batch plus the same doc twice in
			// one batch: create answers 409, which is success.
			again := append(append([]outputs.Document{}, docs...), docs[0])
			if err := ix.Write(t.Context(), again); err != nil {
				t.Fatalf("re-delivered Write: %v", err)
			}
			for sfx, want := range tt.indices {
				if got := count(t, addr, cfg.EventsIndex+sfx); got != want {
					t.Errorf("%s: %d docs, want %d", cfg.EventsIndex+sfx, got, want)
				}
			}
		})
	}
}

func TestWriteAlertsIndex(t *testing.T) {
	addr := nodeURL(t)
	cfg := testConfig(t, addr)
	ix := newIndexer(t, cfg)
	doc := outputs.Document{Kind: outputs.KindAlerts, ID: "alert-1",
		Body: []byte(`{"@timestamp":"2024-05-01T10:00:00Z","rule":{"id":"auth-bruteforce","name":"Brute force"},"trailwatch":{"severity":"high","count":12}}`)}
	if err := ix.Write(t.Context(), []outputs.Document{doc}); err != nil {
		t.Fatal(err)
	}
	if got := count(t, addr, cfg.AlertsIndex); got != 1 {
		t.Errorf("alerts index has %d docs, want 1", got)
	}
}

func TestWritePermanentFailures(t *testing.T) {
	addr := nodeURL(t)
	cfg := testConfig(t, addr)
	ix := newIndexer(t, cfg)
	if err := ix.EnsureIndices(t.Context()); err != nil {
		t.Fatal(err)
	}
	good := makeDocs(t, "ok", 2, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	docs := []outputs.Document{
		good[0],
		{Kind: outputs.KindEvents, ID: "bad-ip", Body: []byte(`{"@timestamp":"2024-05-01T00:00:00Z","source":{"ip":"not-an-ip"}}`)},
		{Kind: "metrics", ID: "bad-kind", Body: []byte(`{}`)},
		{Kind: outputs.KindEvents, ID: "", Body: []byte(`{}`)},
		good[1],
	}
	err := ix.Write(t.Context(), docs)
	var be *outputs.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write error %v, want *outputs.BatchError", err)
	}
	want := []struct {
		index  int
		reason string
	}{
		{1, "mapper_parsing_exception"},
		{2, `unknown document kind "metrics"`},
		{3, "no id"},
	}
	if len(be.Items) != len(want) {
		t.Fatalf("BatchError has %d items (%v), want %d", len(be.Items), be.Items, len(want))
	}
	for i, w := range want {
		it := be.Items[i]
		if it.Index != w.index || it.Retryable || !strings.Contains(it.Reason, w.reason) {
			t.Errorf("item %d = %+v, want index %d permanent with reason containing %q", i, it, w.index, w.reason)
		}
	}
	if len(be.Retryable()) != 0 {
		t.Errorf("Retryable() = %v, want none", be.Retryable())
	}
	accounted(t, addr, cfg.EventsIndex, docs, err)
}

func TestWriteUnreachableIsRetryable(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	_ = l.Close()

	cfg := DefaultConfig()
	cfg.Addresses = []string{addr}
	cfg.Flavor = FlavorOpenSearch
	cfg.FlushInterval = time.Hour
	cfg.MaxRetries = 1
	ix := newIndexer(t, cfg)
	docs := makeDocs(t, "down", 25, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	err = ix.Write(t.Context(), docs)
	var be *outputs.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write error %v, want *outputs.BatchError", err)
	}
	if got := be.Retryable(); len(got) != len(docs) {
		t.Fatalf("%d retryable items, want all %d: %v", len(got), len(docs), be.Items)
	}
	for i, it := range be.Items {
		if it.Index != i || it.Reason == "" {
			t.Errorf("item %d = %+v, want index %d with a reason", i, it, i)
		}
	}
}

// faultProxy is a reverse proxy in front of the real node that answers the
// bulk requests whose 1-based number is in fail with that status instead of
// forwarding them.
type faultProxy struct {
	bulks atomic.Int64
	fail  map[int64]int
}

func (p *faultProxy) start(t *testing.T, node string) string {
	t.Helper()
	target, err := url.Parse(node)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_bulk") {
			n := p.bulks.Add(1)
			if status, ok := p.fail[n]; ok {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"error":{"type":"injected_fault","reason":"fault proxy"},"status":%d}`, status)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestWriteFaultsAreRetryableAndNothingIsLost(t *testing.T) {
	node := nodeURL(t)
	tests := []struct {
		name    string
		workers int
		fail    map[int64]int
		// allFail: every doc of the first Write must come back retryable.
		allFail bool
	}{
		{name: "429 on the first bulk request", workers: 1, fail: map[int64]int{1: http.StatusTooManyRequests}, allFail: true},
		{name: "500 on the first bulk request", workers: 1, fail: map[int64]int{1: http.StatusInternalServerError}, allFail: true},
		{name: "500 on one of two concurrent bulk requests", workers: 2, fail: map[int64]int{1: http.StatusInternalServerError}},
		{name: "413 on the first bulk request", workers: 1, fail: map[int64]int{1: http.StatusRequestEntityTooLarge}, allFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := &faultProxy{fail: tt.fail}
			cfg := testConfig(t, node)
			cfg.Addresses = []string{proxy.start(t, node)}
			cfg.Workers = tt.workers
			ix := newIndexer(t, cfg)
			docs := makeDocs(t, "f", 40, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))

			err := ix.Write(t.Context(), docs)
			if err == nil {
				t.Fatal("first Write succeeded through an injected fault")
			}
			retry := accounted(t, node, cfg.EventsIndex, docs, err)
			var be *outputs.BatchError
			errors.As(err, &be)
			if len(retry) != len(be.Items) || len(retry) == 0 {
				t.Fatalf("%d of %d failed items retryable, want all (and at least one): %v", len(retry), len(be.Items), be.Items)
			}
			if tt.allFail && len(retry) != len(docs) {
				t.Fatalf("%d retryable, want all %d", len(retry), len(docs))
			}
			t.Logf("%d of %d docs came back retryable", len(retry), len(docs))
			// The caller's retry: only the retryable docs go again.
			var again []outputs.Document
			for _, i := range retry {
				again = append(again, docs[i])
			}
			if err := ix.Write(t.Context(), again); err != nil {
				t.Fatalf("retry Write: %v", err)
			}
			if got := count(t, node, cfg.EventsIndex); got != len(docs) {
				t.Errorf("index has %d docs after retry, want %d", got, len(docs))
			}
		})
	}
}

func TestElasticsearchFlavorRefusesOpenSearch(t *testing.T) {
	node := nodeURL(t)
	var root struct {
		Version struct {
			Distribution string `json:"distribution"`
		} `json:"version"`
	}
	nodeDo(t, http.MethodGet, node+"/", &root)
	if root.Version.Distribution != "opensearch" {
		testenv.Missing(t, "the test node is not OpenSearch (%q)", root.Version.Distribution)
	}
	cfg := testConfig(t, node)
	cfg.Flavor = FlavorElasticsearch
	ix := newIndexer(t, cfg)
	err := ix.Write(t.Context(), makeDocs(t, "p", 3, time.Now()))
	var be *outputs.BatchError
	if !errors.As(err, &be) || len(be.Retryable()) != 3 || !strings.Contains(be.Items[0].Reason, "not Elasticsearch") {
		t.Fatalf("Write = %v, want 3 retryable items naming the product check", err)
	}
}

func TestCloseIsIdempotentAndRefusesWrites(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addresses = []string{"http://127.0.0.1:1"}
	ix, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := ix.Close(t.Context()); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if err := ix.Write(t.Context(), makeDocs(t, "c", 1, time.Now())); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
}

func BenchmarkIndex(b *testing.B) {
	node := nodeURL(b)
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("%d docs per Write", n), func(b *testing.B) {
			cfg := testConfig(b, node)
			ix, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = ix.Close(b.Context()) }()
			b.ReportAllocs()
			round := 0
			for b.Loop() {
				b.StopTimer()
				docs := makeDocs(b, fmt.Sprintf("bench-%d", round), n, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
				round++
				b.StartTimer()
				if err := ix.Write(b.Context(), docs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(round*n)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}
