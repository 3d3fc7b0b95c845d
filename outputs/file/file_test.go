package file

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/outputs"
)

func doc(kind, id string, extra ...string) outputs.Document {
	body := fmt.Sprintf(`{"@timestamp":"2024-05-01T00:00:00Z","event":{"id":%q}%s}`, id, strings.Join(extra, ""))
	return outputs.Document{Kind: kind, ID: id, Body: []byte(body)}
}

func docs(kind, prefix string, n int) []outputs.Document {
	out := make([]outputs.Document, n)
	for i := range out {
		out[i] = doc(kind, fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func open(t testing.TB, dir string, window int) *Writer {
	t.Helper()
	w, err := New(Config{Dir: dir, DedupWindow: window}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

// lines reads a kind's file, checks every line is a JSON object with an
// _id, and returns the ids in order.
func lines(t *testing.T, dir, kind string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, FileName(kind)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil || v.ID == "" {
			t.Fatalf("line %q: not a JSON object with _id (%v)", sc.Text(), err)
		}
		ids = append(ids, v.ID)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestWriteAndDedupe(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]outputs.Document
		reopen  bool // close and reopen between batches
		window  int
		events  []string
		alerts  []string
	}{
		{
			name:    "kinds go to their own files",
			batches: [][]outputs.Document{{doc("events", "e1"), doc("alerts", "a1"), doc("events", "e2")}},
			events:  []string{"e1", "e2"}, alerts: []string{"a1"},
		},
		{
			name:    "duplicate inside one batch",
			batches: [][]outputs.Document{{doc("events", "e1"), doc("events", "e1")}},
			events:  []string{"e1"},
		},
		{
			name:    "re-delivery to the same writer",
			batches: [][]outputs.Document{docs("events", "e", 3), append(docs("events", "e", 3), doc("events", "new"))},
			events:  []string{"e-0", "e-1", "e-2", "new"},
		},
		{
			name:    "re-delivery after a restart",
			batches: [][]outputs.Document{docs("events", "e", 3), append(docs("events", "e", 3), doc("events", "new"))},
			reopen:  true,
			events:  []string{"e-0", "e-1", "e-2", "new"},
		},
		{
			name:    "the same id in both kinds is two documents",
			batches: [][]outputs.Document{{doc("events", "x")}, {doc("alerts", "x")}},
			events:  []string{"x"}, alerts: []string{"x"},
		},
		{
			// Only the last two ids survive the restart: e-0 is beyond the
			// window and is written again, as documented.
			name:    "window bounds what a restart remembers",
			batches: [][]outputs.Document{docs("events", "e", 3), docs("events", "e", 3)},
			reopen:  true,
			window:  2,
			events:  []string{"e-0", "e-1", "e-2", "e-0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := open(t, dir, tt.window)
			for i, b := range tt.batches {
				if i > 0 && tt.reopen {
					if err := w.Close(t.Context()); err != nil {
						t.Fatal(err)
					}
					w = open(t, dir, tt.window)
				}
				if err := w.Write(t.Context(), b); err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
			}
			if got := lines(t, dir, "events"); !equal(got, tt.events) {
				t.Errorf("events.ndjson ids = %v, want %v", got, tt.events)
			}
			if got := lines(t, dir, "alerts"); !equal(got, tt.alerts) {
				t.Errorf("alerts.ndjson ids = %v, want %v", got, tt.alerts)
			}
		})
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

func TestWritePermanentFailures(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir, 0)
	batch := []outputs.Document{
		doc("events", "ok"),
		{Kind: "metrics", ID: "m", Body: []byte(`{}`)},
		{Kind: "events", ID: "", Body: []byte(`{}`)},
		{Kind: "events", ID: "array", Body: []byte(`[1,2]`)},
		{Kind: "events", ID: "broken", Body: []byte("{\n\"a\":")},
		{Kind: "events", ID: "pretty", Body: []byte("{\n  \"a\": 1\n}\n")},
		{Kind: "events", ID: "empty", Body: []byte(`{}`)},
	}
	err := w.Write(t.Context(), batch)
	var be *outputs.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v, want *outputs.BatchError", err)
	}
	want := []struct {
		index  int
		reason string
	}{{1, "unknown document kind"}, {2, "no id"}, {3, "not a JSON object"}, {4, "not valid JSON"}}
	if len(be.Items) != len(want) {
		t.Fatalf("items = %+v, want %d", be.Items, len(want))
	}
	for i, wi := range want {
		if it := be.Items[i]; it.Index != wi.index || it.Retryable || !strings.Contains(it.Reason, wi.reason) {
			t.Errorf("item %d = %+v, want index %d permanent ~%q", i, it, wi.index, wi.reason)
		}
	}
	if got := lines(t, dir, "events"); !equal(got, []string{"ok", "pretty", "empty"}) {
		t.Errorf("ids = %v", got)
	}
}

func TestReopenCutsTornLine(t *testing.T) {
	tests := []struct {
		name string
		tail string
	}{
		{name: "half a line", tail: `{"_id":"torn","event":{"id":"to`},
		{name: "no newline at all in a fresh file", tail: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := open(t, dir, 0)
			// Either way e-0 and e-1 end up once each: written before the
			// crash (and skipped on re-delivery) or written after it.
			want := []string{"e-0", "e-1"}
			if tt.tail != "" {
				if err := w.Write(t.Context(), docs("events", "e", 2)); err != nil {
					t.Fatal(err)
				}
			}
			_ = w.Close(t.Context())
			path := filepath.Join(dir, FileName("events"))
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.WriteString(tt.tail + `{"_id":"x"`)
			_ = f.Close()

			w = open(t, dir, 0)
			if err := w.Write(t.Context(), append(docs("events", "e", 2), doc("events", "after"))); err != nil {
				t.Fatal(err)
			}
			if got := lines(t, dir, "events"); !equal(got, append(want, "after")) {
				t.Errorf("ids = %v, want %v", got, append(want, "after"))
			}
		})
	}
}

func TestReopenReadsBackAcrossBlocks(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir, 0)
	pad := `,"pad":"` + strings.Repeat("x", 3000) + `"`
	var batch []outputs.Document
	for i := range 100 { // ~300 KB: several read-back blocks
		batch = append(batch, doc("events", fmt.Sprintf("big-%d", i), pad))
	}
	if err := w.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	_ = w.Close(t.Context())
	w = open(t, dir, 0)
	if got := w.files["events"].seen; len(got.set) != 100 {
		t.Fatalf("reloaded %d ids, want 100", len(got.set))
	}
	if err := w.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, dir, "events"); len(got) != 100 {
		t.Errorf("%d lines after re-delivery, want 100", len(got))
	}
}

func TestIDsWithEscapes(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir, 0)
	ids := []string{`quote"in`, `back\slash`, "<tag>&", "ünï"}
	var batch []outputs.Document
	for _, id := range ids {
		batch = append(batch, doc("events", id))
	}
	if err := w.Write(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	_ = w.Close(t.Context())
	w = open(t, dir, 0)
	for _, id := range ids {
		if !w.files["events"].seen.has(id) {
			t.Errorf("id %q not reloaded", id)
		}
	}
}

func TestCloseAndConfig(t *testing.T) {
	w := open(t, t.TempDir(), 0)
	for range 2 {
		if err := w.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(t.Context(), docs("events", "e", 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	err := Config{DedupWindow: -1}.Validate()
	for _, want := range []string{"dir: required", "dedup_window:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, missing %q", err, want)
		}
	}
}

func BenchmarkFileWrite(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("%d docs per Write (fsync each)", n), func(b *testing.B) {
			w := open(b, b.TempDir(), 0)
			b.ReportAllocs()
			round := 0
			for b.Loop() {
				b.StopTimer()
				batch := docs("events", fmt.Sprintf("r%d", round), n)
				round++
				b.StartTimer()
				if err := w.Write(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(round*n)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}
