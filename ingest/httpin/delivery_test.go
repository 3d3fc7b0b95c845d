package httpin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

// blockingEmit parks every call until release is closed or its context
// ends, reporting each call on entered.
type blockingEmit struct {
	entered chan []ingest.Record
	release chan struct{}
}

func newBlockingEmit() *blockingEmit {
	return &blockingEmit{entered: make(chan []ingest.Record, 16), release: make(chan struct{})}
}

func (b *blockingEmit) emit(ctx context.Context, recs []ingest.Record) error {
	b.entered <- recs
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func TestAckTimeoutIs429(t *testing.T) {
	cfg := testConfig()
	cfg.AckTimeout = 50 * time.Millisecond // the timeout under test, not a synchronisation
	cfg.RetryAfter = 1500 * time.Millisecond
	b := newBlockingEmit()
	srv := start(t, cfg, b.emit, nil)
	resp := srv.post(t, request{path: "/kong", contentType: "application/x-ndjson", body: []byte("{\"a\":1}\n")})
	if resp.status != http.StatusTooManyRequests {
		t.Fatalf("status %d (%s), want 429", resp.status, resp.body)
	}
	if got := resp.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want \"2\" (1.5s rounded up)", got)
	}
	if len(b.entered) != 1 {
		t.Errorf("emit called %d times, want 1", len(b.entered))
	}
	if st := srv.c.Stats(); st.Throttled != 1 || st.Accepted != 0 || st.Records != 0 {
		t.Errorf("Stats = %+v, want 1 throttled, nothing accepted", st)
	}
}

func TestInFlightLimitIs429(t *testing.T) {
	cfg := testConfig()
	cfg.MaxInFlight = 1
	b := newBlockingEmit()
	srv := start(t, cfg, b.emit, nil)
	first := make(chan response, 1)
	go func() {
		resp, err := srv.do(context.Background(), request{path: "/kong", contentType: "application/json", body: []byte(`{"a":1}`)})
		if err != nil {
			t.Error(err)
		}
		first <- resp
	}()
	<-b.entered // the first request holds the only slot, waiting for Kafka
	resp := srv.post(t, request{path: "/kong", contentType: "application/json", body: []byte(`{"b":2}`)})
	if resp.status != http.StatusTooManyRequests || resp.header.Get("Retry-After") != "2" {
		t.Errorf("second request: status %d Retry-After %q, want 429 and 2", resp.status, resp.header.Get("Retry-After"))
	}
	close(b.release)
	if r := <-first; r.status != http.StatusOK {
		t.Errorf("first request: status %d, want 200", r.status)
	}
	// The slot is free again.
	if r := srv.post(t, request{path: "/kong", contentType: "application/json", body: []byte(`{"c":3}`)}); r.status != http.StatusOK {
		t.Errorf("third request: status %d, want 200", r.status)
	}
}

func TestEmitErrorIs503(t *testing.T) {
	emit := func(context.Context, []ingest.Record) error { return errors.New("NOT_ENOUGH_REPLICAS") }
	srv := start(t, testConfig(), emit, nil)
	resp := srv.post(t, request{path: "/kong", contentType: "application/json", body: []byte(`{"a":1}`)})
	if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q, want 503 with Retry-After", resp.status, resp.header.Get("Retry-After"))
	}
	if strings.Contains(resp.body, "NOT_ENOUGH_REPLICAS") {
		t.Errorf("response leaks the Kafka error: %s", resp.body)
	}
	if st := srv.c.Stats(); st.EmitErrors != 1 {
		t.Errorf("Stats.EmitErrors = %d, want 1", st.EmitErrors)
	}
}

// TestAnswerOnlyAfterEmit checks the ack ordering: no response while emit
// is running, and the 200 is observed only after emit returned.
func TestAnswerOnlyAfterEmit(t *testing.T) {
	var (
		mu     sync.Mutex
		events []string
	)
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	entered, release := make(chan struct{}), make(chan struct{})
	emit := func(ctx context.Context, _ []ingest.Record) error {
		close(entered)
		<-release
		record("emit returned")
		return nil
	}
	srv := start(t, testConfig(), emit, nil)
	done := make(chan response, 1)
	go func() {
		resp, err := srv.do(context.Background(), request{path: "/kong", contentType: "application/json", body: []byte(`{"a":1}`)})
		if err != nil {
			t.Error(err)
		}
		record("response")
		done <- resp
	}()
	<-entered
	select {
	case r := <-done:
		t.Fatalf("response %d arrived while emit was still running", r.status)
	default:
	}
	close(release)
	if r := <-done; r.status != http.StatusOK {
		t.Fatalf("status %d, want 200", r.status)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"emit returned", "response"}; !slices.Equal(events, want) {
		t.Errorf("events %q, want %q", events, want)
	}
}

