package syslog

import (
	"bytes"
	"errors"
)

// Format is the header format a message was recognised as.
type Format uint8

// Header formats recognised by Parse.
const (
	// FormatUnknown means the frame had no recognisable header.
	FormatUnknown Format = iota
	// Format3164 is the BSD format: "<PRI>Mmm dd hh:mm:ss host tag[pid]: msg".
	Format3164
	// Format5424 is "<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG".
	Format5424
)

// Message is a parsed syslog header. Every byte slice aliases the frame
// given to Parse; an absent field (or the RFC 5424 NILVALUE "-") is nil.
type Message struct {
	// Format is the header format recognised.
	Format Format
	// Priority is the PRI value (facility*8 + severity).
	Priority int
	// Timestamp is the header's timestamp as written, not interpreted
	// (RFC 3164 timestamps have no year and no zone).
	Timestamp []byte
	// Hostname is the HOSTNAME field.
	Hostname []byte
	// AppName is the RFC 5424 APP-NAME or the RFC 3164 tag without "[pid]:".
	AppName []byte
	// ProcID is the RFC 5424 PROCID or the RFC 3164 "[pid]".
	ProcID []byte
	// MsgID is the RFC 5424 MSGID.
	MsgID []byte
	// Msg is the MSG part, without a UTF-8 BOM or a trailing "\n", "\r\n"
	// or NUL: what the application logged.
	Msg []byte
}

// Errors returned by Parse.
var (
	// ErrNoPriority means the frame does not start with "<PRI>".
	ErrNoPriority = errors.New("syslog: no <PRI> at start of message")
	// ErrStructuredData means an RFC 5424 STRUCTURED-DATA field is malformed.
	ErrStructuredData = errors.New("syslog: malformed structured data")
	// ErrHeader means an RFC 5424 header field is missing.
	ErrHeader = errors.New("syslog: truncated RFC 5424 header")
)

var bom = []byte{0xEF, 0xBB, 0xBF}

// Parse splits a syslog frame into its header fields and MSG. It recognises
// RFC 5424 by the version after PRI and treats anything else with a PRI as
// RFC 3164, tolerating a missing timestamp, hostname, tag or pid. It never
// allocates. On error the Message is zero.
func Parse(frame []byte) (Message, error) {
	frame = trimTrailer(frame)
	var m Message
	pri, rest, ok := parsePRI(frame)
	if !ok {
		return Message{}, ErrNoPriority
	}
	m.Priority = pri
	if v := versionLen(rest); v > 0 {
		if err := parse5424(&m, rest[v+1:]); err != nil {
			return Message{}, err
		}
		return m, nil
	}
	parse3164(&m, rest)
	return m, nil
}

// trimTrailer drops the line terminators and NULs a sender may leave at the
// end of a frame.
func trimTrailer(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\n', '\r', 0:
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

// parsePRI reads "<N>" with 1-3 digits and N <= 191.
func parsePRI(b []byte) (int, []byte, bool) {
	if len(b) < 3 || b[0] != '<' {
		return 0, nil, false
	}
	n := 0
	i := 1
	for ; i < len(b) && i <= 4 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int(b[i]-'0')
	}
	if i == 1 || i > 4 || i >= len(b) || b[i] != '>' || n > 191 {
		return 0, nil, false
	}
	return n, b[i+1:], true
}

// versionLen returns the length of an RFC 5424 VERSION ("1".."999", no
// leading zero) followed by SP at the start of b, or 0.
func versionLen(b []byte) int {
	i := 0
	for i < len(b) && i < 3 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || b[0] == '0' || i >= len(b) || b[i] != ' ' {
		return 0
	}
	return i
}

// field cuts the next SP-terminated token; "-" yields nil. ok is false when
// b ends before the token's SP.
func field(b []byte) (tok, rest []byte, ok bool) {
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return nil, nil, false
	}
	tok = b[:i]
	if len(tok) == 1 && tok[0] == '-' {
		tok = nil
	}
	return tok, b[i+1:], true
}

func parse5424(m *Message, b []byte) error {
	m.Format = Format5424
	var ok bool
	if m.Timestamp, b, ok = field(b); !ok {
		return ErrHeader
	}
	if m.Hostname, b, ok = field(b); !ok {
		return ErrHeader
	}
	if m.AppName, b, ok = field(b); !ok {
		return ErrHeader
	}
	if m.ProcID, b, ok = field(b); !ok {
		return ErrHeader
	}
	// MSGID may be the last field when SD is absent and the sender omitted
	// both SD and MSG (not strictly valid, but seen); require the SP.
	if m.MsgID, b, ok = field(b); !ok {
		return ErrHeader
	}
	n, err := sdLen(b)
	if err != nil {
		return err
	}
	b = b[n:]
	switch {
	case len(b) == 0:
		return nil
	case b[0] != ' ':
		return ErrStructuredData
	}
	m.Msg = bytes.TrimPrefix(b[1:], bom)
	return nil
}

