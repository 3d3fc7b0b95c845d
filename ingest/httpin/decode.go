package httpin

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"mime"
)

// format is how a request body is split into records.
type format int

const (
	// formatNDJSON: one record per non-blank line.
	formatNDJSON format = iota
	// formatJSON: a sequence of top-level JSON values; an array is expanded
	// into one record per element, any other value is one record.
	formatJSON
	// formatText: one record per non-empty line.
	formatText
)

func (f format) String() string {
	switch f {
	case formatNDJSON:
		return "ndjson"
	case formatJSON:
		return "json"
	default:
		return "text"
	}
}

// formatOf picks the body format from the Content-Type header. Without a
// Content-Type the body is sniffed: JSON if its first non-space byte is "{"
// or "[", text otherwise. ok is false for a media type it does not read.
func formatOf(contentType string, body []byte) (f format, ok bool) {
	if contentType == "" {
		i := skipSpace(body, 0)
		if i < len(body) && (body[i] == '{' || body[i] == '[') {
			return formatJSON, true
		}
		return formatText, true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl",
		"application/x-jsonlines", "application/jsonlines":
		return formatNDJSON, true
	case "application/json":
		return formatJSON, true
	case "text/plain":
		return formatText, true
	}
	return 0, false
}

// decodeError says where a body could not be split. It becomes a 400, or
// a 413 if TooMany.
type decodeError struct {
	Index   int // the record being read (0-based)
	Offset  int // byte offset in the (decompressed) body
	Reason  string
	TooMany bool // the body holds more than maxRecords records
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("record %d at byte %d: %s", e.Index, e.Offset, e.Reason)
}

// splitter cuts bodies into records. Records are sub-slices of the body,
// never copies: the bytes a client sent are the bytes stored. It is not
// safe for concurrent use; each request uses its own.
type splitter struct {
	maxDepth   int
	maxRecords int    // more is an error; 0 means no limit
	stack      []byte // closing brackets of the open containers
}

// split appends the records of body to dst. Structural errors (an array
// that cannot be cut into elements) and nesting deeper than maxDepth are
// errors; whether each record is itself valid JSON is left to the
// normalizer, which dead-letters what it cannot parse.
func (s *splitter) split(dst [][]byte, f format, body []byte) ([][]byte, error) {
	switch f {
	case formatJSON:
		return s.splitJSON(dst, body)
	case formatNDJSON:
		return s.splitLines(dst, body, true)
	default:
		return s.splitLines(dst, body, false)
	}
}

// splitLines cuts body at "\n". A trailing "\r" is dropped; in JSON mode
// surrounding white space is too, blank lines are skipped and each line's
// nesting depth is checked. In text mode only empty lines are skipped.
func (s *splitter) splitLines(dst [][]byte, body []byte, json bool) ([][]byte, error) {
	for off := 0; off < len(body); {
		end := bytes.IndexByte(body[off:], '\n')
		next := off + end + 1
		if end < 0 {
			end = len(body) - off
			next = len(body)
		}
		line := body[off : off+end]
		start := off
		off = next
		if json {
			lead := len(line)
			line = bytes.TrimLeft(line, " \t\r")
			start += lead - len(line)
			line = bytes.TrimRight(line, " \t\r")
		} else if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			continue
		}
		if json {
			if at := s.tooDeep(line); at >= 0 {
				return dst, &decodeError{Index: len(dst), Offset: start + at, Reason: s.depthReason()}
			}
		}
		if s.full(dst) {
			return dst, s.tooMany(start)
		}
		dst = append(dst, line)
	}
	return dst, nil
}

// tooDeep returns the offset of the first bracket nested deeper than
// maxDepth in line, or -1. It respects strings but checks nothing else.
func (s *splitter) tooDeep(line []byte) int {
	// Fewer opening brackets than the limit cannot nest past it; counting
	// them is a vectorised pass, much cheaper than the scan below.
	if bytes.Count(line, []byte{'{'})+bytes.Count(line, []byte{'['}) <= s.maxDepth {
		return -1
	}
	depth := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '"':
			end, ok := skipString(line, i)
			if !ok {
				return -1
			}
			i = end
		case '{', '[':
			if depth++; depth > s.maxDepth {
				return i
			}
		case '}', ']':
			depth--
		}
	}
	return -1
}

// full reports whether dst holds maxRecords records already.
func (s *splitter) full(dst [][]byte) bool { return s.maxRecords > 0 && len(dst) >= s.maxRecords }

func (s *splitter) tooMany(offset int) error {
	return &decodeError{Index: s.maxRecords, Offset: offset, TooMany: true,
		Reason: fmt.Sprintf("more than max_records (%d) records", s.maxRecords)}
}

