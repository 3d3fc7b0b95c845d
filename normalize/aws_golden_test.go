package normalize_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Test plumbing shared by the cloud and generic sources (aws_alb, aws_elb,
// aws_apigateway, cloudtrail, gcp_audit, ecs, regex).

// cloudRecords reads a testdata file as records: one per line, or the whole
// file as one record when whole is set (an S3 object).
func cloudRecords(t testing.TB, source, path string, whole bool) []ingest.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	origin := "/var/log/" + source + "/" + filepath.Base(path)
	if whole {
		return []ingest.Record{{Data: data, Source: source, Collector: "s3", Host: "collector-1", Origin: origin}}
	}
	var recs []ingest.Record
	for off := 0; off < len(data); {
		line, _, _ := bytes.Cut(data[off:], []byte("\n"))
		recs = append(recs, ingest.Record{
			Data: line, Source: source, Collector: "file", Host: "collector-1",
			Origin: origin, Offset: int64(off),
		})
		off += len(line) + 1
	}
	return recs
}

// cloudGoldenEntry is one record's result in a golden file.
type cloudGoldenEntry struct {
	Offset int64             `json:"offset"`
	Error  string            `json:"error,omitempty"`
	Events []json.RawMessage `json:"events,omitempty"`
}

// cloudGolden normalizes every file matching glob under testdata/<source>/
// and compares the results with the file's .golden.json (regenerated with
// -update).
func cloudGolden(t *testing.T, source string, n normalize.Normalizer, glob string, whole bool) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", source, glob))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata for %s: %v", glob, err)
	}
	for _, path := range paths {
		if strings.HasSuffix(path, ".golden.json") {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			var out []cloudGoldenEntry
			for _, rec := range cloudRecords(t, source, path, whole) {
				e := cloudGoldenEntry{Offset: rec.Offset}
				evs, err := n.Normalize(nil, &rec)
				if err != nil {
					e.Error = err.Error()
				}
				for i := range evs {
					cloudCheckEvent(t, source, &rec, &evs[i])
					b, err := json.Marshal(&evs[i])
					if err != nil {
						t.Fatal(err)
					}
					e.Events = append(e.Events, b)
				}
				out = append(out, e)
			}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(path, filepath.Ext(path))
			base = strings.TrimSuffix(base, ".json") // x.json.gz
			compareGolden(t, base+".golden.json", append(got, '\n'))
		})
	}
}

// cloudCheckEvent asserts the invariants every event of these sources
// keeps, whatever the input.
func cloudCheckEvent(t testing.TB, source string, rec *ingest.Record, ev *schema.Event) {
	t.Helper()
	switch {
	case ev.Timestamp.IsZero() || ev.Timestamp.Location() != time.UTC:
		t.Fatalf("@timestamp %v is zero or not UTC", ev.Timestamp)
	case ev.Event.ID == "":
		t.Fatal("event.id empty")
	case ev.Trailwatch.Actor != ev.ActorKey():
		t.Fatalf("trailwatch.actor %q, want %q", ev.Trailwatch.Actor, ev.ActorKey())
	case ev.Trailwatch.Source == "":
		t.Fatal("trailwatch.source empty")
	case ev.HTTP.Response.StatusCode < 0 || ev.HTTP.Response.StatusCode > 999:
		t.Fatalf("status %d out of range", ev.HTTP.Response.StatusCode)
	case ev.HTTP.Response.Body.Bytes < 0 || ev.HTTP.Request.Body.Bytes < 0 || ev.Event.Duration < 0:
		t.Fatalf("negative bytes or duration: %+v %d", ev.HTTP, ev.Event.Duration)
	case ev.Source.Port < 0 || ev.Source.Port > 65535:
		t.Fatalf("source.port %d", ev.Source.Port)
	}
	if source != "ecs" && ev.Trailwatch.Source != source {
		t.Fatalf("trailwatch.source %q, want %q", ev.Trailwatch.Source, source)
	}
	forEachString(reflect.ValueOf(ev).Elem(), func(s string) {
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 %q in event", s)
		}
	})
	assertSameJSON(t, ev)
}

