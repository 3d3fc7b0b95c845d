package normalize

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// lfKind is what a format field means; apply maps each kind to ECS.
type lfKind uint8

const (
	lfExtra         lfKind = iota // trailwatch.extra[key]
	lfSkip                        // read and dropped
	lfRemoteAddr                  // source.address, .ip or .domain
	lfRemotePort                  // source.port
	lfRemoteUser                  // user.name
	lfTimeLocal                   // 02/Jan/2006:15:04:05 -0700
	lfTimeBracket                 // [02/Jan/2006:15:04:05 -0700] (Apache %t)
	lfTimeISO                     // RFC 3339
	lfTimeEpoch                   // seconds[.frac] times scale ns
	lfTimeLayout                  // Go layout in lfField.layout
	lfTimeFrac                    // fraction of a second, scale ns per unit
	lfTimeAny                     // any of the above (JSON keys)
	lfRequest                     // request line
	lfMethod                      // http.request.method
	lfRequestURI                  // path?query
	lfURI                         // url.path
	lfArgs                        // url.query
	lfQueryString                 // url.query with a leading '?'
	lfProtocol                    // HTTP/1.1
	lfStatus                      // http.response.status_code
	lfBodyBytes                   // http.response.body.bytes
	lfBytesSent                   // http.response.bytes
	lfRequestLength               // http.request.bytes
	lfDuration                    // event.duration, scale ns per unit
	lfReferer                     // http.request.referrer
	lfUserAgent                   // user_agent.original
	lfForwardedFor                // client.ip + extra
	lfRequestID                   // http.request.id
	lfHost                        // url.domain
	lfServerName                  // destination.domain
	lfServerAddr                  // destination.ip
	lfServerPort                  // destination.port
	lfScheme                      // url.scheme
	lfTLSProtocol                 // tls.version(_protocol)
	lfTLSCipher                   // tls.cipher
	lfTLSServerName               // tls.client.server_name
	lfReqMime                     // http.request.mime_type
	lfRespMime                    // http.response.mime_type
	lfCredential                  // a credential token: ApplyCredential only
)

func (k lfKind) isTime() bool {
	return k >= lfTimeLocal && k <= lfTimeAny && k != lfTimeFrac
}

// lfField is one compiled field.
type lfField struct {
	kind   lfKind
	name   string // as written in the format ("$status", "%>s"), for errors
	key    string // trailwatch.extra key of an lfExtra field
	layout string // Go time layout of an lfTimeLayout field
	scale  int64  // nanoseconds per unit: lfTimeEpoch, lfTimeFrac, lfDuration
}

// lfState is the per-line scratch of a format-driven normalizer.
type lfState struct {
	ev         *schema.Event
	line       string
	invalid    bool
	request    string // raw, undecoded
	requestURI string
	uri        string
	args       string
	hasArgs    bool
	frac       int64 // ns added to the timestamp (Apache %{msec_frac}t)
}

// text decodes a raw value, noting replaced invalid UTF-8.
func (st *lfState) text(raw string) string {
	v, bad := lfUnescape(raw)
	if bad {
		st.invalid = true
	}
	return v
}

// extra stores a value under trailwatch.extra and picks up a credential
// token wherever one was logged.
func (st *lfState) extra(key, v string) {
	ev := st.ev
	if ev.Trailwatch.Extra == nil {
		ev.Trailwatch.Extra = make(map[string]string, 4)
	}
	ev.Trailwatch.Extra[key] = v
	if strings.Contains(v, FingerprintPrefix) {
		ApplyCredential(ev, v)
	}
}

