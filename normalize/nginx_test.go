package normalize_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/<source>/*.golden.json from the normalizers' output")

var _ normalize.Normalizer = (*normalize.Nginx)(nil)

// readRecords splits a testdata file into records the way the file
// collector does: one per line, without the "\n", offsets in bytes.
func readRecords(t testing.TB, path string) []ingest.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []ingest.Record
	for off := 0; off < len(data); {
		line, _, _ := bytes.Cut(data[off:], []byte("\n"))
		recs = append(recs, ingest.Record{
			Data:      line,
			Source:    "nginx",
			Collector: "file",
			Host:      "web-1",
			Origin:    "/var/log/nginx/" + filepath.Base(path),
			Offset:    int64(off),
		})
		off += len(line) + 1
	}
	return recs
}

// TestNginxGolden normalizes every line of testdata/nginx/*.log and compares
// the results, one JSON value per line, with the matching .golden.json.
func TestNginxGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/nginx/*.log")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	n := normalize.NewNginx()
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			checkGolden(t, n, path)
		})
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return "(no line differs)"
}

func nginxRecord(line string) *ingest.Record {
	return &ingest.Record{Data: []byte(line), Source: "nginx", Collector: "file", Host: "h", Origin: "/var/log/nginx/access.log", Offset: 4096}
}

// TestNginx pins the mapping decisions field by field; the goldens cover
// the same ground in bulk.
func TestNginx(t *testing.T) {
	const base = `203.0.113.7 - - [10/Oct/2025:13:55:36 -0700] "GET /api/v1/orders?id=7&x=1 HTTP/1.1" 200 2326 "https://ex.com/" "curl/8.5.0"`
	tests := []struct {
		name  string
		line  string
		check func(t *testing.T, ev *schema.Event)
	}{
		{
			name: "combined",
			line: base,
			check: func(t *testing.T, ev *schema.Event) {
				want := time.Date(2025, 10, 10, 20, 55, 36, 0, time.UTC)
				if !ev.Timestamp.Equal(want) || ev.Timestamp.Location() != time.UTC {
					t.Errorf("@timestamp = %v, want %v in UTC", ev.Timestamp, want)
				}
				eq(t, "source.ip", ev.Source.IP, "203.0.113.7")
				eq(t, "source.address", ev.Source.Address, "203.0.113.7")
				eq(t, "http.request.method", ev.HTTP.Request.Method, "GET")
				eq(t, "url.original", ev.URL.Original, "/api/v1/orders?id=7&x=1")
				eq(t, "url.path", ev.URL.Path, "/api/v1/orders")
				eq(t, "url.query", ev.URL.Query, "id=7&x=1")
				eq(t, "http.version", ev.HTTP.Version, "1.1")
				eq(t, "http.response.status_code", ev.HTTP.Response.StatusCode, 200)
				eq(t, "http.response.body.bytes", ev.HTTP.Response.Body.Bytes, int64(2326))
				eq(t, "http.request.referrer", ev.HTTP.Request.Referrer, "https://ex.com/")
				eq(t, "user_agent.original", ev.UserAgent.Original, "curl/8.5.0")
				eq(t, "event.kind", ev.Event.Kind, "event")
				eq(t, "event.category", ev.Event.Category, []string{"web"})
				eq(t, "event.type", ev.Event.Type, []string{"access"})
				eq(t, "event.outcome", ev.Event.Outcome, "success")
				eq(t, "event.dataset", ev.Event.Dataset, "nginx.access")
				eq(t, "event.module", ev.Event.Module, "nginx")
				eq(t, "event.id", ev.Event.ID, nginxRecord("").ID())
				eq(t, "related.ip", ev.Related.IP, []string{"203.0.113.7"})
				eq(t, "related.user", ev.Related.User, []string(nil))
				eq(t, "user.name", ev.User.Name, "")
				eq(t, "trailwatch.source", ev.Trailwatch.Source, "nginx")
				eq(t, "trailwatch.actor", ev.Trailwatch.Actor, "ip:203.0.113.7")
				eq(t, "trailwatch.raw", ev.Trailwatch.Raw, schema.RawRef{Origin: "/var/log/nginx/access.log", Offset: 4096, Collector: "file"})
				eq(t, "observer", ev.Observer, schema.Observer{})
				eq(t, "tags", ev.Tags, []string(nil))
				if !ev.Event.Ingested.IsZero() || !ev.Event.Created.IsZero() {
					t.Error("normalizer set a clock-derived time")
				}
			},
		},
		{
			name: "user and failure",
			line: `10.0.0.1 - alice [10/Oct/2025:13:55:36 +0000] "POST /login HTTP/2.0" 401 0 "-" "-"`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "user.name", ev.User.Name, "alice")
				eq(t, "related.user", ev.Related.User, []string{"alice"})
				eq(t, "trailwatch.actor", ev.Trailwatch.Actor, "user:alice")
				eq(t, "event.outcome", ev.Event.Outcome, "failure")
				eq(t, "http.version", ev.HTTP.Version, "2.0")
				eq(t, "http.request.referrer", ev.HTTP.Request.Referrer, "")
				eq(t, "user_agent.original", ev.UserAgent.Original, "")
			},
		},
		{
			name: "escaped quotes and UTF-8 decoded",
			line: `10.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "GET /a\x22b HTTP/1.1" 200 1 "-" "UA \x22x\x22 \xE2\x9C\x93"`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "url.original", ev.URL.Original, `/a"b`)
				eq(t, "user_agent.original", ev.UserAgent.Original, `UA "x" ✓`)
				eq(t, "tags", ev.Tags, []string(nil))
			},
		},
		{
			name: "decoded invalid UTF-8 replaced and tagged",
			line: `10.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "a\xFFb"`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "user_agent.original", ev.UserAgent.Original, "a\uFFFDb")
				eq(t, "tags", ev.Tags, []string{normalize.TagInvalidUTF8})
			},
		},
		{
			name: "TLS handshake kept as logged",
			line: `10.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "\x16\x03\x01\x00\xF1" 400 157 "-" "-"`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "url.original", ev.URL.Original, `\x16\x03\x01\x00\xF1`)
				eq(t, "http.request.method", ev.HTTP.Request.Method, "")
				eq(t, "url.path", ev.URL.Path, "")
				eq(t, "event.outcome", ev.Event.Outcome, "failure")
			},
		},
		{
			name: "request_time and extras",
			line: base + ` "198.51.100.1" request_time=0.250 upstream_addr="10.0.0.7:80" -`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "event.duration", ev.Event.Duration, int64(250*time.Millisecond))
				eq(t, "trailwatch.extra", ev.Trailwatch.Extra, map[string]string{
					"field_10": "198.51.100.1", "request_time": "0.250", "upstream_addr": "10.0.0.7:80",
				})
			},
		},
	}
	n := normalize.NewNginx()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := n.Normalize(nil, nginxRecord(tt.line))
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1", len(evs))
			}
			tt.check(t, &evs[0])
		})
	}
}

func eq[T any](t *testing.T, field string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", field, got, want)
	}
}

func TestNginxErrors(t *testing.T) {
	const tail = ` "GET / HTTP/1.1" 200 1 "-" "-"`
	tests := []struct {
		name    string
		line    string
		wantErr string
	}{
		{name: "too long", line: strings.Repeat("a", normalize.MaxLineBytes+1), wantErr: "nginx: line is 65537 bytes, over the 65536-byte limit"},
		{name: "empty", line: "", wantErr: "nginx: line does not match combined format at byte 0: field 1 (remote_addr): unexpected end of line"},
		{name: "bad time", line: `1.2.3.4 - - [10/Oct/2025:25:00:00 +0000]` + tail, wantErr: `nginx: field 4 (time_local): invalid time "10/Oct/2025:25:00:00 +0000"`},
		{name: "no time", line: `1.2.3.4 - - 10/Oct/2025:13:55:36 +0000` + tail, wantErr: `field 3 (remote_user): expected " [" before time_local`},
		{name: "bad status", line: `1.2.3.4 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 20x 1 "-" "-"`, wantErr: `nginx: field 6 (status): invalid status "20x"`},
		{name: "unterminated request", line: `1.2.3.4 - - [10/Oct/2025:13:55:36 +0000] "GET / HT`, wantErr: "nginx: line does not match combined format at byte 41: field 5 (request): unterminated quoted field"},
		{name: "missing user agent", line: `1.2.3.4 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-"`, wantErr: "field 9 (http_user_agent)"},
		{name: "byte overflow", line: `1.2.3.4 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 9223372036854775808 "-" "-"`, wantErr: `nginx: field 7 (body_bytes_sent): invalid byte count "9223372036854775808"`},
	}
	n := normalize.NewNginx()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]schema.Event, 1, 4)
			dst[0].Event.ID = "kept"
			got, err := n.Normalize(dst, nginxRecord(tt.line))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			if len(got) != 1 || got[0].Event.ID != "kept" {
				t.Errorf("Normalize changed dst on error: %d events", len(got))
			}
			if ev := dst[:2][1]; !reflect.DeepEqual(ev, schema.Event{}) {
				t.Errorf("failed parse left a partial event in dst's spare capacity: %+v", ev)
			}
		})
	}
}

// TestNginxAppendsAndSharesNothing checks that events appended to one dst
// are independent: a later stage appending to one event's slices must not
// change another field or event.
func TestNginxAppendsAndSharesNothing(t *testing.T) {
	n := normalize.NewNginx()
	var dst []schema.Event
	var err error
	for _, line := range []string{
		`10.0.0.1 - alice [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-"`,
		`10.0.0.2 - bob [10/Oct/2025:13:55:37 +0000] "GET / HTTP/1.1" 200 1 "-" "-"`,
	} {
		if dst, err = n.Normalize(dst, nginxRecord(line)); err != nil {
			t.Fatal(err)
		}
	}
	if len(dst) != 2 {
		t.Fatalf("got %d events, want 2", len(dst))
	}
	dst[0].Event.Category = append(dst[0].Event.Category, "authentication")
	dst[0].Related.IP = append(dst[0].Related.IP, "10.9.9.9")
	eq(t, "event.type", dst[0].Event.Type, []string{"access"})
	eq(t, "related.user", dst[0].Related.User, []string{"alice"})
	eq(t, "event.category of the second event", dst[1].Event.Category, []string{"web"})
	eq(t, "user.name of the second event", dst[1].User.Name, "bob")
}

// FuzzNginx feeds mutated log lines to the parser: it must not panic, must
// leave dst alone on error, and a successful parse must satisfy the
// invariants every later stage relies on.
func FuzzNginx(f *testing.F) {
	paths, _ := filepath.Glob("testdata/nginx/*.log")
	for _, path := range paths {
		for _, rec := range readRecords(f, path) {
			f.Add(rec.Data)
		}
	}
	n := normalize.NewNginx()
	f.Fuzz(func(t *testing.T, line []byte) {
		rec := &ingest.Record{Data: line, Collector: "file", Host: "h", Origin: "fuzz", Offset: 7}
		dst := make([]schema.Event, 1, 2)
		dst[0].Event.ID = "kept"
		got, err := n.Normalize(dst, rec)
		if err != nil {
			if len(got) != 1 || got[0].Event.ID != "kept" {
				t.Fatalf("Normalize changed dst on error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "nginx: ") {
				t.Fatalf("error %q does not name the source", err)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("error text is %d bytes, unbounded?", len(err.Error()))
			}
			return
		}
		if len(got) != 2 || got[0].Event.ID != "kept" {
			t.Fatalf("Normalize returned %d events, want dst plus one", len(got))
		}
		ev := &got[1]
		switch {
		case ev.HTTP.Response.StatusCode < 0 || ev.HTTP.Response.StatusCode > 999:
			t.Fatalf("status %d out of range", ev.HTTP.Response.StatusCode)
		case ev.Timestamp.IsZero() || ev.Timestamp.Location() != time.UTC:
			t.Fatalf("@timestamp %v is zero or not UTC", ev.Timestamp)
		case ev.HTTP.Response.Body.Bytes < 0:
			t.Fatalf("negative body bytes %d", ev.HTTP.Response.Body.Bytes)
		case ev.Event.ID != rec.ID() || ev.Event.Dataset != "nginx.access" || ev.Trailwatch.Source != "nginx":
			t.Fatalf("identity fields wrong: %+v", ev.Event)
		case ev.Source.Address == "" || ev.Trailwatch.Actor != ev.ActorKey():
			t.Fatalf("source %q / actor %q", ev.Source.Address, ev.Trailwatch.Actor)
		case ev.Event.Outcome != "success" && ev.Event.Outcome != "failure":
			t.Fatalf("outcome %q", ev.Event.Outcome)
		case !strings.Contains(ev.URL.Original, ev.URL.Path) || !strings.Contains(ev.URL.Original, ev.URL.Query):
			t.Fatalf("url.path %q / url.query %q not within url.original %q", ev.URL.Path, ev.URL.Query, ev.URL.Original)
		case ev.HTTP.Request.Method != "" && ev.HTTP.Version == "":
			t.Fatalf("method %q without a version", ev.HTTP.Request.Method)
		}
		forEachString(reflect.ValueOf(ev).Elem(), func(s string) {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 %q in event", s)
			}
		})
		assertSameJSON(t, ev)
	})
}

// forEachString calls fn with every string in v: fields, slice elements,
// map keys and values.
func forEachString(v reflect.Value, fn func(string)) {
	switch v.Kind() {
	case reflect.String:
		fn(v.String())
	case reflect.Struct:
		for i := range v.NumField() {
			forEachString(v.Field(i), fn)
		}
	case reflect.Slice:
		for i := range v.Len() {
			forEachString(v.Index(i), fn)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			forEachString(it.Key(), fn)
			forEachString(it.Value(), fn)
		}
	}
}

// BenchmarkNginx measures one line through the parser, and through the
// parser and an encoder, over the lines of testdata/nginx/combined.log.
func BenchmarkNginx(b *testing.B) {
	recs := readRecords(b, "testdata/nginx/combined.log")
	var size int64
	for _, r := range recs {
		size += int64(len(r.Data))
	}
	n := normalize.NewNginx()
	run := func(b *testing.B, encode func([]byte, *schema.Event) []byte) {
		b.ReportAllocs()
		b.SetBytes(size / int64(len(recs)))
		var dst []schema.Event
		var buf []byte
		i := 0
		for b.Loop() {
			var err error
			dst, err = n.Normalize(dst[:0], &recs[i])
			if err != nil {
				b.Fatal(err)
			}
			if encode != nil {
				buf = encode(buf[:0], &dst[0])
			}
			if i++; i == len(recs) {
				i = 0
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	}
	b.Run("parse", func(b *testing.B) { run(b, nil) })
	b.Run("parse+json", func(b *testing.B) { run(b, normalize.AppendEvent) })
	b.Run("parse+encoding/json", func(b *testing.B) {
		run(b, func(dst []byte, ev *schema.Event) []byte {
			out, err := json.Marshal(ev)
			if err != nil {
				b.Fatal(err)
			}
			return append(dst, out...)
		})
	})
}

// checkGolden normalizes every line of path with n and compares the events
// (or error objects) with path's .golden.json; -update rewrites it.
func checkGolden(t *testing.T, n normalize.Normalizer, path string) {
	t.Helper()
	checkGoldenRecords(t, n, readRecords(t, path), strings.TrimSuffix(path, ".log")+".golden.json",
		func(_ *ingest.Record, ev *schema.Event) { assertSameJSON(t, ev) })
}

// checkGoldenRecords normalizes recs, each into one event or an error,
// runs check on every event and compares the results with golden.
func checkGoldenRecords(t *testing.T, n normalize.Normalizer, recs []ingest.Record, golden string, check func(*ingest.Record, *schema.Event)) {
	t.Helper()
	var out []json.RawMessage
	for _, rec := range recs {
		evs, err := n.Normalize(nil, &rec)
		var b []byte
		if err != nil {
			b, err = json.Marshal(map[string]string{"error": err.Error()})
		} else {
			if len(evs) != 1 {
				t.Fatalf("offset %d: got %d events, want 1", rec.Offset, len(evs))
			}
			check(&rec, &evs[0])
			b, err = json.Marshal(&evs[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	got, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, golden, append(got, '\n'))
}

// compareGolden compares got with the golden file, or rewrites the file
// under -update; the failure names the flag.
func compareGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v\nrun `go test ./normalize -run Golden -update` to create it", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the normalizer's output:\n%s\nif the change is intended, run `go test ./normalize -run Golden -update` and review the diff",
			golden, firstDiff(got, want))
	}
}
