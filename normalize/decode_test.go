package normalize_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// assertDecodesLikeJSON checks DecodeEvent's promise on data: the same
// value as json.Unmarshal into a zero Event, and an error exactly when
// json.Unmarshal has one. It returns whether the fast path alone decoded
// data.
func assertDecodesLikeJSON(t testing.TB, data []byte) bool {
	t.Helper()
	var want schema.Event
	wantErr := json.Unmarshal(data, &want)
	got := schema.Event{Tags: []string{"left over"}, Labels: map[string]string{"left": "over"}}
	gotErr := normalize.DecodeEvent(data, &got)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("DecodeEvent(%q) error = %v, json.Unmarshal's = %v", data, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeEvent(%q) differs from json.Unmarshal\n got: %#v\nwant: %#v", data, got, want)
	}
	var fast schema.Event
	ok := normalize.DecodeEventFast(data, &fast)
	if ok && (wantErr != nil || !reflect.DeepEqual(fast, want)) {
		t.Fatalf("fast path accepted %q that json.Unmarshal decodes differently (err %v)\n got: %#v\nwant: %#v", data, wantErr, fast, want)
	}
	return ok
}

// TestDecodeEventEveryField sets every field of schema.Event to a distinct
// value, so a field added to the schema but not to DecodeEvent sends every
// event to the slow path and fails here.
func TestDecodeEventEveryField(t *testing.T) {
	var ev schema.Event
	f := filler{
		strs:   []string{"v"},
		n:      1000,
		f:      1.5,
		t:      time.Date(2025, 10, 10, 20, 55, 36, 123456789, time.UTC),
		mask:   math.MaxUint64,
		unique: true,
	}
	f.fill(reflect.ValueOf(&ev).Elem())
	data := normalize.AppendEvent(nil, &ev)
	var got schema.Event
	if !normalize.DecodeEventFast(data, &got) {
		t.Fatalf("fast path refused AppendEvent's output of a full event: %s", data)
	}
	if !reflect.DeepEqual(got, ev) {
		t.Fatalf("DecodeEvent lost or changed a field\n got: %+v\nwant: %+v", got, ev)
	}
	assertDecodesLikeJSON(t, data)
}

// TestDecodeEventAppendEventOutputs decodes AppendEvent's output of events
// filled from random seeds and masks: the fast path takes every one, and
// decodes like encoding/json.
func TestDecodeEventAppendEventOutputs(t *testing.T) {
	strs := []string{"", "a", "GET", "/api/v1/x?y=1", "q\"b\\s/\n\r\t\x00\x1f\x7f", "é✓😀", "\u2028<>&", "\ufffd"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		var ev schema.Event
		fil := filler{
			strs: []string{strs[rng.IntN(len(strs))], strs[rng.IntN(len(strs))]},
			n:    rng.Int64() >> rng.IntN(64),
			f:    rng.NormFloat64() * math.Pow(10, float64(rng.IntN(60)-30)),
			t:    time.Unix(rng.Int64N(253402300799), rng.Int64N(1e9)).UTC(),
			mask: rng.Uint64(),
		}
		if i%7 == 0 {
			fil.t = time.Unix(rng.Int64N(1e9), 0).UTC() // whole seconds: no fraction
		}
		fil.fill(reflect.ValueOf(&ev).Elem())
		data := normalize.AppendEvent(nil, &ev)
		if !assertDecodesLikeJSON(t, data) {
			t.Fatalf("fast path refused AppendEvent's output: %s", data)
		}
	}
}

// TestDecodeEventGoldens decodes every normalizer golden event, as written
// (indented) and as AppendEvent writes it.
func TestDecodeEventGoldens(t *testing.T) {
	files, err := filepath.Glob("testdata/*/*.golden.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no goldens found: %v", err)
	}
	decoded := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		raws := goldenEvents(t, data)
		if len(raws) == 0 {
			continue // a golden of rejected lines only holds no event
		}
		decoded += len(raws)
		t.Run(file, func(t *testing.T) {
			for _, raw := range raws {
				if !assertDecodesLikeJSON(t, raw) {
					t.Errorf("fast path refused an indented golden event: %s", raw)
				}
				var ev schema.Event
				if err := json.Unmarshal(raw, &ev); err != nil {
					t.Fatal(err)
				}
				if !assertDecodesLikeJSON(t, normalize.AppendEvent(nil, &ev)) {
					t.Errorf("fast path refused AppendEvent's output of %s", raw)
				}
			}
		})
	}
	if decoded == 0 {
		t.Fatal("no golden holds an event")
	}
}

