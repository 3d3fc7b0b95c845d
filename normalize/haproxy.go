package normalize

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// HAProxy parses HAProxy's HTTP log format (`option httplog`):
//
//	10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1"
//
// It also parses the TCP log format (`option tcplog`: timers Tw/Tc/Tt, no
// request). Bytes read (sent to the client) become http.response.bytes, or
// destination.bytes for a TCP line, where Elastic keeps haproxy.bytes_read.
//
// A line may carry a syslog header, as sent over the network
// ("<134>Nov 20 09:00:00 haproxy[123]: ", the host optional) or as written
// by a local syslog daemon (the same without "<PRI>"); the header's host
// becomes observer.hostname.
//
// The accept date carries no zone: it is read as UTC (run HAProxy with
// TZ=UTC). Timers of -1 (never reached) are
// omitted; Ta (TCP: Tt) in milliseconds becomes event.duration in
// nanoseconds. The mapping follows Elastic's haproxy integration; fields
// ECS lacks go to trailwatch.extra under Elastic's names:
// haproxy.frontend_name, haproxy.backend_name, haproxy.server_name,
// haproxy.http.request.time_wait_ms (TR), haproxy.total_waiting_time_ms
// (Tw), haproxy.connection_wait_time_ms (Tc),
// haproxy.http.request.time_wait_without_data_ms (Tr),
// haproxy.termination_state, haproxy.connections.{active,frontend,backend,
// server,retries}, haproxy.server_queue, haproxy.backend_queue (these
// last three only when not 0),
// haproxy.http.request.captured_cookie,
// haproxy.http.response.captured_cookie,
// haproxy.http.request.captured_headers and
// haproxy.http.response.captured_headers (as logged, "|"-separated),
// haproxy.mode ("tcp" for a tcplog line; HTTP lines leave it out) and haproxy.ssl ("true" when the frontend
// name carries HAProxy's "~").
//
// Captured headers are logged by position only. A Spec's Fields name them:
// {"request.1": "X-Forwarded-For", "request.2": "Authorization"} (1-based,
// in `capture request header` order). A named header is mapped:
// X-Forwarded-For → client.*, X-Request-ID → http.request.id, User-Agent,
// Referer, Host → url.domain, Authorization / Proxy-Authorization /
// X-API-Key / Apikey / Cookie → the credential (fingerprint token only);
// others go to trailwatch.extra as haproxy.http.request.headers.<name>.
// Unnamed captures are still checked for a fingerprint token, and one
// holding only IP addresses is read as X-Forwarded-For.
//
// HAProxy's "#XX" escapes in the request line and headers are decoded.
// HAProxy is safe for concurrent use.
type HAProxy struct {
	reqHeaders  []haHeader // index: 1-based capture position
	respHeaders []haHeader
}

// haHeader is a named capture: its lower-case name and, computed once, the
// trailwatch.extra key a value without an ECS field is stored under.
type haHeader struct {
	name, key string
}

// NewHAProxy returns the HAProxy log normalizer with unnamed captures.
func NewHAProxy() *HAProxy { return &HAProxy{} }

