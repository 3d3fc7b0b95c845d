package normalize

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// logFormat is a format string (an nginx log_format, an Apache LogFormat)
// compiled into a scanner: literal text alternating with fields. lits[i]
// precedes fields[i] and lits[len(fields)] ends the line. A field's value
// ends where the literal after it starts (stops[i], extended by "[" when
// the next field is a bracketed time so a user name with spaces survives);
// a literal starting with '"' is not matched where the quote is escaped by
// an odd number of backslashes, so quoted values may hold \" (Apache,
// nginx escape=json) as well as \x22 (nginx's default escaping).
type logFormat struct {
	src    string // source name errors start with: "nginx", "apache"
	lits   []string
	fields []lfField
	stops  []string
}

// lfMeta is what a format-driven normalizer stamps on every event.
type lfMeta struct {
	source, dataset, module string
}

// lfParser fills an event from one line; *logFormat and *NginxJSON's
// scanner implement it.
type lfParser interface {
	parse(st *lfState) error
}

// newLogFormat checks a compiled format: at least one field, a time field,
// and a literal between any two fields (without one, nothing tells where
// the first value ends).
func newLogFormat(src string, lits []string, fields []lfField) (*logFormat, error) {
	if len(fields) == 0 {
		return nil, fmt.Errorf("format has no fields")
	}
	hasTime := false
	for i := range fields {
		if fields[i].kind.isTime() {
			hasTime = true
		}
		if i > 0 && lits[i] == "" {
			return nil, fmt.Errorf("format: %s and %s have no text between them, so a line cannot be split", fields[i-1].name, fields[i].name)
		}
	}
	if !hasTime {
		return nil, fmt.Errorf("format has no time field: every event needs its own time")
	}
	f := &logFormat{src: src, lits: lits, fields: fields, stops: make([]string, len(fields))}
	for i := range fields {
		f.stops[i] = lits[i+1]
		if i+1 < len(fields) && fields[i+1].kind == lfTimeBracket && lits[i+1] != "" {
			f.stops[i] += "["
		}
	}
	return f, nil
}

// parse scans one line against the format and applies each field.
func (f *logFormat) parse(st *lfState) error {
	line := st.line
	if !strings.HasPrefix(line, f.lits[0]) {
		return fmt.Errorf("%s: line does not match the format at byte 0: expected %q", f.src, clip(f.lits[0]))
	}
	pos := len(f.lits[0])
	for i := range f.fields {
		fd := &f.fields[i]
		end := len(line)
		if fd.kind == lfTimeBracket {
			// "[…]" holds a space, so it ends at its own ']'.
			end = -1
			if k := strings.IndexByte(line[pos:], ']'); k >= 0 && strings.HasPrefix(line[pos+k+1:], f.lits[i+1]) {
				end = pos + k + 1
			}
			if end < 0 {
				return fmt.Errorf("%s: line does not match the format at byte %d: field %d (%s): no \"]%s\" after it",
					f.src, pos, i+1, fd.name, clip(f.lits[i+1]))
			}
		} else if stop := f.stops[i]; stop != "" {
			end = lfFindStop(line, pos, stop)
			if end < 0 {
				return fmt.Errorf("%s: line does not match the format at byte %d: field %d (%s): no %q after it",
					f.src, pos, i+1, fd.name, clip(f.lits[i+1]))
			}
		}
		val := line[pos:end]
		if what := st.apply(fd, val); what != "" {
			return fmt.Errorf("%s: field %d (%s): %s %q", f.src, i+1, fd.name, what, clip(val))
		}
		pos = end + len(f.lits[i+1])
	}
	if pos != len(line) {
		return fmt.Errorf("%s: line does not match the format at byte %d: unexpected text after the last field", f.src, pos)
	}
	return nil
}