// apply maps one raw field value onto the event. It returns "" or what is
// wrong with the value ("invalid status"). "-" and "" mean absent.
func (st *lfState) apply(f *lfField, raw string) string {
	if raw == "-" || raw == "" {
		return ""
	}
	ev := st.ev
	switch f.kind {
	case lfSkip:
	case lfExtra:
		st.extra(f.key, st.text(raw))
	case lfRemoteAddr:
		v := st.text(raw)
		ev.Source.Address = v
		if lfIsIP(v) {
			ev.Source.IP = v
		} else {
			ev.Source.Domain = v
		}
	case lfRemotePort:
		ev.Source.Port = lfPort(raw)
	case lfRemoteUser:
		ev.User.Name = st.text(raw)
	case lfTimeLocal, lfTimeBracket, lfTimeISO, lfTimeEpoch, lfTimeLayout, lfTimeAny:
		t, ok := lfTime(f, raw)
		if !ok {
			return "invalid time"
		}
		ev.Timestamp = t
	case lfTimeFrac:
		n, ok := lfScaled(raw, f.scale)
		if !ok || n >= int64(time.Second) {
			return "invalid time fraction"
		}
		st.frac = n
	case lfRequest:
		st.request = raw
	case lfMethod:
		ev.HTTP.Request.Method = st.text(raw)
	case lfRequestURI:
		st.requestURI = st.text(raw)
	case lfURI:
		st.uri = st.text(raw)
	case lfArgs, lfQueryString:
		v := st.text(raw)
		if f.kind == lfQueryString {
			v = strings.TrimPrefix(v, "?")
		}
		st.args, st.hasArgs = v, v != ""
	case lfProtocol:
		if isHTTPProto(raw) {
			ev.HTTP.Version = raw[len("HTTP/"):]
		}
	case lfStatus:
		n, ok := digits(raw)
		if !ok || len(raw) > 3 {
			return "invalid status"
		}
		ev.HTTP.Response.StatusCode = n
	case lfBodyBytes, lfBytesSent, lfRequestLength:
		n, ok := digits64(raw) // lfScaled(raw, 1) without a fraction
		if !ok {
			return "invalid byte count"
		}
		switch f.kind {
		case lfBodyBytes:
			ev.HTTP.Response.Body.Bytes = n
		case lfBytesSent:
			ev.HTTP.Response.Bytes = n
		default:
			ev.HTTP.Request.Bytes = n
		}
	case lfDuration:
		n, ok := lfScaled(raw, f.scale)
		if !ok {
			return "invalid duration"
		}
		ev.Event.Duration = n
	case lfReferer:
		ev.HTTP.Request.Referrer = st.text(raw)
	case lfUserAgent:
		ev.UserAgent.Original = st.text(raw)
	case lfForwardedFor:
		v := st.text(raw)
		st.extra(f.key, v)
		first, _, _ := strings.Cut(v, ",")
		if first = strings.TrimSpace(first); lfIsIP(first) {
			ev.Client.IP, ev.Client.Address = first, first
		}
	case lfRequestID:
		ev.HTTP.Request.ID = st.text(raw)
	case lfHost:
		ev.URL.Domain = st.text(raw)
	case lfServerName:
		ev.Destination.Domain = st.text(raw)
	case lfServerAddr:
		v := st.text(raw)
		ev.Destination.Address = v
		if lfIsIP(v) {
			ev.Destination.IP = v
		}
	case lfServerPort:
		ev.Destination.Port = lfPort(raw)
	case lfScheme:
		ev.URL.Scheme = st.text(raw)
	case lfTLSProtocol:
		v := st.text(raw)
		switch {
		case strings.HasPrefix(v, "TLSv"):
			ev.TLS.VersionProtocol, ev.TLS.Version = "tls", v[len("TLSv"):]
		case strings.HasPrefix(v, "SSLv"):
			ev.TLS.VersionProtocol, ev.TLS.Version = "ssl", v[len("SSLv"):]+".0"
		default:
			st.extra(f.key, v)
		}
	case lfTLSCipher:
		ev.TLS.Cipher = st.text(raw)
	case lfTLSServerName:
		ev.TLS.Client.ServerName = st.text(raw)
	case lfReqMime:
		ev.HTTP.Request.MimeType = st.text(raw)
	case lfRespMime:
		ev.HTTP.Response.MimeType = st.text(raw)
	case lfCredential:
		// The collector already replaced the secret with a fingerprint
		// token; the value is not kept anywhere else.
		ApplyCredential(ev, st.text(raw))
	}
	return ""
}

// finish derives what needs more than one field, then sets the fixed
// classification fields the way Elastic's integrations do.
func (st *lfState) finish(m *lfMeta) error {
	ev := st.ev
	if ev.Timestamp.IsZero() {
		return fmt.Errorf("%s: line has no time", m.source)
	}
	if st.frac != 0 {
		ev.Timestamp = ev.Timestamp.Truncate(time.Second).Add(time.Duration(st.frac))
	}
	switch {
	case st.request != "":
		st.splitRequest()
	case st.requestURI != "":
		ev.URL.Original = st.requestURI
		splitTarget(&ev.URL, st.requestURI)
	case st.uri != "":
		ev.URL.Path = st.uri
		ev.URL.Original = st.uri
		if st.hasArgs {
			ev.URL.Original += "?" + st.args
		}
	}
	if st.hasArgs && ev.URL.Query == "" {
		ev.URL.Query = st.args
	}
	if ev.URL.Query != "" {
		ApplyCredential(ev, ev.URL.Query)
	}

	arr := &[5]string{"web", "access"}
	ev.Event.Kind = "event"
	ev.Event.Category = arr[0:1:1]
	ev.Event.Type = arr[1:2:2]
	ev.Event.Dataset = m.dataset
	ev.Event.Module = m.module
	switch code := ev.HTTP.Response.StatusCode; {
	case code == 0:
	case code < 400:
		ev.Event.Outcome = "success"
	default:
		ev.Event.Outcome = "failure"
	}
	ips := arr[2:2:4]
	if ev.Source.IP != "" {
		ips = append(ips, ev.Source.IP)
	}
	if ev.Client.IP != "" && ev.Client.IP != ev.Source.IP {
		ips = append(ips, ev.Client.IP)
	}
	if len(ips) > 0 {
		ev.Related.IP = ips
	}
	if ev.User.Name != "" {
		arr[4] = ev.User.Name
		ev.Related.User = arr[4:5:5]
	}
	return nil
}