// NewHAProxySpec builds the HAProxy normalizer from a spec: Format must be
// "" or "httplog"; Fields may name captured headers (see HAProxy).
func NewHAProxySpec(s Spec) (Normalizer, error) {
	if s.Format != "" && s.Format != "httplog" {
		return nil, fmt.Errorf("format %q: want \"\" or \"httplog\"", s.Format)
	}
	if s.Pattern != "" || s.TimeLayout != "" {
		return nil, errNoOptions
	}
	h := &HAProxy{}
	var problems []string
	for k, v := range s.Fields {
		dir, num, ok := strings.Cut(k, ".")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 1 || n > 64 || (dir != "request" && dir != "response") || v == "" {
			problems = append(problems, fmt.Sprintf("fields.%s: want request.N or response.N naming a header", k))
			continue
		}
		hs := &h.reqHeaders
		if dir == "response" {
			hs = &h.respHeaders
		}
		if len(*hs) <= n {
			*hs = append(*hs, make([]haHeader, n+1-len(*hs))...)
		}
		name := strings.ToLower(v)
		(*hs)[n] = haHeader{name: name, key: "haproxy.http." + dir + ".headers." + name}
	}
	if problems != nil {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return h, nil
}

// haproxyErr formats a parse error naming the field and byte.
func haproxyErr(pos int, field, what string) error {
	return fmt.Errorf("haproxy: byte %d: %s: %s", pos, field, what)
}

// Normalize appends the one event parsed from rec.Data to dst. On error
// dst is returned unchanged and the error names the field and byte.
func (h *HAProxy) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	data := rec.Data
	if len(data) > MaxLineBytes {
		return dst, fmt.Errorf("haproxy: line is %d bytes, over the %d-byte limit", len(data), MaxLineBytes)
	}
	for k := len(data); k > 0 && (data[k-1] == '\r' || data[k-1] == '\n'); k = len(data) {
		data = data[:k-1]
	}
	line, invalid := gwValid(string(data))
	dst = append(dst, schema.Event{})
	ev := &dst[len(dst)-1]
	var x haExtras
	if err := h.parse(ev, &x, line); err != nil {
		*ev = schema.Event{}
		return dst[:len(dst)-1], err
	}
	ev.Trailwatch.Extra = x.build()
	if ev.Event.Category == nil {
		pxFinish(ev, rec, "haproxy", "haproxy.log", "haproxy", "web", "access", invalid)
	} else {
		pxFinish(ev, rec, "haproxy", "haproxy.log", "haproxy", "network", "connection", invalid)
	}
	return dst, nil
}

// haExtras collects a line's trailwatch.extra entries on the stack so the
// map is made once, at its final size, when the line has parsed: a typical
// HTTP line has 13 entries, which would otherwise grow the map mid-line.
type haExtras struct {
	n    int
	kv   [24][2]string
	more [][2]string // past len(kv): many named captures
}

// add stores v under key unless v is empty or "-", like gwExtra.
func (x *haExtras) add(key, v string) {
	if v == "" || v == "-" {
		return
	}
	x.set(key, v)
}

// set stores v under key as is.
func (x *haExtras) set(key, v string) {
	if x.n < len(x.kv) {
		x.kv[x.n] = [2]string{key, v}
		x.n++
		return
	}
	x.more = append(x.more, [2]string{key, v})
}

// build returns the map, later entries winning over earlier ones.
func (x *haExtras) build() map[string]string {
	m := make(map[string]string, x.n+len(x.more))
	for _, e := range x.kv[:x.n] {
		m[e[0]] = e[1]
	}
	for _, e := range x.more {
		m[e[0]] = e[1]
	}
	return m
}

// haScan is a cursor over one line.
type haScan struct {
	s string
	i int
}

// word reads up to the next space and consumes it.
func (c *haScan) word(field string) (string, error) {
	if c.i >= len(c.s) {
		return "", haproxyErr(c.i, field, "unexpected end of line")
	}
	j := strings.IndexByte(c.s[c.i:], ' ')
	if j < 0 {
		j = len(c.s) - c.i
	}
	v := c.s[c.i : c.i+j]
	if v == "" {
		return "", haproxyErr(c.i, field, "empty field")
	}
	c.i += j
	if c.i < len(c.s) {
		c.i++
	}
	return v, nil
}