// TestRetriesHaveIdenticalIDs: a shipper resending a body after a 429 or a
// lost response, compressed or not, produces the ids already stored.
func TestRetriesHaveIdenticalIDs(t *testing.T) {
	var s sink
	srv := start(t, testConfig(), s.emit, nil)
	body := []byte("{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n")
	ids := func(from int) []string {
		var out []string
		for _, r := range s.records()[from:] {
			out = append(out, r.ID())
		}
		return out
	}
	posts := []struct {
		name string
		req  request
	}{
		{"first", request{path: "/kong", contentType: "application/x-ndjson", body: body}},
		{"retry", request{path: "/kong", contentType: "application/x-ndjson", body: body}},
		{"retry gzipped", request{path: "/kong", contentType: "application/x-ndjson", encoding: "gzip", body: gzipped(t, body)}},
		{"other route", request{path: "/ingest", contentType: "application/x-ndjson", body: body}},
		{"other body", request{path: "/kong", contentType: "application/x-ndjson", body: []byte("{\"a\":1}\n{\"a\":2}\n{\"a\":4}\n")}},
	}
	var got [][]string
	for _, p := range posts {
		n := len(s.records())
		if r := srv.post(t, p.req); r.status != http.StatusOK {
			t.Fatalf("%s: status %d", p.name, r.status)
		}
		got = append(got, ids(n))
	}
	if !slices.Equal(got[0], got[1]) || !slices.Equal(got[0], got[2]) {
		t.Errorf("retried bodies got other ids:\n%q\n%q\n%q", got[0], got[1], got[2])
	}
	if len(slices.Compact(slices.Sorted(slices.Values(got[0])))) != 3 {
		t.Errorf("records of one body share an id: %q", got[0])
	}
	for _, i := range []int{3, 4} {
		for _, id := range got[i] {
			if slices.Contains(got[0], id) {
				t.Errorf("%s: id %s collides with the first body's", posts[i].name, id)
			}
		}
	}
}

func TestConcurrentRequests(t *testing.T) {
	const clients, perClient, lines = 16, 25, 10
	var s sink
	cfg := testConfig()
	cfg.MaxInFlight = clients
	srv := start(t, cfg, s.emit, nil)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for r := range perClient {
				var sb strings.Builder
				for l := range lines {
					fmt.Fprintf(&sb, `{"client":%d,"req":%d,"line":%d}`+"\n", c, r, l)
				}
				resp, err := srv.do(t.Context(), request{path: "/kong", contentType: "application/x-ndjson", body: []byte(sb.String())})
				if err != nil || resp.status != http.StatusOK {
					t.Errorf("client %d request %d: %v %d %s", c, r, err, resp.status, resp.body)
					return
				}
			}
		})
	}
	wg.Wait()
	recs := s.records()
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.ID()] = true
	}
	if want := clients * perClient * lines; len(recs) != want || len(ids) != want {
		t.Errorf("%d records with %d distinct ids, want %d of each", len(recs), len(ids), want)
	}
	if st := srv.c.Stats(); st.Accepted != clients*perClient {
		t.Errorf("Stats.Accepted = %d, want %d", st.Accepted, clients*perClient)
	}
}

// TestShutdownCancelsStuckEmit: Run returns once the shutdown budget is
// spent even though Kafka never acknowledges, and the stuck request is not
// answered 200.
func TestShutdownCancelsStuckEmit(t *testing.T) {
	cfg := testConfig()
	cfg.ShutdownTimeout = 50 * time.Millisecond
	b := newBlockingEmit()
	srv := start(t, cfg, b.emit, nil)
	done := make(chan response, 1)
	go func() {
		resp, _ := srv.do(context.Background(), request{path: "/kong", contentType: "application/json", body: []byte(`{"a":1}`)})
		done <- resp
	}()
	<-b.entered
	srv.stop() // returns only after Run returned nil
	if r := <-done; r.status == http.StatusOK {
		t.Error("a request whose emit never returned was answered 200")
	}
}

func TestRunTwice(t *testing.T) {
	var s sink
	srv := start(t, testConfig(), s.emit, nil)
	if err := srv.c.Run(t.Context(), s.emit); err == nil {
		t.Error("second Run returned nil, want an error")
	}
}
