package normalize

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// MaxLineBytes bounds one raw line; longer records are rejected unparsed.
// nginx's own request line limit (large_client_header_buffers) is 8 KiB by
// default, so a 64 KiB access log line is damage or an attack, not traffic.
const MaxLineBytes = 64 << 10

// TagInvalidUTF8 marks an event in which bytes that were not valid UTF-8
// (raw, or produced by decoding \xHH escapes) were replaced with U+FFFD.
const TagInvalidUTF8 = "invalid_utf8"

// Nginx parses nginx access log lines in the default "combined" format:
//
//	$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
//
// The "common" format (the same line ending after $body_bytes_sent) is
// accepted too. Fields appended after $http_user_agent are tolerated: a
// `key=value` or `key="value"` field is stored as trailwatch.extra.key
// (request_time / rt also sets event.duration), any other bare or quoted
// field as trailwatch.extra.field_N, N being its 1-based position in the
// line. A "-" value is treated as absent throughout.
//
// Quoted fields are decoded: \xHH (nginx's default escaping) and \" and \\
// (escape=json). A request that is not "METHOD target HTTP/x" (a "-", a TLS
// handshake sent to a plain-text port) is kept undecoded, exactly as logged,
// in url.original with no method. Bytes that are not valid UTF-8 are
// replaced with U+FFFD and the event is tagged TagInvalidUTF8, so the event
// can be indexed while the raw topic keeps the original.
//
// The mapping follows Elastic's nginx integration (access data stream). Like
// it, Nginx sets no observer.* fields: the line does not say whether nginx
// served or proxied the request. Nginx is stateless and safe for concurrent
// use.
type Nginx struct{}

// NewNginx returns the nginx access log normalizer.
func NewNginx() *Nginx { return &Nginx{} }

// Field numbers and names used in errors, positions as in the combined format.
const (
	fRemoteAddr = 1
	fIdent      = 2
	fRemoteUser = 3
	fTimeLocal  = 4
	fRequest    = 5
	fStatus     = 6
	fBytes      = 7
	fReferer    = 8
	fUserAgent  = 9
)

var fieldNames = [...]string{
	fRemoteAddr: "remote_addr",
	fIdent:      "ident",
	fRemoteUser: "remote_user",
	fTimeLocal:  "time_local",
	fRequest:    "request",
	fStatus:     "status",
	fBytes:      "body_bytes_sent",
	fReferer:    "http_referer",
	fUserAgent:  "http_user_agent",
}

// Normalize appends the one event parsed from rec.Data to dst. On error dst
// is returned unchanged and the error names the field and, for structural
// problems, the byte position.
func (n *Nginx) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	data := rec.Data
	if len(data) > MaxLineBytes {
		return dst, fmt.Errorf("nginx: line is %d bytes, over the %d-byte limit", len(data), MaxLineBytes)
	}
	if k := len(data); k > 0 && data[k-1] == '\r' {
		data = data[:k-1]
	}
	// One string conversion: every field that needs no decoding is a
	// substring of it, so an event costs one backing allocation for text.
	line := string(data)
	invalid := false
	if !utf8.ValidString(line) {
		line = strings.ToValidUTF8(line, "\uFFFD")
		invalid = true
	}

	dst = append(dst, schema.Event{})
	ev := &dst[len(dst)-1]
	p := parser{ev: ev, s: line, invalid: invalid}
	if err := p.parse(); err != nil {
		*ev = schema.Event{}
		return dst[:len(dst)-1], err
	}

	if strings.Contains(line, FingerprintPrefix) {
		nginxCredential(ev)
	}
	ev.Event.ID = rec.ID()
	ev.Trailwatch.Source = "nginx"
	ev.Trailwatch.Raw = schema.RawRef{Origin: rec.Origin, Offset: rec.Offset, Collector: rec.Collector}
	if p.invalid {
		ev.Tags = append(ev.Tags, TagInvalidUTF8)
	}
	ev.Trailwatch.Actor = ev.ActorKey()
	return dst, nil
}

