package stages

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// docHeadSeeds are documents readDocHead must read as encoding/json does:
// what the detect stage writes, and the shapes that push the fast scan off
// its path (escaped keys, other cases, nested and repeated "event" objects,
// whitespace, wrong types, invalid JSON).
func docHeadSeeds(t testing.TB) []string {
	t.Helper()
	alert := schema.Alert{
		Timestamp: time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("CET", 3600)),
		Event:     schema.EventMeta{ID: "a-6f1c0e9d2b", Kind: "alert"},
		Rule:      schema.Rule{ID: "auth-bruteforce", Name: "Brute force"},
		Message:   "10 refused logins from 203.0.113.9 \"quoted\" \u00e9",
		Tags:      []string{"attack.t1110"},
		Trailwatch: schema.AlertTrailwatch{Severity: "high", Count: 10,
			GroupKey: map[string]string{"source.ip": "203.0.113.9", "clé": "v"}},
	}
	alertJSON, err := json.Marshal(&alert)
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		string(enrichedDoc("seed", 3)),
		string(alertJSON),
		`{"@timestamp":"2024-05-01T10:00:00Z","event":{"id":"e1"}}`,
		`{"event":{"kind":"event","id":"late-id"},"@timestamp":"2024-05-01T10:00:00.5+02:00"}`,
		" \t\r\n{ \"@timestamp\" : \"2024-05-01T10:00:00Z\" ,\n \"event\" : { \"id\" : \"ws\" } }\n ",
		`{"@timestamp":"2024-05-01T10:00:00Z","event":{"id":"e1"},"event":{"kind":"x"}}`,
		`{"@timestamp":"2024-05-01T10:00:00Z","event":{"id":"e1","id":"e2"}}`,
		`{"@timestamp":"2024-05-01T10:00:00Z","@timestamp":"2025-05-01T10:00:00Z","event":{"id":"e1"}}`,
		`{"EVENT":{"Id":"upper"},"@TimeStamp":"2024-05-01T10:00:00Z"}`,
		`{"ev\u0065nt":{"\u0069d":"escaped-keys"},"@timestamp":"2024-05-01T10:00:00Z"}`,
		`{"event":{"id":"esc\"aped\u00e9"}}`,
		`{"event":{"id":"caf` + "\u00e9" + `"}}`,
		`{"event\u017f":{"id":"x"},"event":{"id":"kelvin-like"}}`,
		`{"source":{"event":{"id":"nested"}},"event":{"inner":{"id":"deeper"},"id":"top"}}`,
		`{"event":{"id":"no-ts"}}`,
		`{"@timestamp":"2024-05-01T10:00:00Z"}`,
		`{"@timestamp":"2024-05-01T10:00:00Z","event":{"id":""}}`,
		`{"@timestamp":null,"event":null}`,
		`{"@timestamp":"2024-05-01T10:00:00Z","event":{"id":null}}`,
		`{"@timestamp":1714557600,"event":{"id":"numeric-ts"}}`,
		`{"@timestamp":"not a time","event":{"id":"bad-ts"}}`,
		`{"@timestamp":"2024-05-01 10:00:00Z","event":{"id":"space-ts"}}`,
		`{"event":{"id":42}}`,
		`{"event":"flat"}`,
		`{"event":["id","x"]}`,
		`{"n":[-0.5e+10,0,1E3,true,false,null,{},[]],"event":{"id":"types"}}`,
		`{"n":01,"event":{"id":"leading-zero"}}`,
		`{"n":1.,"event":{"id":"bad-fraction"}}`,
		`{"event":{"id":"trailing"}} x`,
		`{"event":{"id":"trailing-comma"},}`,
		`{"event":{"id":"unterminated"}`,
		`{"s":"tab` + "\t" + `here","event":{"id":"control"}}`,
		`{"s":"\x","event":{"id":"bad-escape"}}`,
		`{"s":"\u12G4","event":{"id":"bad-unicode"}}`,
		`{"s":"` + "\xff\xfe" + `","event":{"id":"invalid-utf8"}}`,
		`[{"event":{"id":"array"}}]`,
		`"string"`,
		`null`,
		``,
		`{}`,
		strings.Repeat(`{"a":`, 300) + `1` + strings.Repeat(`}`, 300),
		`{"event":{"id":"deep"},"d":` + strings.Repeat(`[`, 300) + strings.Repeat(`]`, 300) + `}`,
	}
}

// sameHead fails unless readDocHead and encoding/json agree on doc.
func sameHead(t *testing.T, doc []byte) {
	t.Helper()
	id, ts, err := readDocHead(doc)
	wantID, wantTS, wantErr := decodeDocHead(doc)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("readDocHead(%q) err = %v, encoding/json: %v", doc, err, wantErr)
	}
	if id != wantID || !ts.Equal(wantTS) || ts.Location().String() != wantTS.Location().String() {
		t.Fatalf("readDocHead(%q) = %q, %v; encoding/json: %q, %v", doc, id, ts, wantID, wantTS)
	}
}

func TestReadDocHeadMatchesEncodingJSON(t *testing.T) {
	for _, doc := range docHeadSeeds(t) {
		name := doc
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) { sameHead(t, []byte(doc)) })
	}
}

func TestScanDocHeadTakesTheFastPath(t *testing.T) {
	// The documents the pipeline writes must not fall back to encoding/json,
	// or the fast path buys nothing.
	tests := []struct {
		name, doc, id string
	}{
		{name: "enriched event", doc: string(enrichedDoc("fast", 9)), id: "fast-00000000000000000000000000000009"},
		{name: "alert", doc: `{"@timestamp":"2026-11-25T10:00:00.123456789+01:00","event":{"id":"a-1","kind":"alert"},"rule":{"id":"r"},"message":"caf` + "\u00e9" + ` \"x\"","trailwatch":{"severity":"high","group_key":{"cl\u00e9":"v"},"count":10}}`, id: "a-1"},
		{name: "event without @timestamp", doc: `{"event":{"id":"x"}}`, id: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rawID, _, ok := scanDocHead([]byte(tt.doc))
			if !ok || string(rawID) != tt.id {
				t.Fatalf("scanDocHead = %q, ok %v; want %q on the fast path", rawID, ok, tt.id)
			}
			sameHead(t, []byte(tt.doc))
		})
	}
}

func FuzzReadDocHead(f *testing.F) {
	for _, doc := range docHeadSeeds(f) {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		sameHead(t, doc)
		// Whatever the fast scan accepts, encoding/json must accept too.
		if _, _, ok := scanDocHead(doc); ok && !json.Valid(doc) {
			t.Fatalf("scanDocHead accepted invalid JSON %q", doc)
		}
	})
}
