package normalize

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON walker for the cloud and generic sources (aws_apigateway,
// cloudtrail, gcp_audit, ecs). encoding/json spends most of its time on reflection and on
// materialising request/response bodies these sources never read; the
// walker checks the whole input's syntax in one pass, reports the scalars
// it is asked for by dotted path ("userIdentity.sessionContext.attributes.
// mfaAuthenticated") and skips the rest without allocating.

// cjMaxDepth bounds nesting; deeper input is refused, not recursed into.
const cjMaxDepth = 256

// cjVal is one scalar value: kind is '"' (string), '0' (number), 't', 'f'
// or 'n' (null); raw is the string's undecoded content or the literal.
type cjVal struct {
	raw  []byte
	kind byte
	esc  bool
}

// str returns a string decoded (valid UTF-8), a number or boolean as
// written, and "" for null.
func (v cjVal) str() string {
	switch v.kind {
	case 'n':
		return ""
	case '"':
		if !v.esc {
			if utf8.Valid(v.raw) {
				return string(v.raw)
			}
			return string(cjUnescape(v.raw))
		}
		return string(cjUnescape(v.raw))
	}
	return string(v.raw)
}

// cjWalker walks JSON text. enter, when set, is asked before descending
// into an object (object true) or array at a path; refused subtrees are
// checked and skipped. leaf receives every scalar under an entered path, array
// elements under the array's path.
type cjWalker struct {
	data  []byte
	i     int
	path  []byte
	enter func(path []byte, object bool) bool
	leaf  func(path []byte, v cjVal) error
}

// cjLiterals are the JSON literals, shared so reporting one never allocates.
var cjLiterals = [...][]byte{[]byte("true"), []byte("false"), []byte("null")}

func (w *cjWalker) errf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: "+format, append([]any{w.i}, args...)...)
}

// walkAll walks data, which must hold exactly one JSON value.
func (w *cjWalker) walkAll() error {
	w.ws()
	if err := w.value(0, true); err != nil {
		return err
	}
	w.ws()
	if w.i != len(w.data) {
		return w.errf("data after the JSON value")
	}
	return nil
}

func (w *cjWalker) ws() { w.i = SkipJSONSpace(w.data, w.i) }

// expect consumes byte c after optional white space.
func (w *cjWalker) expect(c byte) error {
	w.ws()
	if w.i >= len(w.data) {
		return w.errf("truncated, want %q", c)
	}
	if w.data[w.i] != c {
		return w.errf("want %q, got %q", c, w.data[w.i])
	}
	w.i++
	return nil
}

// value reads one value at w.i; report says whether scalars are reported.
func (w *cjWalker) value(depth int, report bool) error {
	if w.i >= len(w.data) {
		return w.errf("truncated, want a value")
	}
	switch c := w.data[w.i]; {
	case c == '{' || c == '[':
		if depth >= cjMaxDepth {
			return w.errf("nested deeper than %d", cjMaxDepth)
		}
		if report && w.enter != nil && !w.enter(w.path, c == '{') {
			report = false
		}
		if c == '{' {
			return w.object(depth+1, report)
		}
		return w.array(depth+1, report)
	case c == '"':
		raw, esc, err := w.str()
		if err != nil {
			return err
		}
		if report && w.leaf != nil {
			return w.leaf(w.path, cjVal{raw: raw, kind: '"', esc: esc})
		}
		return nil
	case c == '-' || '0' <= c && c <= '9':
		start := w.i
		if err := w.number(); err != nil {
			return err
		}
		if report && w.leaf != nil {
			return w.leaf(w.path, cjVal{raw: w.data[start:w.i], kind: '0'})
		}
		return nil
	default:
		for _, lit := range cjLiterals {
			if len(w.data)-w.i >= len(lit) && string(w.data[w.i:w.i+len(lit)]) == string(lit) {
				w.i += len(lit)
				if report && w.leaf != nil {
					return w.leaf(w.path, cjVal{raw: lit, kind: lit[0]})
				}
				return nil
			}
		}
		return w.errf("unexpected %q", c)
	}
}