// nginxCredential picks up a credential fingerprint token from the query
// string or, in key order, the fields appended after the user agent.
func nginxCredential(ev *schema.Event) {
	if ApplyCredential(ev, ev.URL.Query) {
		return
	}
	for _, k := range lfSortedKeys(ev.Trailwatch.Extra) {
		if ApplyCredential(ev, ev.Trailwatch.Extra[k]) {
			return
		}
	}
}

// parser scans one line left to right; i is the next unread byte.
type parser struct {
	ev      *schema.Event
	s       string
	i       int
	invalid bool
}

// syntaxErr reports a structural mismatch at the current position.
func (p *parser) syntaxErr(field int, what string) error {
	return fmt.Errorf("nginx: line does not match combined format at byte %d: field %d (%s): %s",
		p.i, field, fieldNames[field], what)
}

// valueErr reports a field whose shape is right but whose value is not.
func valueErr(field int, what, val string) error {
	const maxShown = 64
	if len(val) > maxShown {
		val = val[:maxShown] + "..."
	}
	return fmt.Errorf("nginx: field %d (%s): %s %q", field, fieldNames[field], what, val)
}

// bare reads a field up to the next space and consumes the space.
func (p *parser) bare(field int) (string, error) {
	j := strings.IndexByte(p.s[p.i:], ' ')
	if j < 0 {
		p.i = len(p.s)
		return "", p.syntaxErr(field, "unexpected end of line")
	}
	v := p.s[p.i : p.i+j]
	if v == "" {
		return "", p.syntaxErr(field, "empty field")
	}
	p.i += j + 1
	return v, nil
}

// quoted reads a "..." field, returning its raw (undecoded) content and
// whether it holds a backslash escape. A quote preceded by an odd number of
// backslashes is escaped (escape=json); nginx's default escaping never
// writes a bare backslash, so the rule is safe for both.
func (p *parser) quoted(field int) (raw string, escaped bool, err error) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", false, p.syntaxErr(field, `expected '"'`)
	}
	start := p.i + 1
	j := start
	for {
		k := strings.IndexByte(p.s[j:], '"')
		if k < 0 {
			p.i = start - 1 // point at the opening quote
			return "", false, p.syntaxErr(field, "unterminated quoted field")
		}
		j += k
		bs := 0
		for b := j - 1; b >= start && p.s[b] == '\\'; b-- {
			bs++
		}
		if bs%2 == 0 {
			break
		}
		j++
	}
	raw = p.s[start:j]
	p.i = j + 1
	return raw, strings.IndexByte(raw, '\\') >= 0, nil
}

// space consumes the single space separating fields; at end of line it
// reports false so callers can accept shorter formats.
func (p *parser) space(field int) (more bool, err error) {
	if p.i == len(p.s) {
		return false, nil
	}
	if p.s[p.i] != ' ' {
		return false, p.syntaxErr(field, "expected ' '")
	}
	p.i++
	return true, nil
}

