package elasticsearch

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
)

// nodeURL returns the URL of the real OpenSearch node (internal/testenv:
// skipped locally without one, fatal under CI=true).
func nodeURL(tb testing.TB) string {
	tb.Helper()
	return testenv.OpenSearch(tb)
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// testConfig returns a config for the node at addr with index names unique
// to this test, and deletes those indices and templates when it ends.
func testConfig(tb testing.TB, addr string) Config {
	tb.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	base := "twtest-" + strings.Trim(nonName.ReplaceAllString(strings.ToLower(tb.Name()), "-"), "-")
	if len(base) > 60 {
		base = base[:60]
	}
	base += "-" + hex.EncodeToString(rnd[:])
	cfg := DefaultConfig()
	cfg.Addresses = []string{addr}
	cfg.Flavor = FlavorOpenSearch
	cfg.EventsIndex = base + "-ev"
	cfg.AlertsIndex = base + "-al"
	cfg.FlushInterval = time.Hour // only explicit flushes, so tests are deterministic
	cfg.RequestTimeout = 20 * time.Second
	tb.Cleanup(func() { cleanupIndices(tb, nodeURL(tb), base) })
	return cfg
}

func cleanupIndices(tb testing.TB, addr, base string) {
	for _, path := range []string{
		"/" + base + "-*?expand_wildcards=all&ignore_unavailable=true",
		"/_index_template/" + base + "-ev",
		"/_index_template/" + base + "-al",
	} {
		req, _ := http.NewRequest(http.MethodDelete, addr+path, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
		} else {
			tb.Logf("cleanup %s: %v", path, err)
		}
	}
}

// nodeDo sends a request straight to the node (not through the indexer)
// and decodes the JSON answer into out.
func nodeDo(tb testing.TB, method, url string, out any) int {
	tb.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer func() { _ = res.Body.Close() }()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			tb.Fatalf("%s %s: decode: %v", method, url, err)
		}
	}
	return res.StatusCode
}

// count refreshes index (a name or pattern) and returns its document count.
func count(tb testing.TB, addr, index string) int {
	tb.Helper()
	nodeDo(tb, http.MethodPost, addr+"/"+index+"/_refresh", nil)
	var c struct {
		Count int `json:"count"`
	}
	if s := nodeDo(tb, http.MethodGet, addr+"/"+index+"/_count", &c); s != http.StatusOK {
		tb.Fatalf("count %s: status %d", index, s)
	}
	return c.Count
}

// exists reports whether a document with id is in index.
func exists(tb testing.TB, addr, index, id string) bool {
	tb.Helper()
	return nodeDo(tb, http.MethodHead, addr+"/"+index+"/_doc/"+id, nil) == http.StatusOK
}

// makeDocs builds n event documents dated day, ids prefixed by prefix.
func makeDocs(tb testing.TB, prefix string, n int, day time.Time) []outputs.Document {
	tb.Helper()
	docs := make([]outputs.Document, n)
	for i := range docs {
		ev := schema.Event{
			Timestamp: day.Add(time.Duration(i) * time.Second),
			Event:     schema.EventMeta{ID: fmt.Sprintf("%s-%d", prefix, i), Kind: "event", Outcome: "success"},
			Source:    schema.Endpoint{IP: "203.0.113.9", Geo: schema.Geo{Location: schema.GeoPoint{Lat: 48.85, Lon: 2.35}}},
			UserAgent: schema.UserAgent{Original: "curl/8.5.0"},
			URL:       schema.URL{Original: "/api/v1/items?page=2", Path: "/api/v1/items"},
			HTTP:      schema.HTTP{Request: schema.HTTPRequest{Method: "GET"}, Response: schema.HTTPResponse{StatusCode: 200}},
		}
		body, err := json.Marshal(ev)
		if err != nil {
			tb.Fatal(err)
		}
		docs[i] = outputs.Document{Kind: outputs.KindEvents, ID: ev.Event.ID, Body: body}
	}
	return docs
}

// accounted asserts the no-loss invariant of Write: every document is
// either stored in the index or named by the returned BatchError, and it
// returns the indexes of the retryable ones.
func accounted(tb testing.TB, addr, index string, docs []outputs.Document, err error) []int {
	tb.Helper()
	failed := map[int]outputs.ItemError{}
	if err != nil {
		var be *outputs.BatchError
		if !errors.As(err, &be) {
			tb.Fatalf("Write error is %T (%v), want *outputs.BatchError", err, err)
		}
		for _, it := range be.Items {
			failed[it.Index] = it
		}
	}
	nodeDo(tb, http.MethodPost, addr+"/"+index+"/_refresh", nil)
	var retry []int
	for i, d := range docs {
		if it, ok := failed[i]; ok {
			if it.Retryable {
				retry = append(retry, i)
			}
			continue
		}
		if !exists(tb, addr, index, d.ID) {
			tb.Errorf("doc %d (%s) neither stored nor reported failed: silently lost", i, d.ID)
		}
	}
	return retry
}
