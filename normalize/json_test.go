package normalize_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// decodeEvent decodes JSON into an Event with its times in UTC, the form in
// which two encodings of the same event compare equal.
func decodeEvent(t testing.TB, b []byte) schema.Event {
	t.Helper()
	var ev schema.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	utcTimes(reflect.ValueOf(&ev).Elem())
	return ev
}

var timeType = reflect.TypeFor[time.Time]()

// utcTimes puts every time.Time reachable through structs into UTC.
func utcTimes(v reflect.Value) {
	if v.Type() == timeType {
		if t := v.Interface().(time.Time); !t.IsZero() {
			v.Set(reflect.ValueOf(t.UTC()))
		}
		return
	}
	if v.Kind() == reflect.Struct {
		for i := range v.NumField() {
			utcTimes(v.Field(i))
		}
	}
}

// assertSameJSON checks AppendEvent's central promise: its output decodes
// to what json.Marshal's output decodes to. It reports whether json.Marshal
// could encode ev at all.
func assertSameJSON(t testing.TB, ev *schema.Event) bool {
	t.Helper()
	want, err := json.Marshal(ev)
	if err != nil {
		return false
	}
	prefix := []byte("prefix")
	got := normalize.AppendEvent(prefix, ev)
	if string(got[:len(prefix)]) != "prefix" {
		t.Fatalf("AppendEvent overwrote dst: %q", got)
	}
	got = got[len(prefix):]
	if !json.Valid(got) {
		t.Fatalf("AppendEvent wrote invalid JSON: %s", got)
	}
	g, w := decodeEvent(t, got), decodeEvent(t, want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("AppendEvent output decodes differently from json.Marshal's\n got: %s\nwant: %s\n got decoded: %+v\nwant decoded: %+v", got, want, g, w)
	}
	return true
}

// filler sets the leaves of a value from a few seeds, leaving a leaf zero
// where its bit in mask is clear. It panics on a kind it does not know, so
// a new kind of field in schema.Event is noticed here.
type filler struct {
	strs   []string
	n      int64
	f      float64
	t      time.Time
	mask   uint64
	unique bool // suffix strings with the leaf number, to tell fields apart
	leaf   int
}

func (f *filler) on() bool {
	on := f.mask>>(f.leaf%64)&1 == 1
	f.leaf++
	return on
}

func (f *filler) str() string {
	s := f.strs[f.leaf%len(f.strs)]
	if f.unique {
		s += strconv.Itoa(f.leaf)
	}
	return s
}

func (f *filler) fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			if f.on() {
				v.Set(reflect.ValueOf(f.t.Add(time.Duration(f.leaf) * time.Second)))
			}
			return
		}
		for i := range v.NumField() {
			f.fill(v.Field(i))
		}
	case reflect.String:
		if f.on() {
			v.SetString(f.str())
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		if f.on() {
			v.SetInt(f.n + int64(f.leaf))
		}
	case reflect.Bool:
		if f.on() {
			v.SetBool(true)
		}
	case reflect.Float64:
		if f.on() {
			v.SetFloat(f.f * float64(f.leaf))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			if f.on() {
				s := reflect.MakeSlice(v.Type(), 2, 2)
				f.fill(s.Index(0))
				f.fill(s.Index(1))
				v.Set(s)
			}
			return
		}
		if v.Type().Elem().Kind() != reflect.String {
			panic("filler: unhandled slice type " + v.Type().String())
		}
		if f.on() {
			s := reflect.MakeSlice(v.Type(), 2, 2)
			s.Index(0).SetString(f.str())
			s.Index(1).SetString(f.str() + "b")
			v.Set(s)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			panic("filler: unhandled map type " + v.Type().String())
		}
		if f.on() {
			m := reflect.MakeMap(v.Type())
			m.SetMapIndex(reflect.ValueOf("k"+f.str()), reflect.ValueOf(f.str()))
			m.SetMapIndex(reflect.ValueOf("a"+f.str()), reflect.ValueOf(""))
			v.Set(m)
		}
	default:
		panic("filler: unhandled kind " + v.Kind().String() + "; teach AppendEvent and this filler about it")
	}
}

// TestAppendEventEveryField sets every field of schema.Event to a distinct
// value and requires an exact round trip, so a field added to the schema
// but not to AppendEvent fails here.
func TestAppendEventEveryField(t *testing.T) {
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
	got := decodeEvent(t, normalize.AppendEvent(nil, &ev))
	if !reflect.DeepEqual(got, ev) {
		t.Fatalf("AppendEvent lost or changed a field\n got: %+v\nwant: %+v", got, ev)
	}
	assertSameJSON(t, &ev)
}