func (p *parser) parse() error {
	ev := p.ev
	addr, err := p.bare(fRemoteAddr)
	if err != nil {
		return err
	}
	if _, err := p.bare(fIdent); err != nil {
		return err
	}
	user, err := p.remoteUser()
	if err != nil {
		return err
	}
	if err := p.timeLocal(); err != nil {
		return err
	}
	if _, err := p.space(fRequest); err != nil {
		return err
	}
	req, reqEsc, err := p.quoted(fRequest)
	if err != nil {
		return err
	}
	if more, err := p.space(fStatus); err != nil || !more {
		if err == nil {
			err = p.syntaxErr(fStatus, "unexpected end of line")
		}
		return err
	}
	status, err := p.bare(fStatus)
	if err != nil {
		return err
	}
	if ev.HTTP.Response.StatusCode, err = parseStatus(status); err != nil {
		return err
	}
	bytesEnd := strings.IndexByte(p.s[p.i:], ' ')
	if bytesEnd < 0 {
		bytesEnd = len(p.s) - p.i
	}
	bytesStr := p.s[p.i : p.i+bytesEnd]
	p.i += bytesEnd
	if ev.HTTP.Response.Body.Bytes, err = parseBytes(bytesStr); err != nil {
		return err
	}
	more, err := p.space(fReferer)
	if err != nil {
		return err
	}
	if more { // combined, not common: referer and user agent follow
		ref, refEsc, err := p.quoted(fReferer)
		if err != nil {
			return err
		}
		if _, err := p.space(fUserAgent); err != nil {
			return err
		}
		ua, uaEsc, err := p.quoted(fUserAgent)
		if err != nil {
			return err
		}
		if ref != "-" {
			ev.HTTP.Request.Referrer = p.decode(ref, refEsc)
		}
		if ua != "-" {
			ev.UserAgent.Original = p.decode(ua, uaEsc)
		}
		if err := p.extras(); err != nil {
			return err
		}
	}

	p.request(req, reqEsc)

	// The four fixed arrays share one allocation; capacities are clipped so
	// an append by a later stage copies instead of overwriting a neighbour.
	arr := &[4]string{"web", "access"}
	ev.Event.Kind = "event"
	ev.Event.Category = arr[0:1:1]
	ev.Event.Type = arr[1:2:2]
	ev.Event.Dataset = "nginx.access"
	ev.Event.Module = "nginx"
	if ev.HTTP.Response.StatusCode < 400 {
		ev.Event.Outcome = "success"
	} else {
		ev.Event.Outcome = "failure"
	}
	ev.Source.Address = addr
	if _, err := netip.ParseAddr(addr); err == nil {
		ev.Source.IP = addr
		arr[2] = addr
		ev.Related.IP = arr[2:3:3]
	}
	if user != "" {
		ev.User.Name = user
		arr[3] = user
		ev.Related.User = arr[3:4:4]
	}
	return nil
}

// remoteUser reads $remote_user, which may contain spaces (it is a
// basic-auth name), so it ends at the " [" that opens a well-formed
// [$time_local], falling back to the first " [".
func (p *parser) remoteUser() (string, error) {
	rest := p.s[p.i:]
	end := -1
	for off := 0; ; {
		k := strings.Index(rest[off:], " [")
		if k < 0 {
			break
		}
		k += off
		if end < 0 {
			end = k
		}
		if rb := k + 2 + len(timeLocalLayout); rb < len(rest) && rest[rb] == ']' {
			end = k
			break
		}
		off = k + 1
	}
	if end <= 0 {
		return "", p.syntaxErr(fRemoteUser, `expected " [" before time_local`)
	}
	raw := rest[:end]
	p.i += end + 1
	if raw == "-" {
		return "", nil
	}
	return p.decode(raw, strings.IndexByte(raw, '\\') >= 0), nil
}

// timeLocalLayout is the shape of a $time_local value.
const timeLocalLayout = "02/Jan/2006:15:04:05 -0700"

func (p *parser) timeLocal() error {
	// p.s[p.i] is '['.
	p.i++
	k := strings.IndexByte(p.s[p.i:], ']')
	if k < 0 {
		return p.syntaxErr(fTimeLocal, "missing ']'")
	}
	v := p.s[p.i : p.i+k]
	p.i += k + 1
	t, ok := parseTimeLocal(v)
	if !ok {
		return valueErr(fTimeLocal, "invalid time", v)
	}
	p.ev.Timestamp = t
	return nil
}