// syslogHeader skips "<PRI>Mmm dd hh:mm:ss [host ]tag[pid]: " if present and
// returns the host.
func (c *haScan) syslogHeader() (host string, err error) {
	s := c.s
	i := 0
	if strings.HasPrefix(s, "<") {
		j := strings.IndexByte(s, '>')
		if j < 2 || j > 4 {
			return "", haproxyErr(0, "syslog header", "bad <PRI>")
		}
		if _, ok := digits(s[1:j]); !ok {
			return "", haproxyErr(1, "syslog header", "bad <PRI>")
		}
		i = j + 1
	}
	// "Nov 20 09:00:00 " is 16 bytes.
	if len(s) < i+16 || monthOf(s[i:i+3]) == 0 || s[i+3] != ' ' || s[i+6] != ' ' || s[i+9] != ':' || s[i+12] != ':' || s[i+15] != ' ' {
		if i > 0 {
			return "", haproxyErr(i, "syslog header", "expected an RFC 3164 timestamp after <PRI>")
		}
		return "", nil // a bare message, as HAProxy formats it
	}
	i += 16
	colon := strings.Index(s[i:], ": ")
	if colon < 0 {
		return "", haproxyErr(i, "syslog header", `expected "tag: " after the timestamp`)
	}
	hdr := s[i : i+colon]
	if sp := strings.IndexByte(hdr, ' '); sp >= 0 {
		host = hdr[:sp]
	}
	c.i = i + colon + 2
	return host, nil
}

// haTimerKeys name the HTTP timers TR/Tw/Tc/Tr/Ta and the TCP timers
// Tw/Tc/Tt; "" is the total, which becomes event.duration.
var (
	haTimerKeys = [...]string{"haproxy.http.request.time_wait_ms", "haproxy.total_waiting_time_ms", "haproxy.connection_wait_time_ms", "haproxy.http.request.time_wait_without_data_ms", ""}
	haTCPKeys   = [...]string{"haproxy.total_waiting_time_ms", "haproxy.connection_wait_time_ms", ""}
	haConnKeys  = [...]string{"haproxy.connections.active", "haproxy.connections.frontend", "haproxy.connections.backend", "haproxy.connections.server", "haproxy.connections.retries"}
)