func TestAppendEvent(t *testing.T) {
	ts := time.Date(2025, 10, 10, 20, 55, 36, 0, time.UTC)
	tests := []struct {
		name string
		ev   schema.Event
		want string // exact output, when worth pinning
	}{
		{name: "zero event", want: `{"@timestamp":"0001-01-01T00:00:00Z"}`},
		{
			name: "minimal",
			ev:   schema.Event{Timestamp: ts, Event: schema.EventMeta{Kind: "event"}, HTTP: schema.HTTP{Response: schema.HTTPResponse{StatusCode: 200}}},
			want: `{"@timestamp":"2025-10-10T20:55:36Z","event":{"kind":"event"},"http":{"response":{"status_code":200}}}`,
		},
		{
			name: "nanoseconds trimmed",
			ev:   schema.Event{Timestamp: ts.Add(120 * time.Millisecond)},
			want: `{"@timestamp":"2025-10-10T20:55:36.12Z"}`,
		},
		{
			name: "non-UTC location written as UTC",
			ev:   schema.Event{Timestamp: time.Date(2025, 10, 10, 13, 55, 36, 1, time.FixedZone("PDT", -7*3600))},
			want: `{"@timestamp":"2025-10-10T20:55:36.000000001Z"}`,
		},
		{
			name: "escapes",
			ev: schema.Event{UserAgent: schema.UserAgent{
				Original: "q\"b\\s/\n\r\t\x00\x1f\x7f<>&\u2028é✓😀",
			}},
			want: `{"@timestamp":"0001-01-01T00:00:00Z","user_agent":{"original":"q\"b\\s/\n\r\t\u0000\u001f` + "\x7f<>&\u2028é✓😀" + `"}}`,
		},
		{name: "invalid UTF-8", ev: schema.Event{URL: schema.URL{Original: "/a\xffb\xe2\x80", Path: "\xc0"}}},
		{name: "empty non-nil slices and maps", ev: schema.Event{Tags: []string{}, Labels: map[string]string{}, Related: schema.Related{IP: []string{}}}},
		{name: "empty strings in slices", ev: schema.Event{Tags: []string{"", ""}}},
		{name: "map keys sorted and escaped", ev: schema.Event{Labels: map[string]string{"z": "1", "a\"": "2", "m\xff": "3"}}},
		{
			name: "raw offset zero kept when raw is set",
			ev:   schema.Event{Trailwatch: schema.Trailwatch{Raw: schema.RawRef{Origin: "/var/log/x"}}},
			want: `{"@timestamp":"0001-01-01T00:00:00Z","trailwatch":{"raw":{"origin":"/var/log/x","offset":0}}}`,
		},
		{
			name: "geo floats",
			ev: schema.Event{
				Source:      schema.Endpoint{Geo: schema.Geo{Location: schema.GeoPoint{Lat: 1e-7, Lon: -1.5e300}}},
				Client:      schema.Endpoint{Geo: schema.Geo{Location: schema.GeoPoint{Lat: 0, Lon: 12.25}}},
				Destination: schema.Endpoint{Geo: schema.Geo{Location: schema.GeoPoint{Lat: math.Copysign(0, -1)}}},
			},
		},
		{name: "negative numbers", ev: schema.Event{Event: schema.EventMeta{Duration: -5, Severity: -1}, Source: schema.Endpoint{Port: -1}}},
		{name: "created and ingested", ev: schema.Event{Event: schema.EventMeta{Created: ts, Ingested: ts.Add(time.Nanosecond)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want != "" {
				if got := string(normalize.AppendEvent(nil, &tt.ev)); got != tt.want {
					t.Errorf("AppendEvent\n got: %s\nwant: %s", got, tt.want)
				}
			}
			if !assertSameJSON(t, &tt.ev) {
				t.Fatal("json.Marshal failed on a test event")
			}
		})
	}
}

// FuzzAppendEvent fills an event from fuzzed values, with a fuzzed mask
// choosing which fields stay empty, and requires AppendEvent to decode like
// json.Marshal.
func FuzzAppendEvent(f *testing.F) {
	f.Add("GET", "/a?b=c", uint64(math.MaxUint64), int64(200), 1.25, int64(1760129736), int64(0), int64(0))
	f.Add("", "\x00\"\\\xff\u2028", uint64(0x5555555555555555), int64(-1), 0.0, int64(0), int64(999999999), int64(-25200))
	f.Add("é✓", "", uint64(0xf0f0f0f0f0f0f0f0), int64(math.MaxInt64-100), 1e-9, int64(-62135596800), int64(1), int64(3600))
	f.Add("<>&", "\t\n", uint64(1), int64(math.MinInt64), -3e21, int64(253402300799), int64(5), int64(86340))
	f.Fuzz(func(t *testing.T, s1, s2 string, mask uint64, n int64, fl float64, sec, nsec, zone int64) {
		if math.IsNaN(fl) || math.IsInf(fl, 0) {
			fl = 0 // json.Marshal rejects NaN and infinities: nothing to compare with
		}
		// Keep times where json.Marshal can write them: years 1..9998 and
		// whole-minute offsets under 24h.
		const lo, hi = -62135596800 + 86400, 253370764800
		sec = lo + ((sec-lo)%(hi-lo)+(hi-lo))%(hi-lo)
		nsec = (nsec%1e9 + 1e9) % 1e9
		zone = zone % 86400 / 60 * 60
		ts := time.Unix(sec, nsec).In(time.FixedZone("", int(zone)))
		var ev schema.Event
		fil := filler{strs: []string{s1, s2}, n: n, f: fl, t: ts, mask: mask}
		fil.fill(reflect.ValueOf(&ev).Elem())
		// assertSameJSON reports false when json.Marshal cannot encode the
		// event; the property then has nothing to compare against.
		_ = assertSameJSON(t, &ev)
	})
}

// BenchmarkAppendEvent encodes a typical nginx event, against json.Marshal.
func BenchmarkAppendEvent(b *testing.B) {
	rec := nginxRecord(`203.0.113.7 - alice [10/Oct/2025:13:55:36 -0700] "GET /api/v1/orders?id=7&x=1 HTTP/1.1" 200 2326 "https://shop.example.com/cart" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"`)
	evs, err := normalize.NewNginx().Normalize(nil, rec)
	if err != nil {
		b.Fatal(err)
	}
	ev := &evs[0]
	b.Run("AppendEvent", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = normalize.AppendEvent(buf[:0], ev)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		var out []byte
		for b.Loop() {
			if out, err = json.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(out)))
	})
}

