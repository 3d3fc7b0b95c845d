package stages

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/outputs/elasticsearch"
)

func TestIndexHandleStoresAndDeadLettersLikeBefore(t *testing.T) {
	node := testenv.OpenSearch(t)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	base := "twtest-index-handle-" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() { deleteIndices(t, node, base) })
	cfg := elasticsearch.DefaultConfig()
	cfg.Addresses = []string{node}
	cfg.Flavor = elasticsearch.FlavorOpenSearch
	cfg.EventsIndex, cfg.AlertsIndex = base+"-ev", base+"-al"
	w, err := elasticsearch.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(t.Context()) })
	if err := w.EnsureIndices(t.Context()); err != nil {
		t.Fatal(err)
	}
	h := NewIndex("enriched", "alerts", "dlq", w, nil, nil)

	recs := enrichedRecords("enriched", "h", 4)
	bad := []struct {
		value  string
		reason string
	}{
		{`{"@timestamp":"2026-11-25T10:00:00Z","event":{"id":"x"}`, "decode document: unexpected end of JSON input"},
		{`{"@timestamp":"2026-11-25T10:00:00Z","event":{"kind":"event"}}`, "document has no event.id"},
		{`{"@timestamp":"yesterday","event":{"id":"bad-ts"}}`, `decode document: parsing time "yesterday"`},
		{`{"@timestamp":"2026-11-25T10:00:00Z","event":{"id":"bad-ip"},"source":{"ip":"not-an-ip"}}`, "mapper_parsing_exception"},
	}
	for _, b := range bad {
		recs = append(recs, &kgo.Record{Topic: "enriched", Value: []byte(b.value)})
	}
	alert := `{"@timestamp":"2026-11-25T10:00:00.5+01:00","event":{"id":"alert-1","kind":"alert"},"rule":{"id":"r","name":"R"},"trailwatch":{"severity":"high","count":10}}`
	recs = append(recs, &kgo.Record{Topic: "alerts", Value: []byte(alert)})

	// Twice: the second Handle is a replay, stored documents answer 409
	// and count as stored, and the same records are dead-lettered again.
	for round := range 2 {
		out, err := h.Handle(t.Context(), recs)
		if err != nil {
			t.Fatalf("round %d: Handle: %v", round, err)
		}
		if len(out) != len(bad) {
			t.Fatalf("round %d: %d DLQ records, want %d", round, len(out), len(bad))
		}
		for i, r := range out {
			if r.Topic != "dlq" || string(r.Value) != bad[i].value || !strings.Contains(Header(r, HeaderDLQReason), bad[i].reason) {
				t.Errorf("round %d: DLQ record %d = %s %q reason %q, want reason containing %q", round, i, r.Topic, r.Value, Header(r, HeaderDLQReason), bad[i].reason)
			}
		}
	}
	for _, tc := range []struct {
		index, id string
	}{
		{cfg.EventsIndex, "h-00000000000000000000000000000000"},
		{cfg.EventsIndex, "h-00000000000000000000000000000003"},
		{cfg.AlertsIndex, "alert-1"},
	} {
		res, err := http.Head(node + "/" + tc.index + "/_doc/" + tc.id)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s/%s: status %d, want the document stored under its event.id", tc.index, tc.id, res.StatusCode)
		}
	}
}

// deleteIndices removes the test's indices (base-*).
func deleteIndices(tb testing.TB, node, base string) {
	req, _ := http.NewRequest(http.MethodDelete, node+"/"+base+"-*?expand_wildcards=all&ignore_unavailable=true", nil)
	if res, err := http.DefaultClient.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
	} else {
		tb.Logf("cleanup %s: %v", base, err)
	}
}