func (h *HAProxy) parse(ev *schema.Event, x *haExtras, line string) error {
	c := haScan{s: line}
	host, err := c.syslogHeader()
	if err != nil {
		return err
	}
	if host != "" {
		ev.Observer.Hostname = host
	}
	ev.Observer.Vendor, ev.Observer.Product, ev.Observer.Type = "HAProxy", "haproxy", "proxy"
	start := c.i
	client, err := c.word("client")
	if err != nil {
		return err
	}
	pxSetEndpoint(&ev.Source, client)
	if ev.Source.IP == "" && !strings.HasPrefix(client, "unix") {
		return haproxyErr(start, "client", fmt.Sprintf("not an HTTP or TCP log line (no ip:port first, got %.40q)", client))
	}

	// [06/Feb/2009:12:14:14.655]
	if c.i >= len(c.s) || c.s[c.i] != '[' {
		return haproxyErr(c.i, "accept_date", "expected '['")
	}
	end := strings.IndexByte(c.s[c.i:], ']')
	if end < 0 {
		return haproxyErr(c.i, "accept_date", "missing ']'")
	}
	date := c.s[c.i+1 : c.i+end]
	t, ok := parseHAProxyDate(date)
	if !ok {
		return haproxyErr(c.i+1, "accept_date", fmt.Sprintf("invalid time %.40q", date))
	}
	ev.Timestamp = t
	c.i += end + 1
	if c.i < len(c.s) && c.s[c.i] == ' ' {
		c.i++
	}

	fe, err := c.word("frontend_name")
	if err != nil {
		return err
	}
	if n, ok := strings.CutSuffix(fe, "~"); ok {
		fe = n
		x.add("haproxy.ssl", "true")
	}
	x.add("haproxy.frontend_name", fe)
	bs, err := c.word("backend_name/server_name")
	if err != nil {
		return err
	}
	be, srv, ok := strings.Cut(bs, "/")
	if !ok {
		return haproxyErr(c.i-len(bs)-1, "backend_name/server_name", "missing '/'")
	}
	x.add("haproxy.backend_name", be)
	if srv != "<NOSRV>" {
		x.add("haproxy.server_name", srv)
	}

	timersAt := c.i
	timers, err := c.word("timers")
	if err != nil {
		return err
	}
	var tv [5]string
	nt := 0
	for rest := timers; ; nt++ {
		if nt == len(tv) {
			return haproxyErr(timersAt, "timers", "more than 5 timers")
		}
		v, r, more := strings.Cut(rest, "/")
		tv[nt] = v
		if !more {
			nt++
			break
		}
		rest = r
	}
	var timerKeys []string
	switch nt {
	case 5:
		timerKeys = haTimerKeys[:]
	case 3:
		timerKeys = haTCPKeys[:]
		x.set("haproxy.mode", "tcp")
	default:
		return haproxyErr(timersAt, "timers", fmt.Sprintf("want TR/Tw/Tc/Tr/Ta or Tw/Tc/Tt, got %.40q", timers))
	}
	for k := range nt {
		v := strings.TrimPrefix(tv[k], "+")
		if v == "-1" {
			continue
		}
		ms, ok := digits(v)
		if !ok || len(v) > 10 {
			return haproxyErr(timersAt, "timers", fmt.Sprintf("invalid timer %.20q", tv[k]))
		}
		if timerKeys[k] == "" {
			ev.Event.Duration = int64(ms) * int64(time.Millisecond)
		} else {
			x.set(timerKeys[k], v)
		}
	}
	httpMode := nt == 5

	if httpMode {
		st, err := c.word("status_code")
		if err != nil {
			return err
		}
		if st != "-1" {
			n, ok := digits(st)
			if !ok || len(st) > 3 {
				return haproxyErr(c.i-len(st)-1, "status_code", fmt.Sprintf("invalid status %.20q", st))
			}
			ev.HTTP.Response.StatusCode = n
		}
	}
	br, err := c.word("bytes_read")
	if err != nil {
		return err
	}
	b := strings.TrimPrefix(br, "+")
	if n, ok := digits(b); !ok || len(b) > 18 {
		return haproxyErr(c.i-len(br)-1, "bytes_read", fmt.Sprintf("invalid byte count %.20q", br))
	} else if httpMode {
		ev.HTTP.Response.Bytes = int64(n)
	} else {
		ev.Destination.Bytes = int64(n)
	}

	if httpMode {
		cc, err := c.word("captured_request_cookie")
		if err != nil {
			return err
		}
		cs, err := c.word("captured_response_cookie")
		if err != nil {
			return err
		}
		x.add("haproxy.http.request.captured_cookie", cc)
		x.add("haproxy.http.response.captured_cookie", cs)
		ApplyCredential(ev, cc)
	}
	ts, err := c.word("termination_state")
	if err != nil {
		return err
	}
	x.add("haproxy.termination_state", ts)

	connsAt := c.i
	conns, err := c.word("connections")
	if err != nil {
		return err
	}
	connKeys := &haConnKeys
	k := 0
	for rest := conns; k < len(connKeys); k++ {
		v, r, more := strings.Cut(rest, "/")
		v = strings.TrimPrefix(v, "+")
		if _, ok := digits(v); !ok {
			return haproxyErr(connsAt, "connections", fmt.Sprintf("want ac/fc/bc/sc/rc, got %.40q", conns))
		}
		if k < 4 || v != "0" {
			x.set(connKeys[k], v)
		}
		if !more {
			k++
			break
		}
		rest = r
	}
	if k != len(connKeys) {
		return haproxyErr(connsAt, "connections", fmt.Sprintf("want ac/fc/bc/sc/rc, got %.40q", conns))
	}
	qAt := c.i
	queues, err := c.word("queues")
	if err != nil {
		return err
	}
	sq, bq, ok := strings.Cut(queues, "/")
	if _, ok1 := digits(sq); !ok || !ok1 {
		return haproxyErr(qAt, "queues", fmt.Sprintf("want srv_queue/backend_queue, got %.40q", queues))
	}
	if _, ok2 := digits(bq); !ok2 {
		return haproxyErr(qAt, "queues", fmt.Sprintf("want srv_queue/backend_queue, got %.40q", queues))
	}
	// Retries and queue positions are almost always 0: stored only when not,
	// which keeps the per-event map small (absent means 0).
	if sq != "0" {
		x.set("haproxy.server_queue", sq)
	}
	if bq != "0" {
		x.set("haproxy.backend_queue", bq)
	}

	if !httpMode {
		ev.Event.Category = haTCP[:] // replaced by pxFinish's own slices
		if c.i < len(c.s) {
			return haproxyErr(c.i, "end of tcplog line", "unexpected trailing data")
		}
		return nil
	}

	// Up to two {…} blocks: request captures, then response captures.
	var blocks [2]string
	nb := 0
	for nb < 2 && c.i < len(c.s) && c.s[c.i] == '{' {
		end := strings.Index(c.s[c.i:], "} ")
		if end < 0 {
			if strings.HasSuffix(c.s, "}") {
				end = len(c.s) - c.i - 1
			} else {
				return haproxyErr(c.i, "captured_headers", "unterminated '{'")
			}
		}
		blocks[nb] = c.s[c.i+1 : c.i+end]
		nb++
		c.i += end + 1
		if c.i < len(c.s) {
			c.i++
		}
	}
	if nb > 0 {
		h.captures(ev, x, blocks[0], h.reqHeaders, true)
	}
	if nb > 1 {
		h.captures(ev, x, blocks[1], h.respHeaders, false)
	}

	// "GET /index.html HTTP/1.1", possibly truncated without its closing quote.
	if c.i >= len(c.s) || c.s[c.i] != '"' {
		return haproxyErr(c.i, "http_request", `expected '"'`)
	}
	req := c.s[c.i+1:]
	if k := strings.LastIndexByte(req, '"'); k >= 0 {
		req = req[:k]
	}
	h.request(ev, haDecode(req))
	// After the captured headers: a header's credential wins over the
	// query string's, as for the other gateways.
	ApplyCredential(ev, ev.URL.Query)
	return nil
}

