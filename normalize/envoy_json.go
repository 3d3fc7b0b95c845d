package normalize

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The access logs of Envoy, Traefik, Caddy and Kong are JSON objects of a
// few dozen scalar fields, some nested a level or two. encoding/json spends
// most of its time on reflection for them, so these sources walk the bytes
// once with gwWalk and pick the fields they know by dotted path; values of
// unknown fields are validated and skipped, never materialised.

// gwVal is one scalar JSON value met by gwWalk.
type gwVal struct {
	kind byte   // '"' string, '0' number, 't' true, 'f' false, 'n' null
	raw  []byte // a string's bytes between the quotes (still escaped), or the literal
	esc  bool   // the string holds a backslash escape
}

// str returns a string value decoded, a number or boolean as written, and
// "" for null.
func (v gwVal) str() string {
	switch v.kind {
	case '"':
		if !v.esc {
			return string(v.raw)
		}
		var s string
		q := make([]byte, 0, len(v.raw)+2)
		q = append(append(append(q, '"'), v.raw...), '"')
		if json.Unmarshal(q, &s) != nil {
			return string(v.raw)
		}
		return s
	case 'n':
		return ""
	}
	return string(v.raw)
}

// num returns a number value, also accepting a number written as a string
// ("12") and treating null, "" and "-" as 0.
func (v gwVal) num() (float64, bool) {
	switch v.kind {
	case '0':
	case 'n':
		return 0, true
	case '"':
		if len(v.raw) == 0 || string(v.raw) == "-" {
			return 0, true
		}
	default:
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v.raw), 64)
	return f, err == nil
}

// gwWalker walks one JSON object, calling fn with the dotted path of every
// scalar value ("request.headers.User-Agent"); elements of an array of
// scalars are passed one by one under the array's path.
type gwWalker struct {
	src  string
	data []byte
	i    int
	path []byte
	fn   func(path []byte, v gwVal) error
}

// gwWalk walks data, which must hold exactly one JSON object. Errors name
// the source and the byte offset.
func gwWalk(source string, data []byte, fn func(path []byte, v gwVal) error) error {
	w := gwWalker{src: source, data: data, fn: fn}
	var pathBuf [128]byte
	w.path = pathBuf[:0]
	w.ws()
	if w.i >= len(w.data) || w.data[w.i] != '{' {
		return w.errf("expected '{'")
	}
	if err := w.object(1); err != nil {
		return err
	}
	w.ws()
	if w.i != len(w.data) {
		return w.errf("unexpected data after the object")
	}
	return nil
}

func (w *gwWalker) errf(format string, args ...any) error {
	return fmt.Errorf("%s: invalid JSON at byte %d: %s", w.src, w.i, fmt.Sprintf(format, args...))
}

func (w *gwWalker) ws() { w.i = SkipJSONSpace(w.data, w.i) }

// object reads {...} with w.data[w.i] == '{'.
func (w *gwWalker) object(depth int) error {
	if depth > gwMaxDepth {
		return w.errf("nested deeper than %d levels", gwMaxDepth)
	}
	w.i++
	base := len(w.path)
	w.ws()
	if w.i < len(w.data) && w.data[w.i] == '}' {
		w.i++
		return nil
	}
	for {
		w.ws()
		if w.i >= len(w.data) || w.data[w.i] != '"' {
			return w.errf("expected a key")
		}
		key, _, err := w.str()
		if err != nil {
			return err
		}
		w.ws()
		if w.i >= len(w.data) || w.data[w.i] != ':' {
			return w.errf("expected ':'")
		}
		w.i++
		w.path = w.path[:base]
		if base > 0 {
			w.path = append(w.path, '.')
		}
		w.path = append(w.path, key...)
		if err := w.value(depth, false); err != nil {
			return err
		}
		w.path = w.path[:base]
		w.ws()
		if w.i >= len(w.data) {
			return w.errf("unterminated object")
		}
		switch w.data[w.i] {
		case ',':
			w.i++
		case '}':
			w.i++
			return nil
		default:
			return w.errf("expected ',' or '}'")
		}
	}
}