// TestAppendEventStringPositions puts each kind of byte that needs care at
// every offset of a string spanning several 8-byte words, where the word-
// at-a-time scan in AppendEvent could miss it.
func TestAppendEventStringPositions(t *testing.T) {
	specials := []string{"\"", "\\", "\x00", "\x1f", "\n", "\x7f", "\x80", "\xff", "é", "✓", "😀", "\xe2\x80", " ", "~"}
	for _, sp := range specials {
		t.Run(strconv.Quote(sp), func(t *testing.T) {
			for pos := range 20 {
				s := strings.Repeat("a", pos) + sp + strings.Repeat("b", 19-pos)
				ev := schema.Event{UserAgent: schema.UserAgent{Original: s}}
				assertSameJSON(t, &ev)
			}
		})
	}
}

// A record read from the raw topic states its position even at partition
// 0, offset 0, in both encoders; one that was not (trailwatch parse) does
// not invent one.
func TestRawPositionZeroIsWritten(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  schema.RawRef
		want bool
	}{
		{"from the raw topic", schema.RawRef{Origin: "/var/log/a.log", Hash: "ab12", Partition: 0, KafkaOffset: 0}, true},
		{"not from Kafka", schema.RawRef{Origin: "stdin", Offset: 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := schema.Event{}
			ev.Trailwatch.Raw = tc.raw
			std, err := json.Marshal(&ev)
			if err != nil {
				t.Fatal(err)
			}
			for enc, b := range map[string][]byte{"AppendEvent": normalize.AppendEvent(nil, &ev), "json.Marshal": std} {
				has := strings.Contains(string(b), `"partition":0`) && strings.Contains(string(b), `"kafka_offset":0`)
				if has != tc.want {
					t.Errorf("%s wrote %s; want partition and kafka_offset stated: %v", enc, b, tc.want)
				}
				var back schema.Event
				if err := normalize.DecodeEvent(b, &back); err != nil || back.Trailwatch.Raw != tc.raw {
					t.Errorf("%s output decodes to %+v (%v), want %+v", enc, back.Trailwatch.Raw, err, tc.raw)
				}
			}
		})
	}
}