// haTCP marks a tcplog event until pxFinish classifies it.
var haTCP = [1]string{"network"}

// captures maps one {a|b|c} block of request (or response) captures.
func (h *HAProxy) captures(ev *schema.Event, x *haExtras, block string, names []haHeader, request bool) {
	if block == "" {
		return
	}
	if request {
		x.add("haproxy.http.request.captured_headers", block)
	} else {
		x.add("haproxy.http.response.captured_headers", block)
	}
	pos := 0
	for rest := block; ; {
		v, r, more := strings.Cut(rest, "|")
		pos++
		v = haDecode(v)
		var hd haHeader
		if pos < len(names) {
			hd = names[pos]
		}
		if v != "" {
			if request {
				haRequestHeader(ev, x, hd, v)
			} else if hd.name != "" {
				x.add(hd.key, v)
			}
		}
		if !more {
			return
		}
		rest = r
	}
}

// haRequestHeader maps one captured request header value; name is "" for
// an unnamed capture.
func haRequestHeader(ev *schema.Event, x *haExtras, hd haHeader, v string) {
	switch hd.name {
	case "":
		if !ApplyCredential(ev, v) && ev.Client.IP == "" && haIPList(v) {
			pxSetXFF(ev, v)
		}
	case "x-forwarded-for":
		pxSetXFF(ev, v)
	case "x-real-ip", "true-client-ip", "cf-connecting-ip":
		if ev.Client.IP == "" {
			pxSetXFF(ev, v)
		}
	case "x-request-id", "x-correlation-id":
		ev.HTTP.Request.ID = v
	case "user-agent":
		ev.UserAgent.Original = v
	case "referer":
		ev.HTTP.Request.Referrer = v
	case "host":
		ev.URL.Domain = v
	case "authorization", "proxy-authorization", "x-api-key", "apikey", "api-key", "cookie":
		ApplyCredential(ev, v)
	default:
		x.add(hd.key, v)
	}
}