// goldenEvents returns the events of a golden file: an array of events, or
// of {"offset", "events"} entries (those with "error" hold none).
func goldenEvents(t testing.TB, data []byte) []json.RawMessage {
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatalf("golden is not an array of objects: %v", err)
	}
	var out []json.RawMessage
	for _, e := range entries {
		if evs, ok := e["events"]; ok {
			var raws []json.RawMessage
			if err := json.Unmarshal(evs, &raws); err != nil {
				t.Fatal(err)
			}
			out = append(out, raws...)
			continue
		}
		if _, ok := e["@timestamp"]; ok {
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// decodeCases are inputs beside AppendEvent's own shapes: what the fast path
// takes, what it leaves to encoding/json, and errors.
var decodeCases = []struct {
	name string
	in   string
	fast bool // the fast path alone decodes it
}{
	{name: "minimal", in: `{"@timestamp":"2025-10-10T20:55:36Z"}`, fast: true},
	{name: "empty object", in: `{}`, fast: true},
	{name: "whitespace everywhere", in: " \t\n{ \"event\" : { \"id\" : \"x\" , \"category\" : [ \"web\" , \"a\" ] } , \"tags\" : [ ] }\r\n", fast: true},
	{name: "escapes", in: `{"url":{"path":"/a\"b\\c\/d\b\f\n\r\t\u0000\u001f\u00e9\u2713\uFFFD"}}`, fast: true},
	{name: "escape at start and end", in: `{"url":{"path":"\n"},"user":{"name":"\\"}}`, fast: true},
	{name: "non-ASCII", in: `{"user_agent":{"original":"é✓😀"}}`, fast: true},
	{name: "surrogate pair", in: `{"url":{"path":"\ud83d\ude00"}}`},
	{name: "lone surrogate", in: `{"url":{"path":"\ud83d"}}`},
	{name: "invalid UTF-8", in: "{\"url\":{\"path\":\"a\xffb\"}}"},
	{name: "invalid UTF-8 after escape", in: "{\"url\":{\"path\":\"\\n\xe2\x80\"}}"},
	{name: "control byte in string", in: "{\"url\":{\"path\":\"a\x01\"}}"},
	{name: "bad escape", in: `{"url":{"path":"\x"}}`},
	{name: "short unicode escape", in: `{"url":{"path":"\u12"}}`},
	{name: "unknown key", in: `{"nope":1,"user":{"name":"a"}}`},
	{name: "unknown nested key", in: `{"user":{"nope":{"a":[1,2]},"name":"a"}}`},
	{name: "key in other case", in: `{"User":{"NAME":"a"}}`},
	{name: "escaped key", in: `{"us\u0065r":{"name":"a"}}`},
	{name: "null field", in: `{"user":{"name":null},"tags":null}`},
	{name: "null top level", in: `null`},
	{name: "empty arrays and maps", in: `{"tags":[],"labels":{},"related":{"ip":[]},"threat":{"enrichments":[]}}`, fast: true},
	{name: "repeated member", in: `{"user":{"name":"a"},"user":{"id":"b"},"tags":["x","y"],"tags":["z"],"labels":{"a":"1"},"labels":{"b":"2","a":"3"}}`, fast: true},
	{name: "repeated enrichments", in: `{"threat":{"enrichments":[{"indicator":{"ip":"1"}}]},"threat":{"enrichments":[{"matched":{"field":"f"}}]}}`},
	{name: "integers", in: `{"event":{"severity":-3,"duration":9223372036854775807},"source":{"port":0,"bytes":-9223372036854775808}}`, fast: true},
	{name: "negative zero integer", in: `{"source":{"port":-0}}`, fast: true},
	{name: "integer overflow", in: `{"event":{"duration":9223372036854775808}}`},
	{name: "int32 overflow", in: `{"trailwatch":{"raw":{"partition":2147483648}}}`},
	{name: "int32 bounds", in: `{"trailwatch":{"raw":{"partition":-2147483648,"offset":0}}}`, fast: true},
	{name: "fraction in integer", in: `{"source":{"port":1.0}}`},
	{name: "exponent in integer", in: `{"source":{"port":1e2}}`},
	{name: "leading zero", in: `{"source":{"port":01}}`},
	{name: "plus sign", in: `{"source":{"port":+1}}`},
	{name: "string for integer", in: `{"source":{"port":"1"}}`},
	{name: "floats", in: `{"source":{"geo":{"location":{"lat":-1.5e-7,"lon":1E+300}}},"trailwatch":{"signals":{"travel":{"distance_km":0.0,"speed_kmh":12}}}}`, fast: true},
	{name: "float overflow", in: `{"source":{"geo":{"location":{"lat":1e999,"lon":0}}}}`},
	{name: "bare minus", in: `{"source":{"port":-}}`},
	{name: "dot without digits", in: `{"source":{"geo":{"location":{"lat":1.}}}}`},
	{name: "booleans", in: `{"trailwatch":{"identity":{"known":true},"hop":{"duplicate":false},"signals":{"first_seen":{"ip":true,"asn":false}}}}`, fast: true},
	{name: "number for boolean", in: `{"trailwatch":{"identity":{"known":1}}}`},
	{name: "misspelled literal", in: `{"trailwatch":{"identity":{"known":tru}}}`},
	{name: "time with fraction", in: `{"@timestamp":"2025-10-10T20:55:36.000000001Z","event":{"created":"2024-02-29T00:00:00.5Z"}}`, fast: true},
	{name: "time with offset", in: `{"@timestamp":"2025-10-10T13:55:36-07:00"}`},
	{name: "time with ten fractional digits", in: `{"@timestamp":"2025-10-10T20:55:36.1234567891Z"}`},
	{name: "time lowercase", in: `{"@timestamp":"2025-10-10t20:55:36z"}`},
	{name: "time day out of range", in: `{"@timestamp":"2025-02-29T20:55:36Z"}`},
	{name: "time hour out of range", in: `{"@timestamp":"2025-02-28T24:00:00Z"}`},
	{name: "time leap second", in: `{"@timestamp":"2016-12-31T23:59:60Z"}`},
	{name: "time empty fraction", in: `{"@timestamp":"2025-10-10T20:55:36.Z"}`},
	{name: "time comma fraction", in: `{"@timestamp":"2025-10-10T20:55:36,5Z"}`},
	{name: "time not a string", in: `{"@timestamp":1760129736}`},
	{name: "time with escape", in: `{"@timestamp":"2025-10-10T20:55:36\u005a"}`},
	{name: "time garbage", in: `{"@timestamp":"yesterday"}`},
	{name: "trailing garbage", in: `{"user":{"name":"a"}}x`},
	{name: "two values", in: `{}{}`},
	{name: "trailing comma", in: `{"user":{"name":"a",}}`},
	{name: "missing colon", in: `{"user" {"name":"a"}}`},
	{name: "truncated", in: `{"user":{"name":"a"`},
	{name: "truncated string", in: `{"user":{"name":"a`},
	{name: "not an object", in: `[1,2]`},
	{name: "array for object", in: `{"user":["a"]}`},
	{name: "empty input", in: ``},
	{name: "map with escapes", in: `{"labels":{"k\"1":"v\n","":""},"trailwatch":{"extra":{"a":"b"}}}`, fast: true},
	{name: "map with non-string value", in: `{"labels":{"a":1}}`},
	{name: "threat", in: `{"threat":{"enrichments":[{"indicator":{"type":"ipv4-addr","ip":"1.2.3.4"},"matched":{"atomic":"1.2.3.4","field":"source.ip"}},{}]}}`, fast: true},
}

func TestDecodeEvent(t *testing.T) {
	for _, tt := range decodeCases {
		t.Run(tt.name, func(t *testing.T) {
			if fast := assertDecodesLikeJSON(t, []byte(tt.in)); fast != tt.fast {
				t.Errorf("fast path took the input: %v, want %v", fast, tt.fast)
			}
		})
	}
}

// FuzzDecodeEvent requires DecodeEvent to decode any input exactly as
// json.Unmarshal does, seeded from the table, the goldens and a full event.
func FuzzDecodeEvent(f *testing.F) {
	for _, tt := range decodeCases {
		f.Add([]byte(tt.in))
	}
	files, _ := filepath.Glob("testdata/*/*.golden.json")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, raw := range goldenEvents(f, data) {
			f.Add([]byte(raw))
		}
	}
	var ev schema.Event
	fil := filler{strs: []string{"v\n"}, n: 7, f: 0.5, t: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), mask: math.MaxUint64, unique: true}
	fil.fill(reflect.ValueOf(&ev).Elem())
	f.Add(normalize.AppendEvent(nil, &ev))
	f.Fuzz(func(t *testing.T, data []byte) {
		assertDecodesLikeJSON(t, data)
	})
}