// request splits $request into method, target and protocol version, the
// way Elastic's pipeline does ("%{WORD} %{DATA} HTTP/%{NUMBER}"). Anything
// else is kept as logged in url.original.
func (p *parser) request(req string, escaped bool) {
	ev := p.ev
	if req == "" {
		return
	}
	sp1 := strings.IndexByte(req, ' ')
	sp2 := strings.LastIndexByte(req, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 || !isWord(req[:sp1]) || !isHTTPProto(req[sp2+1:]) {
		ev.URL.Original = req
		return
	}
	ev.HTTP.Request.Method = req[:sp1]
	ev.HTTP.Version = req[sp2+1+len("HTTP/"):]
	target := p.decode(req[sp1+1:sp2], escaped && strings.IndexByte(req[sp1+1:sp2], '\\') >= 0)
	ev.URL.Original = target
	splitTarget(&ev.URL, target)
}

// splitTarget fills url.path/query (and scheme/domain/port for the
// absolute form a forward proxy sees) from a request target.
func splitTarget(u *schema.URL, t string) {
	if h := strings.IndexByte(t, '#'); h >= 0 {
		t = t[:h]
	}
	if i := strings.Index(t, "://"); i > 0 && isScheme(t[:i]) {
		u.Scheme = t[:i]
		rest := t[i+3:]
		end := strings.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		host := rest[:end]
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			host = host[at+1:]
		}
		if c := strings.LastIndexByte(host, ':'); c >= 0 && c > strings.LastIndexByte(host, ']') {
			if port, err := strconv.Atoi(host[c+1:]); err == nil && port > 0 && port < 65536 {
				u.Port = port
			}
			host = host[:c]
		}
		u.Domain = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		t = rest[end:]
	} else if t == "" || t[0] != '/' {
		return // authority form (CONNECT) or "*": no path
	}
	if q := strings.IndexByte(t, '?'); q >= 0 {
		u.Path, u.Query = t[:q], t[q+1:]
	} else {
		u.Path = t
	}
}

// extras reads fields after $http_user_agent; see the Nginx doc.
func (p *parser) extras() error {
	for field := fUserAgent + 1; p.i < len(p.s); field++ {
		for p.i < len(p.s) && p.s[p.i] == ' ' {
			p.i++
		}
		if p.i == len(p.s) {
			break
		}
		key := ""
		if p.s[p.i] != '"' {
			end := strings.IndexByte(p.s[p.i:], ' ')
			if end < 0 {
				end = len(p.s) - p.i
			}
			tok := p.s[p.i : p.i+end]
			if eq := strings.IndexByte(tok, '='); eq > 0 && isWord(tok[:eq]) {
				key = tok[:eq]
				p.i += eq + 1
			}
		}
		var val string
		if p.i < len(p.s) && p.s[p.i] == '"' {
			raw, esc, err := p.quoted(fUserAgent)
			if err != nil {
				return fmt.Errorf("nginx: field %d (extra): unterminated quoted field", field)
			}
			val = p.decode(raw, esc)
		} else {
			end := strings.IndexByte(p.s[p.i:], ' ')
			if end < 0 {
				end = len(p.s) - p.i
			}
			val = p.s[p.i : p.i+end]
			p.i += end
		}
		if val == "-" || val == "" {
			continue
		}
		if key == "" {
			key = "field_" + strconv.Itoa(field)
		}
		if (key == "request_time" || key == "rt") && p.ev.Event.Duration == 0 {
			if d, ok := parseSeconds(val); ok {
				p.ev.Event.Duration = d
			}
		}
		if p.ev.Trailwatch.Extra == nil {
			p.ev.Trailwatch.Extra = make(map[string]string, 4)
		}
		p.ev.Trailwatch.Extra[key] = val
	}
	return nil
}

// decode undoes nginx's log escaping when escaped is set and keeps the
// result valid UTF-8.
func (p *parser) decode(s string, escaped bool) string {
	if !escaped {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b = append(b, c)
			continue
		}
		switch n := s[i+1]; {
		case n == 'x' && i+3 < len(s) && isHex(s[i+2]) && isHex(s[i+3]):
			b = append(b, unhex(s[i+2])<<4|unhex(s[i+3]))
			i += 3
		case n == '"' || n == '\\':
			b = append(b, n)
			i++
		default:
			b = append(b, c)
		}
	}
	if !utf8.Valid(b) {
		p.invalid = true
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(b)
}