func (s *splitter) depthReason() string {
	return fmt.Sprintf("nesting deeper than %d levels", s.maxDepth)
}

// splitJSON reads a sequence of top-level values separated by white space.
// An array contributes its elements, anything else itself.
func (s *splitter) splitJSON(dst [][]byte, body []byte) ([][]byte, error) {
	i := skipSpace(body, 0)
	for i < len(body) {
		if body[i] != '[' {
			end, err := s.value(body, i, len(dst), 0)
			if err != nil {
				return dst, err
			}
			if s.full(dst) {
				return dst, s.tooMany(i)
			}
			dst = append(dst, body[i:end])
			i = skipSpace(body, end)
			continue
		}
		// The array itself is one level of nesting.
		if s.maxDepth < 1 {
			return dst, &decodeError{Index: len(dst), Offset: i, Reason: s.depthReason()}
		}
		var err error
		if dst, i, err = s.elements(dst, body, i+1); err != nil {
			return dst, err
		}
		i = skipSpace(body, i)
	}
	return dst, nil
}

// elements appends the elements of the array whose "[" precedes i and
// returns the offset after its "]".
func (s *splitter) elements(dst [][]byte, body []byte, i int) ([][]byte, int, error) {
	i = skipSpace(body, i)
	if i < len(body) && body[i] == ']' {
		return dst, i + 1, nil
	}
	for {
		if i >= len(body) {
			return dst, i, &decodeError{Index: len(dst), Offset: i, Reason: "unexpected end of array"}
		}
		end, err := s.value(body, i, len(dst), 1)
		if err != nil {
			return dst, i, err
		}
		if s.full(dst) {
			return dst, i, s.tooMany(i)
		}
		dst = append(dst, body[i:end])
		i = skipSpace(body, end)
		if i >= len(body) {
			return dst, i, &decodeError{Index: len(dst), Offset: i, Reason: "unexpected end of array"}
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case ']':
			return dst, i + 1, nil
		default:
			return dst, i, &decodeError{Index: len(dst), Offset: i, Reason: fmt.Sprintf("expected ',' or ']' after array element, found %q", body[i])}
		}
	}
}

// value returns the end of the JSON value starting at body[i], which is not
// white space, inside open enclosing containers. Brackets must balance and
// match; scalars run to the next delimiter and are not checked.
func (s *splitter) value(body []byte, i, index, open int) (int, error) {
	bad := func(at int, format string, args ...any) (int, error) {
		return 0, &decodeError{Index: index, Offset: at, Reason: fmt.Sprintf(format, args...)}
	}
	switch body[i] {
	case ',', ']', '}', ':':
		return bad(i, "unexpected %q", body[i])
	case '"':
		end, ok := skipString(body, i)
		if !ok {
			return bad(i, "unterminated string")
		}
		return end + 1, nil
	case '{', '[':
	default:
		j := i
		for j < len(body) && !isDelim(body[j]) {
			j++
		}
		return j, nil
	}
	stack := s.stack[:0]
	defer func() { s.stack = stack[:0] }()
	for j := i; j < len(body); j++ {
		switch c := body[j]; c {
		case '"':
			end, ok := skipString(body, j)
			if !ok {
				return bad(j, "unterminated string")
			}
			j = end
		case '{', '[':
			if open+len(stack) >= s.maxDepth {
				return bad(j, "%s", s.depthReason())
			}
			stack = append(stack, c+2) // '{'+2 == '}', '['+2 == ']'
		case '}', ']':
			if stack[len(stack)-1] != c {
				return bad(j, "unexpected %q, expected %q", c, stack[len(stack)-1])
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return j + 1, nil
			}
		}
	}
	return bad(len(body), "unexpected end of JSON (%d unclosed brackets)", len(stack))
}

// skipString returns the offset of the quote closing the string opened at
// b[i], which is '"'. It skips 8 bytes at a time while they hold neither a
// quote nor a backslash (log strings are short: a bytes.IndexByte call per
// string costs more than it saves).
func skipString(b []byte, i int) (int, bool) {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
		quote = '"' * ones
		bslsh = '\\' * ones
	)
	for j := i + 1; j < len(b); {
		if j+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[j:])
			q, e := w^quote, w^bslsh
			// A zero byte in q or e marks a quote or a backslash.
			if ((q-ones)&^q|(e-ones)&^e)&highs == 0 {
				j += 8
				continue
			}
		}
		switch b[j] {
		case '\\':
			j += 2 // the escaped byte cannot close the string
			continue
		case '"':
			return j, true
		}
		j++
	}
	return 0, false
}

func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ',', ']', '}', '[', '{', '"', ':':
		return true
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}
