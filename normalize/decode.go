package normalize

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// DecodeEvent decodes the JSON event in data into *ev, which it resets
// first. It is a hand-written equivalent of json.Unmarshal into a zero
// schema.Event, the inverse of AppendEvent, and decodes exactly what
// json.Unmarshal decodes: the same value, or an error where json.Unmarshal
// fails.
//
// The fast path knows the schema's field names and the shapes AppendEvent
// writes. Anything else it leaves to encoding/json, which then decodes the
// whole input again: a key that is not a schema field (encoding/json matches
// keys case-insensitively), a null, a \u escape of a surrogate, invalid
// UTF-8, a number that is not an integer where the field is one, a time not
// in UTC, with escapes or with more than nine fractional digits, a repeated
// threat.enrichments, and every syntax error (so the error is
// encoding/json's).
//
// TestDecodeEventEveryField fails when a field is added to schema.Event
// and not here.
func DecodeEvent(data []byte, ev *schema.Event) error {
	*ev = schema.Event{}
	d := decoder{data: data}
	d.event(ev)
	if !d.bad {
		d.ws()
		if d.i == len(d.data) {
			return nil
		}
	}
	*ev = schema.Event{}
	return json.Unmarshal(data, ev)
}

// decoder reads JSON from data at i. Any input the fast path does not
// handle sets bad and moves i to the end, which ends every loop; callers
// look at bad once, at the end.
type decoder struct {
	data []byte
	i    int
	bad  bool
	buf  []byte // scratch for strings with escapes
}

func (d *decoder) fail() {
	d.bad = true
	d.i = len(d.data)
}

// ws skips JSON whitespace.
func (d *decoder) ws() { d.i = SkipJSONSpace(d.data, d.i) }