// BenchmarkDecodeEvent decodes a typical enriched nginx event, against
// encoding/json.
func BenchmarkDecodeEvent(b *testing.B) {
	rec := nginxRecord(`203.0.113.7 - alice [10/Oct/2025:13:55:36 -0700] "GET /api/v1/orders?id=7&x=1 HTTP/1.1" 200 2326 "https://shop.example.com/cart" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"`)
	evs, err := normalize.NewNginx().Normalize(nil, rec)
	if err != nil {
		b.Fatal(err)
	}
	ev := evs[0]
	ev.Source.Geo = schema.Geo{CountryISOCode: "US", CountryName: "United States", Location: schema.GeoPoint{Lat: 37.751, Lon: -97.822}}
	ev.Source.AS = schema.AS{Number: 64500, Organization: schema.ASOrganization{Name: "Example Transit"}}
	ev.Trailwatch.Session = schema.Session{ID: "s-4f1c", Start: ev.Timestamp, Requests: 12, Bytes: 40960}
	data := normalize.AppendEvent(nil, &ev)
	if !strings.Contains(string(data), `"session"`) {
		b.Fatalf("benchmark event lacks enrichment: %s", data)
	}
	b.Run("DecodeEvent", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var out schema.Event
		for b.Loop() {
			if err := normalize.DecodeEvent(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var out schema.Event
			if err := json.Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