// haIPList reports whether v is a comma-separated list of IP addresses.
func haIPList(v string) bool {
	for rest := v; ; {
		a, r, more := strings.Cut(rest, ",")
		a = strings.TrimSpace(a)
		if !pxMaybeIP(a) {
			return false // spares ParseAddr's error allocation
		}
		if _, err := netip.ParseAddr(a); err != nil {
			return false
		}
		if !more {
			return true
		}
		rest = r
	}
}

// request maps "METHOD target HTTP/x"; "<BADREQ>" and anything else is kept
// in url.original.
func (h *HAProxy) request(ev *schema.Event, req string) {
	if req == "" || req == "<BADREQ>" {
		if req != "" {
			ev.URL.Original = req
		}
		return
	}
	sp1 := strings.IndexByte(req, ' ')
	if sp1 <= 0 || !isWord(req[:sp1]) {
		ev.URL.Original = req
		return
	}
	ev.HTTP.Request.Method = req[:sp1]
	target := req[sp1+1:]
	if sp2 := strings.LastIndexByte(target, ' '); sp2 >= 0 && isHTTPProto(target[sp2+1:]) {
		ev.HTTP.Version = target[sp2+1+len("HTTP/"):]
		target = target[:sp2]
	}
	if ev.URL.Domain != "" {
		dom := ev.URL.Domain
		gwSetTarget(ev, target)
		if ev.URL.Domain == "" {
			ev.URL.Domain = dom
		}
		return
	}
	gwSetTarget(ev, target)
}

// haDecode undoes HAProxy's "#XX" escaping.
func haDecode(s string) string {
	if strings.IndexByte(s, '#') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	out, _ := gwValid(string(b))
	return out
}

// parseHAProxyDate parses "06/Feb/2009:12:14:14.655" as UTC.
func parseHAProxyDate(v string) (time.Time, bool) {
	const n = len("06/Feb/2009:12:14:14")
	if len(v) < n || v[2] != '/' || v[6] != '/' || v[11] != ':' || v[14] != ':' || v[17] != ':' {
		return time.Time{}, false
	}
	day, ok1 := digits(v[0:2])
	year, ok2 := digits(v[7:11])
	hour, ok3 := digits(v[12:14])
	minute, ok4 := digits(v[15:17])
	sec, ok5 := digits(v[18:20])
	month := monthOf(v[3:6])
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || month == 0 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	nsec := 0
	if len(v) > n {
		frac := v[n+1:]
		if v[n] != '.' || len(frac) == 0 || len(frac) > 9 {
			return time.Time{}, false
		}
		f, ok := digits(frac)
		if !ok {
			return time.Time{}, false
		}
		for range 9 - len(frac) {
			f *= 10
		}
		nsec = f
	}
	return time.Date(year, month, day, hour, minute, sec, nsec, time.UTC), true
}

