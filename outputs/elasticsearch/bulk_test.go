package elasticsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/outputs"
)

func TestAppendItem(t *testing.T) {
	ts := time.Date(2024, 5, 1, 23, 30, 0, 0, time.FixedZone("X", -3600)) // 2024-05-02 in UTC
	tests := []struct {
		name    string
		mode    string
		doc     outputs.Document
		want    string // the two bulk lines; "" when wantErr
		wantErr string
	}{
		{name: "single index", mode: ModeSingle,
			doc:  outputs.Document{Kind: outputs.KindEvents, ID: "e1", Body: []byte(`{"a":1}`)},
			want: `{"create":{"_id":"e1","_index":"tw-ev"}}` + "\n" + `{"a":1}` + "\n"},
		{name: "alerts index", mode: ModeDataStream,
			doc:  outputs.Document{Kind: outputs.KindAlerts, ID: "a1", Body: []byte(`{"a":1}`)},
			want: `{"create":{"_id":"a1","_index":"tw-al"}}` + "\n" + `{"a":1}` + "\n"},
		{name: "daily index from Timestamp in UTC", mode: ModeDaily,
			doc:  outputs.Document{Kind: outputs.KindEvents, ID: "e1", Timestamp: ts, Body: []byte(`{"a":1}`)},
			want: `{"create":{"_id":"e1","_index":"tw-ev-2024.05.02"}}` + "\n" + `{"a":1}` + "\n"},
		{name: "daily index from the body", mode: ModeDaily,
			doc:  outputs.Document{Kind: outputs.KindEvents, ID: "e1", Body: []byte(`{"@timestamp":"0987-12-31T23:59:59Z"}`)},
			want: `{"create":{"_id":"e1","_index":"tw-ev-0987.12.31"}}` + "\n" + `{"@timestamp":"0987-12-31T23:59:59Z"}` + "\n"},
		{name: "id escaped", mode: ModeSingle,
			doc:  outputs.Document{Kind: outputs.KindEvents, ID: "x\"y\n", Body: []byte(`{}`)},
			want: `{"create":{"_id":"x\"y\n","_index":"tw-ev"}}` + "\n" + `{}` + "\n"},
		{name: "pretty-printed body compacted", mode: ModeSingle,
			doc:  outputs.Document{Kind: outputs.KindEvents, ID: "p", Body: []byte("{\n  \"a\": [1, 2],\n  \"b\": \"x y\"\n}\n")},
			want: `{"create":{"_id":"p","_index":"tw-ev"}}` + "\n" + `{"a":[1,2],"b":"x y"}` + "\n"},
		{name: "line break in invalid JSON", mode: ModeSingle,
			doc:     outputs.Document{Kind: outputs.KindEvents, ID: "bad", Body: []byte("{\"a\":\n")},
			wantErr: "not valid JSON"},
		{name: "empty body", mode: ModeSingle,
			doc:     outputs.Document{Kind: outputs.KindEvents, ID: "empty", Body: []byte(" \n")},
			wantErr: "body is empty"},
		{name: "no id", mode: ModeSingle,
			doc:     outputs.Document{Kind: outputs.KindEvents, Body: []byte(`{}`)},
			wantErr: "no id"},
		{name: "id over 512 bytes", mode: ModeSingle,
			doc:     outputs.Document{Kind: outputs.KindEvents, ID: strings.Repeat("x", MaxIDBytes+1), Body: []byte(`{}`)},
			wantErr: "over the 512"},
		{name: "unknown kind", mode: ModeSingle,
			doc:     outputs.Document{Kind: "metrics", ID: "m", Body: []byte(`{}`)},
			wantErr: `unknown document kind "metrics"`},
		{name: "daily without a timestamp", mode: ModeDaily,
			doc:     outputs.Document{Kind: outputs.KindEvents, ID: "n", Body: []byte(`{}`)},
			wantErr: "no valid @timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := &Indexer{cfg: Config{EventsIndex: "tw-ev", AlertsIndex: "tw-al", Mode: tt.mode}}
			got, err := ix.appendItem([]byte("prev\n"), tt.doc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if string(got) != "prev\n" {
					t.Fatalf("a refused item left %q in the body", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prev\n"+tt.want {
				t.Errorf("got %q\nwant %q", got, "prev\n"+tt.want)
			}
		})
	}
}

func TestBulkAllOK(t *testing.T) {
	items := func(n int, item string) string {
		return strings.TrimSuffix(strings.Repeat(item+",", n), ",")
	}
	created := `{"create":{"status":201}}`
	tests := []struct {
		name string
		resp string
		n    int
		want bool
	}{
		{name: "filtered, all created", resp: `{"errors":false,"items":[` + items(3, created) + `]}`, n: 3, want: true},
		{name: "unfiltered with took", resp: `{"took":12,"errors":false,"items":[` + items(2, `{"create":{"_index":"x","_id":"1","_version":1,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}}`) + `]}`, n: 2, want: true},
		{name: "whitespace", resp: " {\n \"took\" : 3 ,\n \"errors\" : false, \"items\":[" + created + "]}", n: 1, want: true},
		{name: "errors true", resp: `{"errors":true,"items":[` + items(2, created) + `]}`, n: 2},
		{name: "fewer items than sent", resp: `{"errors":false,"items":[` + items(2, created) + `]}`, n: 3},
		{name: "items before errors", resp: `{"items":[` + created + `],"errors":false}`, n: 1},
		{name: "not an object", resp: `[]`, n: 0},
		{name: "empty", resp: ``, n: 0},
		{name: "took not a number", resp: `{"took":"x","errors":false}`, n: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bulkAllOK([]byte(tt.resp), tt.n); got != tt.want {
				t.Errorf("bulkAllOK = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBulkItemErrors(t *testing.T) {
	resp := `{"errors":true,"items":[
		{"create":{"status":201}},
		{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"document already exists"}}},
		{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [source.ip]","caused_by":{"type":"illegal_argument_exception","reason":"'x' is not an IP string literal."}}}},
		{"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected"}}},
		{"create":{"status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}},
		{}
	]}`
	sent := []int{10, 11, 12, 13, 14, 15, 16}
	got := bulkItemErrors([]byte(resp), sent)
	want := []struct {
		index  int
		retry  bool
		reason string
	}{
		{12, false, "400 mapper_parsing_exception: failed to parse field [source.ip] (caused by illegal_argument_exception"},
		{13, true, "429 es_rejected_execution_exception"},
		{14, true, "503 unavailable_shards_exception"},
		{15, true, "no status"},
		{16, true, "no response for this document"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d failures %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if g := got[i]; g.Index != w.index || g.Retryable != w.retry || !strings.Contains(g.Reason, w.reason) {
			t.Errorf("failure %d = %+v, want index %d retryable %v reason containing %q", i, g, w.index, w.retry, w.reason)
		}
	}

	t.Run("unreadable response", func(t *testing.T) {
		got := bulkItemErrors([]byte(`{"errors":true,"items":[`), []int{3, 4})
		if len(got) != 2 || !got[0].Retryable || got[0].Index != 3 || got[1].Index != 4 || !strings.Contains(got[0].Reason, "bulk response") {
			t.Fatalf("got %+v, want both retryable naming the bulk response", got)
		}
	})
}

func TestMergeFailuresKeepsOrder(t *testing.T) {
	a := []outputs.ItemError{{Index: 1}, {Index: 4}, {Index: 5}}
	b := []outputs.ItemError{{Index: 2}, {Index: 3}, {Index: 9}}
	got := mergeFailures([]outputs.ItemError{{Index: 0}}, a, b)
	for i, it := range got {
		if want := []int{0, 1, 2, 3, 4, 5, 9}[i]; it.Index != want {
			t.Fatalf("merged %+v, not in ascending order", got)
		}
	}
}

func TestWriteSplitsRequestsAndRefusesBrokenBodies(t *testing.T) {
	addr := nodeURL(t)
	tests := []struct {
		name       string
		flushBytes int
		workers    int
	}{
		{name: "one request per worker", flushBytes: 5_000_000, workers: 2},
		{name: "several requests per worker", flushBytes: 1500, workers: 2},
		{name: "every document larger than flush_bytes", flushBytes: 10, workers: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, addr)
			cfg.FlushBytes = tt.flushBytes
			cfg.Workers = tt.workers
			ix := newIndexer(t, cfg)
			if err := ix.EnsureIndices(t.Context()); err != nil {
				t.Fatal(err)
			}
			docs := makeDocs(t, "s", 12, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
			// A pretty-printed document is stored; an empty one and broken
			// JSON with a line break are refused before sending, without
			// failing the documents around them.
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, docs[3].Body, "", "  "); err != nil {
				t.Fatal(err)
			}
			docs[3].Body = pretty.Bytes()
			docs[5].Body = nil
			docs[8].Body = []byte("{\"a\":\n")
			err := ix.Write(t.Context(), docs)
			var be *outputs.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("Write = %v, want a *outputs.BatchError", err)
			}
			if len(be.Items) != 2 || be.Items[0].Index != 5 || be.Items[1].Index != 8 || len(be.Retryable()) != 0 {
				t.Fatalf("failures %+v, want docs 5 and 8, permanent", be.Items)
			}
			accounted(t, addr, cfg.EventsIndex, docs, err)
			if got := count(t, addr, cfg.EventsIndex); got != 10 {
				t.Errorf("index has %d docs, want 10", got)
			}
		})
	}
}

func BenchmarkBulkBody(b *testing.B) {
	// The CPU of the write path without the network: building the request
	// body of 500 documents (one worker's half of a 1000-document Write)
	// and reading the node's answer.
	docs := makeDocs(b, fmt.Sprintf("%064d", 0), 500, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	ix := &Indexer{cfg: Config{EventsIndex: "trailwatch-events", AlertsIndex: "trailwatch-alerts", Mode: ModeSingle}}
	resp := []byte(`{"errors":false,"items":[` + strings.TrimSuffix(strings.Repeat(`{"create":{"status":201}},`, len(docs)), ",") + `]}`)
	sent := make([]int, len(docs))
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		var body []byte
		for b.Loop() {
			body = body[:0]
			for _, d := range docs {
				var err error
				if body, err = ix.appendItem(body, d); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(docs)), "ns/doc")
	})
	b.Run("response", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !bulkAllOK(resp, len(docs)) {
				b.Fatal("not all ok")
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(docs)), "ns/doc")
	})
	b.Run("response with errors", func(b *testing.B) {
		// The slow path: a replay answers 409 for every item.
		conflict := bytes.ReplaceAll(resp, []byte(`"status":201`), []byte(`"status":409,"error":{"type":"version_conflict_engine_exception","reason":"document already exists"}`))
		conflict = bytes.Replace(conflict, []byte(`"errors":false`), []byte(`"errors":true`), 1)
		b.ReportAllocs()
		for b.Loop() {
			if f := bulkItemErrors(conflict, sent); len(f) != 0 {
				b.Fatal(f)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(docs)), "ns/doc")
	})
}