// lfFindStop returns the index of stop in s at or after from, skipping a
// quote escaped by an odd number of backslashes, or -1.
func lfFindStop(s string, from int, stop string) int {
	for j := from; j <= len(s); {
		// IndexByte on the first byte, then a prefix check: stops are a few
		// bytes long, where this beats strings.Index's setup.
		k := strings.IndexByte(s[j:], stop[0])
		if k < 0 {
			return -1
		}
		k += j
		if len(stop) > 1 && !strings.HasPrefix(s[k+1:], stop[1:]) {
			j = k + 1
			continue
		}
		if stop[0] == '"' {
			bs := 0
			for b := k - 1; b >= from && s[b] == '\\'; b-- {
				bs++
			}
			if bs%2 == 1 {
				j = k + 1
				continue
			}
		}
		return k
	}
	return -1
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	const maxShown = 64
	if len(s) > maxShown {
		return s[:maxShown] + "..."
	}
	return s
}

// lfNormalize runs one record through a format parser and stamps the
// event; on error dst is returned unchanged.
func lfNormalize(dst []schema.Event, rec *ingest.Record, m *lfMeta, p lfParser) ([]schema.Event, error) {
	data := rec.Data
	if len(data) > MaxLineBytes {
		return dst, fmt.Errorf("%s: line is %d bytes, over the %d-byte limit", m.source, len(data), MaxLineBytes)
	}
	if k := len(data); k > 0 && data[k-1] == '\r' {
		data = data[:k-1]
	}
	line := string(data)
	invalid := false
	if !utf8.ValidString(line) {
		line = strings.ToValidUTF8(line, "\uFFFD")
		invalid = true
	}
	dst = append(dst, schema.Event{})
	ev := &dst[len(dst)-1]
	st := lfState{ev: ev, line: line, invalid: invalid}
	// Static calls: through the interface the state would escape to the
	// heap, one more allocation per line.
	var err error
	switch p := p.(type) {
	case *logFormat:
		err = p.parse(&st)
	case nginxJSONParser:
		err = p.parse(&st)
	default:
		h := st
		err = p.parse(&h)
		st = h
	}
	if err == nil {
		err = st.finish(m)
	}
	if err != nil {
		*ev = schema.Event{}
		return dst[:len(dst)-1], err
	}
	ev.Event.ID = rec.ID()
	ev.Trailwatch.Source = m.source
	ev.Trailwatch.Raw = schema.RawRef{Origin: rec.Origin, Offset: rec.Offset, Collector: rec.Collector}
	if st.invalid {
		ev.Tags = append(ev.Tags, TagInvalidUTF8)
	}
	ev.Trailwatch.Actor = ev.ActorKey()
	return dst, nil
}

// lfUnescape undoes the escaping nginx (\xHH; \" \\ \uXXXX and friends
// under escape=json) and Apache (\xhh, \" \\ \n \t \r \b \v) write. Neither
// server writes a bare backslash, so every backslash starts an escape; an
// unknown one is kept as is. It reports whether the decoded bytes were not
// valid UTF-8 (they are then replaced with U+FFFD).
func lfUnescape(s string) (string, bool) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, false
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b = append(b, c)
			continue
		}
		n := s[i+1]
		switch n {
		case 'x':
			if i+3 < len(s) && isHex(s[i+2]) && isHex(s[i+3]) {
				b = append(b, unhex(s[i+2])<<4|unhex(s[i+3]))
				i += 3
				continue
			}
		case 'u':
			if r, ok := hex4(s, i+2); ok {
				i += 5
				if 0xD800 <= r && r < 0xDC00 && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if r2, ok := hex4(s, i+3); ok && 0xDC00 <= r2 && r2 < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
						i += 6
					}
				}
				b = utf8.AppendRune(b, r) // a lone surrogate becomes U+FFFD
				continue
			}
		case '"', '\\', '/':
			b = append(b, n)
			i++
			continue
		case 'n', 't', 'r', 'b', 'f', 'v':
			b = append(b, "\n\t\r\b\f\v"[strings.IndexByte("ntrbfv", n)])
			i++
			continue
		}
		b = append(b, c)
	}
	if !utf8.Valid(b) {
		return strings.ToValidUTF8(string(b), "\uFFFD"), true
	}
	return string(b), false
}

// hex4 reads four hex digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for k := i; k < i+4; k++ {
		if !isHex(s[k]) {
			return 0, false
		}
		r = r<<4 | rune(unhex(s[k]))
	}
	return r, true
}

// lfIsIP reports whether s is an IP address.
func lfIsIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