// object reads {...} with w.data[w.i] == '{'.
func (w *cjWalker) object(depth int, report bool) error {
	w.i++
	base := len(w.path)
	defer func() { w.path = w.path[:base] }()
	w.ws()
	if w.i < len(w.data) && w.data[w.i] == '}' {
		w.i++
		return nil
	}
	for {
		w.ws()
		if w.i >= len(w.data) || w.data[w.i] != '"' {
			return w.errf("want an object key")
		}
		key, esc, err := w.str()
		if err != nil {
			return err
		}
		w.path = w.path[:base]
		if base > 0 {
			w.path = append(w.path, '.')
		}
		if esc || !utf8.Valid(key) {
			key = cjUnescape(key)
		}
		w.path = append(w.path, key...)
		if err := w.expect(':'); err != nil {
			return err
		}
		w.ws()
		if err := w.value(depth, report); err != nil {
			return err
		}
		w.ws()
		if w.i >= len(w.data) {
			return w.errf("truncated object")
		}
		switch w.data[w.i] {
		case ',':
			w.i++
		case '}':
			w.i++
			return nil
		default:
			return w.errf("want ',' or '}', got %q", w.data[w.i])
		}
	}
}

// array reads [...] with w.data[w.i] == '['.
func (w *cjWalker) array(depth int, report bool) error {
	w.i++
	w.ws()
	if w.i < len(w.data) && w.data[w.i] == ']' {
		w.i++
		return nil
	}
	for {
		w.ws()
		if err := w.value(depth, report); err != nil {
			return err
		}
		w.ws()
		if w.i >= len(w.data) {
			return w.errf("truncated array")
		}
		switch w.data[w.i] {
		case ',':
			w.i++
		case ']':
			w.i++
			return nil
		default:
			return w.errf("want ',' or ']', got %q", w.data[w.i])
		}
	}
}

// str reads a string with w.data[w.i] == '"', returning its raw content.
func (w *cjWalker) str() (raw []byte, esc bool, err error) {
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
					return nil, false, w.errf("invalid \\u escape")
				}
				j += 4
			default:
				w.i = j
				return nil, false, w.errf("invalid escape")
			}
		case c < 0x20:
			w.i = j
			return nil, false, w.errf("control character in string")
		}
	}
	w.i = start - 1
	return nil, false, w.errf("unterminated string")
}

// number checks the JSON number grammar.
func (w *cjWalker) number() error {
	d, i := w.data, w.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	digitsFrom := func(i int) int {
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		return i
	}
	j := digitsFrom(i)
	if j == i || (d[i] == '0' && j > i+1) {
		return w.errf("invalid number")
	}
	i = j
	if i < len(d) && d[i] == '.' {
		if j = digitsFrom(i + 1); j == i+1 {
			return w.errf("invalid number")
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if j = digitsFrom(i); j == i {
			return w.errf("invalid number")
		}
		i = j
	}
	w.i = i
	return nil
}

// cjUnescape decodes a string's escapes (already checked by str) and
// replaces invalid UTF-8 and lone surrogates with U+FFFD.
func cjUnescape(s []byte) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			if c < utf8.RuneSelf {
				b = append(b, c)
				continue
			}
			r, size := utf8.DecodeRune(s[i:])
			b = utf8.AppendRune(b, r) // RuneError for invalid bytes
			i += size - 1
			continue
		}
		i++
		switch s[i] {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			if i+4 >= len(s) {
				b = append(b, "\uFFFD"...)
				i = len(s)
				continue
			}
			r1, _ := strconv.ParseUint(string(s[i+1:i+5]), 16, 32)
			i += 4
			r := rune(r1)
			if utf16.IsSurrogate(r) {
				if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if r2, err := strconv.ParseUint(string(s[i+3:i+7]), 16, 32); err == nil {
						if d := utf16.DecodeRune(r, rune(r2)); d != utf8.RuneError {
							r = d
							i += 6
						} else {
							r = utf8.RuneError
						}
					}
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
		default: // '"', '\\', '/'
			b = append(b, s[i])
		}
	}
	return b
}
