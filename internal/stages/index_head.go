package stages

import (
	"encoding/json"
	"time"

	"github.com/trailwatch/trailwatch/normalize"
)

// readDocHead returns a document's event.id and @timestamp exactly as
// json.Unmarshal into docHead would (decodeDocHead), for about a tenth of
// the CPU: encoding/json scans a ~1.2 KB document twice (validation, then
// decoding with reflection), while scanDocHead validates it in one pass and
// only looks at the keys of the top level and of "event". Whenever the scan
// is unsure (invalid JSON, escaped or non-ASCII keys, a repeated key, a
// non-string value, a timestamp time.Time refuses), encoding/json decides,
// so errors keep their exact text. FuzzReadDocHead checks the two agree.
func readDocHead(b []byte) (id string, ts time.Time, err error) {
	rawID, rawTS, ok := scanDocHead(b)
	if !ok {
		return decodeDocHead(b)
	}
	if rawTS != nil {
		// The same call encoding/json makes: the quoted string as written.
		if ts.UnmarshalJSON(rawTS) != nil {
			return decodeDocHead(b)
		}
	}
	return string(rawID), ts, nil
}

// decodeDocHead reads event.id and @timestamp with encoding/json: the
// reference readDocHead must agree with, and its fallback.
func decodeDocHead(b []byte) (id string, ts time.Time, err error) {
	var head docHead
	err = json.Unmarshal(b, &head)
	return head.Event.ID, head.Timestamp, err
}

type docHead struct {
	Timestamp time.Time `json:"@timestamp"`
	Event     struct {
		ID string `json:"id"`
	} `json:"event"`
}

// maxScanDepth bounds scanDocHead's recursion; deeper documents go to
// encoding/json (whose own limit is 10000).
const maxScanDepth = 256

// Byte classes inside a JSON string.
const (
	strASCII   = iota // printable ASCII other than '"' and '\'
	strHigh           // a byte of a multi-byte character (not checked: encoding/json does not either)
	strSpecial        // '"', '\' or a control character
)

var strClass = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c < 0x20 || c == '"' || c == '\\':
			t[c] = strSpecial
		case c >= 0x80:
			t[c] = strHigh
		}
	}
	return t
}()

// scanDocHead validates b as one JSON object and returns the raw bytes of
// the top-level "@timestamp" string (quotes included) and of the string
// "event"."id" (quotes excluded), nil when absent. ok is false when b is
// not valid JSON or the scan cannot be sure to match encoding/json: keys
// are matched case-insensitively as encoding/json does, so a key with an
// escape or a non-ASCII byte, a repeated key, or a @timestamp/event/id value
// of another type or with escapes, all make it give up.
func scanDocHead(b []byte) (rawID, rawTS []byte, ok bool) {
	s := headScan{b: b}
	s.space()
	if !s.byte('{') {
		return nil, nil, false
	}
	var sawTS, sawEvent bool
	ok = s.members(func(key []byte) bool {
		switch {
		case asciiFold(key, "@timestamp"):
			if sawTS {
				return false
			}
			sawTS = true
			start := s.i
			if !s.string() {
				return false
			}
			rawTS = b[start:s.i]
			return true
		case asciiFold(key, "event"):
			if sawEvent || !s.byte('{') {
				return false
			}
			sawEvent = true
			var sawID bool
			return s.members(func(key []byte) bool {
				if !asciiFold(key, "id") {
					return s.value(1)
				}
				start := s.i
				if sawID || !s.string() {
					return false
				}
				sawID = true
				rawID = b[start+1 : s.i-1]
				return true
			})
		default:
			return s.value(1)
		}
	})
	s.space()
	if !ok || s.i != len(b) {
		return nil, nil, false
	}
	return rawID, rawTS, true
}

// headScan is scanDocHead's cursor.
type headScan struct {
	b []byte
	i int
}

func (s *headScan) space() { s.i = normalize.SkipJSONSpace(s.b, s.i) }

// byte consumes c if it is next.
func (s *headScan) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// members scans the members of an object whose '{' was consumed, through
// its '}', calling member after each key's ':' to consume the value. A key
// that is not plain (see string) fails the scan: these are the objects
// whose keys encoding/json matches against field names, case-insensitively.
func (s *headScan) members(member func(key []byte) bool) bool {
	s.space()
	if s.byte('}') {
		return true
	}
	for {
		start := s.i
		if !s.string() {
			return false
		}
		key := s.b[start+1 : s.i-1]
		s.space()
		if !s.byte(':') {
			return false
		}
		s.space()
		if !member(key) {
			return false
		}
		s.space()
		if s.byte(',') {
			s.space()
			continue
		}
		return s.byte('}')
	}
}

// string consumes a string and reports whether it was valid and plain:
// printable ASCII without escapes. A valid string that is not plain also
// returns false: the callers that need its value then give up, and the
// other callers use skipString.
func (s *headScan) string() bool {
	b, i := s.b, s.i
	if i >= len(b) || b[i] != '"' {
		return false
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; strClass[c] {
		case strASCII:
		case strSpecial:
			s.i = i + 1
			return c == '"'
		default:
			return false
		}
	}
	return false
}

// skipString consumes any valid string, escapes and non-ASCII included.
// Strings are most of a document's bytes: plain runs go eight at a time.
func (s *headScan) skipString() bool {
	b, i := s.b, s.i
	if i >= len(b) || b[i] != '"' {
		return false
	}
	i++
	for {
		i += normalize.PlainJSONPrefix(b[i:])
		if i >= len(b) {
			return false
		}
		c := b[i]
		i++
		if strClass[c] != strSpecial {
			continue
		}
		switch c {
		case '"':
			s.i = i
			return true
		case '\\':
			if i >= len(b) {
				return false
			}
			e := b[i]
			i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 > len(b) {
					return false
				}
				for _, h := range b[i : i+4] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				i += 4
			default:
				return false
			}
		default:
			return false // a control character
		}
	}
}

// value consumes one valid JSON value of any kind.
func (s *headScan) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxScanDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{' || c == '[':
		// An object's members are "key": value, an array's just values.
		end := byte(']')
		if c == '{' {
			end = '}'
		}
		s.i++
		s.space()
		if s.byte(end) {
			return true
		}
		for {
			if c == '{' {
				if !s.skipString() {
					return false
				}
				s.space()
				if !s.byte(':') {
					return false
				}
				s.space()
			}
			if !s.value(depth + 1) {
				return false
			}
			s.space()
			if s.byte(',') {
				s.space()
				continue
			}
			return s.byte(end)
		}
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	default:
		return s.literal("true") || s.literal("false") || s.literal("null")
	}
}

func (s *headScan) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// number consumes a number as RFC 8259 writes it.
func (s *headScan) number() bool {
	s.byte('-')
	switch {
	case s.byte('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.byte('.') && s.digits() == 0 {
		return false
	}
	if s.byte('e') || s.byte('E') {
		if !s.byte('+') {
			s.byte('-')
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *headScan) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// asciiFold reports whether the printable-ASCII key equals name (lower
// case) ignoring case, as encoding/json matches field names.
func asciiFold(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range key {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}
