package httpin

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestFormatOf(t *testing.T) {
	tests := []struct {
		contentType string
		body        string
		want        format
		ok          bool
	}{
		{"application/x-ndjson", "", formatNDJSON, true},
		{"application/jsonl", "", formatNDJSON, true},
		{"Application/JSON; charset=utf-8", "", formatJSON, true},
		{"text/plain; charset=utf-8", "{}", formatText, true},
		{"", "\n {\"a\":1}", formatJSON, true},
		{"", "[1]", formatJSON, true},
		{"", "GET / 200", formatText, true},
		{"application/x-www-form-urlencoded", "", 0, false},
		{"not a media type;;", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.contentType+"|"+tt.body, func(t *testing.T) {
			got, ok := formatOf(tt.contentType, []byte(tt.body))
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("formatOf = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestSplitErrors(t *testing.T) {
	tests := []struct {
		name string
		f    format
		body string
		want string
	}{
		{"unterminated string", formatJSON, `["abc`, `record 0 at byte 1: unterminated string`},
		{"missing comma", formatJSON, `[1 2]`, `record 1 at byte 3: expected ',' or ']'`},
		{"trailing comma", formatJSON, `[1,]`, `record 1 at byte 3: unexpected ']'`},
		{"leading comma", formatJSON, `[,1]`, `record 0 at byte 1: unexpected ','`},
		{"mismatched brackets", formatJSON, `{"a":[1}`, `record 0 at byte 7: unexpected '}', expected ']'`},
		{"unclosed object", formatJSON, `{"a":{`, `record 0 at byte 6: unexpected end of JSON (2 unclosed brackets)`},
		{"stray closer at top", formatJSON, `{} }`, `record 1 at byte 3: unexpected '}'`},
		{"ndjson too deep", formatNDJSON, "[]\n  [[[[", `record 1 at byte 8: nesting deeper than 3 levels`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := splitter{maxDepth: 3}
			_, err := s.split(nil, tt.f, []byte(tt.body))
			if _, ok := errors.AsType[*decodeError](err); !ok || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("split(%q) = %v, want a decodeError containing %q", tt.body, err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(uint8(formatJSON), kongEntry(f))
	f.Add(uint8(formatJSON), []byte(`[{"a":"]\"}"},[1,[2]] , "s\\" ,42,true,null]`))
	f.Add(uint8(formatJSON), []byte("{\"a\":1}\n{\"b\":2} [3,4]"))
	f.Add(uint8(formatJSON), []byte(strings.Repeat("[", 70)+strings.Repeat("]", 70)))
	f.Add(uint8(formatNDJSON), []byte("{\"a\":1}\r\n\n {\"b\":\"\\\"[\"}\n"))
	f.Add(uint8(formatText), []byte("line\r\nline 2\n\n"))
	f.Add(uint8(formatJSON), []byte("[\"\\\\\",\"\xff\"]"))
	f.Fuzz(func(t *testing.T, fb uint8, body []byte) {
		f := format(fb % 3)
		s := splitter{maxDepth: 64}
		recs, err := s.split(nil, f, body)
		if err != nil {
			if _, ok := errors.AsType[*decodeError](err); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if f == formatText {
				t.Fatalf("text split failed: %v", err)
			}
			if f == formatJSON && json.Valid(body) && !strings.Contains(err.Error(), "nesting deeper") {
				t.Fatalf("valid JSON refused: %v", err)
			}
			return
		}
		for i, r := range recs {
			if len(r) == 0 {
				t.Fatalf("record %d is empty", i)
			}
			if f != formatJSON && bytes.IndexByte(r, '\n') >= 0 {
				t.Fatalf("line record %d holds a newline: %q", i, r)
			}
		}
		if f != formatJSON || !json.Valid(body) {
			return
		}
		// On valid JSON the elements are exactly what encoding/json sees.
		trimmed := bytes.TrimSpace(body)
		if trimmed[0] != '[' {
			if len(recs) != 1 || !bytes.Equal(recs[0], trimmed) {
				t.Fatalf("value %q split into %q", trimmed, recs)
			}
			return
		}
		var want []json.RawMessage
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(recs, want, func(a []byte, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Fatalf("array %q split into %q, encoding/json sees %q", body, recs, want)
		}
	})
}