// peek returns the next byte after whitespace, or 0 at the end.
func (d *decoder) peek() byte {
	d.ws()
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

// enter consumes an opening delimiter ('{' or '[') and reports whether a
// member or element follows (false also consumes the closing delimiter).
func (d *decoder) enter(open, close byte) bool {
	if d.peek() != open {
		d.fail()
		return false
	}
	d.i++
	if d.peek() == close {
		d.i++
		return false
	}
	return !d.bad
}

// next consumes the separator after a member or element and reports
// whether another follows.
func (d *decoder) next(close byte) bool {
	switch d.peek() {
	case ',':
		d.i++
		return true
	case close:
		d.i++
		return false
	}
	d.fail()
	return false
}

// key reads an object member's name and its colon. Names with escapes go
// to the fallback: no schema field needs one.
func (d *decoder) key() []byte {
	if d.peek() != '"' {
		d.fail()
		return nil
	}
	start := d.i + 1
	for j := start; j < len(d.data); j++ {
		switch c := d.data[j]; {
		case c == '"':
			d.i = j + 1
			if d.peek() != ':' {
				d.fail()
				return nil
			}
			d.i++
			return d.data[start:j]
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			d.fail()
			return nil
		}
	}
	d.fail()
	return nil
}

// fields calls field for each member of an object; field decodes the
// value, or calls fail for a name it does not know.
func (d *decoder) fields(field func(key []byte)) {
	for more := d.enter('{', '}'); more; more = d.next('}') {
		k := d.key()
		if d.bad {
			return
		}
		field(k)
	}
}

// rawString reads a JSON string and returns its bytes, valid UTF-8, in data
// itself when it has no escapes and in d.buf otherwise.
func (d *decoder) rawString() []byte {
	if d.peek() != '"' {
		d.fail()
		return nil
	}
	start := d.i + 1
	ascii := true
	j := start + PlainJSONPrefix(d.data[start:])
	for ; j < len(d.data); j++ {
		c := d.data[j]
		if c == '"' {
			d.i = j + 1
			s := d.data[start:j]
			if !ascii && !utf8.Valid(s) {
				d.fail() // encoding/json replaces each bad byte with U+FFFD
				return nil
			}
			return s
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			d.fail()
			return nil
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if j >= len(d.data) {
		d.fail()
		return nil
	}
	b := append(d.buf[:0], d.data[start:j]...)
	for j < len(d.data) {
		c := d.data[j]
		switch {
		case c == '"':
			d.i = j + 1
			d.buf = b
			if !utf8.Valid(b) {
				d.fail()
				return nil
			}
			return b
		case c < 0x20:
			d.fail()
			return nil
		case c != '\\':
			b = append(b, c)
			j++
			continue
		}
		if j+1 >= len(d.data) {
			d.fail()
			return nil
		}
		switch e := d.data[j+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
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
			r, ok := rune(0), false
			if j+6 <= len(d.data) {
				r, ok = hex4(string(d.data[j+2:j+6]), 0)
			}
			if !ok || utf8.RuneLen(r) < 0 { // a surrogate: pairs go to the fallback
				d.fail()
				return nil
			}
			b = utf8.AppendRune(b, r)
			j += 4
		default:
			d.fail()
			return nil
		}
		j += 2
	}
	d.fail()
	return nil
}

func (d *decoder) str() string { return string(d.rawString()) }

// sym reads a JSON string of a low-cardinality field: one of few values,
// repeated across events, and returned from the symbol table.
func (d *decoder) sym() string { return symbols.intern(d.rawString()) }

// number returns the literal of a JSON number and whether it is an
// integer (no fraction, no exponent).
func (d *decoder) number() (lit []byte, integer bool) {
	d.ws()
	start, j := d.i, d.i
	digits := func() int {
		k := j
		for j < len(d.data) && '0' <= d.data[j] && d.data[j] <= '9' {
			j++
		}
		return j - k
	}
	if j < len(d.data) && d.data[j] == '-' {
		j++
	}
	if j < len(d.data) && d.data[j] == '0' {
		j++
	} else if digits() == 0 {
		d.fail()
		return nil, false
	}
	integer = true
	if j < len(d.data) && d.data[j] == '.' {
		j++
		integer = false
		if digits() == 0 {
			d.fail()
			return nil, false
		}
	}
	if j < len(d.data) && (d.data[j] == 'e' || d.data[j] == 'E') {
		j++
		integer = false
		if j < len(d.data) && (d.data[j] == '+' || d.data[j] == '-') {
			j++
		}
		if digits() == 0 {
			d.fail()
			return nil, false
		}
	}
	d.i = j
	return d.data[start:j], integer
}

// integer reads an integer that fits in bits; anything else (a fraction,
// an exponent, out of range) is encoding/json's to report.
func (d *decoder) integer(bits int) int64 {
	lit, ok := d.number()
	if !ok {
		d.fail()
		return 0
	}
	neg := lit[0] == '-'
	digits := lit
	if neg {
		digits = lit[1:]
	}
	if len(digits) > 18 {
		n, err := strconv.ParseInt(string(lit), 10, bits)
		if err != nil {
			d.fail()
		}
		return n
	}
	var n int64
	for _, c := range digits {
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	if bits < 64 && (n < -1<<(bits-1) || n >= 1<<(bits-1)) {
		d.fail()
		return 0
	}
	return n
}

func (d *decoder) float() float64 {
	lit, _ := d.number()
	if d.bad {
		return 0
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		d.fail()
	}
	return f
}

func (d *decoder) boolean() bool {
	d.ws()
	rest := d.data[d.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		d.i += 4
		return true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		d.i += 5
		return false
	}
	d.fail()
	return false
}

// strs reads an array of strings. Like encoding/json it returns an empty,
// non-nil slice for [].
func (d *decoder) strs() []string {
	out := []string{}
	for more := d.enter('[', ']'); more; more = d.next(']') {
		out = append(out, d.str())
	}
	return out
}

// syms reads an array of low-cardinality strings (event.category, …).
func (d *decoder) syms() []string {
	out := []string{}
	for more := d.enter('[', ']'); more; more = d.next(']') {
		out = append(out, d.sym())
	}
	return out
}

// strMap adds the members of an object of strings to m, made if nil, as
// encoding/json does.
func (d *decoder) strMap(m map[string]string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	for more := d.enter('{', '}'); more; more = d.next('}') {
		k := d.str()
		if d.peek() != ':' {
			d.fail()
			return m
		}
		d.i++
		m[k] = d.str()
	}
	return m
}

// time reads an RFC 3339 time in UTC as AppendEvent writes it
// (2006-01-02T15:04:05.999999999Z); other forms go to the fallback, which
// parses them as time.Time.UnmarshalJSON does.
func (d *decoder) time() time.Time {
	d.ws()
	from := d.i
	s := d.rawString()
	if d.bad {
		return time.Time{}
	}
	if d.i-from-2 != len(s) {
		d.fail() // time.Time.UnmarshalJSON reads the string's bytes as they are: no escapes
		return time.Time{}
	}
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		d.fail()
		return time.Time{}
	}
	num := func(b []byte) int {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				d.fail()
				return 0
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(s[0:4]), num(s[5:7]), num(s[8:10])
	hour, minute, sec := num(s[11:13]), num(s[14:16]), num(s[17:19])
	nsec := 0
	if frac := s[19 : len(s)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			d.fail()
			return time.Time{}
		}
		nsec = num(frac[1:])
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	if d.bad || month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		d.fail()
		return time.Time{}
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
}