// cloudFuzz runs the invariants every parser of this family keeps on
// arbitrary input: no panic, dst untouched on error, errors that name the
// source and stay short, events that satisfy cloudCheckEvent.
func cloudFuzz(f *testing.F, source string, n normalize.Normalizer, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec := &ingest.Record{Data: data, Source: source, Collector: "file", Host: "h", Origin: "fuzz", Offset: 7}
		dst := make([]schema.Event, 1, 2)
		dst[0].Event.ID = "kept"
		got, err := n.Normalize(dst, rec)
		if len(got) == 0 || got[0].Event.ID != "kept" {
			t.Fatalf("Normalize changed dst[0] (err %v)", err)
		}
		if err != nil {
			if len(got) != 1 {
				t.Fatalf("Normalize returned %d events with error %v", len(got), err)
			}
			if !strings.HasPrefix(err.Error(), source+": ") {
				t.Fatalf("error %q does not name the source", err)
			}
			if len(err.Error()) > 1024 {
				t.Fatalf("error text is %d bytes, unbounded?", len(err.Error()))
			}
			return
		}
		for i := range got[1:] {
			cloudCheckEvent(t, source, rec, &got[1+i])
		}
	})
}

// cloudSeeds reads every line (or whole file) under testdata/<source>
// matching glob as fuzz seeds.
func cloudSeeds(f *testing.F, source, glob string, whole bool) [][]byte {
	paths, _ := filepath.Glob(filepath.Join("testdata", source, glob))
	var seeds [][]byte
	for _, p := range paths {
		if strings.HasSuffix(p, ".golden.json") {
			continue
		}
		for _, r := range cloudRecords(f, source, p, whole) {
			seeds = append(seeds, r.Data)
		}
	}
	return seeds
}

// cloudHostile is bad input every source must refuse or survive without a
// panic: truncation, binary, invalid UTF-8, a 1 MiB line, deep nesting.
func cloudHostile() map[string][]byte {
	deep := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	deepArr := `{"Records":[` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `]}`
	return map[string][]byte{
		"empty":          {},
		"binary":         {0x00, 0xff, 0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02},
		"gzip header":    {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff},
		"invalid utf8":   []byte("{\"a\":\"\xff\xfe\"}"),
		"1 MiB line":     bytes.Repeat([]byte("a"), 1<<20+1),
		"1 MiB json":     []byte(`{"x":"` + strings.Repeat("a", 1<<20) + `"}`),
		"deep object":    []byte(deep),
		"deep array":     []byte(deepArr),
		"truncated json": []byte(`{"eventTime":"2025-01-01T00:00:00Z","userIdentity":{"type":`),
		"json array":     []byte(`[1,2,3]`),
		"number":         []byte(`12`),
		"null":           []byte(`null`),
	}
}

// cloudHostileTest feeds cloudHostile to n: each must not panic, and an
// error must name the source.
func cloudHostileTest(t *testing.T, source string, n normalize.Normalizer) {
	for name, data := range cloudHostile() {
		t.Run(name, func(t *testing.T) {
			rec := &ingest.Record{Data: data, Source: source, Collector: "file", Host: "h", Origin: "x"}
			evs, err := n.Normalize(nil, rec)
			if err == nil {
				for i := range evs {
					cloudCheckEvent(t, source, rec, &evs[i])
				}
				return
			}
			if len(evs) != 0 || !strings.HasPrefix(err.Error(), source+": ") || len(err.Error()) > 1024 {
				t.Fatalf("got %d events, error %q", len(evs), cloudShort(err.Error()))
			}
		})
	}
}

func cloudShort(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// cloudBench measures records through a parser, reporting unit/s (lines or
// events, counting events produced).
func cloudBench(b *testing.B, n normalize.Normalizer, recs []ingest.Record, unit string) {
	b.ReportAllocs()
	var size int64
	for _, r := range recs {
		size += int64(len(r.Data))
	}
	b.SetBytes(size / int64(len(recs)))
	var dst []schema.Event
	i, events := 0, 0
	for b.Loop() {
		var err error
		dst, err = n.Normalize(dst[:0], &recs[i])
		if err != nil {
			b.Fatal(err)
		}
		events += len(dst)
		if i++; i == len(recs) {
			i = 0
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), unit+"/s")
}

// cloudGoodRecords drops the records a parser refuses, for benchmarks.
func cloudGoodRecords(b *testing.B, n normalize.Normalizer, recs []ingest.Record) []ingest.Record {
	var good []ingest.Record
	for _, r := range recs {
		if _, err := n.Normalize(nil, &r); err == nil {
			good = append(good, r)
		}
	}
	if len(good) == 0 {
		b.Fatal("no record parses")
	}
	return good
}