// sdLen returns the length of the STRUCTURED-DATA at the start of b: "-" or
// one or more "[id param=\"value\" ...]" elements. Inside a quoted value a
// backslash escapes the next byte and an unescaped ']' is tolerated.
func sdLen(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, ErrStructuredData
	}
	if b[0] == '-' {
		return 1, nil
	}
	i := 0
	for i < len(b) && b[i] == '[' {
		i++
		quoted := false
		closed := false
		for i < len(b) && !closed {
			c := b[i]
			switch {
			case quoted && c == '\\':
				i++ // skip the escaped byte
			case c == '"':
				quoted = !quoted
			case !quoted && c == ']':
				closed = true
			}
			i++
		}
		if !closed {
			return 0, ErrStructuredData
		}
	}
	if i == 0 {
		return 0, ErrStructuredData
	}
	return i, nil
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// timestamp3164Len returns the length of a leading BSD timestamp
// "Mmm dd hh:mm:ss" (day space- or zero-padded or a single digit, optional
// ".fraction", optional " yyyy" before the time as some devices write), or
// of an RFC 3339 timestamp as rsyslog's forward format writes, or 0.
func timestamp3164Len(b []byte) int {
	if len(b) >= 4 && isDigit(b[0]) && isDigit(b[1]) && isDigit(b[2]) && isDigit(b[3]) {
		// RFC 3339 "2024-01-02T03:04:05.000+00:00": take the token.
		if len(b) > 10 && b[4] == '-' && b[7] == '-' && (b[10] == 'T' || b[10] == 't') {
			if i := bytes.IndexByte(b, ' '); i > 0 {
				return i
			}
			return len(b)
		}
		return 0
	}
	if len(b) < 3 || !isMonth(b[:3]) {
		return 0
	}
	i := 3
	if i >= len(b) || b[i] != ' ' {
		return 0
	}
	i++
	if i < len(b) && b[i] == ' ' {
		i++
	}
	d := i
	for i < len(b) && isDigit(b[i]) && i-d < 2 {
		i++
	}
	if i == d || i >= len(b) || b[i] != ' ' {
		return 0
	}
	i++
	// Optional year ("Jan  2 2024 03:04:05", Cisco style).
	if i+5 <= len(b) && isDigit(b[i]) && isDigit(b[i+1]) && isDigit(b[i+2]) && isDigit(b[i+3]) && b[i+4] == ' ' {
		i += 5
	}
	if i+8 > len(b) || !isDigit(b[i]) || !isDigit(b[i+1]) || b[i+2] != ':' ||
		!isDigit(b[i+3]) || !isDigit(b[i+4]) || b[i+5] != ':' || !isDigit(b[i+6]) || !isDigit(b[i+7]) {
		return 0
	}
	i += 8
	if i < len(b) && b[i] == '.' {
		i++
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isMonth(b []byte) bool {
	for _, m := range months {
		if string(b) == m {
			return true
		}
	}
	return false
}

// parse3164 reads what follows PRI in a BSD message. Every part is
// optional; what cannot be recognised stays in Msg.
func parse3164(m *Message, b []byte) {
	m.Format = Format3164
	if n := timestamp3164Len(b); n > 0 {
		m.Timestamp = b[:n]
		b = b[n:]
		if len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
		// After a timestamp: "host tag: msg", "tag: msg" (no host, as
		// haproxy and local senders write) or "host msg" (no tag).
		tok, rest, ok := field(b)
		if !ok {
			m.Msg = b
			return
		}
		if !cutTag(m, b) {
			if len(tok) > 0 {
				m.Hostname = tok
			}
			b = rest
			if !cutTag(m, b) {
				m.Msg = b
			}
		}
		return
	}
	// No timestamp: only a leading "tag:" is recognised; anything else is
	// the message.
	if !cutTag(m, b) {
		m.Msg = b
	}
}

// cutTag recognises "tag: ", "tag[pid]: " or "tag[pid] " at the start of b
// and sets AppName, ProcID and Msg. The tag is at most 48 bytes of
// printable ASCII without SP, ':' or '['.
func cutTag(m *Message, b []byte) bool {
	i := 0
	for i < len(b) && i <= 48 {
		c := b[i]
		if c == ':' || c == '[' || c <= ' ' || c > '~' {
			break
		}
		i++
	}
	if i == 0 || i > 48 || i >= len(b) {
		return false
	}
	tag := b[:i]
	var pid []byte
	if b[i] == '[' {
		j := bytes.IndexByte(b[i:], ']')
		if j < 0 || j > 24 {
			return false
		}
		pid = b[i+1 : i+j]
		i += j + 1
		if i < len(b) && b[i] == ':' {
			i++
		}
	} else if b[i] == ':' {
		i++
	} else {
		return false
	}
	if i < len(b) && b[i] != ' ' {
		return false // "host:port" or "12:00" are not tags
	}
	if i < len(b) {
		i++
	}
	m.AppName = tag
	if len(pid) > 0 {
		m.ProcID = pid
	}
	m.Msg = b[i:]
	return true
}