// splitRequest splits the request line like the nginx fast path: a line
// that is not "METHOD target HTTP/x" is kept as logged in url.original.
func (st *lfState) splitRequest() {
	ev, req := st.ev, st.request
	sp1 := strings.IndexByte(req, ' ')
	sp2 := strings.LastIndexByte(req, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 || !isWord(req[:sp1]) || !isHTTPProto(req[sp2+1:]) {
		ev.URL.Original = req
		if st.requestURI != "" {
			ev.URL.Original = st.requestURI
			splitTarget(&ev.URL, st.requestURI)
		}
		return
	}
	if ev.HTTP.Request.Method == "" {
		ev.HTTP.Request.Method = req[:sp1]
	}
	ev.HTTP.Version = req[sp2+1+len("HTTP/"):]
	target := st.text(req[sp1+1 : sp2])
	ev.URL.Original = target
	splitTarget(&ev.URL, target)
}

// lfTime parses a time field of any kind into UTC.
func lfTime(f *lfField, raw string) (time.Time, bool) {
	switch f.kind {
	case lfTimeLocal:
		return parseTimeLocal(raw)
	case lfTimeBracket:
		if len(raw) < 2 || raw[0] != '[' || raw[len(raw)-1] != ']' {
			return time.Time{}, false
		}
		return parseTimeLocal(raw[1 : len(raw)-1])
	case lfTimeISO:
		return lfParseLayout(time.RFC3339Nano, raw)
	case lfTimeEpoch:
		n, ok := lfScaled(raw, f.scale)
		if !ok {
			return time.Time{}, false
		}
		return time.Unix(0, n).UTC(), true
	case lfTimeLayout:
		if f.layout == timeLocalLayout {
			return parseTimeLocal(raw)
		}
		return lfParseLayout(f.layout, raw)
	case lfTimeAny:
		if t, ok := parseTimeLocal(raw); ok {
			return t, true
		}
		if t, ok := lfParseLayout(time.RFC3339Nano, raw); ok {
			return t, true
		}
		if n, ok := lfScaled(raw, int64(time.Second)); ok && n > 0 {
			return time.Unix(0, n).UTC(), true
		}
	}
	return time.Time{}, false
}

// lfParseLayout is time.Parse to UTC, refusing years JSON cannot carry.
func lfParseLayout(layout, raw string) (time.Time, bool) {
	t, err := time.Parse(layout, raw)
	if err != nil || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, false
	}
	t = t.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// lfScaled parses a non-negative decimal "123" or "0.250" and multiplies
// it by scale, refusing overflow.
func lfScaled(s string, scale int64) (int64, bool) {
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") || len(whole) > 19 {
		return 0, false
	}
	var w int64
	for i := 0; i < len(whole); i++ {
		c := whole[i] - '0'
		if c > 9 || w > (math.MaxInt64-int64(c))/10 {
			return 0, false
		}
		w = w*10 + int64(c)
	}
	if w > math.MaxInt64/scale {
		return 0, false
	}
	n := w * scale
	unit := scale
	for i := 0; i < len(frac); i++ {
		c := frac[i] - '0'
		if c > 9 {
			return 0, false
		}
		unit /= 10
		n += int64(c) * unit // cannot overflow: the fraction adds < scale
	}
	if n < 0 {
		return 0, false
	}
	return n, true
}

// lfPort parses a TCP port, 0 when it is not one.
func lfPort(s string) int {
	n, ok := digits(s)
	if !ok || len(s) > 5 || n > 65535 {
		return 0
	}
	return n
}

// lfSortedKeys returns a map's keys in order, for deterministic docs and
// errors.
func lfSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// digits64 parses a non-negative decimal int64 as parseBytes does,
// without building an error.
func digits64(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + int64(c)
		if n < 0 {
			return 0, false
		}
	}
	return n, true
}