// pxMaybeIP is a cheap filter run before netip.ParseAddr where most values
// are not addresses (its error costs an allocation): an IPv4 address is
// digits and dots, anything else must hold a ':' to be IPv6.
func pxMaybeIP(s string) bool {
	if len(s) < 2 {
		return false
	}
	if strings.IndexByte(s, ':') >= 0 {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

// pxSetEndpoint is gwSetEndpoint with a fast path for "a.b.c.d" and
// "a.b.c.d:port": the IP is then a substring of the line (netip refuses
// leading zeros, so an IPv4 address prints exactly as written) and no
// error is built for the forms that do not match. Everything else goes to
// gwSetEndpoint, so the result is the same.
func pxSetEndpoint(e *schema.Endpoint, addr string) {
	host, port := addr, ""
	if c := strings.IndexByte(addr, ':'); c >= 0 {
		host, port = addr[:c], addr[c+1:]
		if len(port) == 0 || len(port) > 5 || strings.IndexByte(port, ':') >= 0 {
			pxSetEndpoint6(e, addr)
			return
		}
	}
	if len(host) < 7 || !pxMaybeIP(host) {
		gwSetEndpoint(e, addr)
		return
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Is4() {
		gwSetEndpoint(e, addr)
		return
	}
	if port == "" {
		e.Address, e.IP = addr, host
		return
	}
	p, ok := digits(port)
	if !ok || p > 65535 {
		gwSetEndpoint(e, addr)
		return
	}
	e.IP, e.Port, e.Address = host, p, host
}

// pxSetEndpoint6 handles HAProxy's bracketless "v6:port" with a 5-digit
// port, which cannot parse as a whole address (a hex group has at most 4
// digits), as gwSetEndpoint's last resort does, without its two failed
// parses; anything else goes to gwSetEndpoint.
func pxSetEndpoint6(e *schema.Endpoint, addr string) {
	c := strings.LastIndexByte(addr, ':')
	host, port := addr[:c], addr[c+1:]
	p, ok := digits(port)
	if len(port) != 5 || !ok || p > 65535 || addr[0] == '[' || strings.IndexByte(addr, '%') >= 0 {
		gwSetEndpoint(e, addr)
		return
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		gwSetEndpoint(e, addr)
		return
	}
	ip = ip.Unmap()
	var buf [64]byte
	if b := ip.AppendTo(buf[:0]); string(b) != host {
		host = string(b)
	}
	e.IP, e.Port, e.Address = host, p, host
}

// pxFinish is gwFinish for the line-format proxies, with the fixed arrays
// (category, type, related.ip, related.user) in one allocation; capacities
// are clipped so a later append copies instead of overwriting a neighbour.
func pxFinish(ev *schema.Event, rec *ingest.Record, source, dataset, module, category, typ string, invalid bool) {
	arr := &[6]string{category, typ}
	ev.Event.Kind = "event"
	ev.Event.Category = arr[0:1:1]
	ev.Event.Type = arr[1:2:2]
	ev.Event.Dataset = dataset
	ev.Event.Module = module
	if ev.Event.Outcome == "" {
		switch st := ev.HTTP.Response.StatusCode; {
		case st == 0:
			ev.Event.Outcome = "unknown"
		case st < 400:
			ev.Event.Outcome = "success"
		default:
			ev.Event.Outcome = "failure"
		}
	}
	ev.Event.ID = rec.ID()
	ev.Trailwatch.Source = source
	ev.Trailwatch.Raw = schema.RawRef{Origin: rec.Origin, Offset: rec.Offset, Collector: rec.Collector}
	ips := arr[2:2:5]
	for _, ip := range [...]string{ev.Source.IP, ev.Client.IP, ev.Destination.IP} {
		if ip != "" && !containsStr(ips, ip) {
			ips = append(ips, ip)
		}
	}
	if len(ips) > 0 {
		ev.Related.IP = ips[:len(ips):len(ips)]
	}
	if ev.User.Name != "" {
		arr[5] = ev.User.Name
		ev.Related.User = arr[5:6:6]
	}
	if invalid {
		ev.Tags = append(ev.Tags, TagInvalidUTF8)
	}
	ev.Trailwatch.Actor = ev.ActorKey()
}

// pxSetXFF is gwSetXFF without the allocations for an IPv4 first address,
// which is then a substring of the line.
func pxSetXFF(ev *schema.Event, xff string) {
	first, _, _ := strings.Cut(xff, ",")
	first = strings.TrimSpace(first)
	if strings.IndexByte(first, ':') >= 0 || !pxMaybeIP(first) {
		gwSetXFF(ev, xff)
		return
	}
	if _, err := netip.ParseAddr(first); err != nil {
		return // gwSetXFF ignores a value that is not an address
	}
	ev.Client.IP, ev.Client.Address = first, first
	if ev.Source.IP == "" && ev.Source.Address == "" {
		ev.Source.IP, ev.Source.Address = first, first
	}
}