// value reads any value at w.i and reports scalars to fn.
func (w *gwWalker) value(depth int, inArray bool) error {
	w.ws()
	if w.i >= len(w.data) {
		return w.errf("unexpected end of input")
	}
	var v gwVal
	switch c := w.data[w.i]; {
	case c == '{':
		return w.object(depth + 1)
	case c == '[':
		return w.array(depth + 1)
	case c == '"':
		raw, esc, err := w.str()
		if err != nil {
			return err
		}
		v = gwVal{kind: '"', raw: raw, esc: esc}
	case c == '-' || '0' <= c && c <= '9':
		start := w.i
		if err := w.number(); err != nil {
			return err
		}
		v = gwVal{kind: '0', raw: w.data[start:w.i]}
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if strings.HasPrefix(string(w.data[w.i:min(len(w.data), w.i+5)]), lit) {
				v = gwVal{kind: lit[0], raw: w.data[w.i : w.i+len(lit)]}
				w.i += len(lit)
				break
			}
		}
		if v.kind == 0 {
			return w.errf("unexpected character %q", c)
		}
	}
	return w.fn(w.path, v)
}

// array reads [...]; scalar elements are reported under the array's path.
func (w *gwWalker) array(depth int) error {
	if depth > gwMaxDepth {
		return w.errf("nested deeper than %d levels", gwMaxDepth)
	}
	w.i++
	w.ws()
	if w.i < len(w.data) && w.data[w.i] == ']' {
		w.i++
		return nil
	}
	for {
		if err := w.value(depth, true); err != nil {
			return err
		}
		w.ws()
		if w.i >= len(w.data) {
			return w.errf("unterminated array")
		}
		switch w.data[w.i] {
		case ',':
			w.i++
		case ']':
			w.i++
			return nil
		default:
			return w.errf("expected ',' or ']'")
		}
	}
}

// str reads a string with w.data[w.i] == '"' and returns its raw contents.
func (w *gwWalker) str() (raw []byte, esc bool, err error) {
	start := w.i + 1
	for j := start; j < len(w.data); j++ {
		switch c := w.data[j]; {
		case c == '"':
			w.i = j + 1
			return w.data[start:j], esc, nil
		case c == '\\':
			esc = true
			j++
			if j >= len(w.data) {
				break
			}
			switch w.data[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(w.data) || !isHex(w.data[j+1]) || !isHex(w.data[j+2]) || !isHex(w.data[j+3]) || !isHex(w.data[j+4]) {
					w.i = j
					return nil, false, w.errf("bad \\u escape")
				}
				j += 4
			default:
				w.i = j
				return nil, false, w.errf("bad escape")
			}
		case c < 0x20:
			w.i = j
			return nil, false, w.errf("control character in string")
		}
	}
	w.i = start - 1
	return nil, false, w.errf("unterminated string")
}

// number checks the JSON number grammar loosely (digits, sign, '.', exponent).
func (w *gwWalker) number() error {
	start := w.i
	if w.data[w.i] == '-' {
		w.i++
	}
	digitsSeen := false
	for w.i < len(w.data) {
		c := w.data[w.i]
		if '0' <= c && c <= '9' {
			digitsSeen = true
		} else if c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-' {
			break
		}
		w.i++
	}
	if !digitsSeen || w.i-start > 64 {
		w.i = start
		return w.errf("bad number")
	}
	if _, err := strconv.ParseFloat(string(w.data[start:w.i]), 64); err != nil {
		w.i = start
		return w.errf("bad number")
	}
	return nil
}

// gwJSONRecord prepares a JSON record for gwWalk: size and shape checks,
// and invalid UTF-8 replaced (reported so the event is tagged).
func gwJSONRecord(source string, data []byte) ([]byte, bool, error) {
	valid, err := gwCheckJSON(source, data)
	if err != nil {
		return nil, false, err
	}
	if !valid {
		data = []byte(strings.ToValidUTF8(string(data), "\uFFFD"))
	}
	return data, !valid, nil
}