// parseTimeLocal parses "02/Jan/2006:15:04:05 -0700" into UTC without the
// generality (and cost) of time.Parse.
func parseTimeLocal(v string) (time.Time, bool) {
	if len(v) != len(timeLocalLayout) || v[2] != '/' || v[6] != '/' || v[11] != ':' ||
		v[14] != ':' || v[17] != ':' || v[20] != ' ' || (v[21] != '+' && v[21] != '-') {
		return time.Time{}, false
	}
	day, ok1 := digits(v[0:2])
	year, ok2 := digits(v[7:11])
	hour, ok3 := digits(v[12:14])
	minute, ok4 := digits(v[15:17])
	sec, ok5 := digits(v[18:20])
	offH, ok6 := digits(v[22:24])
	offM, ok7 := digits(v[24:26])
	month := monthOf(v[3:6])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || month == 0 ||
		day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 60 ||
		offH > 23 || offM > 59 {
		return time.Time{}, false
	}
	off := time.Duration(offH)*time.Hour + time.Duration(offM)*time.Minute
	if v[21] == '-' {
		off = -off
	}
	return time.Date(year, month, day, hour, minute, sec, 0, time.UTC).Add(-off), true
}

func monthOf(m string) time.Month {
	switch m {
	case "Jan":
		return time.January
	case "Feb":
		return time.February
	case "Mar":
		return time.March
	case "Apr":
		return time.April
	case "May":
		return time.May
	case "Jun":
		return time.June
	case "Jul":
		return time.July
	case "Aug":
		return time.August
	case "Sep":
		return time.September
	case "Oct":
		return time.October
	case "Nov":
		return time.November
	case "Dec":
		return time.December
	}
	return 0
}

func daysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// digits parses a short all-digit string.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + int(c)
	}
	return n, len(s) > 0
}

func parseStatus(s string) (int, error) {
	n, ok := digits(s)
	if !ok || len(s) > 3 {
		return 0, valueErr(fStatus, "invalid status", s)
	}
	return n, nil
}

func parseBytes(s string) (int64, error) {
	if s == "-" {
		return 0, nil
	}
	if s == "" || len(s) > 19 {
		return 0, valueErr(fBytes, "invalid byte count", s)
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, valueErr(fBytes, "invalid byte count", s)
		}
		n = n*10 + int64(c)
		if n < 0 {
			return 0, valueErr(fBytes, "invalid byte count", s)
		}
	}
	return n, nil
}

// parseSeconds parses nginx's "%d.%03d" seconds into nanoseconds.
func parseSeconds(s string) (int64, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	if len(whole) > 9 || len(frac) > 9 {
		return 0, false
	}
	w, ok := digits(whole)
	if !ok {
		return 0, false
	}
	ns := int64(w) * int64(time.Second)
	scale := int64(time.Second)
	for i := 0; i < len(frac); i++ {
		c := frac[i] - '0'
		if c > 9 {
			return 0, false
		}
		scale /= 10
		ns += int64(c) * scale
	}
	return ns, true
}

// isWord reports whether s is a grok WORD: [A-Za-z0-9_]+.
func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// isHTTPProto reports whether s is "HTTP/" followed by a version number.
func isHTTPProto(s string) bool {
	v, ok := strings.CutPrefix(s, "HTTP/")
	if !ok || v == "" || v[0] == '.' || v[len(v)-1] == '.' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !('a' <= c && c <= 'z' || i > 0 && ('0' <= s[i] && s[i] <= '9' || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
			return false
		}
	}
	return s != ""
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return (c | 0x20) - 'a' + 10
}
